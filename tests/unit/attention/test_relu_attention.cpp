// ReLU attention (AttnNormalization::Relu): weights max(z, 0) without a
// normaliser, against a direct float64 loop; gradients against central finite
// differences; ReLU with a sink logit is an error.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sinklab/attention.h"

using namespace sinklab;

namespace {

constexpr int64_t H = 2, Hkv = 1, N = 7, D = 8;

struct Inputs {
  std::vector<float> q, k, v;
  explicit Inputs(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto* x : {&q, &k, &v}) {
      x->resize(size_t((x == &q ? H : Hkv) * N * D));
      for (float& f : *x) f = nd(rng);
    }
  }
  TensorView qv() { return {q.data(), DType::F32, {1, H, N, D}}; }
  TensorView kv() { return {k.data(), DType::F32, {1, Hkv, N, D}}; }
  TensorView vv() { return {v.data(), DType::F32, {1, Hkv, N, D}}; }
};

AttnSpec relu_spec() {
  AttnSpec s;
  s.normalization = AttnNormalization::Relu;
  return s;
}

// o[h, i] = sum_{j <= i} max(q_i . k_j / sqrt(D), 0) v_j, in double, no RoPE.
std::vector<double> direct(const Inputs& x) {
  std::vector<double> o(size_t(H * N * D), 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        double z = 0;
        for (int64_t e = 0; e < D; ++e) z += double(x.q[size_t((h * N + i) * D + e)]) * x.k[size_t(j * D + e)];
        z /= std::sqrt(double(D));
        if (z <= 0) continue;
        for (int64_t e = 0; e < D; ++e) o[size_t((h * N + i) * D + e)] += z * x.v[size_t(j * D + e)];
      }
  return o;
}

TEST(ReluAttention, ForwardIsTheUnnormalisedReluWeights) {
  Inputs x(3);
  std::vector<float> o(size_t(H * N * D), NAN), lse(size_t(H * N), NAN);
  attention_forward(relu_spec(), x.qv(), x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, N, D}),
                    TensorView(lse.data(), DType::F32, {1, H, N}));
  const std::vector<double> want = direct(x);
  double rows_above_one = 0;
  for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << i;
  for (float l : lse) EXPECT_EQ(l, 0.f);
  // Unnormalised: a row's weights need not sum to 1 (the softmax result would differ).
  const ReferenceForward r = attention_reference(relu_spec(), x.qv(), x.kv(), x.vv());
  for (int64_t row = 0; row < H * N; ++row) {
    double sum = 0;
    for (int64_t j = 0; j < N; ++j) sum += r.prob[size_t(row * N + j)];
    rows_above_one += sum > 1.01;
  }
  EXPECT_GT(rows_above_one, 0);
}

TEST(ReluAttention, GradientsMatchFiniteDifferences) {
  Inputs x(5);
  AttnSpec spec = relu_spec();
  spec.rope.style = RopeStyle::RotateHalf;  // gradients also go back through RoPE
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(size_t(H * N * D));
  for (float& f : w) f = nd(rng);
  auto loss = [&](Inputs& in) {
    const ReferenceForward r = attention_reference(spec, in.qv(), in.kv(), in.vv());
    double l = 0;
    for (size_t i = 0; i < w.size(); ++i) l += r.o[i] * w[i];
    return l;
  };
  std::vector<float> o(w.size()), lse(size_t(H * N)), dq(x.q.size()), dk(x.k.size()), dv(x.v.size());
  attention_forward(spec, x.qv(), x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, N, D}),
                    TensorView(lse.data(), DType::F32, {1, H, N}));
  AttnGrads g;
  g.dq = TensorView(dq.data(), DType::F32, {1, H, N, D});
  g.dk = TensorView(dk.data(), DType::F32, {1, Hkv, N, D});
  g.dv = TensorView(dv.data(), DType::F32, {1, Hkv, N, D});
  attention_backward(spec, x.qv(), x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, N, D}),
                     TensorView(lse.data(), DType::F32, {1, H, N}), TensorView(w.data(), DType::F32, {1, H, N, D}), g);
  const float eps = 1e-3f;
  for (auto [vec, grad] : {std::pair{&x.q, &dq}, std::pair{&x.k, &dk}, std::pair{&x.v, &dv}})
    for (size_t i = 0; i < vec->size(); i += 3) {
      const float keep = (*vec)[i];
      (*vec)[i] = keep + eps;
      const double up = loss(x);
      (*vec)[i] = keep - eps;
      const double down = loss(x);
      (*vec)[i] = keep;
      const double num = (up - down) / (2 * double(eps));
      EXPECT_NEAR((*grad)[i], num, 2e-3 * (1 + std::fabs(num))) << i;
    }
}

TEST(ReluAttention, ClearErrors) {
  Inputs x(1);
  std::vector<float> o(size_t(H * N * D)), sinks(size_t(H), 0.f);
  AttnSpec spec = relu_spec();
  spec.sink_logits = sinks.data();
  EXPECT_THROW(attention_forward(spec, x.qv(), x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, N, D})), Error);
  EXPECT_THROW(attention_forward(relu_spec(), x.qv(), x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, N, D}),
                                 {}, nullptr, AttnImpl::Flash),
               Error);
}

}  // namespace

namespace {

// A NaN in one query row makes that row's output NaN (not the zero row of a
// fully hidden query), in the reference and the flash kernels, prefill and
// decode; the other rows stay finite.
TEST(AttentionNaN, ANaNQueryRowGivesANaNOutputRow) {
  for (int64_t nq : {int64_t(1), N}) {
    Inputs x(11);
    x.q.resize(size_t(H * nq * D));
    x.q[size_t((1 * nq + (nq - 1)) * D + 3)] = NAN;  // head 1, last query
    const TensorView qv(x.q.data(), DType::F32, {1, H, nq, D});
    for (AttnImpl impl : {AttnImpl::Reference, AttnImpl::Flash}) {
      std::vector<float> o(size_t(H * nq * D), 7.f), lse(size_t(H * nq), 7.f);
      attention_forward(AttnSpec{}, qv, x.kv(), x.vv(), TensorView(o.data(), DType::F32, {1, H, nq, D}),
                        TensorView(lse.data(), DType::F32, {1, H, nq}), nullptr, impl);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < nq; ++i) {
          const bool poisoned = h == 1 && i == nq - 1;
          for (int64_t e = 0; e < D; ++e)
            EXPECT_EQ(std::isnan(o[size_t((h * nq + i) * D + e)]), poisoned)
                << "impl " << int(impl) << " nq " << nq << " h " << h << " i " << i;
          EXPECT_EQ(std::isnan(lse[size_t(h * nq + i)]), poisoned);
        }
    }
  }
}

}  // namespace
