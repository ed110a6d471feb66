// ops::swiglu and ops::rmsnorm against float64 on fresh random inputs,
// including activations far into both tails of the sigmoid.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "../../../src/model/ops.h"

namespace sinklab {
namespace {

TEST(OpsElementwise, SwigluMatchesFloat64AcrossTheSigmoidTails) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> wide(-120.f, 120.f);
  std::normal_distribution<float> N(0.f, 1.f);
  std::vector<float> g, u;
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 1e-3f, -1e-3f, 20.f, -20.f, 88.f, -88.f, 100.f, -100.f}) {
    g.push_back(v);
    u.push_back(N(rng));
  }
  for (int i = 0; i < 2000; ++i) {
    g.push_back(i % 2 ? wide(rng) : 4 * N(rng));
    u.push_back(N(rng));
  }
  std::vector<float> a(g.size(), std::nanf(""));  // poisoned
  ops::swiglu(g.data(), u.data(), int64_t(g.size()), a.data());
  for (size_t i = 0; i < g.size(); ++i) {
    const double gd = g[i], ref = gd / (1.0 + std::exp(-gd)) * u[i];
    ASSERT_NEAR(a[i], ref, 1e-6 * (std::abs(ref) + std::abs(double(u[i])) * 1e-30) + 1e-37)
        << "g " << g[i] << " u " << u[i];
  }
}

TEST(OpsElementwise, RmsnormMatchesFloat64) {
  std::mt19937 rng(6);
  std::normal_distribution<float> N(0.f, 1.f);
  for (int64_t d : {1, 7, 64, 768, 1001}) {
    const int64_t rows = 3;
    std::vector<float> x(size_t(rows * d)), w(static_cast<size_t>(d)), y(x.size(), std::nanf(""));
    for (float& v : x) v = 10 * N(rng);
    for (float& v : w) v = N(rng);
    ops::rmsnorm(x.data(), w.data(), rows, d, 1e-5f, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += double(x[size_t(r * d + i)]) * x[size_t(r * d + i)];
      const double inv = 1.0 / std::sqrt(ss / double(d) + 1e-5);
      for (int64_t i = 0; i < d; ++i) {
        const double ref = x[size_t(r * d + i)] * inv * w[size_t(i)];
        ASSERT_NEAR(y[size_t(r * d + i)], ref, 1e-5 * (std::abs(ref) + 1e-3)) << "d " << d << " row " << r;
      }
    }
  }
}

}  // namespace
}  // namespace sinklab
