// Mixtral: Mistral attention with a top-k softmax-routed mixture of SwiGLU experts
// named block_sparse_moe.experts.E.{w1,w3,w2} (gate, up, down).
#include "registry.h"

namespace sinklab::arch {

namespace {
void mixtral_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.moe.n_experts = config_value<int>(cfg, "num_local_experts", 0);
  c.moe.n_used = config_value<int>(cfg, "num_experts_per_tok", 2);
  c.moe.expert_hidden = c.hidden;
  c.moe.norm_topk = true;
  if (cfg.contains("sliding_window") && cfg["sliding_window"].is_number_integer())
    c.layer_window.assign(size_t(c.n_layers), config_value<int32_t>(cfg, "sliding_window", 0));
}
std::string mixtral_router(int l) {
  return "model.layers." + std::to_string(l) + ".block_sparse_moe.gate.weight";
}
std::string mixtral_expert(int l, int e, ExpertPart part) {
  static const char* parts[] = {"w1", "w3", "w2"};
  return "model.layers." + std::to_string(l) + ".block_sparse_moe.experts." + std::to_string(e) +
         "." + parts[int(part)] + ".weight";
}
}  // namespace

ArchRow mixtral_row() {
  ArchRow r;
  r.name = "mixtral";
  r.hf_model_types = {"mixtral"};
  r.gguf_archs = {};  // llama.cpp stores Mixtral as "llama" with expert tensors
  r.gguf_rope = RopeStyle::Interleaved;
  r.from_hf = mixtral_from_hf;
  r.router_name = mixtral_router;
  r.expert_name = mixtral_expert;
  return r;
}

}  // namespace sinklab::arch
