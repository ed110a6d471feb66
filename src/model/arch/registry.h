// The architecture registry: one row per architecture. A row says which
// config.json model_type / GGUF general.architecture values it serves, how its
// specific config fields map onto ModelConfig, and how its tensors are named.
// Adding an architecture = one file defining its row + one line in registry.cpp.
#pragma once

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
};

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
