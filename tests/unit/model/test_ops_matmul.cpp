// ops::matmul against a float64 reference: the few-token path (1-4 tokens,
// the decode kernel with its 32- and 16-column blocks, 8-wide vectors and
// tails, guided row ranges over threads) and the
// GEMM path, for f32 and bf16 weights, on fresh random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../../../src/model/ops.h"

namespace sinklab {
namespace {

uint16_t to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);  // round to nearest even
}
float from_bf16_bits(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void check_matmul(DType dtype, int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> N(0.f, 1.f);
  std::vector<float> wf(size_t(rows * cols)), x(size_t(n * cols)), bias(static_cast<size_t>(rows));
  std::vector<uint16_t> wb(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    wf[i] = N(rng);
    if (dtype == DType::BF16) {
      wb[i] = to_bf16_bits(wf[i]);
      wf[i] = from_bf16_bits(wb[i]);  // the reference uses the stored values
    }
  }
  for (float& v : x) v = N(rng);
  for (float& v : bias) v = N(rng);
  WeightMatrix w;
  w.dtype = dtype;
  w.rows = rows;
  w.cols = cols;
  w.data = dtype == DType::BF16 ? static_cast<const void*>(wb.data()) : wf.data();
  for (bool with_bias : {false, true}) {
    std::vector<float> y(size_t(n * rows), std::nanf(""));  // poisoned
    ops::matmul(w, x.data(), n, y.data(), with_bias ? bias.data() : nullptr);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        double ref = with_bias ? bias[size_t(r)] : 0.0, mag = std::abs(ref);
        for (int64_t c = 0; c < cols; ++c) {
          ref += double(wf[size_t(r * cols + c)]) * x[size_t(t * cols + c)];
          mag += std::abs(double(wf[size_t(r * cols + c)]) * x[size_t(t * cols + c)]);
        }
        const double got = y[size_t(t * rows + r)];
        ASSERT_LE(std::abs(got - ref), 1e-5 * (mag + 1.0))
            << dtype_name(dtype) << " rows " << rows << " cols " << cols << " n " << n << " token " << t
            << " row " << r << ": " << got << " vs " << ref;
      }
  }
}

TEST(OpsMatmul, FewTokensMatchFloat64AcrossShapeTails) {
  std::mt19937 rng(7);
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t rows : {1, 3, 4, 5, 9, 67})
      for (int64_t cols : {1, 7, 8, 15, 16, 17, 31, 32, 33, 40, 47, 48, 64, 81})
        for (int64_t n : {1, 2, 4}) check_matmul(dtype, rows, cols, n, rng);
}

TEST(OpsMatmul, ThreadedDecodeShapesMatchFloat64) {
  std::mt19937 rng(11);
  // Large enough for the chunked thread pool: several chunks with a ragged last one.
  for (DType dtype : {DType::F32, DType::BF16}) {
    check_matmul(dtype, 1027, 768, 1, rng);
    check_matmul(dtype, 517, 200, 3, rng);
  }
}

TEST(OpsMatmul, ManyTokensMatchFloat64) {
  std::mt19937 rng(13);
  for (DType dtype : {DType::F32, DType::BF16}) check_matmul(dtype, 130, 72, 9, rng);
}

}  // namespace
}  // namespace sinklab
