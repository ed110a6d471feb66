// Small vectorisable math kernels for the attention tiles.
#pragma once

#include <cstdint>
#include <cstring>

namespace sinklab::attn {

// exp(x) for x <= 0 (logits minus their running max), relative error ~2e-7.
// Returns exactly 0 for x < -87 (and for -inf), so masked keys add nothing.
// Written branch-free so the compiler vectorises loops that call it.
inline float exp_nonpos(float x) {
  const float keep = x < -87.0f ? 0.0f : 1.0f;
  x = x < -87.0f ? -87.0f : x;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (vectorises, unlike roundf).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale * keep;
}

}  // namespace sinklab::attn
