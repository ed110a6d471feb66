// OLMoE: top-k routed experts under mlp.experts.E (no renormalisation) and an
// RMSNorm over the whole q and k projections (not per head).
#include "registry.h"

namespace sinklab::arch {

namespace {
void olmoe_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.moe.n_experts = config_value<int>(cfg, "num_experts", 0);
  c.moe.n_used = config_value<int>(cfg, "num_experts_per_tok", 8);
  c.moe.expert_hidden = c.hidden;
  c.moe.norm_topk = config_value<bool>(cfg, "norm_topk_prob", false);
  c.qk_norm_full = true;
  if (cfg.contains("clip_qkv") && cfg["clip_qkv"].is_number())
    throw Error("config.json: OLMoE clip_qkv is not supported");
}
}  // namespace

ArchRow olmoe_row() {
  ArchRow r;
  r.name = "olmoe";
  r.hf_model_types = {"olmoe"};
  r.gguf_archs = {"olmoe"};
  r.from_hf = olmoe_from_hf;
  r.router_name = mlp_router_name;
  r.expert_name = mlp_expert_name;
  return r;
}

}  // namespace sinklab::arch
