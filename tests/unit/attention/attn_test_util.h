// Small helpers shared by the attention tests: random tensors, bf16 copies,
// relative L2 error and NaN poisoning of outputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sinklab/core.h"

namespace sinklab::test {

// n values from N(0, sigma^2).
inline std::vector<float> random_normal(std::mt19937& rng, size_t n, float sigma = 1.f) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> x(n);
  for (auto& e : x) e = dist(rng);
  return x;
}

// bf16 bit patterns of x (round to nearest even).
inline std::vector<uint16_t> to_bf16_bits(const std::vector<float>& x) {
  std::vector<uint16_t> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = f32_to_bf16(x[i]).bits;
  return y;
}

// Rounds every value of x to the nearest bf16 (kept as f32).
inline void round_to_bf16(std::vector<float>& x) {
  for (auto& e : x) e = bf16_to_f32(f32_to_bf16(e));
}

inline void poison(std::vector<float>& x) {
  std::fill(x.begin(), x.end(), std::numeric_limits<float>::quiet_NaN());
}

// ||got - ref|| / ||ref|| (or ||got - ref|| when ref is all zero). Infinities must match
// exactly; a NaN in `got` gives +inf and sets *why.
template <typename Ref>
double rel_l2(const std::vector<float>& got, const std::vector<Ref>& ref, std::string* why) {
  if (got.size() != ref.size()) {
    *why = "size " + std::to_string(got.size()) + " vs " + std::to_string(ref.size());
    return INFINITY;
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = double(ref[i]);
    if (std::isnan(g)) {
      *why = "NaN at " + std::to_string(i);
      return INFINITY;
    }
    if (std::isinf(g) || std::isinf(r)) {
      if (g != r) {
        *why = "infinity mismatch at " + std::to_string(i);
        return INFINITY;
      }
      continue;
    }
    num += (g - r) * (g - r);
    den += r * r;
  }
  why->clear();
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace sinklab::test
