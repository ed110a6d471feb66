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
// 32 bytes at p, twice.
inline __m512i load_32_twice(const uint8_t* p) {
  return _mm512_maskz_broadcast_i64x4(0xff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Values just stored to a small array are then read back from memory: a
// broadcast load costs no vector instruction, where broadcasting a lane of
// the register the compiler would otherwise keep them in costs a shuffle each.
inline void read_back_from_memory() { asm volatile("" ::: "memory"); }
// table[index & 15] per lane, and (a, b)[index & 31] for a 32-entry table.
inline __m512 permute16(__m512i index, __m512 table) { return _mm512_maskz_permutexvar_ps(kAll, index, table); }
inline __m512 permute32(__m512 a, __m512i index, __m512 b) { return _mm512_maskz_permutex2var_ps(kAll, a, index, b); }

inline float hsum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

// Byte 16q + d (d < 16) of a 64-byte register into the low byte of 32-bit lane d
// (vpermb with the other bytes zeroed): codes built 64 at a time with byte
// operations, then handed out 16 per register.
inline __m512i spread_index(int q) {
  alignas(64) uint8_t idx[64] = {};
  for (int d = 0; d < 16; ++d) idx[4 * d] = uint8_t(16 * q + d);
  return _mm512_load_si512(idx);
}
constexpr __mmask64 kLowBytes = 0x1111111111111111ull;
inline __m512i spread(const __m512i& codes, const __m512i& index) {
  return _mm512_maskz_permutexvar_epi8(kLowBytes, index, codes);
}

// 16-bit lane counts: a for the first 32 bytes of a register, b for the last 32.
inline __m512i halves(int a, int b) {
  return _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(short(a)), _mm512_set1_epi16(short(b)));
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
  alignas(64) float step_offset[16];  // steps of sub-blocks 0..7, then their offsets
  explicit KScales(const uint8_t* blk) {
    alignas(16) uint8_t packed[16];
    k_scales_mins(blk + kKScales, packed);
    const __m512 mult = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(f16_at(blk)), _mm512_set1_ps(f16_at(blk + 2)));
    _mm512_store_ps(step_offset, _mm512_mul_ps(to_float(bytes_to_lanes(packed)), mult));
    read_back_from_memory();
  }
  // Decoded values of the codes in `codes` for sub-block j.
  __m512 table(int j, const __m512& codes) const {
    return _mm512_fmsub_ps(codes, _mm512_set1_ps(step_offset[j]), _mm512_set1_ps(step_offset[8 + j]));
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

// Q5_K: the 5-bit codes of two pairs of sub-blocks (128 elements) built with
// 64-byte operations: qh is shifted (per 16-bit lane, by the sub-block's bit
// number) so that each element's fifth bit lands on bit 4 of its byte.
struct Q5_KRow {
  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m512i index[4] = {spread_index(0), spread_index(1), spread_index(2), spread_index(3)};
    const __m512i low4 = _mm512_set1_epi8(0x0f), low5 = _mm512_set1_epi8(0x1f);
    // Sub-block 4pp + 2h + nibble takes bit 4pp + 2h + nibble of qh: left shifts for pp = 0, right for pp = 1.
    const __m512i lo_left = halves(4, 2), hi_left = halves(3, 1), lo_right = halves(0, 2), hi_right = halves(1, 3);
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ5_KBytes;
      const KScales ks(blk);
      const __m512i qh = load_32_twice(blk + kQ5_KQh);
      for (int pp = 0; pp < 2; ++pp) {  // qs bytes 64pp .. 64pp + 63: pairs 2pp and 2pp + 1
        const __m512i qs = _mm512_loadu_si512(blk + kQ5_KQs + 64 * pp);
        const __m512i fifth_lo = pp == 0 ? _mm512_sllv_epi16(qh, lo_left) : _mm512_srlv_epi16(qh, lo_right);
        const __m512i fifth_hi = pp == 0 ? _mm512_sllv_epi16(qh, hi_left) : _mm512_srlv_epi16(qh, hi_right);
        const __m512i codes[2] = {
            _mm512_and_si512(_mm512_ternarylogic_epi32(qs, fifth_lo, low4, 0xE4), low5),
            _mm512_and_si512(_mm512_ternarylogic_epi32(_mm512_srli_epi16(qs, 4), fifth_hi, low4, 0xE4), low5)};
        for (int h = 0; h < 2; ++h)
          for (int nibble = 0; nibble < 2; ++nibble) {
            const int j = 4 * pp + 2 * h + nibble;
            const auto weights = [&](int q) {
              return _mm512_fmsub_ps(to_float(spread(codes[nibble], index[q])), _mm512_set1_ps(ks.step_offset[j]),
                                     _mm512_set1_ps(ks.step_offset[8 + j]));
            };
            acc.add(0, weights(2 * h), kSuperBlock * b + 32 * j);
            acc.add(1, weights(2 * h + 1), kSuperBlock * b + 32 * j + 16);
          }
      }
    }
    acc.store(sums);
  }
};

