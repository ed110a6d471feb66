// RegCache and fake quantization. The KV prefix with token deletion is checked
// against a float64 forward written here from the checkpoint's tensors (no
// runtime code); the quantization taps change exactly the linear layers'
// inputs, to the quantize-dequantize of what they saw.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "sinklab/formats.h"
#include "sinklab/vision.h"
#include "tiny_vision_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

using Mat = std::vector<double>;  // row-major

struct Manual {
  std::map<std::string, Mat> w;
  explicit Manual(const std::string& folder) {
    const TensorFile f = load_safetensors(folder);
    for (const auto& [name, t] : f.tensors()) {
      std::vector<float> v(static_cast<size_t>(t.numel()));
      dequantize(t, v.data());
      w[name] = Mat(v.begin(), v.end());
    }
  }
  // y[n, out] = x[n, in] W^T + b
  Mat linear(const std::string& name, const Mat& x, int64_t n) {
    const Mat& W = w[name + ".weight"];
    const Mat& b = w[name + ".bias"];
    const int64_t out = int64_t(b.size()), in = int64_t(W.size()) / out;
    Mat y(size_t(n * out));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t o = 0; o < out; ++o) {
        double s = b[size_t(o)];
        for (int64_t k = 0; k < in; ++k) s += x[size_t(i * in + k)] * W[size_t(o * in + k)];
        y[size_t(i * out + o)] = s;
      }
    return y;
  }
  Mat norm(const std::string& name, const Mat& x, int64_t n, int64_t d, double eps) {
    Mat y(x.size());
    for (int64_t i = 0; i < n; ++i) {
      double m = 0, v = 0;
      for (int64_t j = 0; j < d; ++j) m += x[size_t(i * d + j)] / double(d);
      for (int64_t j = 0; j < d; ++j) v += (x[size_t(i * d + j)] - m) * (x[size_t(i * d + j)] - m) / double(d);
      for (int64_t j = 0; j < d; ++j)
        y[size_t(i * d + j)] = (x[size_t(i * d + j)] - m) / std::sqrt(v + eps) * w[name + ".weight"][size_t(j)] +
                               w[name + ".bias"][size_t(j)];
    }
    return y;
  }
};

// Attention of n queries over (prefix keys, then the n tokens' keys).
Mat attention(const Mat& q, const Mat& k, const Mat& v, int64_t n, int64_t nk, int64_t D, int heads) {
  const int64_t hd = D / heads;
  Mat ctx(size_t(n * D), 0.0);
  for (int h = 0; h < heads; ++h)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> s(static_cast<size_t>(nk));
      double top = -1e300, sum = 0;
      for (int64_t j = 0; j < nk; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < hd; ++c) dot += q[size_t(i * D + h * hd + c)] * k[size_t(j * D + h * hd + c)];
        s[size_t(j)] = dot / std::sqrt(double(hd));
        top = std::max(top, s[size_t(j)]);
      }
      for (double& x : s) sum += (x = std::exp(x - top));
      for (int64_t j = 0; j < nk; ++j)
        for (int64_t c = 0; c < hd; ++c) ctx[size_t(i * D + h * hd + c)] += s[size_t(j)] / sum * v[size_t(j * D + h * hd + c)];
    }
  return ctx;
}

