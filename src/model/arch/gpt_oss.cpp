// gpt-oss (OpenAI): learned per-head sink logits, sliding (128) and full layers
// alternating (even layers slide), q/k/v/o biases, YaRN not truncated, and a
// mixture of experts with a biased router, softmax over the top-k logits,
// biased experts and the clamped SwiGLU. The released checkpoint stores the
// experts as mxfp4 (mlp.experts.*_blocks / *_scales, gate and up interleaved).
#include "registry.h"

namespace sinklab::arch {

namespace {

void gpt_oss_common(ModelConfig& c) {
  c.sink_logits = true;
  c.qkv_bias = true;
  c.o_bias = true;
  c.moe.norm_topk = true;  // softmax over the k selected logits
  c.moe.router_bias = true;
  c.ffn_act = FfnActivation::ClampedSwiGLU;
}

void gpt_oss_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  gpt_oss_common(c);
  c.moe.n_experts = config_value<int>(cfg, "num_local_experts", 0);
  c.moe.n_used = config_value<int>(cfg, "num_experts_per_tok", config_value<int>(cfg, "experts_per_token", 4));
  c.moe.expert_hidden = c.hidden;
  c.swiglu_limit = config_value<float>(cfg, "swiglu_limit", 7.f);
  check(c.swiglu_limit > 0, "config.json: swiglu_limit must be > 0");
  layer_windows_from_hf(cfg, c, 2);
}

void gpt_oss_from_gguf(const Metadata& m, const std::string& p, ModelConfig& c) {
  gpt_oss_common(c);
  if (m.contains(p + "swiglu_limit")) c.swiglu_limit = float(m.get_double(p + "swiglu_limit"));
  // The model was trained with YaRN's correction range not rounded (config.json "truncate": false).
  c.rope.yarn_truncate = false;
  layer_windows_from_gguf(m, p, c, 2);
}

std::string router_name(int l) { return "model.layers." + std::to_string(l) + ".mlp.router.weight"; }

}  // namespace

ArchRow gpt_oss_row() {
  ArchRow r;
  r.name = "gpt_oss";
  r.hf_model_types = {"gpt_oss"};
  r.gguf_archs = {"gpt-oss"};
  r.from_hf = gpt_oss_from_hf;
  r.from_gguf = gpt_oss_from_gguf;
  r.router_name = router_name;
  r.fused_experts = true;
  r.gguf_ffn_norm = "post_attention_norm";
  return r;
}

}  // namespace sinklab::arch
