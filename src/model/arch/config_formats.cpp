// ModelConfig from GGUF metadata and from llama2.c headers.
#include <cmath>

#include "registry.h"

namespace sinklab::arch {

ModelConfig config_from_gguf(const Metadata& m, const std::string& source) {
  const std::string a = m.get_string("general.architecture");
  const ArchRow& row = arch_for_gguf(a);
  const std::string p = a + ".";
  ModelConfig c;
  c.arch = row.name;
  c.dim = m.get_int(p + "embedding_length");
  c.n_layers = m.get_int(p + "block_count");
  check_layer_count(c.n_layers, source);  // before anything is sized by it
  c.n_heads = m.get_int(p + "attention.head_count");
  c.n_kv_heads = m.get_int(p + "attention.head_count_kv", c.n_heads);
  c.head_dim = m.get_int(p + "attention.key_length", c.n_heads > 0 ? c.dim / c.n_heads : 0);
  c.hidden = m.get_int(p + "feed_forward_length", 0);
  c.max_seq = m.get_int(p + "context_length", 4096);
  c.norm_eps = float(m.get_double(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope.style = row.gguf_rope;
  c.rope.theta = float(m.get_double(p + "rope.freq_base", 10000.0));
  const int64_t rot = m.get_int(p + "rope.dimension_count", c.head_dim);
  if (rot != c.head_dim) c.rope.rotary_dim = int(rot);
  const std::string scaling = m.get_string(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    c.rope.scaling = RopeScaling::Linear;
  } else if (scaling == "yarn") {
    c.rope.scaling = RopeScaling::YaRN;
  } else if (scaling != "none") {
    throw Error(source + ": unsupported rope scaling type '" + scaling + "'");
  }
  c.rope.factor = float(m.get_double(p + "rope.scaling.factor", 1.0));
  c.rope.original_context = int(m.get_int(p + "rope.scaling.original_context_length", 0));
  if (m.contains(p + "rope.scaling.llama3.factor")) {  // Llama 3.1 scaling as sinklab's GGUF export writes it
    c.rope.scaling = RopeScaling::Llama3;
    c.rope.factor = float(m.get_double(p + "rope.scaling.llama3.factor"));
    c.rope.low_freq_factor = float(m.get_double(p + "rope.scaling.llama3.low_freq_factor", 1.0));
    c.rope.high_freq_factor = float(m.get_double(p + "rope.scaling.llama3.high_freq_factor", 4.0));
  }
  // Vocabulary size: the token list, or the embedding's rows (checked when binding).
  if (m.contains("tokenizer.ggml.tokens")) c.vocab = int64_t(m.get_array("tokenizer.ggml.tokens").size());
  c.vocab = m.get_int(p + "vocab_size", c.vocab);
  c.bos_id = int32_t(m.get_int("tokenizer.ggml.bos_token_id", -1));
  c.eos_id = int32_t(m.get_int("tokenizer.ggml.eos_token_id", -1));
  c.moe.n_experts = int(m.get_int(p + "expert_count", 0));
  if (c.moe.n_experts > 0) {
    c.moe.n_used = int(m.get_int(p + "expert_used_count"));
    c.moe.expert_hidden = m.get_int(p + "expert_feed_forward_length", c.hidden);
    c.moe.shared_hidden = m.get_int(p + "expert_shared_feed_forward_length", 0);
    c.moe.shared_gate = c.moe.shared_hidden > 0 && a == "qwen2moe";
    c.moe.norm_topk = m.get_bool(p + "expert_weights_norm", a == "llama" || a == "qwen3moe");
    if (a == "llama") c.arch = "mixtral";
  }
  c.qkv_bias = a == "qwen2" || a == "qwen2moe";
  c.qk_norm = a == "qwen3" || a == "qwen3moe" || (a == "sinklab" && m.get_bool(p + "attention.qk_norm", false));
  c.qk_norm_full = a == "olmoe";
  c.sink_logits = m.get_bool(p + "attention.sinks", false);
  c.layer_window.assign(size_t(std::max<int64_t>(c.n_layers, 0)), 0);
  const int64_t sw = m.get_int(p + "attention.sliding_window", 0);
  if (sw > 0) {
    // sinklab's own files say which layers slide; otherwise every layer does (Mistral).
    if (m.contains(p + "attention.sliding_window_pattern")) {
      const auto pat = m.get_int_array(p + "attention.sliding_window_pattern");
      check(int64_t(pat.size()) == c.n_layers, source + ": sliding_window_pattern needs one entry per layer");
      for (size_t l = 0; l < pat.size(); ++l) c.layer_window[l] = pat[l] ? int32_t(sw) : 0;
    } else {
      c.layer_window.assign(size_t(c.n_layers), int32_t(sw));
    }
  }
  if (row.from_gguf) row.from_gguf(m, p, c);
  if (c.moe.n_experts == 0 && c.hidden == 0) throw Error(source + ": GGUF lacks " + p + "feed_forward_length");
  if (c.vocab == 0) c.vocab = 1;  // fixed up from the embedding by the caller
  return c;
}

void rope_freqs_from_gguf(const TensorFile& file, ModelConfig& c) {
  const std::string name = "rope_freqs.weight";
  // sinklab's own files also carry the Llama 3.1 parameters, which take precedence.
  if (!file.contains(name) || c.rope.scaling == RopeScaling::Llama3 || c.rope.style == RopeStyle::None) return;
  const TensorEntry& t = file.tensor(name);
  const int64_t rot = c.rope.rotary_dim ? c.rope.rotary_dim : c.head_dim;
  check(t.shape.size() == 1 && t.shape[0] == rot / 2,
        file.path() + ": " + name + " needs " + std::to_string(rot / 2) + " values (one per rotated pair)");
  auto factors = std::make_shared<std::vector<float>>(size_t(rot / 2));
  dequantize(t, factors->data());
  for (float f : *factors)
    check(std::isfinite(f) && f > 0.f, file.path() + ": " + name + " holds a factor that is not a positive number");
  c.rope.freq_factors = std::move(factors);
}

ModelConfig config_from_llama2c(const Metadata& m) {
  ModelConfig c;
  c.arch = "llama";
  c.dim = m.get_int("dim");
  c.hidden = m.get_int("hidden_dim");
  c.n_layers = m.get_int("n_layers");
  check_layer_count(c.n_layers, "llama2.c header");
  c.n_heads = m.get_int("n_heads");
  c.n_kv_heads = m.get_int("n_kv_heads");
  c.vocab = m.get_int("vocab_size");
  c.max_seq = m.get_int("seq_len");
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  c.norm_eps = 1e-5f;
  c.rope.style = RopeStyle::Interleaved;
  c.rope.theta = 10000.f;
  c.tied_embeddings = m.get_bool("shared_classifier", true);
  c.bos_id = 1;
  c.eos_id = 2;
  c.layer_window.assign(size_t(std::max<int64_t>(c.n_layers, 0)), 0);
  validate_config(c, "llama2.c header");
  return c;
}

}  // namespace sinklab::arch
