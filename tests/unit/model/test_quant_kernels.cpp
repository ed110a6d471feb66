// The fused dequantise-and-dot kernels of every compiled path against a
// float64 dot over sinklab::dequantize's values, and the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "../../../src/model/quant_kernels.h"
#include "quant_test_data.h"

using namespace sinklab;
using sinklab::quant::KernelPath;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Column counts to try: one and several blocks; F16 also counts that leave
// tails of every length in the 16-float kernels.
std::vector<int64_t> column_counts(TensorType t) {
  if (t == TensorType::F16) return {1, 15, 16, 77, 256, 300};
  const int64_t b = tensor_type_block_size(t);
  return {b, 3 * b, 768};
}

// The rows, and the reference sums: ref[i * nrows + r] = sum_c w[r, c] x_i[c]
// in float64, mag the same sum of |w x| (the scale of the rounding error).
struct Case {
  std::vector<uint8_t> rows;
  std::vector<double> ref, mag;
};

Case make_case(TensorType t, int64_t nrows, int64_t cols, const std::vector<float>& x, int64_t n, bool random_bytes,
               unsigned seed) {
  Case c;
  const int64_t per_row = cols / tensor_type_block_size(t);
  if (random_bytes) {
    c.rows = test::random_blocks(t, nrows * per_row, seed);
  } else {
    const std::vector<float> w = test::varied_rows(nrows, cols, seed);
    c.rows.resize(quant::row_bytes(t, cols) * size_t(nrows));
    quant::quantize_rows(t, w.data(), nrows, cols, c.rows.data());
  }
  std::vector<float> w(size_t(nrows * cols));
  dequantize_row(t, c.rows.data(), w.data(), nrows * cols);
  c.ref.assign(size_t(n * nrows), 0.0);
  c.mag.assign(size_t(n * nrows), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < nrows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        const double p = double(w[size_t(r * cols + k)]) * double(x[size_t(i * cols + k)]);
        c.ref[size_t(i * nrows + r)] += p;
        c.mag[size_t(i * nrows + r)] += std::fabs(p);
      }
  return c;
}

// Runs one path on one case with y poisoned (NaN) and an output stride wider
// than the rows; checks every result and that the padding is untouched.
void check_path(KernelPath path, TensorType t, const Case& c, int64_t nrows, int64_t cols, const std::vector<float>& x,
                int64_t n) {
  const int64_t ldy = nrows + 3;
  std::vector<float> y(size_t(n * ldy), kNaN);
  quant::dot_rows(path, t, c.rows.data(), nrows, cols, x.data(), n, y.data(), ldy);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < ldy; ++r) {
      const float got = y[size_t(i * ldy + r)];
      if (r >= nrows) {
        ASSERT_TRUE(std::isnan(got)) << "padding written at vector " << i << " row " << r;
        continue;
      }
      const double want = c.ref[size_t(i * nrows + r)], mag = c.mag[size_t(i * nrows + r)];
      ASSERT_LE(std::fabs(double(got) - want), 1e-5 * mag + 1e-30)
          << quant::kernel_path_name(path) << " " << tensor_type_name(t) << " cols " << cols << " n " << n << " row "
          << r << " vector " << i << ": " << got << " vs " << want;
    }
}

}  // namespace

TEST(QuantKernels, EveryPathMatchesFloat64Dot) {
  unsigned seed = 1;
  for (TensorType t : test::kernel_types())
    for (int64_t cols : column_counts(t))
      for (int64_t n : {1, 2, 3, 5})
        for (int64_t nrows : {1, 7})
          for (bool random_bytes : {false, true}) {
            const std::vector<float> x = gaussian(size_t(n * cols), ++seed);
            const Case c = make_case(t, nrows, cols, x, n, random_bytes, ++seed);
            for (KernelPath path : quant::compiled_kernel_paths()) check_path(path, t, c, nrows, cols, x, n);
          }
}

TEST(QuantKernels, OddRowCountsAndManyVectors) {
  for (TensorType t : test::kernel_types()) {
    const int64_t cols = t == TensorType::F16 ? 123 : 2 * tensor_type_block_size(t), nrows = 13, n = 9;
    const std::vector<float> x = gaussian(size_t(n * cols), 99);
    const Case c = make_case(t, nrows, cols, x, n, false, 7);
    for (KernelPath path : quant::compiled_kernel_paths()) check_path(path, t, c, nrows, cols, x, n);
  }
}

TEST(QuantKernels, BuildHasTheCpusBestPath) {
  const auto& paths = quant::compiled_kernel_paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), KernelPath::Portable);
  EXPECT_EQ(quant::best_kernel_path(), paths.back());
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
  EXPECT_EQ(paths.back(), KernelPath::Avx512);
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  EXPECT_NE(std::find(paths.begin(), paths.end(), KernelPath::Avx2), paths.end());
#endif
  std::printf("[ quant kernels ]");
  for (KernelPath p : paths) std::printf(" %s", quant::kernel_path_name(p));
  std::printf("\n");
}