// Q6_K. With one vector the decoding is what limits, and building the codes
// of a whole block with 64-byte operations (then vpermb) is fastest; with more
// vectors the FMAs dominate and decoding 16 codes at a time from 32-bit lanes,
// which competes less with them, is (both measured on Zen 4).
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

  // Per 16-element group: step = d * scale and the offset of the -32 bias.
  struct Steps {
    alignas(64) float step[16], offset[16];
    explicit Steps(const uint8_t* blk) {
      const __m512 steps =
          _mm512_mul_ps(to_float(signed_bytes_to_lanes(blk + kQ6_KScales)), _mm512_set1_ps(f16_at(blk + kQ6_KD)));
      _mm512_store_ps(step, steps);
      _mm512_store_ps(offset, _mm512_mul_ps(steps, _mm512_set1_ps(32.f)));
    }
    __m512 weights(int g, __m512i codes) const {
      return _mm512_fmsub_ps(to_float(codes), _mm512_set1_ps(step[g]), _mm512_set1_ps(offset[g]));
    }
  };

  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    if constexpr (N == 1)
      row_by_blocks(w, cols, x, sums);
    else
      row_by_groups<N>(w, cols, x, sums);
  }

  // Codes of one half (128 elements) in two registers: rows k = 0, 1 from the
  // low nibbles of ql and bits 0..3 of qh, rows k = 2, 3 from the high nibbles
  // and bits 4..7, the qh bits moved to bits 4..5 by per-lane shifts.
  static void row_by_blocks(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const __m512i left = halves(4, 2), right = halves(0, 2);
    const __m512i top2 = _mm512_set1_epi8(0x30), low4 = _mm512_set1_epi8(0x0f);
    const __m512i index[4] = {spread_index(0), spread_index(1), spread_index(2), spread_index(3)};
    Acc<1> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ6_KBytes;
      const Steps steps(blk);
      read_back_from_memory();  // measured slower in row_by_groups
      for (int half = 0; half < 2; ++half) {
        const __m512i ql = _mm512_loadu_si512(blk + 64 * half);
        const __m512i qh = load_32_twice(blk + kQ6_KQh + 32 * half);
        const __m512i codes[2] = {
            _mm512_ternarylogic_epi32(ql, _mm512_and_si512(_mm512_sllv_epi16(qh, left), top2), low4, 0xE4),
            _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), _mm512_and_si512(_mm512_srlv_epi16(qh, right), top2),
                                      low4, 0xE4)};
        for (int g = 0; g < 8; g += 2) {
          const int64_t off = kSuperBlock * b + 128 * half + 16 * g;
          acc.add(0, steps.weights(8 * half + g, spread(codes[g / 4], index[g % 4])), off);
          acc.add(1, steps.weights(8 * half + g + 1, spread(codes[g / 4], index[g % 4 + 1])), off + 16);
        }
      }
    }
    acc.store(sums);
  }

  template <int N>
  static void row_by_groups(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    Acc<N> acc(x, cols);
    for (int64_t b = 0; b < cols / kSuperBlock; ++b) {
      const uint8_t* blk = w + b * kQ6_KBytes;
      const Steps steps(blk);
      for (int half = 0; half < 2; ++half)
        for (int lg = 0; lg < 32; lg += 16) {
          const uint8_t* ql = blk + 64 * half + lg;
          const __m512i l0 = bytes_to_lanes(ql), l1 = bytes_to_lanes(ql + 32);
          const __m512i qh = bytes_to_lanes(blk + kQ6_KQh + 32 * half + lg);
          const __m512i codes[4] = {code<0>(l0, qh), code<1>(l1, qh), code<2>(shr<4>(l0), qh),
                                    code<3>(shr<4>(l1), qh)};
          for (int k = 0; k < 4; ++k)
            acc.add(k & 1, steps.weights(8 * half + 2 * k + lg / 16, codes[k]), kSuperBlock * b + 128 * half + 32 * k + lg);
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
