// sinklab's own decoder (what `sinklab train` writes): the Llama layout plus, per
// config, learned per-head sink logits (self_attn.sinks, gpt-oss style) and
// layer_types alternating "sliding_attention" (window = sliding_window) with
// "full_attention". Checkpoints of `sinklab train` also name their attention
// variant ("sinklab_variant"), which the llama row reads as well.
#include "registry.h"

namespace sinklab {

namespace {
struct VariantRow {
  const char* name;
  const char* description;
};
// The attention variants of `sinklab train` (include/sinklab/train.h).
constexpr VariantRow kVariants[] = {
    {"vanilla", "softmax attention, no learned sink"},
    {"sink-token", "a learned <|sink|> token first in every sequence"},
    {"sink-logit", "learned per-head sink logits"},
    {"goat", "GOAT attention prior, no RoPE"},
    {"alibi", "ALiBi attention prior, no RoPE"},
    {"softmax-off-by-one", "a sink logit fixed at 0 in every head (softmax off by one)"},
    {"relu-attention", "ReLU attention weights, unnormalised (no softmax: a head needs no sink)"},
};
}  // namespace

const char* attention_variant_description(const std::string& variant) {
  for (const VariantRow& v : kVariants)
    if (variant == v.name) return v.description;
  return nullptr;
}

}  // namespace sinklab

namespace sinklab::arch {

void sinklab_variant_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  const char* key = "sinklab_variant";
  if (!cfg.contains(key) || cfg[key].is_null()) return;
  check(cfg[key].is_string(), std::string("config.json: '") + key + "' must be a string");
  const std::string v = cfg[key].get<std::string>();
  if (!attention_variant_description(v)) {
    std::string known;
    for (const auto& row : kVariants) known += (known.empty() ? "" : ", ") + std::string(row.name);
    throw Error(std::string("config.json: '") + key + "' is '" + v + "', an unknown attention variant (known: " +
                known + ")");
  }
  const bool sinks = v == "sink-logit" || v == "softmax-off-by-one", goat = v == "goat", alibi = v == "alibi";
  check(c.relu_attention == (v == "relu-attention"),
        std::string("config.json: '") + key + "' is '" + v + "' but attention_normalization is " +
            (c.relu_attention ? "relu" : "softmax"));
  check(c.sink_logits == sinks && (c.prior.kind == PriorKind::Goat) == goat &&
            (c.prior.kind == PriorKind::Alibi) == alibi,
        std::string("config.json: '") + key + "' is '" + v + "' but the config has " +
            (c.sink_logits ? "sink logits" : "no sink logits") + " and " +
            (c.prior.kind == PriorKind::Goat    ? "a GOAT prior"
             : c.prior.kind == PriorKind::Alibi ? "an ALiBi prior"
                                                : "no attention prior"));
  c.variant = v;
}

namespace {
void sinklab_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.sink_logits = config_value<bool>(cfg, "attention_sinks", false);
  const std::string norm = config_value<std::string>(cfg, "attention_normalization", std::string("softmax"));
  check(norm == "softmax" || norm == "relu", "config.json: attention_normalization must be \"softmax\" or \"relu\"");
  c.relu_attention = norm == "relu";
  check(!c.relu_attention || !c.sink_logits, "config.json: ReLU attention cannot have attention_sinks");
  c.qk_norm = config_value<bool>(cfg, "qk_norm", false);
  if (config_value<std::string>(cfg, "position_encoding", std::string("rope")) == "none") c.rope.style = RopeStyle::None;
  if (cfg.contains("attention_prior") && !cfg["attention_prior"].is_null()) {
    const auto& pr = cfg["attention_prior"];
    check(pr.is_object() && pr.contains("type") && pr["type"].is_string(),
          "config.json: attention_prior must be an object with a string 'type'");
    const std::string type = pr["type"].get<std::string>();
    check(c.rope.style == RopeStyle::None,
          "config.json: attention_prior '" + type + "' needs position_encoding 'none'");
    if (type == "alibi") {
      c.prior.kind = PriorKind::Alibi;
    } else if (type == "goat") {
      c.prior.kind = PriorKind::Goat;
      c.prior.goat_rank = config_value<int>(pr, "rank", 0);
      c.prior.goat_base = config_value<float>(pr, "base", 1e4f);
      c.prior.goat_abs_rank = config_value<int>(pr, "abs_rank", 0);
      c.prior.goat_u_hidden = config_value<int>(pr, "u_hidden", 0);
      c.prior.train_length = config_value<int64_t>(pr, "train_length", int64_t(0));
      check(c.prior.goat_rank >= 1 && c.prior.goat_rank <= 64 && c.prior.goat_abs_rank >= 0 &&
                c.prior.goat_abs_rank <= 64 && c.prior.goat_u_hidden >= 1 &&
                c.prior.goat_u_hidden <= 1024 && c.prior.train_length >= 1 && c.prior.goat_base > 1.f,
            "config.json: attention_prior 'goat' needs rank in 1..64, abs_rank in 0..64, "
            "u_hidden in 1..1024, train_length >= 1 and base > 1");
    } else {
      throw Error("config.json: unknown attention_prior type '" + type + "' (known: goat, alibi)");
    }
  }
  layer_windows_from_hf(cfg, c, 0);
  sinklab_variant_from_hf(cfg, c);
}
}  // namespace

ArchRow sinklab_row() {
  ArchRow r;
  r.name = "sinklab";
  r.hf_model_types = {"sinklab"};
  r.gguf_archs = {"sinklab"};
  r.from_hf = sinklab_from_hf;
  return r;
}

}  // namespace sinklab::arch
