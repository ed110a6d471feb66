// Every training layer's backward against central finite differences of its
// own forward in float64, and the float instantiation against the double one.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "../../../src/train/layers.h"

namespace L = sinklab::train_layers;

namespace {

std::vector<double> randn(size_t n, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Loss = <seed, f(inputs)>; checks d loss / d x against the analytic gradient.
void expect_matches_fd(std::vector<double>& x, const std::vector<double>& analytic,
                       const std::function<double()>& loss, const char* what) {
  ASSERT_EQ(x.size(), analytic.size());
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i], h = 1e-6;
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    const double fd = (up - down) / (2 * h);
    max_err = std::max(max_err, std::abs(fd - analytic[i]));
    max_ref = std::max(max_ref, std::abs(fd));
  }
  ASSERT_GT(max_ref, 1e-6) << what << ": the gradient is identically zero";
  EXPECT_LT(max_err / max_ref, 1e-6) << what;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST(TrainLayers, RmsnormBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  const int64_t N = 5, D = 7;
  auto x = randn(N * D, rng), w = randn(D, rng), seed = randn(N * D, rng);
  std::vector<double> out(N * D), rstd(N);
  auto loss = [&] {
    L::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, D, 1e-5f);
    return dot(out, seed);
  };
  loss();
  std::vector<double> dx(N * D, 0.0), dw(D, 0.0);
  L::rmsnorm_backward(dx.data(), dw.data(), seed.data(), x.data(), w.data(), rstd.data(), N, D);
  expect_matches_fd(x, dx, loss, "rmsnorm dx");
  expect_matches_fd(w, dw, loss, "rmsnorm dw");
}

TEST(TrainLayers, LinearBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(2);
  const int64_t N = 4, I = 6, O = 3;
  auto x = randn(N * I, rng), W = randn(O * I, rng), seed = randn(N * O, rng);
  std::vector<double> out(N * O);
  auto loss = [&] {
    L::linear_forward(out.data(), x.data(), W.data(), N, I, O);
    return dot(out, seed);
  };
  std::vector<double> dx(N * I, 123.0), dW(O * I, 0.0);
  L::linear_backward(dx.data(), dW.data(), seed.data(), x.data(), W.data(), N, I, O, false);
  expect_matches_fd(x, dx, loss, "linear dx");
  expect_matches_fd(W, dW, loss, "linear dW");
  // accumulate_dx adds instead of overwriting.
  std::vector<double> acc(N * I, 1.0), dW2(O * I, 0.0);
  L::linear_backward(acc.data(), dW2.data(), seed.data(), x.data(), W.data(), N, I, O, true);
  for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(acc[i], dx[i] + 1.0, 1e-12);
}

TEST(TrainLayers, SwigluBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(3);
  const int64_t n = 40;
  auto g = randn(n, rng, 3.0), u = randn(n, rng), seed = randn(n, rng);
  std::vector<double> a(n);
  auto loss = [&] {
    L::swiglu_forward(a.data(), g.data(), u.data(), n);
    return dot(a, seed);
  };
  std::vector<double> dg(n), du(n);
  L::swiglu_backward(dg.data(), du.data(), seed.data(), g.data(), u.data(), n);
  expect_matches_fd(g, dg, loss, "swiglu dg");
  expect_matches_fd(u, du, loss, "swiglu du");
}

TEST(TrainLayers, EmbeddingBackwardScattersRows) {
  std::mt19937 rng(4);
  const int64_t V = 5, D = 3, N = 6;
  const int32_t ids[N] = {1, 4, 1, 0, 4, 4};
  auto table = randn(V * D, rng), seed = randn(N * D, rng);
  std::vector<double> out(N * D);
  auto loss = [&] {
    L::embedding_forward(out.data(), ids, table.data(), N, D);
    return dot(out, seed);
  };
  std::vector<double> dt(V * D, 0.0);
  L::embedding_backward(dt.data(), seed.data(), ids, N, D);
  expect_matches_fd(table, dt, loss, "embedding");
  for (int64_t d = 0; d < D; ++d) EXPECT_EQ(dt[2 * D + d], 0.0) << "row 2 is never used";
}

TEST(TrainLayers, CrossEntropyGradientAndMaskedRows) {
  std::mt19937 rng(5);
  const int64_t N = 4, V = 9;
  const int32_t targets[N] = {3, -1, 0, 8};
  auto logits = randn(N * V, rng, 2.0);
  auto loss = [&] {
    std::vector<double> z = logits;
    int64_t n = 0;
    return L::cross_entropy(z.data(), targets, N, V, 1.0, false, &n);
  };
  std::vector<double> grad = logits;
  int64_t n = 0;
  const double total = L::cross_entropy(grad.data(), targets, N, V, 1.0, true, &n);
  EXPECT_EQ(n, 3);
  // Independent value: -log softmax at the targets.
  double want = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (targets[i] < 0) continue;
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(logits[i * V + j]);
    want += std::log(s) - logits[i * V + targets[i]];
  }
  EXPECT_NEAR(total, want, 1e-12);
  expect_matches_fd(logits, grad, loss, "cross-entropy");
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(grad[V + j], 0.0) << "masked row has no gradient";
}

TEST(TrainLayers, GoatKeyPriorBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(6);
  const int64_t n = 7, P = 6, Hu = 5, Hkv = 3;
  auto phi = randn(n * P, rng), w1 = randn(Hu * P, rng), b1 = randn(Hu, rng), w2 = randn(Hkv * Hu, rng),
       first = randn(Hkv, rng), seed = randn(Hkv * n, rng);
  std::vector<double> u(Hkv * n), pre(n * Hu);
  auto loss = [&] {
    L::goat_key_forward(u.data(), pre.data(), phi.data(), w1.data(), b1.data(), w2.data(), first.data(), n, P, Hu, Hkv);
    return dot(u, seed);
  };
  loss();
  std::vector<double> dw1(Hu * P, 0.0), db1(Hu, 0.0), dw2(Hkv * Hu, 0.0), dfirst(Hkv, 0.0);
  L::goat_key_backward(dw1.data(), db1.data(), dw2.data(), dfirst.data(), seed.data(), pre.data(), phi.data(),
                       w2.data(), n, P, Hu, Hkv);
  expect_matches_fd(w1, dw1, loss, "goat key w1");
  expect_matches_fd(b1, db1, loss, "goat key b1");
  expect_matches_fd(w2, dw2, loss, "goat key w2");
  expect_matches_fd(first, dfirst, loss, "goat key first-token logit");
}

TEST(TrainLayers, FloatInstantiationAgreesWithDouble) {
  std::mt19937 rng(7);
  const int64_t N = 6, D = 16, O = 5;
  auto xd = randn(N * D, rng), wd = randn(D, rng), Wd = randn(O * D, rng);
  std::vector<float> xf(xd.begin(), xd.end()), wf(wd.begin(), wd.end()), Wf(Wd.begin(), Wd.end());
  std::vector<double> hd(N * D), rd(N), od(N * O);
  std::vector<float> hf(N * D, NAN), rf(N, NAN), of(N * O, NAN);
  L::rmsnorm_forward(hd.data(), rd.data(), xd.data(), wd.data(), N, D, 1e-5f);
  L::rmsnorm_forward(hf.data(), rf.data(), xf.data(), wf.data(), N, D, 1e-5f);
  L::linear_forward(od.data(), hd.data(), Wd.data(), N, D, O);
  L::linear_forward(of.data(), hf.data(), Wf.data(), N, D, O);
  for (size_t i = 0; i < od.size(); ++i) EXPECT_NEAR(of[i], od[i], 1e-5 * (1 + std::abs(od[i])));
}
