// AVX-512 dot_rows kernels. Each block is decoded into 16-float registers and
// multiplied into the accumulators of every vector of the group:
//   4-bit codes (Q4_0, MXFP4, Q4_K) index a 16-entry table of their decoded
//   values (vpermps reads only the low 4 bits of each index, so the low
//   nibble needs no mask); Q5_K's fifth bit selects between two such tables
//   (vpermt2ps); Q8_0 and Q6_K codes are converted to float and scaled.
// Compiled only when the compiler targets AVX-512 F/BW/VL/DQ.
#include "model/quant/row_driver.h"

#if defined(SINKLAB_QUANT_AVX512)

#include <immintrin.h>

#include "model/quant/block_layout.h"

namespace sinklab::quant::detail {

namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

// GCC 12 warns that the unmasked forms of these instructions read an
// undefined pass-through operand; the zero-masked forms with every lane set
// are the same instructions.
constexpr __mmask16 kAll = 0xffff;

inline __m512i bytes_to_lanes(const uint8_t* p) {
  return _mm512_maskz_cvtepu8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m512i signed_bytes_to_lanes(const uint8_t* p) {
  return _mm512_maskz_cvtepi8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
template <unsigned kBits>
inline __m512i shl(__m512i v) {
  return _mm512_maskz_slli_epi32(kAll, v, kBits);
}
template <unsigned kBits>
inline __m512i shr(__m512i v) {
  return _mm512_maskz_srli_epi32(kAll, v, kBits);
}
inline __m512 to_float(__m512i v) { return _mm512_maskz_cvtepi32_ps(kAll, v); }
// table[index & 15] per lane, and (a, b)[index & 31] for a 32-entry table.
inline __m512 permute16(__m512i index, __m512 table) { return _mm512_maskz_permutexvar_ps(kAll, index, table); }
inline __m512 permute32(__m512 a, __m512i index, __m512 b) { return _mm512_maskz_permutex2var_ps(kAll, a, index, b); }

inline float hsum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

// Two accumulators per vector (even and odd 16-element groups), so that
// consecutive FMAs into one vector's sum do not wait on each other.
template <int N>
struct Acc {
  __m512 a[N][2];
  const float* x;
  int64_t cols;

  Acc(const float* x_, int64_t cols_) : x(x_), cols(cols_) {
    for (int i = 0; i < N; ++i) a[i][0] = a[i][1] = _mm512_setzero_ps();
  }
  // sum_i += w * x_i[off .. off + 16)
  void add(int parity, __m512 w, int64_t off) {
    for (int i = 0; i < N; ++i) a[i][parity] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i * cols + off), a[i][parity]);
  }
  void store(float* sums) const {
    for (int i = 0; i < N; ++i) sums[i] = hsum(_mm512_add_ps(a[i][0], a[i][1]));
  }
};

struct F16Row {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    const auto widen = [w](int64_t c) {
      return _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * c)));
    };
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) acc.add(0, widen(c), c), acc.add(1, widen(c + 16), c + 16);
    for (; c < cols; c += 16) {  // masked tail: lanes past the row read as zero
      const __mmask16 m = c + 16 <= cols ? __mmask16(0xffff) : __mmask16((1u << (cols - c)) - 1);
      const __m512 wv = _mm512_maskz_cvtph_ps(kAll, _mm256_maskz_loadu_epi16(m, w + 2 * c));
      for (int i = 0; i < N; ++i)
        acc.a[i][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i * cols + c), acc.a[i][0]);
    }
    acc.store(sums);
  }
};

struct Q8_0Row {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSmallBlock; ++b) {
      const uint8_t* blk = w + b * kQ8_0Bytes;
      const __m512 d = _mm512_set1_ps(f16_at(blk));
      for (int h = 0; h < 2; ++h)
        acc.add(h, _mm512_mul_ps(to_float(signed_bytes_to_lanes(blk + 2 + 16 * h)), d), 32 * b + 16 * h);
    }
    acc.store(sums);
  }
};

