// A small llama decoder written as safetensors for Session tests (the
// attention-driven caches): random weights from a seeded rng, which a test may
// edit to plant attention patterns before the model is saved and loaded.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab::test {

struct TinyDecoderShape {
  int64_t vocab = 48, dim = 32, heads = 4, kv_heads = 2, head_dim = 8, hidden = 64;
};

class TinyDecoder {
 public:
  TinyDecoder(TinyDecoderShape shape, uint32_t seed) : shape_(shape), rng_(seed) { store_.reserve(128); }

  // A [rows, cols] tensor (a vector when rows == 1) of offset + scale * U(-1, 1).
  std::vector<float>* add(const std::string& name, int64_t rows, int64_t cols, float scale, float offset = 0.f) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& x : w) x = offset + scale * u(rng_);
    store_.push_back(std::move(w));
    std::vector<int64_t> shape = {rows, cols};
    if (rows == 1) shape = {cols};
    entries_.push_back({name, TensorType::F32, shape, reinterpret_cast<const uint8_t*>(store_.back().data()),
                        store_.back().size() * sizeof(float)});
    return &store_.back();
  }

  // Writes model.safetensors and config.json to a temporary folder, loads the
  // model and removes the folder.
  std::shared_ptr<const Model> load(int layers, double rope_theta, const std::string& tag) const {
    const TinyDecoderShape& s = shape_;
    const std::string dir = ::testing::TempDir() + "/sinklab_tiny_decoder_" + tag + "_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    write_safetensors(dir + "/model.safetensors", entries_);
    std::ofstream(dir + "/config.json") << "{\"model_type\": \"llama\", \"vocab_size\": " << s.vocab
                                        << ", \"hidden_size\": " << s.dim << ", \"num_hidden_layers\": " << layers
                                        << ", \"num_attention_heads\": " << s.heads
                                        << ", \"num_key_value_heads\": " << s.kv_heads << ", \"head_dim\": " << s.head_dim
                                        << ", \"intermediate_size\": " << s.hidden
                                        << ", \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, "
                                        << "\"rope_theta\": " << std::to_string(rope_theta) << "}";
    std::shared_ptr<const Model> model = Model::load(dir);
    std::filesystem::remove_all(dir);
    return model;
  }

 private:
  TinyDecoderShape shape_;
  std::mt19937 rng_;
  std::vector<std::vector<float>> store_;
  std::vector<TensorEntry> entries_;
};

// max_v |got - ref| / max_v |ref|: the error of one next-token logits row.
inline double rel_err(std::span<const float> got, std::span<const float> ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(double(got[i]) - double(ref[i])));
    scale = std::max(scale, std::fabs(double(ref[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

inline std::vector<int32_t> random_ids(size_t n, uint32_t seed, int32_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& x : ids) x = int32_t(rng() % uint32_t(vocab));
  return ids;
}

// Stream indices of the tokens a session's cache holds, in cache order.
inline std::vector<int64_t> survivor_indices(const Session& s) {
  std::vector<int64_t> out;
  for (const TokenMeta& t : s.cache().survivors()) out.push_back(t.index);
  return out;
}

}  // namespace sinklab::test
