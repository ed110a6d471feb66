// The vision inspection: one forward with taps on every block's output and
// attention probabilities; per-layer token norms, high-norm tokens and the
// CLS token's attention over the patches.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "sinklab/vision.h"

namespace sinklab {

namespace {

double median_of(std::vector<float> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(mid), v.end());
  if (v.size() % 2) return v[mid];
  const float upper = v[mid];
  return 0.5 * (double(*std::max_element(v.begin(), v.begin() + std::ptrdiff_t(mid))) + upper);
}

// Records norms and CLS attention of each layer from the taps.
struct Recorder {
  VisionInspection& r;
  int patches;

  void norms(const TapEvent& ev) {
    for (int64_t t = 0; t < ev.rows; ++t) {
      double s = 0;
      for (int64_t j = 0; j < ev.cols; ++j) s += double(ev.data[t * ev.cols + j]) * ev.data[t * ev.cols + j];
      r.norms[size_t(ev.layer * r.tokens + t)] = float(std::sqrt(s));
    }
  }
  // probs [heads * T, P + T] (P RegCache prefix keys first): row h * T is the
  // CLS query of head h.
  void cls(const TapEvent& ev) {
    const int64_t T = r.tokens;
    const int others = int(T) - patches;
    for (int h = 0; h < r.n_heads; ++h) {
      const float* row = ev.data + int64_t(h) * T * ev.cols + (ev.cols - T);
      for (int p = 0; p < patches; ++p)
        r.cls_to_patches[size_t(ev.layer * patches + p)] += row[r.n_prefix + p] / float(r.n_heads);
      for (int o = 0; o < others; ++o) {
        const int64_t key = o < r.n_prefix ? o : o + patches;  // CLS, registers, then after the patches
        r.cls_to_others[size_t(ev.layer * others + o)] += row[key] / float(r.n_heads);
      }
    }
  }
};

void find_high_norm(const VisionInspectOptions& opts, VisionInspection& r) {
  const int patches = r.grid_h * r.grid_w;
  for (int l = 0; l < r.n_layers; ++l) {
    const float* n = r.norms.data() + int64_t(l) * r.tokens;
    const double med = median_of(std::vector<float>(n + r.n_prefix, n + r.n_prefix + patches));
    const double thr = opts.norm_threshold > 0 ? opts.norm_threshold : opts.norm_factor * med;
    r.median[size_t(l)] = float(med);
    r.threshold[size_t(l)] = float(thr);
    for (int64_t t = 0; t < r.tokens; ++t)
      if (n[t] > thr) r.high_norm[size_t(l)].push_back(int(t));
  }
}

}  // namespace

VisionInspection inspect_vision(const VisionModel& model, const float* pixels, int height, int width,
                                const VisionInspectOptions& opts) {
  check(opts.norm_threshold >= 0 && std::isfinite(opts.norm_threshold), "vision inspect: norm threshold should be >= 0");
  check(opts.norm_factor > 0 && std::isfinite(opts.norm_factor), "vision inspect: norm factor should be > 0");
  check(opts.forward.deletion.layer < 0, "vision inspect: token deletion is not supported (the token layout must stay fixed)");
  const VisionConfig& c = model.config();
  VisionInspection r;
  r.n_layers = c.n_layers, r.n_heads = c.n_heads, r.n_prefix = c.n_prefix();
  r.n_extra = opts.forward.test_time_registers;
  r.grid_h = height / c.patch_size, r.grid_w = width / c.patch_size;
  const int patches = r.grid_h * r.grid_w;
  r.tokens = int64_t(r.n_prefix) + patches + r.n_extra;
  r.norms.assign(size_t(r.n_layers * r.tokens), 0.f);
  r.median.assign(size_t(r.n_layers), 0.f);
  r.threshold.assign(size_t(r.n_layers), 0.f);
  r.high_norm.assign(size_t(r.n_layers), {});
  if (c.cls_token) {
    r.cls_to_patches.assign(size_t(r.n_layers) * size_t(patches), 0.f);
    r.cls_to_others.assign(size_t(r.n_layers) * size_t(r.tokens - patches), 0.f);
  }
  Taps taps;
  // The caller's taps first, so the probe sees what they edit.
  if (opts.forward.taps) taps.add("*", [&](const TapEvent& ev) { opts.forward.taps->fire(ev); });
  Recorder rec{r, patches};
  taps.add("blk.*.resid_out", [&](const TapEvent& ev) { rec.norms(ev); });
  if (c.cls_token) taps.add("blk.*.attn_probs", [&](const TapEvent& ev) { rec.cls(ev); });
  VisionForwardOptions fo = opts.forward;
  fo.taps = &taps;
  const VisionOutput out = model.forward(pixels, height, width, fo);
  r.pooled = out.pooled;
  find_high_norm(opts, r);
  return r;
}

nlohmann::json vision_inspection_json(const VisionModel& model, const VisionInspection& r, const std::string& source) {
  const VisionConfig& c = model.config();
  nlohmann::json j;
  j["format"] = "sinklab-vision-inspect";
  j["model"] = {{"path", model.path()}, {"arch", vision_arch_name(c.arch)}, {"model_type", c.model_type},
                {"dim", c.dim}, {"layers", c.n_layers}, {"heads", c.n_heads}, {"patch_size", c.patch_size},
                {"image_size", c.image_size}, {"registers", c.n_registers}, {"cls_token", c.cls_token},
                {"params", model.n_params()}};
  j["image"] = source;
  j["grid"] = {r.grid_h, r.grid_w};
  j["tokens"] = r.tokens;
  j["n_prefix"] = r.n_prefix;
  j["test_time_registers"] = r.n_extra;
  nlohmann::json layers = nlohmann::json::array();
  const int patches = r.grid_h * r.grid_w;
  const int64_t others = r.tokens - patches;
  for (int l = 0; l < r.n_layers; ++l) {
    const float* n = r.norms.data() + int64_t(l) * r.tokens;
    nlohmann::json L = {{"layer", l}, {"median_patch_norm", r.median[size_t(l)]}, {"threshold", r.threshold[size_t(l)]},
                        {"max_norm", *std::max_element(n, n + r.tokens)}, {"high_norm_tokens", r.high_norm[size_t(l)]},
                        {"norms", std::vector<float>(n, n + r.tokens)}};
    if (!r.cls_to_patches.empty()) {
      const float* a = r.cls_to_patches.data() + int64_t(l) * patches;
      const float* o = r.cls_to_others.data() + int64_t(l) * others;
      L["cls_to_patches"] = std::vector<float>(a, a + patches);
      L["cls_to_others"] = std::vector<float>(o, o + others);
    }
    layers.push_back(std::move(L));
  }
  j["layers"] = std::move(layers);
  return j;
}

}  // namespace sinklab
