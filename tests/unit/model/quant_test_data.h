// Inputs shared by the block-type tests: random blocks (random bytes whose
// scale fields are set to finite, moderate values) and rows of floats drawn
// from a few distributions, in row-major [rows, cols] order.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "sinklab/core.h"
#include "sinklab/formats.h"

namespace sinklab::test {

// Types with dot_rows kernels.
inline const std::vector<TensorType>& kernel_types() {
  static const std::vector<TensorType> types = {TensorType::F16,  TensorType::Q8_0, TensorType::Q4_0,
                                                TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                                                TensorType::MXFP4};
  return types;
}

inline void put_f16(uint8_t* p, float x) {
  const f16 h = f32_to_f16(x);
  std::memcpy(p, &h.bits, 2);
}

// A finite f16 scale of either sign with magnitude in [2^-8, 2^2), or now and
// then a subnormal one (exercising the decoder's subnormal path).
inline float random_scale(std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const float sign = u(rng) < 0.5f ? -1.f : 1.f;
  if (u(rng) < 0.05f) return sign * std::ldexp(1.f + u(rng), -20);
  return sign * std::ldexp(1.f + u(rng), int(u(rng) * 10.f) - 8);
}

// `count` random blocks of type t (for F16: `count` random finite values).
inline std::vector<uint8_t> random_blocks(TensorType t, int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  const size_t bytes = tensor_type_block_bytes(t);
  std::vector<uint8_t> out(size_t(count) * bytes);
  for (uint8_t& b : out) b = uint8_t(rng());
  for (int64_t i = 0; i < count; ++i) {
    uint8_t* b = out.data() + size_t(i) * bytes;
    switch (t) {
      case TensorType::F16: put_f16(b, random_scale(rng) * 8.f); break;
      case TensorType::Q8_0:
      case TensorType::Q4_0: put_f16(b, random_scale(rng)); break;
      case TensorType::Q4_K:
      case TensorType::Q5_K: put_f16(b, random_scale(rng)), put_f16(b + 2, random_scale(rng)); break;
      case TensorType::Q6_K: put_f16(b + 208, random_scale(rng) / 64.f); break;
      case TensorType::MXFP4: b[0] = uint8_t(112 + rng() % 24); break;
      default: break;
    }
  }
  return out;
}

// Rows of `cols` floats; row r follows distribution r % 8: gaussians of
// several widths, uniform, all-positive, heavy-tailed, a single spike, zeros.
inline std::vector<float> varied_rows(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uniform(-3.f, 3.f);
  std::vector<float> x(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      switch (r % 8) {
        case 0: row[c] = normal(rng); break;
        case 1: row[c] = 0.1f * normal(rng); break;
        case 2: row[c] = uniform(rng); break;
        case 3: row[c] = 0.5f + std::fabs(normal(rng)); break;  // no negative values: min clamps to 0
        case 4: row[c] = normal(rng) * (rng() % 50 == 0 ? 20.f : 1.f); break;
        case 5: row[c] = c == cols / 3 ? 2.5f : 0.f; break;
        case 6: row[c] = 0.f; break;
        default: row[c] = 3.f * normal(rng) - 1.f; break;
      }
    }
  }
  return x;
}

}  // namespace sinklab::test
