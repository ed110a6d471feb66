// Small vectorisable math kernels shared by the attention tiles (src/attention)
// and the decode matrix-vector products (src/model): exp for non-positive
// arguments, 8-float vectors, dot products.
#pragma once

#include <cstdint>
#include <cstring>

namespace sinklab::vec {

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

// 8-float vectors (one AVX2 register) through GCC/Clang vector extensions, so
// kernels need no per-ISA intrinsics. Helpers take and give vectors through
// references: a vector passed by value would have a different calling
// convention with and without AVX.
using f32x8 = float __attribute__((vector_size(32)));
using u32x8 = uint32_t __attribute__((vector_size(32)));

inline void load8(const void* p, f32x8& v) { std::memcpy(&v, p, sizeof v); }
inline void load8(const void* p, u32x8& v) { std::memcpy(&v, p, sizeof v); }
inline void as_f32(const u32x8& u, f32x8& v) { std::memcpy(&v, &u, sizeof v); }

// Sum of the 8 lanes as a tree of three vector additions (a lane-by-lane
// chain would be eight dependent scalar additions).
inline float hsum(const f32x8& v) {
  const f32x8 a = v + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  const f32x8 b = a + __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5);
  const f32x8 c = b + __builtin_shufflevector(b, b, 1, 0, 3, 2, 5, 4, 7, 6);
  return c[0];
}

// out[u] = sum of the lanes of v[u], for 8 vectors at once: pairs of vectors
// are folded into one (half the lanes of each) three times, 7 additions in all
// where 8 separate lane sums would take 24.
inline void hsum8(const f32x8 (&v)[8], float* out) {
  f32x8 h[4], q[2];
  for (int u = 0; u < 4; ++u)  // lanes: v[2u] and v[2u+1], pairs of neighbours summed
    h[u] = __builtin_shufflevector(v[2 * u], v[2 * u + 1], 0, 8, 2, 10, 4, 12, 6, 14) +
           __builtin_shufflevector(v[2 * u], v[2 * u + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  for (int u = 0; u < 2; ++u)  // lanes: v[4u .. 4u+4) per half
    q[u] = __builtin_shufflevector(h[2 * u], h[2 * u + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(h[2 * u], h[2 * u + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  const f32x8 sums = __builtin_shufflevector(q[0], q[1], 0, 1, 2, 3, 8, 9, 10, 11) +
                     __builtin_shufflevector(q[0], q[1], 4, 5, 6, 7, 12, 13, 14, 15);
  std::memcpy(out, &sums, sizeof sums);
}

// out[u] = a . b[u * b_stride ...] for 8 rows of b, n a multiple of 8: each
// load of a serves 8 independent accumulators, summed together by hsum8.
inline void dot_8rows(const float* a, const float* b, int64_t b_stride, int64_t n, float* out) {
  f32x8 acc[8] = {};
  for (int64_t i = 0; i < n; i += 8) {
    f32x8 av;
    load8(a + i, av);
    for (int u = 0; u < 8; ++u) {
      f32x8 bv;
      load8(b + u * b_stride + i, bv);
      acc[u] += av * bv;
    }
  }
  hsum8(acc, out);
}

// a . b over n elements, where load_a(i, v) puts a[i .. i+8) into v as floats
// and a_at(i) gives a[i] (the tail): one loop for f32 and widened operands.
// Four accumulators so that FMA latency never binds.
template <class LoadA, class AAt>
inline float dot_with(const LoadA& load_a, const AAt& a_at, const float* b, int64_t n) {
  f32x8 s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    f32x8 a0, a1, a2, a3, b0, b1, b2, b3;
    load_a(i, a0), load_a(i + 8, a1), load_a(i + 16, a2), load_a(i + 24, a3);
    load8(b + i, b0), load8(b + i + 8, b1), load8(b + i + 16, b2), load8(b + i + 24, b3);
    s0 += a0 * b0, s1 += a1 * b1, s2 += a2 * b2, s3 += a3 * b3;
  }
  for (; i + 8 <= n; i += 8) {
    f32x8 a0, b0;
    load_a(i, a0), load8(b + i, b0);
    s0 += a0 * b0;
  }
  float s = hsum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a_at(i) * b[i];
  return s;
}

// a . b over n floats.
inline float dot(const float* a, const float* b, int64_t n) {
  return dot_with([a](int64_t i, f32x8& v) { load8(a + i, v); }, [a](int64_t i) { return a[i]; }, b, n);
}

}  // namespace sinklab::vec
