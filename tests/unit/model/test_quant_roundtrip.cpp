// The reference quantisers (quant::quantize_rows), each block decoded back by
// sinklab::dequantize (itself checked bit for bit against numpy in
// test_quant_reference.cpp). Per type, what each block must satisfy, derived
// from the algorithm (d_h is the stored f16 scale, |d_h - d| <= 2^-11 d):
//   Q8_0  d_h = f16(amax / 127); |x - x^| <= d (1/2 + 2^-15) + |q| |d - d_h|
//         (2^-15: x * (1/d) is rounded before rounding to an integer)
//   Q4_0  d_h = f16(max / -8); |x - x^| <= |d| (1/2 + 2^-15) + |q| |d - d_h|, or
//         <= |d| (1 + 2^-15) + ... for code 15, which clamps x / d in (7.5, 8]
//   MXFP4 e = floor(log2 amax) - 2 + 127; x^ is the nearest grid value, and
//         |x - x^| <= 2 s (s = 2^(e-127): half the top gap, 4s..6s, or the clip above 6s < 8s)
//   Q4_K, Q5_K (nmax 15, 31), per 32-element sub-block with stored step = d_h sc
//         and offset = dmin_h m:
//         - the largest sc and the largest m are 63 (or all are 0);
//         - each code is clamp(round((x + offset) / step), 0, nmax);
//         - weighted RMS error (weights sqrt(mean x^2) + |x|, the quantiser's own) <=
//           step0 / 2 + nmax |dstep| + |doffset|: the search starts from the
//           min/max grid (step0 = (max - min(0, min)) / nmax, every error <= step0 / 2)
//           and keeps only lower weighted errors; rounding the scale and min to
//           6 bits moves each by at most d (1/2 + 63 2^-11), d <= d_h (1 + 2^-10).
//   Q6_K  per 16-element group with stored step = d_h sc:
//         - some sc is -128 (the group of largest scale);
//         - each code - 32 is clamp(round(x / step), -32, 31);
//         - weighted RMS error (weights x^2) <= step0 + 32 |dstep|: the search
//           starts from step0 = amax / 32 (every error <= step0, clamping at 31
//           included) and keeps only lower weighted errors; rounding the scale to
//           int8 moves it by at most d (1/2 + 128 2^-11).
// A quantiser that packs, rounds or scales differently fails one of these.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "../../../src/model/quant/block_layout.h"
#include "../../../src/model/quant_kernels.h"
#include "quant_test_data.h"
#include "sinklab/export.h"
#include "sinklab/model.h"

using namespace sinklab;
namespace fs = std::filesystem;

namespace {

constexpr double kF16 = 1.0 / 2048;  // relative rounding of a normal f16

double ulps(double v) { return std::ldexp(std::fabs(v), -22); }  // a few float32 roundings of v

std::vector<float> round_trip(TensorType t, const std::vector<float>& x, int64_t rows, int64_t cols,
                              std::vector<uint8_t>& bytes) {
  bytes.assign(quant::row_bytes(t, cols) * size_t(rows), 0xAB);
  quant::quantize_rows(t, x.data(), rows, cols, bytes.data());
  std::vector<float> back(x.size(), std::nanf(""));
  dequantize(TensorEntry{"w", t, {rows, cols}, bytes.data(), bytes.size()}, back.data());
  return back;
}

uint16_t f16_bits(const uint8_t* p) {
  uint16_t b;
  std::memcpy(&b, p, 2);
  return b;
}

void check_q8_0(const float* x, const uint8_t* blk, const float* xh) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const double d = amax / 127.f, dh = quant::load_f16(blk);
  ASSERT_EQ(f16_bits(blk), f32_to_f16(amax / 127.f).bits) << "d != f16(amax / 127)";
  for (int j = 0; j < 32; ++j) {
    const int q = int8_t(blk[2 + j]);
    EXPECT_LE(std::fabs(double(x[j]) - xh[j]), d * (0.5 + 0x1p-15) + std::abs(q) * std::fabs(d - dh) + ulps(xh[j]))
        << "element " << j << " code " << q;
  }
}

void check_q4_0(const float* x, const uint8_t* blk, const float* xh) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  ASSERT_EQ(f16_bits(blk), f32_to_f16(max / -8.f).bits) << "d != f16(max / -8)";
  const double d = std::fabs(max / -8.f), dh = std::fabs(quant::load_f16(blk));
  for (int j = 0; j < 32; ++j) {
    const int code = j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
    const double half = code == 15 ? 1.0 : 0.5;
    EXPECT_LE(std::fabs(double(x[j]) - xh[j]), d * (half + 0x1p-15) + std::abs(code - 8) * std::fabs(d - dh) + ulps(xh[j]))
        << "element " << j << " code " << code;
  }
}

