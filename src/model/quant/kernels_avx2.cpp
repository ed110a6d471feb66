// AVX2 + FMA dot_rows kernels: each group of 8 codes is widened to 32-bit
// lanes, converted to float and scaled (step * code - offset) in one fused
// multiply-subtract, then multiplied into the accumulators of every vector of
// the group. Q4_0 and MXFP4 codes first go through a 16-byte table (pshufb)
// to their signed integer values. Compiled only when the compiler targets
// AVX2, FMA and F16C.
#include "model/quant/row_driver.h"

#if defined(SINKLAB_QUANT_AVX2)

#include <immintrin.h>

#include "model/quant/block_layout.h"

namespace sinklab::quant::detail {

namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

// 8 bytes at p as 8 unsigned (or signed) 32-bit lanes.
inline __m256i u8x8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i i8x8(const __m128i& v) { return _mm256_cvtepi8_epi32(v); }

inline float hsum(__m256 v) {
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

inline __m256 scaled(__m256i code, float step, float offset) {
  return _mm256_fmsub_ps(_mm256_cvtepi32_ps(code), _mm256_set1_ps(step), _mm256_set1_ps(offset));
}

// Two accumulators per vector (even and odd 8-element groups), so that
// consecutive FMAs into one vector's sum do not wait on each other.
template <int N>
struct Acc {
  __m256 a[N][2];
  const float* x;
  int64_t cols;

  Acc(const float* x_, int64_t cols_) : x(x_), cols(cols_) {
    for (int i = 0; i < N; ++i) a[i][0] = a[i][1] = _mm256_setzero_ps();
  }
  // sum_i += w * x_i[off .. off + 8)
  void add(int parity, __m256 w, int64_t off) {
    for (int i = 0; i < N; ++i) a[i][parity] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + off), a[i][parity]);
  }
  void store(float* sums) const {
    for (int i = 0; i < N; ++i) sums[i] = hsum(_mm256_add_ps(a[i][0], a[i][1]));
  }
};

struct F16Row {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    const auto widen = [w](int64_t c) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * c)));
    };
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) acc.add(0, widen(c), c), acc.add(1, widen(c + 8), c + 8);
    if (c + 8 <= cols) acc.add(0, widen(c), c), c += 8;
    acc.store(sums);
    for (; c < cols; ++c)
      for (int i = 0; i < N; ++i) sums[i] += f16_at(w + 2 * c) * x[i * cols + c];
  }
};

struct Q8_0Row {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSmallBlock; ++b) {
      const uint8_t* blk = w + b * kQ8_0Bytes;
      const __m256 d = _mm256_set1_ps(f16_at(blk));
      for (int g = 0; g < 4; ++g) {
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * g));
        acc.add(g & 1, _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(q)), d), 32 * b + 8 * g);
      }
    }
    acc.store(sums);
  }
};

// Q4_0 and MXFP4: nibbles mapped to their signed integer values through a
// 16-byte table, then scaled by the block's scale.
template <bool kMxfp4>
struct NibbleTableRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m128i table = kMxfp4 ? _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12)
                                 : _mm_setr_epi8(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    constexpr int kBytes = kMxfp4 ? kMxfp4Bytes : kQ4_0Bytes;
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSmallBlock; ++b) {
      const uint8_t* blk = w + b * kBytes;
      const __m256 scale = _mm256_set1_ps(kMxfp4 ? mxfp4_half_scale(blk[0]) : f16_at(blk));
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + (kMxfp4 ? 1 : 2)));
      const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(qs, low4));
      const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(qs, 4), low4));
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
      for (int g = 0; g < 4; ++g)
        acc.add(g & 1, _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(parts[g])), scale), 32 * b + 8 * g);
    }
    acc.store(sums);
  }
};

// Step (d * scale) and offset (dmin * min) of the 8 sub-blocks of a Q4_K / Q5_K block.
struct KScales {
  alignas(32) float step[8], offset[8];
  explicit KScales(const uint8_t* blk) {
    alignas(16) uint8_t packed[16];
    k_scales_mins(blk + kKScales, packed);
    _mm256_store_ps(step, _mm256_mul_ps(_mm256_cvtepi32_ps(u8x8(packed)), _mm256_set1_ps(f16_at(blk))));
    _mm256_store_ps(offset, _mm256_mul_ps(_mm256_cvtepi32_ps(u8x8(packed + 8)), _mm256_set1_ps(f16_at(blk + 2))));
  }
};

