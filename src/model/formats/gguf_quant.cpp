// Decoding of every TensorType to float32, in the block layouts of
// src/model/quant/block_layout.h. The products of f16 scales (11 significant
// bits) and integer codes and sub-block scales (at most 8 bits each, 12 in
// all) are exact in float32, so a value is rounded at most once (in the K
// types' subtraction of the min): it is the correctly rounded value of its
// formula, whatever the order of the operations or fused multiply-adds. tests/reference/make_quant_blocks.py
// checks them bit for bit. Loads go through memcpy because mapped data is not aligned.
#include <cstring>
#include <vector>

#include "model/quant/block_layout.h"
#include "sinklab/formats.h"

namespace sinklab {

namespace {

using quant::load_f16;

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

void decode_mxfp4(const uint8_t* b, float* y) {
  const float half_scale = quant::mxfp4_half_scale(b[0]);
  const uint8_t* qs = b + 1;
  for (int i = 0; i < 16; ++i) {
    y[i] = float(quant::kMxfp4Doubled[qs[i] & 0x0f]) * half_scale;
    y[i + 16] = float(quant::kMxfp4Doubled[qs[i] >> 4]) * half_scale;
  }
}

// Q4_K and Q5_K: 8 sub-blocks of 32 with their own scale and min; qh is null
// for Q4_K (no fifth bit).
void decode_k_4_5(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    quant::k_scale_min(j, b + quant::kKScales, sc, m);
    const float step = d * float(sc), offset = dmin * float(m);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      int code = (q[l] >> shift) & 0x0f;
      if (qh && ((qh[l] >> j) & 1)) code += 16;
      y[32 * j + l] = step * float(code) - offset;
    }
  }
}

void decode_q6_k(const uint8_t* b, float* y) {
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + quant::kQ6_KScales);
  const float d = load_f16(b + quant::kQ6_KD);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b + 64 * half;
    const uint8_t* qh = b + quant::kQ6_KQh + 32 * half;
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) {
        const int i = 128 * half + 32 * k + l;
        y[i] = (d * float(scales[i / 16])) * float(quant::q6_k_code(ql, qh, k, l) - 32);
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
    case TensorType::MXFP4:
      for (int64_t i = 0; i < nb; ++i) decode_mxfp4(src + i * bb, dst + i * block);
      return;
    case TensorType::Q4_K:
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = src + i * bb;
        decode_k_4_5(b, nullptr, b + quant::kQ4_KQs, dst + i * block);
      }
      return;
    case TensorType::Q5_K:
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = src + i * bb;
        decode_k_4_5(b, b + quant::kQ5_KQh, b + quant::kQ5_KQs, dst + i * block);
      }
      return;
    case TensorType::Q6_K:
      for (int64_t i = 0; i < nb; ++i) decode_q6_k(src + i * bb, dst + i * block);
      return;
    case TensorType::U8:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
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
