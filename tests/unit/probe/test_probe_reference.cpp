// Probes agree with the float64 reference attention on a random model, run on
// the real stories260K model, and reject bad input with Error.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../model/assets.h"
#include "planted_models.h"
#include "sinklab/attention.h"
#include "sinklab/probe.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

constexpr int64_t kV = 11, kD = 16, kL = 2, kH = 4, kKv = 2, kHd = 4, kF = 8;

std::shared_ptr<const Model> random_model() {
  PlantedModel m = zero_decoder(kV, kD, kL, kH, kHd, kF, /*rope=*/true);
  m.config["num_key_value_heads"] = kKv;
  Lcg rng(42);
  for (auto& [name, t] : m.tensors) {
    if (name.find("norm") != std::string::npos) continue;
    if (name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos)
      t = Tensor{{kKv * kHd, kD}, std::vector<float>(size_t(kKv * kHd * kD))};
    fill_random(t, rng, name.find("q_proj") != std::string::npos ? 1.5f : 0.7f);
  }
  return m.write_and_load("random");
}

const std::vector<int32_t> kIds = {1, 5, 3, 9, 2, 2, 7, 10, 0, 4, 6, 8};

}  // namespace

TEST(ProbeReference, SinkScoresAndAttentionMatchTheFloat64Oracle) {
  auto model = random_model();
  const int64_t n = int64_t(kIds.size());
  Session session(model);
  std::vector<std::string> names;
  for (int l = 0; l < kL; ++l)
    for (const char* t : {"q", "k", "v"}) names.push_back("blk." + std::to_string(l) + "." + t);
  auto cap = capture_taps(session, kIds, names);
  EXPECT_TRUE(session.taps().empty());
  const SinkScores s = sink_scores(session, kIds);
  PropagationOptions keep;
  keep.keep_attention = true;
  const Propagation p = propagation(session, kIds, keep);
  const ValueNorms vn = value_norms(session, kIds, ValueNormOptions{0, {}});
  ASSERT_EQ(vn.n_tokens, n);
  for (int l = 0; l < kL; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    CapturedTensor& q = cap.at(b + "q");
    CapturedTensor& k = cap.at(b + "k");
    CapturedTensor& v = cap.at(b + "v");
    AttnSpec spec;
    spec.rope = model->config().rope;
    const TensorView qv = TensorView::strided(q.data.data(), DType::F32, {1, kH, n, kHd}, {n * kH * kHd, kHd, kH * kHd, 1});
    const TensorView kv = TensorView::strided(k.data.data(), DType::F32, {1, kKv, n, kHd}, {n * kKv * kHd, kHd, kKv * kHd, 1});
    const TensorView vv = TensorView::strided(v.data.data(), DType::F32, {1, kKv, n, kHd}, {n * kKv * kHd, kHd, kKv * kHd, 1});
    const ReferenceForward ref = attention_reference(spec, qv, kv, vv);
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t key = 0; key < n; ++key) {
        double want = 0;
        for (int64_t i = key; i < n; ++i) want += ref.prob[size_t((h * n + i) * n + key)];
        EXPECT_NEAR(s.alpha_at(size_t(l), h, key), want / double(n - key), 1e-5);
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double avg = 0;
        for (int64_t h = 0; h < kH; ++h) avg += ref.prob[size_t((h * n + i) * n + j)] / double(kH);
        EXPECT_NEAR(p.attention[size_t((l * n + i) * n + j)], avg, 1e-5);
      }
    for (int64_t g = 0; g < kKv; ++g)
      for (int64_t t = 0; t < n; ++t) {
        double sq = 0;
        for (int64_t d = 0; d < kHd; ++d) sq += std::pow(double(v.row(t)[g * kHd + d]), 2);
        EXPECT_NEAR(vn.at(size_t(l), g, t), std::sqrt(sq), 1e-6);
      }
  }
  // Rollout as a full matrix product P = M_1 M_0 (M_l = A_l/2 + I/2); its last row is the influence.
  auto layer_matrix = [&](int l) {
    std::vector<double> M(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        M[size_t(i * n + j)] = 0.5 * p.attention[size_t((l * n + i) * n + j)] + (i == j ? 0.5 : 0.0);
    return M;
  };
  static_assert(kL == 2);
  const std::vector<double> M0 = layer_matrix(0), M1 = layer_matrix(1);
  for (int64_t j = 0; j < n; ++j) {
    double want = 0;
    for (int64_t t = 0; t < n; ++t) want += M1[size_t((n - 1) * n + t)] * M0[size_t(t * n + j)];
    EXPECT_NEAR(p.influence_on_last[size_t(j)], want, 1e-12) << j;
  }
  double total = 0;
  for (double x : p.influence_on_last) total += x;
  EXPECT_NEAR(total, 1.0, 1e-6);  // rows of A and I sum to 1
  for (const PropagationLayer& pl : p.layers) {
    EXPECT_GT(pl.effective_rank, 1.0);
    EXPECT_LE(pl.effective_rank, double(std::min<int64_t>(n, kD)) + 1e-9);
  }
}

