// The reference quantisers of llama.cpp (ggml-quants.c, quantize_row_*_ref:
// no importance matrix), written from their published algorithms:
//   Q8_0   d = amax / 127, q = round(x / d)
//   Q4_0   d = max / -8 (max: the element of largest magnitude, with its sign),
//          code = min(15, trunc(x / d + 8.5))
//   MXFP4  shared exponent e = floor(log2(amax)) - 2 + 127, each element the
//          nearest E2M1 value at that scale
//   Q4_K / Q5_K  per 32-element sub-block a weighted least-squares search for
//          a scale and a min (make_qkx2_quants), both then quantised to 6 bits
//          against the super-block's largest, and the codes recomputed from the
//          stored scales
//   Q6_K   per 16-element group a weighted search for a signed scale
//          (make_qx_quants, weights x^2), quantised to int8 against the largest
// This file is compiled without fused multiply-add so each step rounds as the
// reference's C does; the blocks are then byte-for-byte those llama.cpp writes.
#include "model/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "model/quant/block_layout.h"

namespace sinklab::quant {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Round half to even (the reference's 1.5 * 2^23 trick), for |v| below 2^22;
// larger values are clamped first (callers clamp the result anyway).
int nearest_int(float v) {
  constexpr float kLimit = 4194303.f;
  return int(std::nearbyint(std::clamp(v, -kLimit, kLimit)));
}

void quantize_q8_0(const float* x, uint8_t* out) {
  float amax = 0.f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  store_f16(out, d);
  for (int j = 0; j < 32; ++j) out[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
}

void quantize_q4_0(const float* x, uint8_t* out) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
  const float d = max / -8.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  store_f16(out, d);
  for (int j = 0; j < 16; ++j) {
    const int lo = std::clamp(int(x[j] * id + 8.5f), 0, 15);
    const int hi = std::clamp(int(x[j + 16] * id + 8.5f), 0, 15);
    out[2 + j] = uint8_t(lo | (hi << 4));
  }
}

// The first code whose value at this scale is nearest to v.
int nearest_mxfp4_code(float v, float half_scale) {
  int best = 0;
  float best_err = std::fabs(float(kMxfp4Doubled[0]) * half_scale - v);
  for (int k = 1; k < 16; ++k) {
    const float err = std::fabs(float(kMxfp4Doubled[k]) * half_scale - v);
    if (err < best_err) best = k, best_err = err;
  }
  return best;
}

void quantize_mxfp4(const float* x, uint8_t* out) {
  float amax = 0.f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  // The largest E2M1 magnitude is 6 = 1.5 * 2^2, hence the -2. Blocks whose
  // amax is below 2^-125 (where the reference's byte would wrap) get e = 0.
  const float e = amax > 0.f ? std::floor(std::log2(amax)) - 2.f + 127.f : 0.f;
  const uint8_t eb = uint8_t(std::clamp(e, 0.f, 255.f));
  const float half_scale = mxfp4_half_scale(eb);
  out[0] = eb;
  for (int j = 0; j < 16; ++j)
    out[1 + j] = uint8_t(nearest_mxfp4_code(x[j], half_scale) | (nearest_mxfp4_code(x[j + 16], half_scale) << 4));
}

// make_qkx2_quants: codes L in 0..nmax for x ~ scale * L - min, searched over
// nstep + 1 candidate scales around nmax / (max - min), each refined by
// weighted least squares for both scale and min (min kept <= 0). Returns the
// scale and sets the_min to -min.
float search_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float& the_min, float rmin,
                       float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]), max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    the_min = -min;
    return 0.f;
  }
  float iscale = float(nmax) / (max - min), scale = 1 / iscale, best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = uint8_t(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * float(L[i]) + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      aux[i] = uint8_t(l);
      sum_l += w[i] * float(l);
      sum_l2 += w[i] * float(l) * float(l);
      sum_xl += w[i] * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) this_min = 0, this_scale = sum_xl / sum_l2;
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * float(aux[i]) + this_min - x[i];
      error += w[i] * (diff * diff);
    }
    if (error < best_error) {
      std::copy(aux, aux + n, L);
      best_error = error, scale = this_scale, min = this_min;
    }
  }
  the_min = -min;
  return scale;
}

// Q4_K (nmax 15) and Q5_K (nmax 31): the codes L[256] of one super-block,
// with d, dmin and the packed scales written to out.
void quantize_k_4_5(const float* x, int nmax, uint8_t* out, uint8_t (&L)[256]) {
  const bool five = nmax == 31;
  float scales[8], mins[8], max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xj = x + 32 * j;
    float sum_x2 = 0, w[32];
    for (int l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xj[l]);
    scales[j] = five ? search_scale_min(32, nmax, xj, w, L + 32 * j, mins[j], -0.5f, 0.1f, 15)
                     : search_scale_min(32, nmax, xj, w, L + 32 * j, mins[j], -1.f, 0.1f, 20);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = uint8_t(std::clamp(nearest_int(inv_scale * scales[j]), 0, 63));
    lm[j] = uint8_t(std::clamp(nearest_int(inv_min * mins[j]), 0, 63));
  }
  pack_k_scale_min(ls, lm, out + kKScales);
  store_f16(out, max_scale / 63.f);
  store_f16(out + 2, max_min / 63.f);
  const float d = load_f16(out), dmin = load_f16(out + 2);
  for (int j = 0; j < 8; ++j) {
    const float step = d * float(ls[j]);
    if (step == 0.f) continue;  // keep the search's codes
    const float offset = dmin * float(lm[j]);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = uint8_t(std::clamp(nearest_int((x[32 * j + l] + offset) / step), 0, nmax));
  }
}

