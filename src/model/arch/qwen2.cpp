// Qwen2 / Qwen2.5: Llama layout plus biases on the q, k and v projections;
// sliding windows on layers >= max_window_layers when use_sliding_window is set.
#include "registry.h"

namespace sinklab::arch {

namespace {
void qwen2_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.qkv_bias = true;
  if (config_value<bool>(cfg, "use_sliding_window", false) && cfg.contains("sliding_window") &&
      cfg["sliding_window"].is_number_integer()) {
    const int32_t w = config_value<int32_t>(cfg, "sliding_window", 0);
    const int64_t from = config_value<int64_t>(cfg, "max_window_layers", int64_t(0));
    for (int64_t l = from; l < c.n_layers; ++l) c.layer_window[size_t(l)] = w;
  }
}
}  // namespace

ArchRow qwen2_row() {
  ArchRow r;
  r.name = "qwen2";
  r.hf_model_types = {"qwen2"};
  r.gguf_archs = {"qwen2"};
  r.from_hf = qwen2_from_hf;
  return r;
}

}  // namespace sinklab::arch
