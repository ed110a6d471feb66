// The small vector kernels under the attention tiles and the decode products,
// against float64 on fresh random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "sinklab/vec_math.h"

namespace sinklab::vec {
namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double dot64(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// Tolerance of an f32 dot product of n terms: a few ulps of sum |a_i b_i|.
double dot_tol(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::abs(double(a[i]) * double(b[i]));
  return 4 * double(n) * 6e-8 * s + 1e-30;
}

TEST(VecMath, Hsum8SumsEachVectorsLanes) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    f32x8 v[8];
    std::vector<float> src = random_floats(64, rng);
    for (int u = 0; u < 8; ++u) load8(src.data() + 8 * u, v[u]);
    float out[8];
    for (float& o : out) o = std::numeric_limits<float>::quiet_NaN();
    hsum8(v, out);
    for (int u = 0; u < 8; ++u) {
      double want = 0;
      for (int l = 0; l < 8; ++l) want += src[size_t(8 * u + l)];
      EXPECT_NEAR(out[u], want, 1e-5) << "vector " << u;
    }
  }
}

// Rows of b sit `stride` floats apart with NaN in the gaps, so a read past a
// row's n elements shows up in the result.
TEST(VecMath, Dot8RowsMatchesFloat64AndReadsOnlyItsRows) {
  std::mt19937 rng(12);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {8, 16, 24, 64, 128, 200})
    for (int64_t gap : {0, 8, 13}) {
      const int64_t stride = n + gap;
      std::vector<float> a = random_floats(size_t(n), rng), b(size_t(8 * stride), nan);
      for (int u = 0; u < 8; ++u)
        for (int64_t i = 0; i < n; ++i) b[size_t(u * stride + i)] = random_floats(1, rng)[0];
      float out[8];
      for (float& o : out) o = nan;
      dot_8rows(a.data(), b.data(), stride, n, out);
      for (int u = 0; u < 8; ++u) {
        const float* row = b.data() + u * stride;
        EXPECT_NEAR(out[u], dot64(a.data(), row, n), dot_tol(a.data(), row, n))
            << "n " << n << " gap " << gap << " row " << u;
      }
    }
}

TEST(VecMath, DotMatchesFloat64AcrossTails) {
  std::mt19937 rng(13);
  for (int64_t n : {0, 1, 7, 8, 9, 31, 32, 33, 40, 100, 257}) {
    std::vector<float> a = random_floats(size_t(n) + 1, rng), b = random_floats(size_t(n) + 1, rng);
    a[size_t(n)] = b[size_t(n)] = std::numeric_limits<float>::quiet_NaN();  // one past the end
    EXPECT_NEAR(dot(a.data(), b.data(), n), dot64(a.data(), b.data(), n), dot_tol(a.data(), b.data(), n))
        << "n " << n;
  }
}

}  // namespace
}  // namespace sinklab::vec
