// Gemma 2 and Gemma 3 (text): sandwich norms (a norm on the input and on the
// output of both attention and FFN), RMSNorm as x * (1 + w) (config.json stores
// w; llama.cpp's GGUF files store 1 + w), GeGLU with tanh GELU, embeddings scaled
// by sqrt(dim), queries by 1/sqrt(query_pre_attn_scalar), local (sliding) and
// global layers interleaved. Gemma 2 soft-caps attention (50) and final (30)
// logits; Gemma 3 normalises q and k per head and gives local layers their own
// RoPE (theta 10k, unscaled).
#include <cmath>

#include "registry.h"

namespace sinklab::arch {

namespace {

void gemma_common(ModelConfig& c) {
  c.post_norms = true;
  c.ffn_act = FfnActivation::GeluTanh;
  c.embed_scale = std::sqrt(float(c.dim));
  c.tied_embeddings = true;
}

void gemma_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  const bool gemma3 = config_value<std::string>(cfg, "model_type", std::string()) != "gemma2";
  gemma_common(c);
  c.tied_embeddings = config_value<bool>(cfg, "tie_word_embeddings", true);
  const float qscalar = config_value<float>(cfg, "query_pre_attn_scalar", float(c.head_dim));
  check(qscalar > 0, "config.json: query_pre_attn_scalar must be > 0");
  c.attn_scale = 1.f / std::sqrt(qscalar);
  c.attn_softcap = config_value<float>(cfg, "attn_logit_softcapping", 0.f);
  c.final_softcap = config_value<float>(cfg, "final_logit_softcapping", 0.f);
  check(c.attn_softcap >= 0 && c.final_softcap >= 0, "config.json: soft-caps must be >= 0");
  const std::string act = config_value<std::string>(cfg, "hidden_activation", std::string("gelu_pytorch_tanh"));
  check(act == "gelu_pytorch_tanh" || act == "gelu_tanh",
        "config.json: hidden_activation '" + act + "' is not supported (gelu_pytorch_tanh)");
  if (gemma3) {
    c.qk_norm = true;
    RopeSpec local = c.rope;
    local.scaling = RopeScaling::None;
    local.factor = 1.f;
    local.theta = config_value<float>(cfg, "rope_local_base_freq", 10000.f);
    c.rope_local = local;
    layer_windows_from_hf(cfg, c, config_value<int>(cfg, "sliding_window_pattern", 6));
  } else {
    layer_windows_from_hf(cfg, c, 2);
  }
}

void gemma_from_gguf(const Metadata& m, const std::string& p, ModelConfig& c) {
  const bool gemma3 = p == "gemma3.";
  gemma_common(c);
  if (m.contains(p + "attention.scale")) c.attn_scale = float(m.get_double(p + "attention.scale"));
  c.attn_softcap = float(m.get_double(p + "attn_logit_softcapping", 0.0));
  c.final_softcap = float(m.get_double(p + "final_logit_softcapping", 0.0));
  if (gemma3) {
    c.qk_norm = true;
    RopeSpec local = c.rope;
    local.scaling = RopeScaling::None;
    local.factor = 1.f;
    local.theta = float(m.get_double(p + "rope.freq_base_swa", 10000.0));
    c.rope_local = local;
  }
  layer_windows_from_gguf(m, p, c, gemma3 ? 6 : 2);
}

}  // namespace

ArchRow gemma_row() {
  ArchRow r;
  r.name = "gemma";
  r.hf_model_types = {"gemma2", "gemma3_text"};
  r.gguf_archs = {"gemma2", "gemma3"};
  r.from_hf = gemma_from_hf;
  r.from_gguf = gemma_from_gguf;
  r.hf_ffn_norm = "pre_feedforward_layernorm";
  r.hf_norm_plus_one = true;
  return r;
}

}  // namespace sinklab::arch