// Q4_0 and MXFP4: 32 nibbles per block, each looked up in the block's table
// of 16 decoded values.
template <bool kMxfp4>
struct NibbleTableRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m512 codes = kMxfp4 ? _mm512_setr_ps(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12)
                                : _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    constexpr int kBytes = kMxfp4 ? kMxfp4Bytes : kQ4_0Bytes;
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSmallBlock; ++b) {
      const uint8_t* blk = w + b * kBytes;
      const float scale = kMxfp4 ? mxfp4_half_scale(blk[0]) : f16_at(blk);
      const __m512 table = _mm512_mul_ps(codes, _mm512_set1_ps(scale));
      const __m512i q = bytes_to_lanes(blk + (kMxfp4 ? 1 : 2));
      acc.add(0, permute16(q, table), 32 * b);
      acc.add(1, permute16(shr<4>(q), table), 32 * b + 16);
    }
    acc.store(sums);
  }
};

// Step (d * scale) and offset (dmin * min) of the 8 sub-blocks of a Q4_K / Q5_K block.
struct KScales {
  float step[8], offset[8];
  explicit KScales(const uint8_t* blk) {
    const float d = f16_at(blk), dmin = f16_at(blk + 2);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      k_scale_min(j, blk + kKScales, sc, m);
      step[j] = d * float(sc), offset[j] = dmin * float(m);
    }
  }
  // Decoded values of codes lo .. lo + 15 in sub-block j.
  __m512 table(int j, const __m512& codes) const {
    return _mm512_fmsub_ps(codes, _mm512_set1_ps(step[j]), _mm512_set1_ps(offset[j]));
  }
};

struct Q4_KRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ4_KBytes;
      const KScales ks(blk);
      for (int p = 0; p < 4; ++p) {  // 32 bytes: sub-block 2p in the low nibbles, 2p + 1 in the high
        const __m512 lo = ks.table(2 * p, iota), hi = ks.table(2 * p + 1, iota);
        const __m512i q0 = bytes_to_lanes(blk + kQ4_KQs + 32 * p), q1 = bytes_to_lanes(blk + kQ4_KQs + 32 * p + 16);
        const int64_t off = kSuperBlock * b + 64 * p;
        acc.add(0, permute16(q0, lo), off);
        acc.add(1, permute16(q1, lo), off + 16);
        acc.add(0, permute16(shr<4>(q0), hi), off + 32);
        acc.add(1, permute16(shr<4>(q1), hi), off + 48);
      }
    }
    acc.store(sums);
  }
};

struct Q5_KRow {
  // Index bits 0..3 from the nibble, bit 4 (which table) from the fifth bit
  // already shifted there; vpternlogd 0xE4 takes c ? a : b bit by bit.
  static __m512i index(__m512i nibble, __m512i fifth) {
    return _mm512_ternarylogic_epi32(nibble, fifth, _mm512_set1_epi32(0x0f), 0xE4);
  }

  // Sub-blocks 2P (low nibbles) and 2P + 1 (high nibbles); h0/h1 hold qh
  // shifted left by 4, so bit j of qh moves to bit 4 when shifted right by j.
  template <int P, int N>
  static void pair(const uint8_t* blk, const KScales& ks, __m512i h0, __m512i h1, int64_t off, Acc<N>& acc) {
    const __m512 iota0 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 iota16 = _mm512_add_ps(iota0, _mm512_set1_ps(16.f));
    const __m512 lo_a = ks.table(2 * P, iota0), lo_b = ks.table(2 * P, iota16);
    const __m512 hi_a = ks.table(2 * P + 1, iota0), hi_b = ks.table(2 * P + 1, iota16);
    const __m512i q0 = bytes_to_lanes(blk + kQ5_KQs + 32 * P), q1 = bytes_to_lanes(blk + kQ5_KQs + 32 * P + 16);
    acc.add(0, permute32(lo_a, index(q0, shr<2 * P>(h0)), lo_b), off);
    acc.add(1, permute32(lo_a, index(q1, shr<2 * P>(h1)), lo_b), off + 16);
    acc.add(0, permute32(hi_a, index(shr<4>(q0), shr<2 * P + 1>(h0)), hi_b), off + 32);
    acc.add(1, permute32(hi_a, index(shr<4>(q1), shr<2 * P + 1>(h1)), hi_b), off + 48);
  }

  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ5_KBytes;
      const KScales ks(blk);
      const __m512i h0 = shl<4>(bytes_to_lanes(blk + kQ5_KQh)), h1 = shl<4>(bytes_to_lanes(blk + kQ5_KQh + 16));
      const int64_t off = kSuperBlock * b;
      pair<0>(blk, ks, h0, h1, off, acc);
      pair<1>(blk, ks, h0, h1, off + 64, acc);
      pair<2>(blk, ks, h0, h1, off + 128, acc);
      pair<3>(blk, ks, h0, h1, off + 192, acc);
    }
    acc.store(sums);
  }
};

