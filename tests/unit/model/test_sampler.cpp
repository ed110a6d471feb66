// Sampler: greedy is argmax, seeded runs repeat, top-k / top-p / min-p drop the
// tokens they should (checked over many draws with known probabilities), the
// repetition penalty lowers repeated tokens, and bad options throw.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sinklab/model.h"

using namespace sinklab;

namespace {

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(float(std::log(x)));
  return l;
}

// Counts of each token over `draws` samples with an empty history.
std::vector<int> histogram(const SamplerOptions& o, const std::vector<float>& logits, int draws) {
  Sampler s(o);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[size_t(s.sample(logits, {}))];
  return counts;
}

SamplerOptions at_temperature(float t, uint64_t seed = 1) {
  SamplerOptions o;
  o.temperature = t;
  o.seed = seed;
  return o;
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};
constexpr int kDraws = 20000;

}  // namespace

TEST(Sampler, GreedyIsArgmax) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 3.f);
  Sampler greedy({});
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> logits(1000);
    for (float& x : logits) x = nd(rng);
    const auto want = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(greedy.sample(logits, {}), want);
  }
  // Ties go to the lowest id.
  EXPECT_EQ(greedy.sample(std::vector<float>{1.f, 5.f, 5.f, 2.f}, {}), 1);
}

TEST(Sampler, SeededRunsAreReproducible) {
  const std::vector<float> logits = log_probs({0.2, 0.2, 0.2, 0.2, 0.2});
  auto run = [&](uint64_t seed) {
    Sampler s(at_temperature(1.f, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.sample(logits, {}));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, TopKOneEqualsGreedy) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  SamplerOptions o = at_temperature(1.5f, 9);
  o.top_k = 1;
  Sampler top1(o), greedy({});
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(64);
    for (float& x : logits) x = nd(rng);
    EXPECT_EQ(top1.sample(logits, {}), greedy.sample(logits, {}));
  }
}

TEST(Sampler, TopKKeepsOnlyTheKMostLikely) {
  SamplerOptions o = at_temperature(1.f);
  o.top_k = 2;
  const std::vector<int> c = histogram(o, log_probs(kProbs), kDraws);
  EXPECT_EQ(c[2] + c[3], 0);
  EXPECT_NEAR(double(c[0]) / kDraws, 0.5 / 0.8, 0.02);
}

TEST(Sampler, PlainSamplingFollowsTheProbabilities) {
  // The baseline the filters are compared with: every token appears at its rate.
  const std::vector<int> c = histogram(at_temperature(1.f), log_probs(kProbs), kDraws);
  for (size_t i = 0; i < kProbs.size(); ++i) EXPECT_NEAR(double(c[i]) / kDraws, kProbs[i], 0.015) << i;
}

TEST(Sampler, TopPExcludesTheTail) {
  SamplerOptions o = at_temperature(1.f);
  o.top_p = 0.7f;  // 0.5 < 0.7 <= 0.5 + 0.3: keeps tokens 0 and 1
  const std::vector<int> c = histogram(o, log_probs(kProbs), kDraws);
  EXPECT_EQ(c[2] + c[3], 0);
  EXPECT_NEAR(double(c[0]) / kDraws, 0.5 / 0.8, 0.02);
  EXPECT_NEAR(double(c[1]) / kDraws, 0.3 / 0.8, 0.02);
  o.top_p = 0.9f;  // keeps 0, 1, 2
  const std::vector<int> d = histogram(o, log_probs(kProbs), kDraws);
  EXPECT_EQ(d[3], 0);
  EXPECT_NEAR(double(d[2]) / kDraws, 0.15 / 0.95, 0.015);
}

TEST(Sampler, MinPExcludesUnlikelyTokens) {
  SamplerOptions o = at_temperature(1.f);
  o.min_p = 0.2f;  // threshold 0.2 * 0.5 = 0.1: drops only token 3 (0.05)
  const std::vector<int> c = histogram(o, log_probs(kProbs), kDraws);
  EXPECT_EQ(c[3], 0);
  EXPECT_NEAR(double(c[2]) / kDraws, 0.15 / 0.95, 0.015);
  o.min_p = 0.7f;  // threshold 0.35: only token 0 stays
  const std::vector<int> d = histogram(o, log_probs(kProbs), 2000);
  EXPECT_EQ(d[0], 2000);
}

TEST(Sampler, RepeatPenaltyLowersRepeatedTokens) {
  SamplerOptions o;
  o.repeat_penalty = 1.5f;
  Sampler greedy(o);
  const std::vector<int32_t> history = {0};
  // Positive logits are divided: 2.0 / 1.5 < 1.9.
  EXPECT_EQ(greedy.sample(std::vector<float>{2.0f, 1.9f, -1.f}, history), 1);
  // Negative logits are multiplied: -1.0 * 1.5 < -1.2.
  EXPECT_EQ(greedy.sample(std::vector<float>{-1.0f, -1.2f, -5.f}, history), 1);
  // Without the token in the history nothing changes.
  EXPECT_EQ(greedy.sample(std::vector<float>{2.0f, 1.9f, -1.f}, std::vector<int32_t>{2}), 0);
  // Only the last repeat_last_n tokens count.
  o.repeat_last_n = 2;
  Sampler windowed(o);
  EXPECT_EQ(windowed.sample(std::vector<float>{2.0f, 1.9f, -1.f}, std::vector<int32_t>{0, 2, 2}), 0);
  EXPECT_EQ(windowed.sample(std::vector<float>{2.0f, 1.9f, -1.f}, std::vector<int32_t>{2, 2, 0}), 1);

  // Sampled: the repeated token becomes rarer.
  SamplerOptions t = at_temperature(1.f);
  const std::vector<float> logits = log_probs({0.25, 0.25, 0.25, 0.25});
  auto share_of_token0 = [&](float penalty) {
    t.repeat_penalty = penalty;
    Sampler s(t);
    int hits = 0;
    for (int i = 0; i < kDraws; ++i) hits += s.sample(logits, history) == 0;
    return double(hits) / kDraws;
  };
  EXPECT_NEAR(share_of_token0(1.f), 0.25, 0.015);
  EXPECT_LT(share_of_token0(2.f), 0.15);
}

TEST(Sampler, InvalidOptionsThrow) {
  auto make = [](auto edit) {
    SamplerOptions o;
    edit(o);
    return Sampler(o);
  };
  EXPECT_THROW(make([](SamplerOptions& o) { o.temperature = -0.1f; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.top_k = -1; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.top_p = 0.f; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.top_p = 1.5f; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.min_p = -0.1f; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.min_p = 1.f; }), Error);
  EXPECT_THROW(make([](SamplerOptions& o) { o.repeat_penalty = 0.f; }), Error);
  Sampler ok({});
  EXPECT_THROW(ok.sample(std::span<const float>{}, {}), Error);
}
