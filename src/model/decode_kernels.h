// Row kernels of the decode matrix-vector products: w . x for one weight row.
// f32 rows use attn::dot (8-float vectors). bf16 rows widen 16 weights at a
// time to f32 (a 16-bit shift of the bits); with AVX-512 the 16 land in one
// register from one 256-bit load, which on the hosts measured streamed ~7%
// faster than two 8-float halves (docs/results/model-bench.md). Both paths are
// compiled and tested wherever the CPU has them.
#pragma once

#include <cstdint>

#include "../attention/vec_math.h"
#include "sinklab/core.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace sinklab::ops::kernels {

using u16x8 = uint16_t __attribute__((vector_size(16)));

// Portable: 8 weights at a time through vector extensions.
inline float dot_bf16_portable(const uint16_t* w, const float* x, int64_t n) {
  const auto widen8 = [w](int64_t i, attn::f32x8& out) {
    u16x8 h;
    __builtin_memcpy(&h, w + i, sizeof h);
    attn::as_f32(__builtin_convertvector(h, attn::u32x8) << 16, out);
  };
  return attn::dot_with(widen8, [w](int64_t i) { return bf16_to_f32(bf16{w[i]}); }, x, n);
}

#if defined(__AVX512F__)
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
  float lanes[16];
  _mm512_storeu_ps(lanes, _mm512_add_ps(a0, a1));
  attn::f32x8 lo, hi;
  attn::load8(lanes, lo), attn::load8(lanes + 8, hi);
  float s = attn::hsum(lo + hi);
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

}  // namespace sinklab::ops::kernels