struct Q6_KRow {
  // Codes of elements 32K + lanes of one half: low 4 bits from `low` (bits
  // 0..3 used), bits 2K..2K+1 of qh moved to bits 4..5.
  template <int K>
  static __m512i code(__m512i low, __m512i qh) {
    __m512i top;
    if constexpr (K < 2)
      top = shl<4 - 2 * K>(qh);
    else
      top = shr<2 * K - 4>(qh);
    const __m512i merged = _mm512_ternarylogic_epi32(low, top, _mm512_set1_epi32(0x0f), 0xE4);
    return _mm512_and_si512(merged, _mm512_set1_epi32(0x3f));
  }

  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ6_KBytes;
      // Per 16-element group: step = d * scale and the offset of the -32 bias.
      alignas(64) float step[16], offset[16];
      const __m512 steps =
          _mm512_mul_ps(to_float(signed_bytes_to_lanes(blk + kQ6_KScales)), _mm512_set1_ps(f16_at(blk + kQ6_KD)));
      _mm512_store_ps(step, steps);
      _mm512_store_ps(offset, _mm512_mul_ps(steps, _mm512_set1_ps(32.f)));
      for (int half = 0; half < 2; ++half)
        for (int lg = 0; lg < 32; lg += 16) {
          const uint8_t* ql = blk + 64 * half + lg;
          const __m512i l0 = bytes_to_lanes(ql), l1 = bytes_to_lanes(ql + 32);
          const __m512i qh = bytes_to_lanes(blk + kQ6_KQh + 32 * half + lg);
          const __m512i codes[4] = {code<0>(l0, qh), code<1>(l1, qh), code<2>(shr<4>(l0), qh),
                                    code<3>(shr<4>(l1), qh)};
          for (int k = 0; k < 4; ++k) {
            const int g = 8 * half + 2 * k + lg / 16;
            const __m512 wv = _mm512_fmsub_ps(to_float(codes[k]), _mm512_set1_ps(step[g]), _mm512_set1_ps(offset[g]));
            acc.add(k & 1, wv, kSuperBlock * b + 128 * half + 32 * k + lg);
          }
        }
    }
    acc.store(sums);
  }
};

}  // namespace

DotRowsFn avx512_dot_rows(TensorType t) {
  switch (t) {
    case TensorType::F16: return dot_rows_with<F16Row>;
    case TensorType::Q8_0: return dot_rows_with<Q8_0Row>;
    case TensorType::Q4_0: return dot_rows_with<NibbleTableRow<false>>;
    case TensorType::MXFP4: return dot_rows_with<NibbleTableRow<true>>;
    case TensorType::Q4_K: return dot_rows_with<Q4_KRow>;
    case TensorType::Q5_K: return dot_rows_with<Q5_KRow>;
    case TensorType::Q6_K: return dot_rows_with<Q6_KRow>;
    default: return nullptr;  // F32 and BF16 have kernels in the matrix product
  }
}

}  // namespace sinklab::quant::detail

#endif  // SINKLAB_QUANT_AVX512
