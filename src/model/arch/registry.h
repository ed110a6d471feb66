// The architecture registry: one row per architecture. A row says which
// config.json model_type / GGUF general.architecture values it serves, how its
// specific config fields map onto ModelConfig, and how its tensors are named.
// Adding an architecture = one file defining its row + one line in registry.cpp.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab::arch {

enum class ExpertPart { Gate, Up, Down };

struct ArchRow {
  std::string name;
  std::vector<std::string> hf_model_types;
  std::vector<std::string> gguf_archs;
  RopeStyle gguf_rope = RopeStyle::RotateHalf;  // how llama.cpp lays out q/k for this arch
  // Architecture-specific config fields (the common ones are already parsed).
  void (*from_hf)(const nlohmann::json& cfg, ModelConfig& c) = nullptr;
  // Hugging Face names of the MoE router and of expert `e`'s projections in layer `l`.
  std::string (*router_name)(int l) = nullptr;
  std::string (*expert_name)(int l, int e, ExpertPart part) = nullptr;
  // gpt-oss: every layer's experts in stacked tensors (mlp.experts.gate_up_proj with
  // gate and up interleaved row by row, mlp.experts.down_proj), as floats or as
  // mxfp4 *_blocks / *_scales; router_name names the router (it has a bias).
  bool fused_experts = false;
  // Names of the FFN's input norm where they differ from Llama's
  // (post_attention_layernorm / ffn_norm): Gemma's pre_feedforward_layernorm,
  // gpt-oss's GGUF post_attention_norm.
  const char* hf_ffn_norm = nullptr;
  const char* gguf_ffn_norm = nullptr;
  // config.json norm weights hold w of x * (1 + w) (Gemma); added at load.
  bool hf_norm_plus_one = false;
  // Architecture-specific GGUF metadata ({arch}.*; `prefix` is "{arch}."), after the common keys.
  void (*from_gguf)(const Metadata& m, const std::string& prefix, ModelConfig& c) = nullptr;
};

// A config field of type T, or `fallback` when absent or null; every
// architecture row reads its fields through it, so a wrong value is an Error
// naming the field, never a raw JSON exception. A config field of type T: integers must be whole numbers that fit T (5.5
// layers is an error, not 5), floats finite numbers, booleans booleans.
template <typename T>
T config_value(const nlohmann::json& j, const char* key, T fallback, const std::string& source = "config.json") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const nlohmann::json& v = j[key];
  const std::string where = source + ": config field '" + key + "'";
  if constexpr (std::is_same_v<T, bool>) {
    check(v.is_boolean(), where + " must be true or false");
  } else if constexpr (std::is_integral_v<T>) {
    check(v.is_number_integer(), where + " must be an integer, got " + v.dump());
    if (v.is_number_unsigned())
      check(v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max()), where + " = " + v.dump() + " is too large");
    else
      check(v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()),
            where + " = " + v.dump() + " is out of range");
  } else if constexpr (std::is_floating_point_v<T>) {
    check(v.is_number() && std::isfinite(v.get<double>()), where + " must be a finite number");
  }
  try {
    return v.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + " has the wrong type");
  }
}

// config.json "layer_types" ("sliding_attention" / "full_attention", one per layer)
// into c.layer_window with the window "sliding_window"; without layer_types,
// layer l slides when l % pattern != pattern - 1 (pattern 0: no layer slides).
void layer_windows_from_hf(const nlohmann::json& cfg, ModelConfig& c, int pattern);
// GGUF {arch}.attention.sliding_window with llama.cpp's pattern rule (as above).
void layer_windows_from_gguf(const Metadata& m, const std::string& prefix, ModelConfig& c, int pattern);

const std::vector<ArchRow>& all_archs();
const ArchRow& arch_for_hf(const std::string& model_type);    // throws Error listing the known ones
const ArchRow& arch_for_gguf(const std::string& gguf_arch);
const ArchRow& arch_by_name(const std::string& name);

// Common Hugging Face config.json fields -> ModelConfig, then the row's from_hf.
ModelConfig config_from_hf(const nlohmann::json& cfg, const std::string& source);
// GGUF metadata ({arch}.block_count, ...) -> ModelConfig.
ModelConfig config_from_gguf(const Metadata& meta, const std::string& source);
// llama.cpp's rope_freqs.weight (Llama 3.1 scaling as per-frequency divisors)
// into c.rope.freq_factors, unless the metadata already set Llama 3.1 scaling.
void rope_freqs_from_gguf(const TensorFile& file, ModelConfig& c);
// llama2.c header values (as the loader exposes them) -> ModelConfig.
ModelConfig config_from_llama2c(const Metadata& meta);
// Checks that the numbers are consistent; throws Error naming the field.
// Most layers a model may have; checked before anything is sized by the count.
inline constexpr int64_t kMaxLayers = 1024;
void check_layer_count(int64_t n, const std::string& source);
void validate_config(const ModelConfig& c, const std::string& source);

// Rows (one file each).
ArchRow llama_row();
ArchRow qwen2_row();
ArchRow qwen3_row();
ArchRow mixtral_row();
ArchRow qwen_moe_row();
ArchRow olmoe_row();
ArchRow sinklab_row();
ArchRow gpt_oss_row();
ArchRow gemma_row();

// config.json's optional "sinklab_variant" (checkpoints written by `sinklab train`)
// into c.variant: a known name (attention_variant_description) that agrees with the
// parsed config (sink-logit: sink logits; goat / alibi: that prior; vanilla and
// sink-token: neither). Throws Error naming config.json and the key otherwise.
// Called by the rows whose model_type sinklab writes (llama, sinklab).
void sinklab_variant_from_hf(const nlohmann::json& cfg, ModelConfig& c);

// Shared MoE naming of the Qwen / OLMoE family: mlp.gate, mlp.experts.E.{gate,up,down}_proj.
std::string mlp_router_name(int l);
std::string mlp_expert_name(int l, int e, ExpertPart part);

}  // namespace sinklab::arch
