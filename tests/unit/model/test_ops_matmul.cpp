// ops::matmul against a float64 reference: the few-token path (1-4 tokens,
// the decode kernels with their 32- and 16-column blocks, 8-wide vectors and
// tails, pieces paired across the rows, row ranges over threads) and the
// GEMM path, for f32 and bf16 weights, on fresh random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../../../src/model/decode_kernels.h"
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

// A random matrix (f32, or bf16 with the rounded values kept for the reference).
struct RandomMatrix {
  std::vector<float> f;
  std::vector<uint16_t> b;
  WeightMatrix w;
  RandomMatrix(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) : f(size_t(rows * cols)), b(f.size()) {
    std::normal_distribution<float> N(0.f, 1.f);
    for (size_t i = 0; i < f.size(); ++i) {
      f[i] = N(rng);
      b[i] = to_bf16_bits(f[i]);
      if (dtype == DType::BF16) f[i] = from_bf16_bits(b[i]);
    }
    w.dtype = dtype;
    w.rows = rows;
    w.cols = cols;
    w.data = dtype == DType::BF16 ? static_cast<const void*>(b.data()) : f.data();
  }
};

// Products sharing one input in one call: mixed dtypes and heights, some with
// a bias, on the decode path (n <= 4, one dispatch) and past it (n = 5).
TEST(OpsMatmul, GroupOfProductsMatchesFloat64) {
  std::mt19937 rng(19);
  std::normal_distribution<float> N(0.f, 1.f);
  const int64_t cols = 200;
  for (int64_t n : {1, 3, 5}) {
    std::vector<RandomMatrix> mats;
    mats.emplace_back(DType::BF16, 1027, cols, rng);
    mats.emplace_back(DType::F32, 67, cols, rng);
    mats.emplace_back(DType::BF16, 16, cols, rng);
    std::vector<float> x(size_t(n * cols)), bias(67);
    for (float& v : x) v = N(rng);
    for (float& v : bias) v = N(rng);
    std::vector<std::vector<float>> ys;
    std::vector<ops::MatmulJob> jobs;
    for (size_t j = 0; j < mats.size(); ++j) ys.emplace_back(size_t(n * mats[j].w.rows), std::nanf(""));
    for (size_t j = 0; j < mats.size(); ++j) jobs.push_back({&mats[j].w, ys[j].data(), j == 1 ? bias.data() : nullptr});
    ops::matmul_group(jobs, x.data(), n);
    for (size_t j = 0; j < mats.size(); ++j) {
      const int64_t rows = mats[j].w.rows;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double ref = j == 1 ? bias[size_t(r)] : 0.0, mag = std::abs(ref);
          for (int64_t c = 0; c < cols; ++c) {
            const double p = double(mats[j].f[size_t(r * cols + c)]) * x[size_t(t * cols + c)];
            ref += p;
            mag += std::abs(p);
          }
          ASSERT_LE(std::abs(ys[j][size_t(t * rows + r)] - ref), 1e-5 * (mag + 1.0))
              << "job " << j << " n " << n << " token " << t << " row " << r;
        }
    }
  }
  RandomMatrix a(DType::F32, 4, 8, rng), b(DType::F32, 4, 9, rng);
  std::vector<float> x(9), ya(4), yb(4);
  const ops::MatmulJob mismatched[] = {{&a.w, ya.data()}, {&b.w, yb.data()}};
  EXPECT_THROW(ops::matmul_group(mismatched, x.data(), 1), Error);
}

