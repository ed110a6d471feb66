#include "registry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace sinklab::arch {

const std::vector<ArchRow>& all_archs() {
  static const std::vector<ArchRow> rows = {
      llama_row(), qwen2_row(), qwen3_row(), mixtral_row(), qwen_moe_row(), olmoe_row(),
      sinklab_row(), gpt_oss_row(), gemma_row(),
  };
  return rows;
}

namespace {
std::string known_list(bool gguf) {
  std::string s;
  for (const auto& r : all_archs())
    for (const auto& n : gguf ? r.gguf_archs : r.hf_model_types) s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace

const ArchRow& arch_for_hf(const std::string& model_type) {
  for (const auto& r : all_archs())
    if (std::find(r.hf_model_types.begin(), r.hf_model_types.end(), model_type) != r.hf_model_types.end())
      return r;
  throw Error("unknown architecture: config.json model_type '" + model_type +
              "' (supported: " + known_list(false) + ")");
}

const ArchRow& arch_for_gguf(const std::string& gguf_arch) {
  for (const auto& r : all_archs())
    if (std::find(r.gguf_archs.begin(), r.gguf_archs.end(), gguf_arch) != r.gguf_archs.end()) return r;
  throw Error("unknown architecture: GGUF general.architecture '" + gguf_arch +
              "' (supported: " + known_list(true) + ")");
}

const ArchRow& arch_by_name(const std::string& name) {
  for (const auto& r : all_archs())
    if (r.name == name) return r;
  throw Error("unknown architecture '" + name + "'");
}

void layer_windows_from_hf(const nlohmann::json& cfg, ModelConfig& c, int pattern) {
  const int32_t w = config_value<int32_t>(cfg, "sliding_window", 0);
  if (cfg.contains("layer_types") && !cfg["layer_types"].is_null()) {
    const auto& lt = cfg["layer_types"];
    check(lt.is_array() && int64_t(lt.size()) == c.n_layers, "config.json: layer_types must list one entry per layer");
    for (size_t l = 0; l < lt.size(); ++l) {
      check(lt[l].is_string(), "config.json: layer_types entries must be strings");
      const std::string t = lt[l].get<std::string>();
      check(t == "sliding_attention" || t == "full_attention", "config.json: unknown layer type '" + t + "'");
      check(t != "sliding_attention" || w > 0, "config.json: sliding layers need sliding_window > 0");
      c.layer_window[l] = t == "sliding_attention" ? w : 0;
    }
    return;
  }
  if (pattern <= 0 || w <= 0) return;
  for (int64_t l = 0; l < c.n_layers; ++l) c.layer_window[size_t(l)] = l % pattern != pattern - 1 ? w : 0;
}

void layer_windows_from_gguf(const Metadata& m, const std::string& prefix, ModelConfig& c, int pattern) {
  const int64_t w = m.get_int(prefix + "attention.sliding_window", 0);
  check(w >= 0 && w < (int64_t(1) << 30), prefix + "attention.sliding_window is out of range");
  if (m.contains(prefix + "attention.sliding_window_pattern")) return;  // per layer, read with the common keys
  for (int64_t l = 0; l < c.n_layers; ++l)
    c.layer_window[size_t(l)] = w > 0 && l % pattern != pattern - 1 ? int32_t(w) : 0;
}

std::string mlp_router_name(int l) { return "model.layers." + std::to_string(l) + ".mlp.gate.weight"; }
std::string mlp_expert_name(int l, int e, ExpertPart part) {
  static const char* parts[] = {"gate_proj", "up_proj", "down_proj"};
  return "model.layers." + std::to_string(l) + ".mlp.experts." + std::to_string(e) + "." +
         parts[int(part)] + ".weight";
}

namespace {

template <typename T>
T require(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) throw Error(source + ": config.json lacks '" + key + "'");
  return config_value<T>(j, key, T{}, source);
}

void rope_scaling_from_hf(const nlohmann::json& cfg, RopeSpec& r, const std::string& source) {
  if (!cfg.contains("rope_scaling") || cfg["rope_scaling"].is_null()) return;
  const auto& rs = cfg["rope_scaling"];
  check(rs.is_object(), source + ": rope_scaling must be an object");
  std::string type = config_value<std::string>(rs, "rope_type", "", source);
  if (type.empty()) type = config_value<std::string>(rs, "type", "default", source);
  r.factor = config_value<float>(rs, "factor", 1.f, source);
  check(r.factor > 0, source + ": rope_scaling factor must be > 0");
  r.original_context = config_value<int>(rs, "original_max_position_embeddings", 0, source);
  if (type == "default") {
    r.scaling = RopeScaling::None;
  } else if (type == "linear") {
    r.scaling = RopeScaling::Linear;
  } else if (type == "dynamic" || type == "ntk") {
    r.scaling = RopeScaling::NTK;
  } else if (type == "yarn") {
    r.scaling = RopeScaling::YaRN;
    r.beta_fast = config_value<float>(rs, "beta_fast", 32.f, source);
    r.beta_slow = config_value<float>(rs, "beta_slow", 1.f, source);
    r.attn_factor = config_value<float>(rs, "attention_factor", 0.f, source);
    r.yarn_truncate = config_value<bool>(rs, "truncate", true, source);
    if (r.original_context == 0) r.original_context = config_value<int>(cfg, "max_position_embeddings", 0, source);
  } else if (type == "llama3") {
    r.scaling = RopeScaling::Llama3;
    r.low_freq_factor = config_value<float>(rs, "low_freq_factor", 1.f, source);
    r.high_freq_factor = config_value<float>(rs, "high_freq_factor", 4.f, source);
  } else {
    throw Error(source + ": unsupported rope_scaling type '" + type + "'");
  }
}

// bos/eos: an id, or the first of a list; ids must fit the vocabulary's int32 range.
int32_t first_id(const nlohmann::json& cfg, const char* key, const std::string& source) {
  if (!cfg.contains(key) || cfg[key].is_null()) return -1;
  const auto& v = cfg[key];
  const nlohmann::json* id = v.is_array() ? (v.empty() ? nullptr : &v[0]) : &v;
  if (!id) return -1;
  check(id->is_number_integer(), source + ": config field '" + key + "' must be a token id, got " + v.dump());
  const int64_t x = id->is_number_unsigned() ? int64_t(std::min<uint64_t>(id->get<uint64_t>(), uint64_t(1) << 40))
                                             : id->get<int64_t>();
  check(x >= 0 && x < (int64_t(1) << 31), source + ": config field '" + key + "' = " + id->dump() +
                                              " is not a valid token id");
  return int32_t(x);
}

}  // namespace

ModelConfig config_from_hf(const nlohmann::json& cfg, const std::string& source) {
  check(cfg.is_object(), source + ": config.json must be a JSON object");
  const std::string model_type = require<std::string>(cfg, "model_type", source);
  const ArchRow& row = arch_for_hf(model_type);
  ModelConfig c;
  c.arch = row.name;
  c.vocab = require<int64_t>(cfg, "vocab_size", source);
  c.dim = require<int64_t>(cfg, "hidden_size", source);
  c.n_layers = require<int64_t>(cfg, "num_hidden_layers", source);
  c.n_heads = require<int64_t>(cfg, "num_attention_heads", source);
  c.n_kv_heads = config_value<int64_t>(cfg, "num_key_value_heads", c.n_heads, source);
  c.head_dim = config_value<int64_t>(cfg, "head_dim", c.n_heads > 0 ? c.dim / c.n_heads : 0, source);
  c.hidden = config_value<int64_t>(cfg, "intermediate_size", 0, source);
  c.max_seq = config_value<int64_t>(cfg, "max_position_embeddings", 4096, source);
  c.norm_eps = config_value<float>(cfg, "rms_norm_eps", 1e-6f, source);
  c.rope.style = RopeStyle::RotateHalf;
  c.rope.theta = config_value<float>(cfg, "rope_theta", 10000.f, source);
  const float partial = config_value<float>(cfg, "partial_rotary_factor", 1.f, source);
  check(partial > 0 && partial <= 1, source + ": partial_rotary_factor must be in (0, 1]");
  if (partial < 1.f) c.rope.rotary_dim = int(std::lround(partial * double(c.head_dim)));
  rope_scaling_from_hf(cfg, c.rope, source);
  c.tied_embeddings = config_value<bool>(cfg, "tie_word_embeddings", false, source);
  c.bos_id = first_id(cfg, "bos_token_id", source);
  c.eos_id = first_id(cfg, "eos_token_id", source);
  check_layer_count(c.n_layers, source);  // before anything is sized by it
  c.layer_window.assign(size_t(c.n_layers), 0);
  if (row.from_hf) row.from_hf(cfg, c);
  validate_config(c, source);
  return c;
}

void check_layer_count(int64_t n, const std::string& source) {
  check(n > 0 && n <= kMaxLayers, source + ": layer count = " + std::to_string(n) + " is out of range (1.." +
                                      std::to_string(kMaxLayers) + ")");
}

void validate_config(const ModelConfig& c, const std::string& source) {
  auto pos = [&](int64_t v, const char* name, int64_t max) {
    check(v > 0 && v <= max, source + ": " + name + " = " + std::to_string(v) + " is out of range (1.." +
                                 std::to_string(max) + ")");
  };
  pos(c.vocab, "vocab size", int64_t(1) << 24);
  pos(c.dim, "hidden size", 1 << 16);
  pos(c.n_layers, "layer count", kMaxLayers);
  pos(c.n_heads, "head count", 1024);
  pos(c.n_kv_heads, "kv head count", 1024);
  pos(c.head_dim, "head dim", 256);
  check(c.n_heads % c.n_kv_heads == 0, source + ": kv head count " + std::to_string(c.n_kv_heads) +
                                           " does not divide head count " + std::to_string(c.n_heads));
  if (c.moe.n_experts == 0) pos(c.hidden, "FFN hidden size", 1 << 20);
  if (c.moe.n_experts > 0) {
    pos(c.moe.n_experts, "expert count", 4096);
    pos(c.moe.n_used, "experts per token", c.moe.n_experts);
    pos(c.moe.expert_hidden, "expert hidden size", 1 << 20);
  }
  check(c.norm_eps > 0 && std::isfinite(c.norm_eps), source + ": norm epsilon must be positive");
  if (c.rope.style != RopeStyle::None) {
    const int rd = c.rope.rotary_dim ? c.rope.rotary_dim : int(c.head_dim);
    check(rd % 2 == 0 && rd <= c.head_dim, source + ": rotary dim must be even and <= head dim");
    check(c.rope.theta > 1.f, source + ": rope theta must be > 1");
  }
  check(int64_t(c.layer_window.size()) == c.n_layers, source + ": per-layer window list has the wrong length");
  for (int32_t w : c.layer_window) check(w >= 0, source + ": negative sliding window");
}

}  // namespace sinklab::arch
