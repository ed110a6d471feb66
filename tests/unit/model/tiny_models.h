// The tiny reference models written by tests/reference/make_tiny_models.py
// (folder from env SINKLAB_TINY_MODELS, set by ctest's tiny_models fixture):
// each folder has model.safetensors + config.json, ids.txt and logits.f32.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sinklab/model.h"

namespace sinklab::test {

// Every model the script writes, by folder name.
inline const std::vector<std::string>& tiny_model_names() {
  static const std::vector<std::string> names = {
      "llama", "llama_tied", "llama_rope_llama3", "llama_rope_linear", "mistral", "qwen2", "qwen3",
      "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "sinklab", "sinklab_qk_norm",
      "gpt_oss", "gpt_oss_float", "gemma2", "gemma3",
  };
  return names;
}

// The folder of the tiny models, or "" when SINKLAB_TINY_MODELS is unset or missing.
inline std::string tiny_models_dir() {
  const char* env = std::getenv("SINKLAB_TINY_MODELS");
  if (!env || !*env || !std::filesystem::is_directory(env)) return "";
  return env;
}

inline std::string tiny_models_missing_message() {
  const char* env = std::getenv("SINKLAB_TINY_MODELS");
  if (!env || !*env)
    return "SINKLAB_TINY_MODELS is not set; run through ctest (fixture tiny_models runs "
           "tests/reference/make_tiny_models.py, which needs python3-torch)";
  return std::string("SINKLAB_TINY_MODELS=") + env +
         " does not exist (make_tiny_models.py was skipped: is python3-torch installed?)";
}

struct Golden {
  std::vector<int32_t> ids;
  std::vector<float> logits;  // [ids, vocab]
};

inline Golden read_golden(const std::string& folder, int64_t vocab) {
  Golden g;
  std::ifstream ids(folder + "/ids.txt");
  for (int32_t x; ids >> x;) g.ids.push_back(x);
  std::ifstream f(folder + "/logits.f32", std::ios::binary);
  g.logits.resize(g.ids.size() * size_t(vocab));
  f.read(reinterpret_cast<char*>(g.logits.data()), std::streamsize(g.logits.size() * sizeof(float)));
  EXPECT_TRUE(f.good() && f.peek() == EOF) << folder << "/logits.f32 should hold " << g.ids.size() << " x " << vocab
                                           << " float32 values";
  return g;
}

// Relative error of each row: max_v |got - ref| / max_v |ref|.
inline std::vector<double> row_relative_errors(const float* got, const float* ref, size_t rows, int64_t vocab) {
  std::vector<double> errs(rows);
  for (size_t r = 0; r < rows; ++r) {
    double diff = 0, scale = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      const size_t i = r * size_t(vocab) + size_t(v);
      diff = std::max(diff, std::fabs(double(got[i]) - double(ref[i])));
      scale = std::max(scale, std::fabs(double(ref[i])));
    }
    errs[r] = scale > 0 ? diff / scale : diff;
  }
  return errs;
}

// Per-row relative error: the maximum over rows of max_v |got - ref| / max_v |ref|.
inline double max_row_relative_error(const float* got, const float* ref, size_t rows, int64_t vocab) {
  const std::vector<double> errs = row_relative_errors(got, ref, rows, vocab);
  return errs.empty() ? 0.0 : *std::max_element(errs.begin(), errs.end());
}

// Logits of every position from one batched feed.
inline std::vector<float> batched_logits(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids) {
  Session s(model);
  std::vector<float> all;
  s.feed(ids, &all);
  return all;
}

// Logits of every position, feeding one token at a time.
inline std::vector<float> stepwise_logits(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids) {
  Session s(model);
  std::vector<float> all;
  for (const int32_t& id : ids) {
    s.feed(std::span<const int32_t>(&id, 1));
    const auto l = s.logits();
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

}  // namespace sinklab::test
