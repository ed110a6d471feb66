// Simulated activation and weight quantization of vision transformers, the
// RegCache prefix, and the table of quantization errors with and without it.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "sinklab/vision.h"
#include "weights.h"

namespace sinklab {

namespace {

// Quantize-dequantize n values with one absmax scale.
void fake_quantize_span(float* x, int64_t n, int bits) {
  const float qmax = float((1 << (bits - 1)) - 1);
  float amax = 0.f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  if (amax == 0.f || !std::isfinite(amax)) return;
  const float scale = amax / qmax;
  for (int64_t i = 0; i < n; ++i) x[i] = std::clamp(std::nearbyint(x[i] / scale), -qmax, qmax) * scale;
}

void quantize_rows(VisionLinear& l, int bits) {
  for (int64_t r = 0; r < l.out; ++r) fake_quantize_span(l.w.data() + r * l.in, l.in, bits);
}

double relative_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

struct Run {
  VisionOutput out;
  std::vector<std::vector<float>> resid;  // per layer blk.L.resid_out
};

Run run(const VisionModel& model, const float* pixels, int h, int w, const VisionForwardOptions& base,
        const QuantSetting* act) {
  Run r;
  r.resid.resize(size_t(model.config().n_layers));
  Taps taps;
  if (act) add_activation_fake_quant_taps(taps, act->act_bits, act->per_token);
  taps.add("blk.*.resid_out", [&](const TapEvent& ev) { r.resid[size_t(ev.layer)].assign(ev.data, ev.data + ev.rows * ev.cols); });
  VisionForwardOptions o = base;
  o.taps = &taps;
  r.out = model.forward(pixels, h, w, o);
  return r;
}

QuantErrors compare(const QuantSetting& s, bool regcache, const Run& q, const Run& ref) {
  QuantErrors e;
  e.setting = s, e.regcache = regcache;
  e.pooled_error = relative_error(q.out.pooled, ref.out.pooled);
  for (size_t l = 0; l < ref.resid.size(); ++l) e.layer_errors.push_back(relative_error(q.resid[l], ref.resid[l]));
  return e;
}

}  // namespace

void fake_quantize(float* x, int64_t rows, int64_t cols, int bits, bool per_token) {
  check(bits >= 2 && bits <= 16, "fake quantization: bits should be in 2..16");
  if (!per_token) return fake_quantize_span(x, rows * cols, bits);
  for (int64_t r = 0; r < rows; ++r) fake_quantize_span(x + r * cols, cols, bits);
}

std::vector<int> add_activation_fake_quant_taps(Taps& taps, int bits, bool per_token) {
  check(bits >= 2 && bits <= 16, "fake quantization: activation bits should be in 2..16");
  std::vector<int> ids;
  for (const char* name : {"blk.*.attn_norm", "blk.*.attn_ctx", "blk.*.ffn_norm", "blk.*.ffn_act"})
    ids.push_back(taps.add(name, [bits, per_token](const TapEvent& ev) { fake_quantize(ev.data, ev.rows, ev.cols, bits, per_token); }));
  return ids;
}

std::shared_ptr<const VisionModel> quantize_vision_weights(const VisionModel& model, int bits) {
  check(bits >= 2 && bits <= 16, "fake quantization: weight bits should be in 2..16");
  auto w = std::make_unique<VisionWeights>(model.weights());
  for (VisionLayer& L : w->layers)
    for (VisionLinear* l : {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2}) quantize_rows(*l, bits);
  return std::make_shared<const VisionModel>(model.config(), std::move(w), model.path());
}

VisionKvPrefix build_regcache_prefix(const VisionModel& model, int height, int width, int first_layer, int n_tokens,
                                     const float* pixels, std::vector<int>* token_ids) {
  const VisionConfig& c = model.config();
  check(first_layer >= 0 && first_layer < c.n_layers, [&] {
    return std::string("RegCache: first layer ") + std::to_string(first_layer) + " is out of range (0.." +
           std::to_string(c.n_layers - 1) + ")";
  });
  check(n_tokens >= 1, "RegCache: at least one prefix token is needed");
  std::vector<float> blank;
  if (!pixels) {
    blank.assign(size_t(c.channels) * size_t(height) * size_t(width), 0.f);
    pixels = blank.data();
  }
  VisionKvPrefix prefix;
  prefix.first_layer = first_layer;
  prefix.k.resize(size_t(c.n_layers));
  prefix.v.resize(size_t(c.n_layers));
  std::vector<float> norms;
  std::vector<std::vector<float>> keys(size_t(c.n_layers)), values(size_t(c.n_layers));
  std::string before = "token_embd";
  if (first_layer > 0) {
    before = "blk.";
    before += std::to_string(first_layer - 1);
    before += ".resid_out";
  }
  Taps taps;
  taps.add(before, [&](const TapEvent& ev) {
    norms.assign(size_t(ev.rows), 0.f);
    for (int64_t t = 0; t < ev.rows; ++t) {
      double s = 0;
      for (int64_t j = 0; j < ev.cols; ++j) s += double(ev.data[t * ev.cols + j]) * ev.data[t * ev.cols + j];
      norms[size_t(t)] = float(std::sqrt(s));
    }
  });
  taps.add("blk.*.k", [&](const TapEvent& ev) { keys[size_t(ev.layer)].assign(ev.data, ev.data + ev.rows * ev.cols); });
  taps.add("blk.*.v", [&](const TapEvent& ev) { values[size_t(ev.layer)].assign(ev.data, ev.data + ev.rows * ev.cols); });
  VisionForwardOptions o;
  o.taps = &taps;
  model.forward(pixels, height, width, o);
  std::vector<int> order;
  for (int t = c.cls_token ? 1 : 0; t < int(norms.size()); ++t) order.push_back(t);
  const size_t n = std::min(order.size(), size_t(n_tokens));
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(n), order.end(),
                    [&](int a, int b) { return norms[size_t(a)] != norms[size_t(b)] ? norms[size_t(a)] > norms[size_t(b)] : a < b; });
  order.resize(n);
  std::sort(order.begin(), order.end());
  prefix.n = int64_t(n);
  const int64_t D = c.dim;
  for (int l = first_layer; l < c.n_layers; ++l)
    for (int t : order) {
      prefix.k[size_t(l)].insert(prefix.k[size_t(l)].end(), keys[size_t(l)].begin() + t * D, keys[size_t(l)].begin() + (t + 1) * D);
      prefix.v[size_t(l)].insert(prefix.v[size_t(l)].end(), values[size_t(l)].begin() + t * D, values[size_t(l)].begin() + (t + 1) * D);
    }
  if (token_ids) *token_ids = order;
  return prefix;
}

