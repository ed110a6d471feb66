// The GOAT channel-folding helper: plain attention on the folded q~, k~ equals
// attention with the fused prior.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sinklab/attention.h"

using namespace sinklab;

TEST(GoatFold, PlainAttentionOnFoldedChannelsEqualsFusedPrior) {
  for (int R : {1, 4, 16}) {
    SCOPED_TRACE("rank " + std::to_string(R));
    std::mt19937 rng{uint32_t(R)};
    std::normal_distribution<float> n01;
    const int64_t B = 2, H = 4, Hkv = 2, N = 150, Dc = 24, Dt = Dc + 2 * R + 1;
    auto randv = [&](size_t n, float s) {
      std::vector<float> x(n);
      for (auto& e : x) e = n01(rng) * s;
      return x;
    };
    auto q = randv(size_t(B * H * N * Dc), 1), k = randv(size_t(B * Hkv * N * Dc), 1),
         v = randv(size_t(B * Hkv * N * Dc), 1), u = randv(size_t(B * Hkv * N), 1),
         ls = randv(size_t(Hkv * R), 0.7f), la = randv(size_t(Hkv * R), 0.7f);
    std::vector<int32_t> pos(N);
    for (int64_t i = 0; i < N; ++i) pos[size_t(i)] = int32_t(3 * i + (i % 2));  // non-contiguous
    TensorView qv(q.data(), DType::F32, {B, H, N, Dc}), kv(k.data(), DType::F32, {B, Hkv, N, Dc}),
        vv(v.data(), DType::F32, {B, Hkv, N, Dc}), uv(u.data(), DType::F32, {B, Hkv, N});

    AttnSpec fused;
    fused.q_pos = fused.k_pos = pos.data();
    fused.goat = {R, 1e4f, ls.data(), la.data()};
    fused.key_bias = uv;
    const ReferenceForward want = attention_reference(fused, qv, kv, vv);

    std::vector<float> qt(size_t(B * H * N * Dt), NAN), kt(size_t(B * Hkv * N * Dt), NAN);
    TensorView qtv(qt.data(), DType::F32, {B, H, N, Dt}), ktv(kt.data(), DType::F32, {B, Hkv, N, Dt});
    AttnSpec pos_only;
    pos_only.q_pos = pos_only.k_pos = pos.data();
    goat_fold(fused.goat, qv, kv, uv, pos_only, 0.f, qtv, ktv);

    AttnSpec plain;
    plain.scale = 1.f;
    plain.q_pos = plain.k_pos = pos.data();  // only for the causal mask
    std::vector<float> o(size_t(B * H * N * Dc), NAN);
    attention_forward(plain, qtv, ktv, vv, TensorView(o.data(), DType::F32, {B, H, N, Dc}), {},
                      nullptr, AttnImpl::Flash);
    double num = 0, den = 0;
    for (size_t i = 0; i < o.size(); ++i) {
      num += (o[i] - want.o[i]) * (o[i] - want.o[i]);
      den += want.o[i] * want.o[i];
    }
    EXPECT_LE(std::sqrt(num / den), 1e-5);
  }
}

TEST(GoatFold, RejectsBadShapes) {
  std::vector<float> q(64), k(64), l(2);
  TensorView qv(q.data(), DType::F32, {1, 1, 8, 8}), kv(k.data(), DType::F32, {1, 1, 8, 8});
  std::vector<float> out(8 * 12);
  TensorView wrong(out.data(), DType::F32, {1, 1, 8, 12});  // rank 1 needs 8+3 channels
  EXPECT_THROW(goat_fold({1, 1e4f, l.data(), l.data()}, qv, kv, {}, {}, 0.f, wrong, wrong), Error);
  EXPECT_THROW(goat_fold({0, 1e4f, l.data(), l.data()}, qv, kv, {}, {}, 0.f, wrong, wrong), Error);
}
