// The tiny vision models written by tests/reference/make_tiny_vision_models.py
// (folder from env SINKLAB_TINY_VISION_MODELS, set by ctest's fixture): each
// folder has model.safetensors + config.json, input.json, pixels.f32 and the
// float64 forward's hidden.f32, pooled.f32 and embeds.f32.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sinklab::test {

inline const std::vector<std::string>& tiny_vision_model_names() {
  static const std::vector<std::string> names = {"vit", "vit_resized", "dinov2", "dinov2_registers",
                                                 "clip", "clip_openclip", "clip_vision", "siglip"};
  return names;
}

inline std::string tiny_vision_dir() {
  const char* env = std::getenv("SINKLAB_TINY_VISION_MODELS");
  if (!env || !*env || !std::filesystem::is_directory(env)) return "";
  return env;
}

#define SKIP_WITHOUT_TINY_VISION_MODELS()                                                          \
  if (tiny_vision_dir().empty())                                                                   \
  GTEST_SKIP() << "SINKLAB_TINY_VISION_MODELS is unset or missing; run through ctest (fixture "    \
                  "tiny_vision_models runs tests/reference/make_tiny_vision_models.py, which needs " \
                  "python3-torch)"

inline std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path << " is missing";
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

struct VisionGolden {
  int height = 0, width = 0, tokens = 0;
  std::vector<float> pixels, hidden, pooled, embeds;
};

inline VisionGolden read_vision_golden(const std::string& folder) {
  VisionGolden g;
  std::ifstream in(folder + "/input.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  g.height = j.at("height").get<int>();
  g.width = j.at("width").get<int>();
  g.tokens = j.at("tokens").get<int>();
  g.pixels = read_f32(folder + "/pixels.f32");
  g.hidden = read_f32(folder + "/hidden.f32");
  g.pooled = read_f32(folder + "/pooled.f32");
  g.embeds = read_f32(folder + "/embeds.f32");
  return g;
}

// Max over rows of max |got - ref| / max |ref| within the row.
inline double max_row_relative_error(const std::vector<float>& got, const std::vector<float>& ref, size_t cols) {
  EXPECT_EQ(got.size(), ref.size());
  if (got.size() != ref.size() || cols == 0) return 1e30;
  double worst = 0;
  for (size_t r = 0; r < ref.size() / cols; ++r) {
    double diff = 0, scale = 0;
    for (size_t j = 0; j < cols; ++j) {
      diff = std::max(diff, double(std::abs(got[r * cols + j] - ref[r * cols + j])));
      scale = std::max(scale, double(std::abs(ref[r * cols + j])));
    }
    worst = std::max(worst, diff / std::max(scale, 1e-30));
  }
  return worst;
}

}  // namespace sinklab::test