void check_mxfp4(const float* x, const uint8_t* blk, const float* xh) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  if (amax == 0) {
    EXPECT_EQ(blk[0], 0);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(xh[j], 0.f);
    return;
  }
  int exp2;
  std::frexp(amax, &exp2);  // amax = m 2^exp2, m in [0.5, 1): floor(log2 amax) = exp2 - 1
  ASSERT_EQ(int(blk[0]), std::clamp(exp2 - 1 - 2 + 127, 0, 255)) << "amax " << amax;
  const double s = std::ldexp(1.0, int(blk[0]) - 127);
  const double grid[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  for (int j = 0; j < 32; ++j) {
    double best = 1e300;
    for (double g : grid) best = std::min({best, std::fabs(x[j] - g * s), std::fabs(x[j] + g * s)});
    const double err = std::fabs(double(x[j]) - xh[j]);
    EXPECT_LE(err, best + ulps(std::fabs(x[j]) + 6 * s)) << "element " << j << " is not on its nearest grid value";
    EXPECT_LE(err, 2 * s) << "element " << j;
  }
}

// The code of element i (0..255) of a Q4_K / Q5_K block, read from its bytes.
int k_code(const uint8_t* blk, bool five, int i) {
  const int j = i / 32, l = i % 32;
  const uint8_t* qs = blk + (five ? quant::kQ5_KQs : quant::kQ4_KQs);
  int code = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
  if (five && ((blk[quant::kQ5_KQh + l] >> j) & 1)) code += 16;
  return code;
}

void check_k(const float* x, const uint8_t* blk, const float* xh, bool five) {
  const int nmax = five ? 31 : 15;
  const float d = quant::load_f16(blk), dmin = quant::load_f16(blk + 2);
  int max_sc = 0, max_m = 0;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    quant::k_scale_min(j, blk + quant::kKScales, sc, m);
    max_sc = std::max(max_sc, sc), max_m = std::max(max_m, m);
    const float step = d * float(sc), offset = dmin * float(m);
    const float* xj = x + 32 * j;
    float lo = xj[0], hi = xj[0], sum_x2 = 0;
    for (int l = 0; l < 32; ++l) lo = std::min(lo, xj[l]), hi = std::max(hi, xj[l]), sum_x2 += xj[l] * xj[l];
    double sum_w = 0, sum_we2 = 0;
    for (int l = 0; l < 32; ++l) {
      const int i = 32 * j + l;
      if (step != 0.f) {
        ASSERT_EQ(k_code(blk, five, i), std::clamp(int(std::nearbyint((x[i] + offset) / step)), 0, nmax))
            << "sub-block " << j << " element " << l;
      }
      const double w = std::sqrt(sum_x2 / 32) + std::fabs(x[i]), e = double(x[i]) - xh[i];
      sum_w += w, sum_we2 += w * e * e;
    }
    const double step0 = (hi - std::min(0.f, lo)) / nmax;
    const double moved = (nmax * double(d) + double(dmin)) * (0.5 + 63 * kF16) * (1 + 2 * kF16);
    if (sum_w > 0) {
      EXPECT_LE(std::sqrt(sum_we2 / sum_w), step0 / 2 + moved + ulps(hi - lo)) << "sub-block " << j;
    } else {
      for (int l = 0; l < 32; ++l) EXPECT_EQ(xh[32 * j + l], 0.f);
    }
  }
  EXPECT_TRUE(max_sc == 0 || max_sc == 63) << "largest scale " << max_sc;
  EXPECT_TRUE(max_m == 0 || max_m == 63) << "largest min " << max_m;
}