TEST(ProbeReference, Stories260KSinkScoresAreProbabilities) {
  if (!have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  LoadOptions o;
  o.tokenizer_path = asset("models/stories260K/tok512.bin");
  auto model = Model::load(asset("models/stories260K/stories260K.bin"), o);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 410, 290};
  const SinkScores s = sink_scores(model, ids);
  const ModelConfig& c = model->config();
  ASSERT_EQ(s.alpha.size(), size_t(c.n_layers * c.n_heads) * ids.size());
  for (double a : s.alpha) {
    EXPECT_GE(a, 0.0);
    EXPECT_LE(a, 1.0 + 1e-6);
  }
  for (double pct : s.sink_percent) {
    EXPECT_GE(pct, 0.0);
    EXPECT_LE(pct, 100.0);
  }
  const MassiveActivations m = massive_activations(model, ids);
  EXPECT_EQ(m.layers.size(), size_t(c.n_layers));
  const Propagation p = propagation(model, ids);
  EXPECT_EQ(p.layers.size(), size_t(c.n_layers));
  EXPECT_THROW(super_experts(model, {ids}), Error);  // a dense model has no experts
}

TEST(ProbeErrors, BadInputIsAnError) {
  auto model = random_model();
  Session session(model);
  const std::vector<int32_t> empty;
  EXPECT_THROW(sink_scores(session, empty), Error);
  EXPECT_THROW(massive_activations(session, empty), Error);
  EXPECT_THROW(value_norms(session, empty), Error);
  EXPECT_THROW(propagation(session, empty), Error);
  EXPECT_THROW(capture_taps(session, empty, {"blk.0.q"}), Error);
  EXPECT_THROW(super_experts(model, {{}}), Error);
  EXPECT_THROW(super_experts(model, {}), Error);
  EXPECT_THROW(super_experts(model, {kIds}), Error);  // dense model

  SinkScoreOptions far;
  far.layers = {kL};
  EXPECT_THROW(sink_scores(session, kIds, far), Error);
  far.layers = {-1};
  EXPECT_THROW(sink_scores(session, kIds, far), Error);
  MassiveActivationOptions mfar;
  mfar.layers = {0, 7};
  EXPECT_THROW(massive_activations(session, kIds, mfar), Error);
  ValueNormOptions vfar;
  vfar.layers = {99};
  EXPECT_THROW(value_norms(session, kIds, vfar), Error);

  EXPECT_THROW(capture_taps(session, kIds, {"blk.0.no_such_tensor"}), Error);
  EXPECT_THROW(capture_taps(session, kIds, {"blk.9.resid_out"}), Error);
  EXPECT_THROW(capture_taps(session, kIds, {"blk.0.*"}), Error);
  EXPECT_THROW(capture_taps(session, kIds, {"blk.0.moe.router_probs"}), Error);
  EXPECT_THROW(sink_scores(session, std::vector<int32_t>{1, int32_t(kV)}), Error);  // id outside the vocabulary
  EXPECT_TRUE(session.taps().empty()) << "a failed probe must remove its taps";
  SinkScoreOptions bad;
  bad.first_k = 0;
  EXPECT_THROW(sink_scores(session, kIds, bad), Error);
  EXPECT_NO_THROW(sink_scores(session, kIds));
}

TEST(ProbeErrors, QuadraticProbesRefuseInputsPastMemoryBeforeRunning) {
  auto model = random_model();
  // heads x n^2 floats: a million tokens would need terabytes.
  const std::vector<int32_t> huge(1'000'000, 1);
  for (auto probe : {+[](const std::shared_ptr<const Model>& m, std::span<const int32_t> ids) { sink_scores(m, ids); },
                     +[](const std::shared_ptr<const Model>& m, std::span<const int32_t> ids) {
                       Session s(m);  // the probe refuses before it feeds
                       propagation(s, ids);
                     }}) {
    try {
      probe(model, huge);
      FAIL() << "a probe started on a million tokens";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos) << e.what();
    }
  }
}