TEST(QuantKernels, UnalignedRowsAndVectors) {
  // Rows start one byte into the buffer and the vectors one float in.
  for (TensorType t : test::kernel_types()) {
    const int64_t cols = t == TensorType::F16 ? 40 : tensor_type_block_size(t), nrows = 3;
    const std::vector<float> x = gaussian(size_t(cols + 1), 5);
    const std::vector<float> xs(x.begin() + 1, x.end());
    const Case c = make_case(t, nrows, cols, xs, 1, true, 11);
    std::vector<uint8_t> shifted(c.rows.size() + 1);
    std::memcpy(shifted.data() + 1, c.rows.data(), c.rows.size());
    for (KernelPath path : quant::compiled_kernel_paths()) {
      std::vector<float> y(size_t(nrows), kNaN);
      quant::dot_rows(path, t, shifted.data() + 1, nrows, cols, x.data() + 1, 1, y.data(), nrows);
      for (int64_t r = 0; r < nrows; ++r)
        EXPECT_LE(std::fabs(double(y[size_t(r)]) - c.ref[size_t(r)]), 1e-5 * c.mag[size_t(r)]) << r;
    }
  }
}

TEST(QuantKernels, DequantizeRowsIsDequantize) {
  for (TensorType t : test::kernel_types()) {
    const int64_t cols = t == TensorType::F16 ? 50 : 2 * tensor_type_block_size(t), nrows = 5;
    const std::vector<uint8_t> rows = test::random_blocks(t, nrows * cols / tensor_type_block_size(t), 3);
    std::vector<float> a(size_t(nrows * cols), kNaN), b(a.size(), kNaN);
    quant::dequantize_rows(t, rows.data(), nrows, cols, a.data());
    dequantize(TensorEntry{"w", t, {nrows, cols}, rows.data(), rows.size()}, b.data());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << tensor_type_name(t);
  }
}

TEST(QuantKernels, RowBytes) {
  EXPECT_EQ(quant::row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q5_K, 256), 176u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q6_K, 768), 630u);
  EXPECT_EQ(quant::row_bytes(TensorType::MXFP4, 64), 34u);
  EXPECT_EQ(quant::row_bytes(TensorType::Q4_0, 32), 18u);
  EXPECT_EQ(quant::row_bytes(TensorType::F16, 3), 6u);
  EXPECT_THROW(quant::row_bytes(TensorType::Q4_K, 128), Error);
  EXPECT_THROW(quant::row_bytes(TensorType::Q8_0, -32), Error);
}

TEST(QuantKernels, TypeTableKnowsQ5_KAndMxfp4) {
  EXPECT_STREQ(tensor_type_name(TensorType::Q5_K), "Q5_K");
  EXPECT_STREQ(tensor_type_name(TensorType::MXFP4), "MXFP4");
  EXPECT_EQ(tensor_type_block_size(TensorType::Q5_K), 256);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::Q5_K), 176u);
  EXPECT_EQ(tensor_type_block_size(TensorType::MXFP4), 32);
  EXPECT_EQ(tensor_type_block_bytes(TensorType::MXFP4), 17u);
  EXPECT_EQ(tensor_type_ggml_id(TensorType::Q5_K), 13u);
  EXPECT_EQ(tensor_type_ggml_id(TensorType::MXFP4), 39u);
  EXPECT_EQ(tensor_type_from_ggml_id(13, "x"), TensorType::Q5_K);
  EXPECT_EQ(tensor_type_from_ggml_id(39, "x"), TensorType::MXFP4);
  EXPECT_TRUE(tensor_type_is_quantized(TensorType::Q5_K));
  EXPECT_TRUE(tensor_type_is_quantized(TensorType::MXFP4));
  for (TensorType t : test::kernel_types()) EXPECT_TRUE(quant::has_kernels(t)) << tensor_type_name(t);
  EXPECT_FALSE(quant::has_kernels(TensorType::F32));
  EXPECT_FALSE(quant::has_kernels(TensorType::BF16));
}

TEST(QuantKernels, RejectsWhatItCannotDo) {
  std::vector<uint8_t> rows(1024);
  std::vector<float> x(1024), y(64);
  EXPECT_THROW(quant::dot_rows(TensorType::F32, rows.data(), 1, 32, x.data(), 1, y.data(), 1), Error);
  EXPECT_THROW(quant::dot_rows(TensorType::Q4_K, rows.data(), 1, 100, x.data(), 1, y.data(), 1), Error);
  EXPECT_THROW(quant::dot_rows(TensorType::Q8_0, rows.data(), 4, 32, x.data(), 2, y.data(), 3), Error);  // ldy < nrows
  EXPECT_THROW(quant::dot_rows(TensorType::Q8_0, rows.data(), -1, 32, x.data(), 1, y.data(), 1), Error);
  EXPECT_THROW(quant::dot_rows(TensorType::Q8_0, nullptr, 1, 32, x.data(), 1, y.data(), 1), Error);
  EXPECT_NO_THROW(quant::dot_rows(TensorType::Q8_0, nullptr, 0, 32, nullptr, 1, nullptr, 1));  // nothing to do
  EXPECT_THROW(quant::quantize_rows(TensorType::Q6_K, x.data(), 1, 200, rows.data()), Error);
  x[17] = std::numeric_limits<float>::infinity();
  try {
    quant::quantize_rows(TensorType::Q4_0, x.data(), 1, 32, rows.data());
    FAIL() << "an infinite value was quantised";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 17"), std::string::npos) << e.what();
  }
}
