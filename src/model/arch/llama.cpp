// Llama 2/3 (incl. Llama 3.1 rope scaling), Mistral, SmolLM, TinyLlama: the plain
// pre-norm decoder with RMSNorm, SwiGLU and GQA. Mistral's sliding_window applies
// to every layer.
#include "registry.h"

namespace sinklab::arch {

namespace {
void llama_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.qkv_bias = config_value<bool>(cfg, "attention_bias", false);
  c.o_bias = c.qkv_bias;
  if (config_value<std::string>(cfg, "model_type", std::string()) == "mistral" && cfg.contains("sliding_window") &&
      cfg["sliding_window"].is_number_integer())
    c.layer_window.assign(size_t(c.n_layers), config_value<int32_t>(cfg, "sliding_window", 0));
  sinklab_variant_from_hf(cfg, c);  // a plain RoPE model trained by `sinklab train`
}
}  // namespace

ArchRow llama_row() {
  ArchRow r;
  r.name = "llama";
  r.hf_model_types = {"llama", "mistral", "smollm"};
  r.gguf_archs = {"llama", "mistral"};
  r.gguf_rope = RopeStyle::Interleaved;  // llama.cpp permutes q/k rows for these
  r.from_hf = llama_from_hf;
  return r;
}

}  // namespace sinklab::arch
