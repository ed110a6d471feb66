// sinklab's own decoder (what `sinklab train` writes): the Llama layout plus, per
// config, learned per-head sink logits (self_attn.sinks, gpt-oss style) and
// layer_types alternating "sliding_attention" (window = sliding_window) with
// "full_attention".
#include "registry.h"

namespace sinklab::arch {

namespace {
void sinklab_from_hf(const nlohmann::json& cfg, ModelConfig& c) {
  c.sink_logits = cfg.value("attention_sinks", false);
  c.qk_norm = cfg.value("qk_norm", false);
  if (cfg.value("position_encoding", std::string("rope")) == "none") c.rope.style = RopeStyle::None;
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
      c.prior.goat_rank = pr.value("rank", 0);
      c.prior.goat_base = pr.value("base", 1e4f);
      c.prior.goat_abs_rank = pr.value("abs_rank", 0);
      c.prior.goat_u_hidden = pr.value("u_hidden", 0);
      c.prior.train_length = pr.value("train_length", int64_t(0));
      check(c.prior.goat_rank >= 1 && c.prior.goat_rank <= 64 && c.prior.goat_abs_rank >= 0 &&
                c.prior.goat_abs_rank <= 64 && c.prior.goat_u_hidden >= 1 &&
                c.prior.goat_u_hidden <= 1024 && c.prior.train_length >= 1 && c.prior.goat_base > 1.f,
            "config.json: attention_prior 'goat' needs rank in 1..64, abs_rank in 0..64, "
            "u_hidden in 1..1024, train_length >= 1 and base > 1");
    } else {
      throw Error("config.json: unknown attention_prior type '" + type + "' (known: goat, alibi)");
    }
  }
  if (cfg.contains("layer_types")) {
    const auto& lt = cfg["layer_types"];
    check(lt.is_array() && int64_t(lt.size()) == c.n_layers,
          "config.json: layer_types must list one entry per layer");
    const int32_t w = cfg.value("sliding_window", 0);
    for (size_t l = 0; l < lt.size(); ++l) {
      check(lt[l].is_string(), "config.json: layer_types entries must be strings");
      const std::string t = lt[l].get<std::string>();
      check(t == "sliding_attention" || t == "full_attention",
            "config.json: unknown layer type '" + t + "'");
      c.layer_window[l] = t == "sliding_attention" ? w : 0;
      check(t != "sliding_attention" || w > 0, "config.json: sliding layers need sliding_window > 0");
    }
  }
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