std::string QuantSetting::name() const {
  std::string s = "W";
  s += std::to_string(weight_bits);
  s += 'A';
  s += std::to_string(act_bits);
  s += per_token ? " per-token" : " per-tensor";
  return s;
}

QuantReport vision_quant_report(const VisionModel& model, const float* pixels, int height, int width,
                                const std::vector<QuantSetting>& settings, const RegCacheOptions& rc) {
  const VisionConfig& c = model.config();
  QuantReport rep;
  rep.regcache = rc;
  if (rep.regcache.first_layer < 0) rep.regcache.first_layer = c.n_layers / 2;
  const VisionKvPrefix prefix = build_regcache_prefix(model, height, width, rep.regcache.first_layer,
                                                      rep.regcache.n_tokens, nullptr, &rep.prefix_tokens);
  VisionForwardOptions plain, cached;
  cached.prefix = &prefix;
  if (rc.delete_threshold > 0) {
    cached.deletion.layer = rep.regcache.first_layer;
    cached.deletion.norm_threshold = rc.delete_threshold;
  }
  const Run ref_plain = run(model, pixels, height, width, plain, nullptr);
  const Run ref_cached = run(model, pixels, height, width, cached, nullptr);
  for (int32_t t = 0; t < int32_t(ref_plain.out.tokens); ++t)
    if (std::find(ref_cached.out.token_ids.begin(), ref_cached.out.token_ids.end(), t) == ref_cached.out.token_ids.end())
      rep.deleted_tokens.push_back(t);
  rep.regcache_pooled_change = relative_error(ref_cached.out.pooled, ref_plain.out.pooled);
  for (const QuantSetting& s : settings) {
    check(s.weight_bits >= 2 && s.weight_bits <= 16 && s.act_bits >= 2 && s.act_bits <= 16,
          "quantization settings: bits should be in 2..16");
    const auto qmodel = quantize_vision_weights(model, s.weight_bits);
    rep.rows.push_back(compare(s, false, run(*qmodel, pixels, height, width, plain, &s), ref_plain));
    rep.rows.push_back(compare(s, true, run(*qmodel, pixels, height, width, cached, &s), ref_cached));
  }
  return rep;
}

nlohmann::json quant_report_json(const QuantReport& r) {
  nlohmann::json j;
  j["regcache"] = {{"first_layer", r.regcache.first_layer}, {"prefix_tokens", r.prefix_tokens},
                   {"delete_threshold", r.regcache.delete_threshold}, {"deleted_tokens", r.deleted_tokens},
                   {"pooled_change_float32", r.regcache_pooled_change}};
  nlohmann::json rows = nlohmann::json::array();
  for (const QuantErrors& e : r.rows)
    rows.push_back({{"setting", e.setting.name()}, {"weight_bits", e.setting.weight_bits}, {"act_bits", e.setting.act_bits},
                    {"per_token", e.setting.per_token}, {"regcache", e.regcache}, {"pooled_error", e.pooled_error},
                    {"layer_errors", e.layer_errors}});
  j["rows"] = std::move(rows);
  return j;
}

}  // namespace sinklab
