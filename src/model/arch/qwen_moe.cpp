// Qwen2-MoE and Qwen3-MoE: top-k routed experts under mlp.experts.E; Qwen2-MoE adds
// a shared expert scaled by sigmoid(x . shared_expert_gate) and q/k/v biases;
// Qwen3-MoE renormalises the top-k weights and has per-head q/k norms.
#include "registry.h"

namespace sinklab::arch {

namespace {
void qwen_moe_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  const bool qwen3 = config_value<std::string>(cfg, "model_type", std::string()) == "qwen3_moe";
  c.moe.n_experts = config_value<int>(cfg, "num_experts", 0);
  c.moe.n_used = config_value<int>(cfg, "num_experts_per_tok", 2);
  c.moe.expert_hidden = config_value<int64_t>(cfg, "moe_intermediate_size", int64_t(0));
  c.moe.norm_topk = config_value<bool>(cfg, "norm_topk_prob", qwen3);
  c.moe.shared_hidden = config_value<int64_t>(cfg, "shared_expert_intermediate_size", int64_t(0));
  c.moe.shared_gate = c.moe.shared_hidden > 0;
  c.qkv_bias = !qwen3;
  c.qk_norm = qwen3;
  if (config_value<int>(cfg, "decoder_sparse_step", 1) != 1 ||
      (cfg.contains("mlp_only_layers") && cfg["mlp_only_layers"].is_array() && !cfg["mlp_only_layers"].empty()))
    throw Error("config.json: mixed dense/MoE layer schedules (decoder_sparse_step, mlp_only_layers) are not supported");
}
}  // namespace

ArchRow qwen_moe_row() {
  ArchRow r;
  r.name = "qwen_moe";
  r.hf_model_types = {"qwen2_moe", "qwen3_moe"};
  r.gguf_archs = {"qwen2moe", "qwen3moe"};
  r.from_hf = qwen_moe_from_hf;
  r.router_name = mlp_router_name;
  r.expert_name = mlp_expert_name;
  return r;
}

}  // namespace sinklab::arch
