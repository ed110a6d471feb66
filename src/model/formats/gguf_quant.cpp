// Decoding of every TensorType to float32. The block layouts are ggml's:
//   Q8_0 (32 elements, 34 bytes): f16 d, int8 q[32];           x = d * q
//   Q4_0 (32 elements, 18 bytes): f16 d, u8 qs[16];            x = d * (nibble - 8),
//        low nibbles are elements 0..15, high nibbles 16..31
//   Q4_K (256 elements, 144 bytes): f16 d, f16 dmin, u8 scales[12], u8 qs[128];
//        8 sub-blocks of 32 with 6-bit scale sc and min m: x = d*sc*q - dmin*m
//   Q6_K (256 elements, 210 bytes): u8 ql[128], u8 qh[64], int8 scales[16], f16 d;
//        x = d * scales[i/16] * (q6 - 32)
// Loads go through memcpy because mapped data is not aligned.
#include <cstring>
#include <vector>

#include "sinklab/formats.h"

namespace sinklab {

namespace {

float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_to_f32(f16{bits});
}

void decode_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = d * float(q[i]);
}

void decode_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float(int(qs[i] & 0x0f) - 8);
    y[i + 16] = d * float(int(qs[i] >> 4) - 8);
  }
}

// Sub-block j (0..7) of a Q4_K super-block: the first four scales and mins are
// the low 6 bits of bytes 0..3 and 4..7; the last four take their low 4 bits
// from the nibbles of bytes 8..11 and their top 2 bits from the spare top
// bits of bytes 0..3 (scales) and 4..7 (mins).
void q4_k_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void decode_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  // Each 32 bytes of qs hold two sub-blocks: low nibbles, then high nibbles.
  for (int pair = 0; pair < 4; ++pair) {
    const uint8_t* q = qs + 32 * pair;
    int sc, m;
    q4_k_scale_min(2 * pair, scales, sc, m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    q4_k_scale_min(2 * pair + 1, scales, sc, m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      y[64 * pair + l] = d1 * float(q[l] & 0x0f) - m1;
      y[64 * pair + 32 + l] = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void decode_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  // Two halves of 128 elements; in each, element l + 32k (k = 0..3) takes its
  // low 4 bits from ql (k = 0,1: low nibble of ql[l], ql[l+32]; k = 2,3: high
  // nibbles) and its top 2 bits from bits 2k..2k+1 of qh[l].
  for (int half = 0; half < 2; ++half) {
    const uint8_t* l4 = ql + 64 * half;
    const uint8_t* h2 = qh + 32 * half;
    float* out = y + 128 * half;
    const int8_t* sc = scales + 8 * half;
    for (int l = 0; l < 32; ++l) {
      const int q0 = int((l4[l] & 0x0f) | ((h2[l] & 0x03) << 4)) - 32;
      const int q1 = int((l4[l + 32] & 0x0f) | (((h2[l] >> 2) & 0x03) << 4)) - 32;
      const int q2 = int((l4[l] >> 4) | (((h2[l] >> 4) & 0x03) << 4)) - 32;
      const int q3 = int((l4[l + 32] >> 4) | (((h2[l] >> 6) & 0x03) << 4)) - 32;
      const int s = l / 16;
      out[l] = d * float(sc[s]) * float(q0);
      out[l + 32] = d * float(sc[s + 2]) * float(q1);
      out[l + 64] = d * float(sc[s + 4]) * float(q2);
      out[l + 96] = d * float(sc[s + 6]) * float(q3);
    }
  }
}

void check_entry(const TensorEntry& t) {
  const size_t need = tensor_type_nbytes(t.type, t.numel(), "tensor '" + t.name + "'");
  if (need != t.nbytes)
    throw Error("tensor '" + t.name + "': nbytes " + std::to_string(t.nbytes) + " does not match its " +
                tensor_type_name(t.type) + " shape (" + std::to_string(need) + " bytes)");
  if (need > 0 && !t.data) throw Error("tensor '" + t.name + "': null data");
}

}  // namespace

void dequantize_row(TensorType type, const uint8_t* src, float* dst, int64_t n) {
  const int64_t block = tensor_type_block_size(type);
  if (n < 0 || n % block != 0)
    throw Error(std::string("dequantize_row: ") + std::to_string(n) + " elements is not a multiple of the " +
                tensor_type_name(type) + " block size");
  const size_t bb = tensor_type_block_bytes(type);
  const int64_t nb = n / block;
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(src + 2 * i);
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = bf16_to_f32(bf16{bits});
      }
      return;
    case TensorType::Q8_0:
      for (int64_t i = 0; i < nb; ++i) decode_q8_0(src + i * bb, dst + i * block);
      return;
    case TensorType::Q4_0:
      for (int64_t i = 0; i < nb; ++i) decode_q4_0(src + i * bb, dst + i * block);
      return;
    case TensorType::Q4_K:
      for (int64_t i = 0; i < nb; ++i) decode_q4_k(src + i * bb, dst + i * block);
      return;
    case TensorType::Q6_K:
      for (int64_t i = 0; i < nb; ++i) decode_q6_k(src + i * bb, dst + i * block);
      return;
  }
  throw Error("dequantize_row: invalid tensor type");
}

void dequantize(const TensorEntry& t, float* out) {
  check_entry(t);
  const int64_t n = t.numel();
  if (n > 0) dequantize_row(t.type, t.data, out, n);
}

void dequantize_to_bf16(const TensorEntry& t, bf16* out) {
  check_entry(t);
  const int64_t n = t.numel();
  const int64_t block = tensor_type_block_size(t.type);
  const size_t bb = tensor_type_block_bytes(t.type);
  // Decode a bounded chunk of whole blocks at a time.
  const int64_t chunk = block * ((4096 + block - 1) / block);
  std::vector<float> tmp(size_t(std::min(n, chunk)));
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t m = std::min(chunk, n - i);
    dequantize_row(t.type, t.data + size_t(i / block) * bb, tmp.data(), m);
    for (int64_t j = 0; j < m; ++j) out[i + j] = f32_to_bf16(tmp[size_t(j)]);
  }
}

}  // namespace sinklab