// Q4_K (kFifth false) and Q5_K: per 32 bytes of qs, sub-block 2p in the low
// nibbles and 2p + 1 in the high ones; Q5_K adds bit j of qh[l] as 16.
template <bool kFifth>
struct KRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    constexpr int kBytes = kFifth ? kQ5_KBytes : kQ4_KBytes;
    constexpr int kQs = kFifth ? kQ5_KQs : kQ4_KQs;
    const __m256i low4 = _mm256_set1_epi32(0x0f), bit4 = _mm256_set1_epi32(0x10);
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kBytes;
      const KScales ks(blk);
      for (int p = 0; p < 4; ++p)
        for (int g = 0; g < 4; ++g) {  // lanes l = 8g .. 8g + 7 of both sub-blocks
          const __m256i q = u8x8(blk + kQs + 32 * p + 8 * g);
          __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_srli_epi32(q, 4);
          if (kFifth) {
            // Bit 2p (low sub-block) and 2p + 1 (high) of qh moved to bit 4.
            const __m256i qh = _mm256_slli_epi32(u8x8(blk + kQ5_KQh + 8 * g), 4);
            const __m128i shift_lo = _mm_cvtsi32_si128(2 * p), shift_hi = _mm_cvtsi32_si128(2 * p + 1);
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_srl_epi32(qh, shift_lo), bit4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srl_epi32(qh, shift_hi), bit4));
          }
          const int64_t off = kSuperBlock * b + 64 * p + 8 * g;
          acc.add(g & 1, scaled(lo, ks.step[2 * p], ks.offset[2 * p]), off);
          acc.add(g & 1, scaled(hi, ks.step[2 * p + 1], ks.offset[2 * p + 1]), off + 32);
        }
    }
    acc.store(sums);
  }
};

struct Q6_KRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m256i low4 = _mm256_set1_epi32(0x0f), top2 = _mm256_set1_epi32(0x30);
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ6_KBytes;
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + kQ6_KScales);
      const float d = f16_at(blk + kQ6_KD);
      for (int half = 0; half < 2; ++half)
        for (int g = 0; g < 4; ++g) {  // lanes l = 8g .. 8g + 7 of the four 32-element rows of the half
          const uint8_t* ql = blk + 64 * half + 8 * g;
          const __m256i l0 = u8x8(ql), l1 = u8x8(ql + 32), qh = u8x8(blk + kQ6_KQh + 32 * half + 8 * g);
          const __m256i codes[4] = {
              _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi32(qh, 4), top2)),
              _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi32(qh, 2), top2)),
              _mm256_or_si256(_mm256_srli_epi32(l0, 4), _mm256_and_si256(qh, top2)),
              _mm256_or_si256(_mm256_srli_epi32(l1, 4), _mm256_and_si256(_mm256_srli_epi32(qh, 2), top2))};
          for (int k = 0; k < 4; ++k) {
            const float step = d * float(sc[8 * half + 2 * k + g / 2]);
            acc.add(k & 1, scaled(codes[k], step, 32.f * step), kSuperBlock * b + 128 * half + 32 * k + 8 * g);
          }
        }
    }
    acc.store(sums);
  }
};

}  // namespace

DotRowsFn avx2_dot_rows(TensorType t) {
  switch (t) {
    case TensorType::F16: return dot_rows_with<F16Row>;
    case TensorType::Q8_0: return dot_rows_with<Q8_0Row>;
    case TensorType::Q4_0: return dot_rows_with<NibbleTableRow<false>>;
    case TensorType::MXFP4: return dot_rows_with<NibbleTableRow<true>>;
    case TensorType::Q4_K: return dot_rows_with<KRow<false>>;
    case TensorType::Q5_K: return dot_rows_with<KRow<true>>;
    case TensorType::Q6_K: return dot_rows_with<Q6_KRow>;
    default: return nullptr;  // F32 and BF16 have kernels in the matrix product
  }
}

}  // namespace sinklab::quant::detail

#endif  // SINKLAB_QUANT_AVX2
