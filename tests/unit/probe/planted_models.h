// Tiny models written as safetensors + config.json so that probe answers are
// known by construction.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab::test {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  float& at(int64_t r, int64_t c) { return data[size_t(r * shape[1] + c)]; }
};

// Deterministic uniform numbers in [-1, 1).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  float next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return float(double(state_ >> 11) / double(1ULL << 53) * 2.0 - 1.0);
  }

 private:
  uint64_t state_;
};

struct PlantedModel {
  nlohmann::json config;
  std::map<std::string, Tensor> tensors;

  Tensor& add(const std::string& name, std::vector<int64_t> shape, float fill = 0.f) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    Tensor& t = tensors[name];
    t.shape = std::move(shape);
    t.data.assign(size_t(n), fill);
    return t;
  }
  Tensor& get(const std::string& name) { return tensors.at(name); }

  std::shared_ptr<const Model> write_and_load(const std::string& folder) const {
    // One folder per test process: ctest runs tests that write the same model in parallel.
    const std::string dir = ::testing::TempDir() + "/sinklab_probe_" + folder + "_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::vector<TensorEntry> entries;
    for (const auto& [name, t] : tensors)
      entries.push_back({name, TensorType::F32, t.shape, reinterpret_cast<const uint8_t*>(t.data.data()),
                         t.data.size() * sizeof(float)});
    write_safetensors(dir + "/model.safetensors", entries);
    std::ofstream(dir + "/config.json") << config.dump(2);
    std::shared_ptr<const Model> model = Model::load(dir);
    std::filesystem::remove_all(dir);  // a loaded model no longer needs its files
    return model;
  }
};

inline std::string layer_name(int l, const std::string& what) {
  return "model.layers." + std::to_string(l) + "." + what;
}

// A Llama-layout decoder (sinklab arch, no positional encoding unless rope) with
// every weight zero except unit norms: the residual stream is the embedding.
inline PlantedModel zero_decoder(int64_t vocab, int64_t dim, int64_t layers, int64_t heads, int64_t head_dim,
                                 int64_t hidden, bool rope = false) {
  PlantedModel m;
  m.config = {{"model_type", "sinklab"},        {"vocab_size", vocab},      {"hidden_size", dim},
              {"num_hidden_layers", layers},    {"num_attention_heads", heads},
              {"num_key_value_heads", heads},   {"head_dim", head_dim},     {"intermediate_size", hidden},
              {"rms_norm_eps", 1e-6},           {"max_position_embeddings", 64},
              {"position_encoding", rope ? "rope" : "none"}};
  m.add("model.embed_tokens.weight", {vocab, dim});
  m.add("lm_head.weight", {vocab, dim});
  m.add("model.norm.weight", {dim}, 1.f);
  const int64_t qd = heads * head_dim;
  for (int l = 0; l < int(layers); ++l) {
    m.add(layer_name(l, "input_layernorm.weight"), {dim}, 1.f);
    m.add(layer_name(l, "post_attention_layernorm.weight"), {dim}, 1.f);
    m.add(layer_name(l, "self_attn.q_proj.weight"), {qd, dim});
    m.add(layer_name(l, "self_attn.k_proj.weight"), {qd, dim});
    m.add(layer_name(l, "self_attn.v_proj.weight"), {qd, dim});
    m.add(layer_name(l, "self_attn.o_proj.weight"), {dim, qd});
    m.add(layer_name(l, "mlp.gate_proj.weight"), {hidden, dim});
    m.add(layer_name(l, "mlp.up_proj.weight"), {hidden, dim});
    m.add(layer_name(l, "mlp.down_proj.weight"), {dim, hidden});
  }
  return m;
}

inline void fill_random(Tensor& t, Lcg& rng, float scale) {
  for (float& x : t.data) x = scale * rng.next();
}

}  // namespace sinklab::test