TEST(RegCache, PrefixAndDeletionMatchAManualForward) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/vit";
  const auto model = VisionModel::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const VisionConfig& c = model->config();
  const int64_t D = c.dim, P = c.patch_size, first = 1, n_prefix = 3;
  ASSERT_EQ(c.n_layers, 2);
  // A prefix of random keys and values for layer 1; tokens 3 and 7 deleted before it.
  VisionKvPrefix prefix;
  prefix.first_layer = int(first), prefix.n = n_prefix;
  prefix.k.resize(2), prefix.v.resize(2);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (int l = int(first); l < 2; ++l)
    for (int64_t i = 0; i < n_prefix * D; ++i) prefix.k[size_t(l)].push_back(nd(rng)), prefix.v[size_t(l)].push_back(nd(rng));
  VisionForwardOptions opts;
  opts.prefix = &prefix;
  opts.deletion.layer = int(first);
  opts.deletion.tokens = {3, 7, 0};  // CLS (0) is never deleted
  const VisionOutput out = model->forward(g.pixels.data(), g.height, g.width, opts);
  const std::vector<int32_t> kept = {0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  ASSERT_EQ(out.token_ids, kept);

  Manual m(folder);
  const int gw = g.width / int(P), gh = g.height / int(P);
  int64_t T = 1 + gh * gw;
  Mat x(size_t(T * D));
  for (int64_t d = 0; d < D; ++d) x[size_t(d)] = m.w["embeddings.cls_token"][size_t(d)] + m.w["embeddings.position_embeddings"][size_t(d)];
  for (int py = 0; py < gh; ++py)
    for (int px = 0; px < gw; ++px)
      for (int64_t d = 0; d < D; ++d) {
        double s = m.w["embeddings.patch_embeddings.projection.bias"][size_t(d)];
        for (int ch = 0; ch < 3; ++ch)
          for (int i = 0; i < P; ++i)
            for (int j = 0; j < P; ++j)
              s += m.w["embeddings.patch_embeddings.projection.weight"][size_t(((d * 3 + ch) * P + i) * P + j)] *
                   g.pixels[size_t((ch * g.height + py * P + i) * g.width + px * P + j)];
        const int64_t t = 1 + py * gw + px;
        x[size_t(t * D + d)] = s + m.w["embeddings.position_embeddings"][size_t(t * D + d)];
      }
  for (int l = 0; l < 2; ++l) {
    if (l == first) {
      Mat kept_x;
      for (int32_t t : kept) kept_x.insert(kept_x.end(), x.begin() + t * D, x.begin() + (t + 1) * D);
      x = kept_x;
      T = int64_t(kept.size());
    }
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    const Mat h = m.norm(p + "layernorm_before", x, T, D, c.norm_eps);
    const Mat q = m.linear(p + "attention.attention.query", h, T);
    Mat k = m.linear(p + "attention.attention.key", h, T), v = m.linear(p + "attention.attention.value", h, T);
    int64_t nk = T;
    if (l >= first) {
      k.insert(k.begin(), prefix.k[size_t(l)].begin(), prefix.k[size_t(l)].end());
      v.insert(v.begin(), prefix.v[size_t(l)].begin(), prefix.v[size_t(l)].end());
      nk += n_prefix;
    }
    const Mat a = m.linear(p + "attention.output.dense", attention(q, k, v, T, nk, D, c.n_heads), T);
    for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
    Mat f = m.linear(p + "intermediate.dense", m.norm(p + "layernorm_after", x, T, D, c.norm_eps), T);
    for (double& z : f) z = 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
    const Mat o = m.linear(p + "output.dense", f, T);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  }
  const Mat hidden = m.norm("layernorm", x, T, D, c.norm_eps);
  ASSERT_EQ(out.hidden.size(), hidden.size());
  const std::vector<float> ref(hidden.begin(), hidden.end());
  EXPECT_LE(max_row_relative_error(out.hidden, ref, size_t(D)), 1e-4);
  // Without the prefix the output differs: the prefix took part.
  VisionForwardOptions no_prefix = opts;
  no_prefix.prefix = nullptr;
  EXPECT_GT(max_row_relative_error(model->forward(g.pixels.data(), g.height, g.width, no_prefix).hidden, ref, size_t(D)), 1e-3);
}