// Each bf16 row kernel compiled for this CPU (the portable one always, the
// AVX-512 one where the build targets it), whatever matmul picks, on lengths
// around its 8-, 16- and 32-column blocks.
TEST(OpsMatmul, EveryBf16RowKernelMatchesFloat64) {
  std::mt19937 rng(17);
  std::normal_distribution<float> N(0.f, 1.f);
  using Kernel = float (*)(const uint16_t*, const float*, int64_t);
  std::vector<std::pair<const char*, Kernel>> kernels{{"portable", &ops::kernels::dot_bf16_portable}};
#if defined(__AVX512F__)
  kernels.push_back({"avx512", &ops::kernels::dot_bf16_avx512});
#endif
  for (const auto& [name, kernel] : kernels)
    for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 768}) {
      std::vector<uint16_t> w(size_t(n) + 1);
      std::vector<float> x(size_t(n) + 1);
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        w[size_t(i)] = to_bf16_bits(N(rng));
        x[size_t(i)] = N(rng);
        ref += double(from_bf16_bits(w[size_t(i)])) * x[size_t(i)];
        mag += std::abs(double(from_bf16_bits(w[size_t(i)])) * x[size_t(i)]);
      }
      // One element past the end, poisoned: a kernel reading it would show.
      w[size_t(n)] = to_bf16_bits(std::nanf(""));
      x[size_t(n)] = std::nanf("");
      const float got = kernel(w.data(), x.data(), n);
      EXPECT_LE(std::abs(got - ref), 1e-5 * (mag + 1.0)) << name << " n " << n << ": " << got << " vs " << ref;
    }
}

// Each two-row kernel (rows from two distant runs, their loads interleaved),
// f32 and bf16, portable and AVX-512 where built, against float64 on lengths
// around its blocks, with one poisoned element past the end of each input.
TEST(OpsMatmul, EveryTwoRowKernelMatchesFloat64) {
  std::mt19937 rng(23);
  std::normal_distribution<float> N(0.f, 1.f);
  using Bf16Kernel = void (*)(const uint16_t*, const uint16_t*, const float*, int64_t, float&, float&);
  std::vector<std::pair<const char*, Bf16Kernel>> bf16_kernels{{"bf16 portable", &ops::kernels::dot2_bf16_portable}};
#if defined(__AVX512F__)
  bf16_kernels.push_back({"bf16 avx512", &ops::kernels::dot2_bf16_avx512});
#endif
  for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 768}) {
    std::vector<uint16_t> a(size_t(n) + 1), b(size_t(n) + 1);
    std::vector<float> af(size_t(n) + 1), bf(size_t(n) + 1), x(size_t(n) + 1);
    double ref_a = 0, ref_b = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      a[size_t(i)] = to_bf16_bits(N(rng));
      b[size_t(i)] = to_bf16_bits(N(rng));
      af[size_t(i)] = from_bf16_bits(a[size_t(i)]);
      bf[size_t(i)] = from_bf16_bits(b[size_t(i)]);
      x[size_t(i)] = N(rng);
      ref_a += double(af[size_t(i)]) * x[size_t(i)];
      ref_b += double(bf[size_t(i)]) * x[size_t(i)];
      mag += std::abs(double(af[size_t(i)]) * x[size_t(i)]) + std::abs(double(bf[size_t(i)]) * x[size_t(i)]);
    }
    a[size_t(n)] = b[size_t(n)] = to_bf16_bits(std::nanf(""));
    af[size_t(n)] = bf[size_t(n)] = x[size_t(n)] = std::nanf("");
    const double tol = 1e-5 * (mag + 1.0);
    float ya = std::nanf(""), yb = std::nanf("");
    ops::kernels::dot2_f32(af.data(), bf.data(), x.data(), n, ya, yb);
    EXPECT_LE(std::abs(ya - ref_a), tol) << "f32 n " << n << " row a: " << ya << " vs " << ref_a;
    EXPECT_LE(std::abs(yb - ref_b), tol) << "f32 n " << n << " row b: " << yb << " vs " << ref_b;
    for (const auto& [name, kernel] : bf16_kernels) {
      ya = yb = std::nanf("");
      kernel(a.data(), b.data(), x.data(), n, ya, yb);
      EXPECT_LE(std::abs(ya - ref_a), tol) << name << " n " << n << " row a: " << ya << " vs " << ref_a;
      EXPECT_LE(std::abs(yb - ref_b), tol) << name << " n " << n << " row b: " << yb << " vs " << ref_b;
    }
  }
}

// Products whose pieces pair up unevenly: an odd number of pieces (one left
// unpaired), a short last piece paired with a full one, a single piece, and a
// group whose pairs join pieces of different matrices and dtypes.
TEST(OpsMatmul, PairedPiecesCoverEveryRowOnce) {
  std::mt19937 rng(29);
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t rows : {16, 33, 129, 700, 1091}) check_matmul(dtype, rows, 384, 1, rng);
}

}  // namespace
}  // namespace sinklab
