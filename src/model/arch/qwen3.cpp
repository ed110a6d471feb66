// Qwen3: Llama layout plus RMSNorm on each head of q and k (q_norm, k_norm) before RoPE.
#include "registry.h"

namespace sinklab::arch {

namespace {
void qwen3_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.qk_norm = true;
  c.qkv_bias = config_value<bool>(cfg, "attention_bias", false);
}
}  // namespace

ArchRow qwen3_row() {
  ArchRow r;
  r.name = "qwen3";
  r.hf_model_types = {"qwen3"};
  r.gguf_archs = {"qwen3"};
  r.from_hf = qwen3_from_hf;
  return r;
}

}  // namespace sinklab::arch
