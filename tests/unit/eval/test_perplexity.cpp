// The perplexity step (include/sinklab/perplexity.h) against sessions driven by
// hand on a small random rope model: the recompute step is a dense session fed
// the policy's survivors, a warm-up skip lands where stepping lands, and
// run_perplexity scores exactly what its runner returns.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../probe/planted_models.h"
#include "sinklab/perplexity.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

std::shared_ptr<const Model> random_model() {
  PlantedModel m = zero_decoder(/*vocab=*/40, /*dim=*/16, /*layers=*/2, /*heads=*/2, /*head_dim=*/8,
                                /*hidden=*/24, /*rope=*/true);
  Lcg rng(7);
  for (auto& [name, t] : m.tensors)
    if (name.find("norm") == std::string::npos) fill_random(t, rng, 0.4f);
  return m.write_and_load("perplexity");
}

std::vector<int32_t> stream(size_t n) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = int32_t((i * 7 + 3) % 40);
  return ids;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

TEST(PerplexityRunner, RecomputeStepIsADenseSessionOnTheSurvivors) {
  const auto model = random_model();
  const std::vector<int32_t> ids = stream(30);
  PerplexityOptions o;
  o.cache = "sink:sink=2,window=6";
  o.recompute = true;
  PerplexityRunner runner(model, ids, o);
  Session dense(model, SessionOptions{});
  for (int64_t i = 0; i < 20; ++i) {
    const std::span<const float> step = runner.step(i, TokenMeta{i, 0, 0});
    const std::vector<float> got(step.begin(), step.end());
    // Survivors of sink 2 + window 6 after token i: 0, 1 and the last six.
    std::vector<int32_t> kept;
    for (int64_t j = 0; j <= i; ++j)
      if (j < 2 || j > i - 6) kept.push_back(ids[size_t(j)]);
    dense.reset();
    dense.feed(kept);
    EXPECT_EQ(runner.cached(), int64_t(kept.size()));
    EXPECT_EQ(max_abs_diff(got, dense.logits()), 0.0) << "token " << i;
  }
}

TEST(PerplexityRunner, SkipLandsWhereSteppingLands) {
  const auto model = random_model();
  const std::vector<int32_t> ids = stream(40);
  for (bool recompute : {false, true}) {
    PerplexityOptions o;
    o.cache = "sink:sink=2,window=6";
    o.recompute = recompute;
    PerplexityRunner stepped(model, ids, o), skipped(model, ids, o);
    for (int64_t i = 0; i < 20; ++i) stepped.step(i, TokenMeta{i, 0, 0});
    skipped.skip(20);
    EXPECT_EQ(skipped.cached(), stepped.cached());
    for (int64_t i = 20; i < 30; ++i) {
      const std::span<const float> a = stepped.step(i, TokenMeta{i, 0, 0});
      const std::vector<float> av(a.begin(), a.end());
      const std::span<const float> b = skipped.step(i, TokenMeta{i, 0, 0});
      EXPECT_LT(max_abs_diff(av, b), 1e-4) << "recompute " << recompute << " token " << i;
    }
  }
}

TEST(PerplexityRunner, RunPerplexityScoresTheRunnersLogits) {
  const auto model = random_model();
  const std::vector<int32_t> ids = stream(25);
  PerplexityOptions o;
  o.cache = "window:window=8";
  o.keep_token_nll = true;
  o.chunk = 10;
  const PerplexityResult r = run_perplexity(model, ids, {}, o);
  ASSERT_EQ(r.predicted, 24);
  ASSERT_EQ(r.token_nll.size(), 24u);
  ASSERT_EQ(r.chunks.size(), 3u);
  EXPECT_EQ(r.chunks[2].count, 4);
  PerplexityRunner runner(model, ids, o);
  double sum = 0;
  for (int64_t i = 0; i < 24; ++i) {
    const double nll = next_token_nll(runner.step(i, TokenMeta{i, 0, 0}), ids[size_t(i + 1)]);
    EXPECT_NEAR(r.token_nll[size_t(i)], nll, 1e-5) << i;
    sum += nll;
  }
  EXPECT_NEAR(r.nll, sum / 24, 1e-9);
  EXPECT_NEAR(r.ppl, std::exp(sum / 24), 1e-9 * r.ppl);
}

}  // namespace