TEST(FakeQuant, RoundsToTheAbsmaxGrid) {
  std::vector<float> x = {0.1f, -0.26f, 1.27f, 0.0f, 3.0f, -0.7f, 0.2f, 0.05f};
  std::vector<float> t = x;
  fake_quantize(t.data(), 2, 4, 8, /*per_token=*/false);
  const float scale = 3.0f / 127;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(t[i] / scale, std::round(t[i] / scale), 1e-3) << i;
    EXPECT_LE(std::abs(t[i] - x[i]), scale / 2 + 1e-7) << i;
  }
  EXPECT_FLOAT_EQ(t[4], 3.0f);
  std::vector<float> r = x;
  fake_quantize(r.data(), 2, 4, 4, /*per_token=*/true);
  const float s0 = 1.27f / 7, s1 = 3.0f / 7;
  for (size_t i = 0; i < 4; ++i) EXPECT_LE(std::abs(r[i] - x[i]), s0 / 2 + 1e-6) << i;
  for (size_t i = 4; i < 8; ++i) EXPECT_LE(std::abs(r[i] - x[i]), s1 / 2 + 1e-6) << i;
  EXPECT_FLOAT_EQ(r[2], 1.27f);
  EXPECT_THROW(fake_quantize(r.data(), 2, 4, 1, false), Error);
}

TEST(FakeQuant, TapsQuantizeExactlyTheLinearInputs) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = VisionModel::load(tiny_vision_dir() + "/clip_vision");
  const VisionGolden g = read_vision_golden(tiny_vision_dir() + "/clip_vision");
  std::map<std::string, std::vector<float>> before, after;
  std::map<std::string, std::pair<int64_t, int64_t>> shape;
  Taps taps;
  taps.add("*", [&](const TapEvent& ev) {
    before[ev.name].assign(ev.data, ev.data + ev.rows * ev.cols);
    shape[ev.name] = {ev.rows, ev.cols};
  });
  add_activation_fake_quant_taps(taps, 8, true);
  taps.add("*", [&](const TapEvent& ev) { after[ev.name].assign(ev.data, ev.data + ev.rows * ev.cols); });
  VisionForwardOptions o;
  o.taps = &taps;
  model->forward(g.pixels.data(), g.height, g.width, o);
  size_t quantized = 0;
  for (const auto& [name, b] : before) {
    const bool input = name.find("attn_norm") != std::string::npos || name.find("attn_ctx") != std::string::npos ||
                       name.find("ffn_norm") != std::string::npos || name.find("ffn_act") != std::string::npos;
    std::vector<float> want = b;
    if (input) fake_quantize(want.data(), shape[name].first, shape[name].second, 8, true), ++quantized;
    EXPECT_EQ(after[name], want) << name;
  }
  EXPECT_EQ(quantized, size_t(4 * model->config().n_layers));
}

TEST(FakeQuant, QuantReportErrorsGrowWithFewerBits) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = VisionModel::load(tiny_vision_dir() + "/dinov2_registers");
  const VisionGolden g = read_vision_golden(tiny_vision_dir() + "/dinov2_registers");
  RegCacheOptions rc;
  rc.first_layer = 1;
  rc.n_tokens = 2;
  const QuantReport r = vision_quant_report(*model, g.pixels.data(), g.height, g.width,
                                            {{8, 8, false}, {4, 8, false}, {8, 8, true}}, rc);
  ASSERT_EQ(r.rows.size(), 6u);
  EXPECT_EQ(r.prefix_tokens.size(), 2u);
  EXPECT_GT(r.regcache_pooled_change, 0.0);
  for (const QuantErrors& e : r.rows) {
    EXPECT_GT(e.pooled_error, 0.0) << e.setting.name();
    EXPECT_LT(e.pooled_error, 1.0) << e.setting.name();
    EXPECT_EQ(e.layer_errors.size(), 3u);
  }
  EXPECT_GT(r.rows[2].pooled_error, r.rows[0].pooled_error);  // W4A8 > W8A8, no RegCache
  const auto json = quant_report_json(r);
  EXPECT_EQ(json["rows"][1]["regcache"], true);
  EXPECT_EQ(json["rows"][0]["setting"], "W8A8 per-tensor");
}

}  // namespace
