// Row kernels of the decode matrix-vector products: w . x for one weight row.
// f32 rows use vec::dot (8-float vectors). bf16 rows widen 16 weights at a
// time to f32 (a 16-bit shift of the bits); with AVX-512 the 16 land in one
// register from one 256-bit load, which on the hosts measured streamed ~7%
// faster than two 8-float halves (docs/results/model-bench.md). Both paths are
// compiled and tested wherever the CPU has them.
#pragma once

#include <cstdint>

#include "sinklab/vec_math.h"
#include "sinklab/core.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace sinklab::ops::kernels {

using u16x8 = uint16_t __attribute__((vector_size(16)));

// Portable: 8 weights at a time through vector extensions.
inline float dot_bf16_portable(const uint16_t* w, const float* x, int64_t n) {
  const auto widen8 = [w](int64_t i, vec::f32x8& out) {
    u16x8 h;
    __builtin_memcpy(&h, w + i, sizeof h);
    vec::as_f32(__builtin_convertvector(h, vec::u32x8) << 16, out);
  };
  return vec::dot_with(widen8, [w](int64_t i) { return bf16_to_f32(bf16{w[i]}); }, x, n);
}

#if defined(__AVX512F__)
// The sum of 16 lanes (through memory: GCC 12 warns on _mm512_reduce_add_ps).
inline float hsum16(__m512 v) {
  float lanes[16];
  _mm512_storeu_ps(lanes, v);
  vec::f32x8 lo, hi;
  vec::load8(lanes, lo), vec::load8(lanes + 8, hi);
  return vec::hsum(lo + hi);
}

inline float dot_bf16_avx512(const uint16_t* w, const float* x, int64_t n) {
  auto widen16 = [&](int64_t i) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    // The zero-masked forms: GCC 12 warns on the unmasked ones' undefined pass-through.
    const __m512i wide = _mm512_maskz_cvtepu16_epi32(0xffff, h);
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, wide, 16));
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(widen16(i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(widen16(i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  if (i + 16 <= n) {
    a0 = _mm512_fmadd_ps(widen16(i), _mm512_loadu_ps(x + i), a0);
    i += 16;
  }
  float s = hsum16(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) s += bf16_to_f32(bf16{w[i]}) * x[i];
  return s;
}
#endif

inline float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
#if defined(__AVX512F__)
  return dot_bf16_avx512(w, x, n);
#else
  return dot_bf16_portable(w, x, n);
#endif
}

// Two rows at once, a . x and b . x, their loads alternating one 64-byte line
// of a with one of b. With a and b far apart this keeps two memory streams in
// flight per thread (see rows_product_pair in ops.cpp).
inline void dot2_f32(const float* a, const float* b, const float* x, int64_t n, float& ya, float& yb) {
  vec::f32x8 a0 = {}, a1 = {}, b0 = {}, b1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    vec::f32x8 x0, x1, va0, va1, vb0, vb1;
    vec::load8(x + i, x0), vec::load8(x + i + 8, x1);
    vec::load8(a + i, va0), vec::load8(a + i + 8, va1);
    vec::load8(b + i, vb0), vec::load8(b + i + 8, vb1);
    a0 += va0 * x0, a1 += va1 * x1, b0 += vb0 * x0, b1 += vb1 * x1;
  }
  if (i + 8 <= n) {
    vec::f32x8 x0, va0, vb0;
    vec::load8(x + i, x0), vec::load8(a + i, va0), vec::load8(b + i, vb0);
    a0 += va0 * x0, b0 += vb0 * x0;
    i += 8;
  }
  float sa = vec::hsum(a0 + a1), sb = vec::hsum(b0 + b1);
  for (; i < n; ++i) sa += a[i] * x[i], sb += b[i] * x[i];
  ya = sa, yb = sb;
}

inline void dot2_bf16_portable(const uint16_t* a, const uint16_t* b, const float* x, int64_t n, float& ya,
                               float& yb) {
  const auto widen8 = [](const uint16_t* w, vec::f32x8& out) {
    u16x8 h;
    __builtin_memcpy(&h, w, sizeof h);
    vec::as_f32(__builtin_convertvector(h, vec::u32x8) << 16, out);
  };
  vec::f32x8 a0 = {}, a1 = {}, b0 = {}, b1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    vec::f32x8 x0, x1, va0, va1, vb0, vb1;
    vec::load8(x + i, x0), vec::load8(x + i + 8, x1);
    widen8(a + i, va0), widen8(a + i + 8, va1), widen8(b + i, vb0), widen8(b + i + 8, vb1);
    a0 += va0 * x0, a1 += va1 * x1, b0 += vb0 * x0, b1 += vb1 * x1;
  }
  if (i + 8 <= n) {
    vec::f32x8 x0, va0, vb0;
    vec::load8(x + i, x0), widen8(a + i, va0), widen8(b + i, vb0);
    a0 += va0 * x0, b0 += vb0 * x0;
    i += 8;
  }
  float sa = vec::hsum(a0 + a1), sb = vec::hsum(b0 + b1);
  for (; i < n; ++i) sa += bf16_to_f32(bf16{a[i]}) * x[i], sb += bf16_to_f32(bf16{b[i]}) * x[i];
  ya = sa, yb = sb;
}

#if defined(__AVX512F__)
inline void dot2_bf16_avx512(const uint16_t* a, const uint16_t* b, const float* x, int64_t n, float& ya,
                             float& yb) {
  const auto widen16 = [](const uint16_t* w) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m512i wide = _mm512_maskz_cvtepu16_epi32(0xffff, h);
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, wide, 16));
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(),
         b1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    a0 = _mm512_fmadd_ps(widen16(a + i), x0, a0);
    b0 = _mm512_fmadd_ps(widen16(b + i), x0, b0);
    a1 = _mm512_fmadd_ps(widen16(a + i + 16), x1, a1);
    b1 = _mm512_fmadd_ps(widen16(b + i + 16), x1, b1);
  }
  if (i + 16 <= n) {
    const __m512 x0 = _mm512_loadu_ps(x + i);
    a0 = _mm512_fmadd_ps(widen16(a + i), x0, a0);
    b0 = _mm512_fmadd_ps(widen16(b + i), x0, b0);
    i += 16;
  }
  float sa = hsum16(_mm512_add_ps(a0, a1)), sb = hsum16(_mm512_add_ps(b0, b1));
  for (; i < n; ++i) sa += bf16_to_f32(bf16{a[i]}) * x[i], sb += bf16_to_f32(bf16{b[i]}) * x[i];
  ya = sa, yb = sb;
}
#endif

inline void dot2_bf16(const uint16_t* a, const uint16_t* b, const float* x, int64_t n, float& ya, float& yb) {
#if defined(__AVX512F__)
  dot2_bf16_avx512(a, b, x, n, ya, yb);
#else
  dot2_bf16_portable(a, b, x, n, ya, yb);
#endif
}

}  // namespace sinklab::ops::kernels