void check_q6_k(const float* x, const uint8_t* blk, const float* xh) {
  const float d = quant::load_f16(blk + quant::kQ6_KD);
  const int8_t* sc = reinterpret_cast<const int8_t*>(blk + quant::kQ6_KScales);
  float amax_all = 0;
  for (int i = 0; i < 256; ++i) amax_all = std::max(amax_all, std::fabs(x[i]));
  if (amax_all == 0) {
    for (int i = 0; i < 210; ++i) ASSERT_EQ(blk[i], 0) << "byte " << i << " of an all-zero block";
    return;
  }
  EXPECT_EQ(*std::min_element(sc, sc + 16), -128) << "no group has the largest scale";
  for (int g = 0; g < 16; ++g) {
    const float step = d * float(sc[g]);
    float amax = 0;
    double sum_w = 0, sum_we2 = 0;
    for (int l = 0; l < 16; ++l) {
      const int i = 16 * g + l, half = i / 128, k = (i % 128) / 32;
      const int code = quant::q6_k_code(blk + 64 * half, blk + quant::kQ6_KQh + 32 * half, k, i % 32);
      if (step != 0.f) {
        ASSERT_EQ(code - 32, std::clamp(int(std::nearbyint(x[i] / step)), -32, 31)) << "group " << g << " element " << l;
      }
      amax = std::max(amax, std::fabs(x[i]));
      const double w = double(x[i]) * x[i], e = double(x[i]) - xh[i];
      sum_w += w, sum_we2 += w * e * e;
    }
    const double moved = 32 * std::fabs(double(d)) * (0.5 + 128 * kF16) * (1 + 2 * kF16);
    if (sum_w > 0) {
      EXPECT_LE(std::sqrt(sum_we2 / sum_w), amax / 32.0 * (1 + 1e-5) + moved) << "group " << g;
    }
  }
}

using BlockCheck = void (*)(const float*, const uint8_t*, const float*);

void check_every_block(TensorType t, BlockCheck check, int64_t rows, int64_t cols) {
  const std::vector<float> x = test::varied_rows(rows, cols, 1234);
  std::vector<uint8_t> bytes;
  const std::vector<float> back = round_trip(t, x, rows, cols, bytes);
  const int64_t block = tensor_type_block_size(t);
  const size_t bb = tensor_type_block_bytes(t);
  for (int64_t b = 0; b < rows * cols / block; ++b) {
    SCOPED_TRACE(std::string(tensor_type_name(t)) + " row " + std::to_string(b * block / cols) + " block " +
                 std::to_string(b % (cols / block)));
    check(x.data() + b * block, bytes.data() + size_t(b) * bb, back.data() + b * block);
    if (testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace

TEST(QuantRoundTrip, Q8_0) { check_every_block(TensorType::Q8_0, check_q8_0, 16, 256); }
TEST(QuantRoundTrip, Q4_0) { check_every_block(TensorType::Q4_0, check_q4_0, 16, 256); }
TEST(QuantRoundTrip, Mxfp4) { check_every_block(TensorType::MXFP4, check_mxfp4, 16, 256); }
TEST(QuantRoundTrip, Q4_K) {
  check_every_block(TensorType::Q4_K, [](const float* x, const uint8_t* b, const float* xh) { check_k(x, b, xh, false); },
                    16, 512);
}
TEST(QuantRoundTrip, Q5_K) {
  check_every_block(TensorType::Q5_K, [](const float* x, const uint8_t* b, const float* xh) { check_k(x, b, xh, true); },
                    16, 512);
}
TEST(QuantRoundTrip, Q6_K) { check_every_block(TensorType::Q6_K, check_q6_k, 16, 512); }

TEST(QuantRoundTrip, FloatTypesAreConversions) {
  const std::vector<float> x = test::varied_rows(8, 24, 5);
  std::vector<uint8_t> bytes;
  EXPECT_EQ(round_trip(TensorType::F32, x, 8, 24, bytes), x);
  const std::vector<float> h = round_trip(TensorType::F16, x, 8, 24, bytes);
  const std::vector<float> b = round_trip(TensorType::BF16, x, 8, 24, bytes);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], f16_to_f32(f32_to_f16(x[i]))) << i;
    EXPECT_EQ(b[i], bf16_to_f32(f32_to_bf16(x[i]))) << i;
  }
}

TEST(QuantRoundTrip, SmallerSteps) {
  // The more bits, the smaller the error on the same gaussian rows.
  const std::vector<float> x = test::varied_rows(1, 4096, 77);
  auto rms = [&](TensorType t) {
    std::vector<uint8_t> bytes;
    const std::vector<float> back = round_trip(t, x, 1, 4096, bytes);
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - back[i]) * (double(x[i]) - back[i]);
    return std::sqrt(s / double(x.size()));
  };
  const double q8 = rms(TensorType::Q8_0), q6 = rms(TensorType::Q6_K), q5 = rms(TensorType::Q5_K),
               q4k = rms(TensorType::Q4_K), q4 = rms(TensorType::Q4_0), fp4 = rms(TensorType::MXFP4);
  std::printf("[ quant rms ] q8_0 %.4f q6_k %.4f q5_k %.4f q4_k %.4f q4_0 %.4f mxfp4 %.4f\n", q8, q6, q5, q4k, q4, fp4);
  EXPECT_LT(q8, q6);
  EXPECT_LT(q6, q5);
  EXPECT_LT(q5, q4k);
  EXPECT_LT(q4k, q4);
}