void quantize_q4_k(const float* x, uint8_t* out) {
  uint8_t L[256];
  quantize_k_4_5(x, 15, out, L);
  uint8_t* qs = out + kQ4_KQs;
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) qs[32 * p + l] = uint8_t(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
}

void quantize_q5_k(const float* x, uint8_t* out) {
  uint8_t L[256];
  quantize_k_4_5(x, 31, out, L);
  uint8_t* qh = out + kQ5_KQh;
  uint8_t* qs = out + kQ5_KQs;
  std::memset(qh, 0, 32);
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * p + l], hi = L[64 * p + 32 + l];
      qh[l] = uint8_t(qh[l] | ((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
      qs[32 * p + l] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
    }
}

// make_qx_quants with rmse_type 1 and no importance: signed codes in
// -nmax..nmax-1 (stored + nmax) for x ~ scale * code, the scale chosen among
// 19 candidates by weighted (x^2) least squares. Returns the scale.
float search_signed_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.f;
  }
  auto code = [nmax](float v) { return std::clamp(nearest_int(v), -nmax, nmax - 1); };
  float iscale = -float(nmax) / max, sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale * x[i]);
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code(iscale * x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + code(iscale * x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void quantize_q6_k(const float* x, uint8_t* out) {
  int8_t L[256];
  float scales[16], max_scale = 0, max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    scales[g] = search_signed_scale(16, 32, x + 16 * g, L + 16 * g);
    if (std::fabs(scales[g]) > max_abs_scale) max_abs_scale = std::fabs(scales[g]), max_scale = scales[g];
  }
  std::memset(out, 0, kQ6_KBytes);
  if (max_abs_scale < kGroupMaxEps) return;  // all zero: codes 0 with d = 0
  const float iscale = -128.f / max_scale;
  store_f16(out + kQ6_KD, 1 / iscale);
  const float d = load_f16(out + kQ6_KD);
  int8_t* sc = reinterpret_cast<int8_t*>(out + kQ6_KScales);
  for (int g = 0; g < 16; ++g) {
    sc[g] = int8_t(std::min(127, nearest_int(iscale * scales[g])));
    const float step = d * float(sc[g]);
    if (step == 0.f) continue;  // keep the search's codes
    for (int l = 0; l < 16; ++l) L[16 * g + l] = int8_t(std::clamp(nearest_int(x[16 * g + l] / step), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* Lh = L + 128 * half;
    uint8_t* ql = out + 64 * half;
    uint8_t* qh = out + kQ6_KQh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((Lh[l] & 0x0f) | ((Lh[l + 64] & 0x0f) << 4));
      ql[l + 32] = uint8_t((Lh[l + 32] & 0x0f) | ((Lh[l + 96] & 0x0f) << 4));
      qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
}

void check_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error("quantize: element " + std::to_string(i) + " of a row is not finite (" + std::to_string(x[i]) + ")");
}

template <class Block>
void each_block(const float* x, int64_t n, int block, size_t bytes, uint8_t* out, Block quantize_block) {
  for (int64_t b = 0; b < n / block; ++b) quantize_block(x + b * block, out + size_t(b) * bytes);
}

}  // namespace

void quantize_row(TensorType t, const float* x, int64_t n, uint8_t* out) {
  if (tensor_type_is_quantized(t)) check_finite(x, n);
  switch (t) {
    case TensorType::F32: std::memcpy(out, x, size_t(n) * 4); return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) store_f16(out + 2 * i, x[i]);
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const bf16 h = f32_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h.bits, 2);
      }
      return;
    case TensorType::Q8_0: return each_block(x, n, kSmallBlock, kQ8_0Bytes, out, quantize_q8_0);
    case TensorType::Q4_0: return each_block(x, n, kSmallBlock, kQ4_0Bytes, out, quantize_q4_0);
    case TensorType::MXFP4: return each_block(x, n, kSmallBlock, kMxfp4Bytes, out, quantize_mxfp4);
    case TensorType::Q4_K: return each_block(x, n, kSuperBlock, kQ4_KBytes, out, quantize_q4_k);
    case TensorType::Q5_K: return each_block(x, n, kSuperBlock, kQ5_KBytes, out, quantize_q5_k);
    case TensorType::Q6_K: return each_block(x, n, kSuperBlock, kQ6_KBytes, out, quantize_q6_k);
    default: break;
  }
  throw Error(std::string("quantize: cannot write ") + tensor_type_name(t) + " values");
}

}  // namespace sinklab::quant
