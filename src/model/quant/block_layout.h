// Byte layouts of the ggml block types (as llama.cpp writes them in GGUF
// files) and the small decoders every reader of them shares: the f16 load,
// the 6-bit scale/min packing of Q4_K and Q5_K, and MXFP4's E2M1 table and
// exponent byte. All multi-byte fields are little-endian and unaligned.
//
//   Q8_0  (32 elements, 34 bytes):  f16 d | int8 q[32]                  x = d * q
//   Q4_0  (32 elements, 18 bytes):  f16 d | u8 qs[16]                   x = d * (nibble - 8)
//         element j < 16 is the low nibble of qs[j], element j + 16 its high nibble
//   MXFP4 (32 elements, 17 bytes):  u8 e  | u8 qs[16]                   x = E2M1(nibble) * 2^(e - 127)
//         nibble order as Q4_0; E2M1 = sign bit 0x8, magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6
//   Q4_K  (256 elements, 144 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//         8 sub-blocks of 32 with a 6-bit scale sc and min m: x = (d * sc) * q - (dmin * m);
//         qs[32p + l] holds element 64p + l (low nibble) and 64p + 32 + l (high nibble)
//   Q5_K  (256 elements, 176 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
//         as Q4_K with a fifth bit: element 32j + l adds 16 when bit j of qh[l] is set
//   Q6_K  (256 elements, 210 bytes): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
//         x = (d * scales[i / 16]) * (q - 32), q = 4 low bits from ql and 2 high bits from qh
//         (see q6_k_code)
#pragma once

#include <cstdint>
#include <cstring>

#include "sinklab/core.h"

namespace sinklab::quant {

constexpr int kQ8_0Bytes = 34, kQ4_0Bytes = 18, kMxfp4Bytes = 17;
constexpr int kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;
constexpr int kSmallBlock = 32;   // Q8_0, Q4_0, MXFP4
constexpr int kSuperBlock = 256;  // Q4_K, Q5_K, Q6_K

// Offsets inside the K-quant super-blocks.
constexpr int kKScales = 4;        // Q4_K and Q5_K: scales[12] after d and dmin
constexpr int kQ4_KQs = 16;
constexpr int kQ5_KQh = 16, kQ5_KQs = 48;
constexpr int kQ6_KQh = 128, kQ6_KScales = 192, kQ6_KD = 208;

inline float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_to_f32(f16{bits});
}

inline void store_f16(uint8_t* p, float x) {
  const f16 h = f32_to_f16(x);
  std::memcpy(p, &h.bits, 2);
}

// Scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block: for j < 4
// the low 6 bits of bytes j (scale) and j + 4 (min); for j >= 4 the low 4 bits
// come from the nibbles of byte j + 4 and the top 2 bits from the spare top
// bits of bytes j - 4 (scale) and j (min).
inline void k_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// All 8 scales and mins at once, as bytes: out[0..7] the scales, out[8..15]
// the mins. The same packing read four bytes at a time (each mask keeps the
// same bits of every byte of a word).
inline void k_scales_mins(const uint8_t* s, uint8_t (&out)[16]) {
  uint32_t w[3], r[4];
  std::memcpy(w, s, 12);
  constexpr uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, low2 = 0x03030303u;
  r[0] = w[0] & low6;                                       // scales 0..3
  r[1] = (w[2] & low4) | (((w[0] >> 6) & low2) << 4);       // scales 4..7
  r[2] = w[1] & low6;                                       // mins 0..3
  r[3] = ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4);  // mins 4..7
  std::memcpy(out, r, 16);
}

// The inverse: packs 8 six-bit scales and mins into 12 bytes.
inline void pack_k_scale_min(const uint8_t (&scale)[8], const uint8_t (&min)[8], uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t(scale[j] | ((scale[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t(min[j] | ((min[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((scale[j + 4] & 0x0f) | ((min[j + 4] & 0x0f) << 4));
  }
}

// MXFP4 codes as twice their E2M1 value (integers, like ggml's table); the
// block scale is then half of 2^(e - 127), so code * scale is the E2M1 value
// times 2^(e - 127) exactly.
constexpr int8_t kMxfp4Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128) as a float (e = 0 and 1 are subnormal; e = 255 gives 2^127).
inline float mxfp4_half_scale(uint8_t e) {
  const uint32_t bits = e < 2 ? uint32_t(0x00200000u) << e : uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The 6-bit code (0..63) of element 32k + l (k = 0..3, l = 0..31) of one
// 128-element half of a Q6_K block, given that half's ql (64 bytes) and qh (32 bytes).
inline int q6_k_code(const uint8_t* ql, const uint8_t* qh, int k, int l) {
  const int low = (k < 2 ? ql[l + 32 * k] : ql[l + 32 * (k - 2)] >> 4) & 0x0f;
  return low | (((qh[l] >> (2 * k)) & 3) << 4);
}

}  // namespace sinklab::quant
