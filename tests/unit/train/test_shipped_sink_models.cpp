// The sink-bearing models shipped in models/bb-*-3l (scripts/train-bb-models.sh):
// the sink is there, and streaming reproduces the StreamingLLM collapse
// measured in docs/results/sinks-study.md: evicting BOS (window-only) ruins the
// vanilla model's free queries and leaves the sink-logit model unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "sinklab/model.h"
#include "sinklab/train.h"

using namespace sinklab;

namespace {

std::string shipped(const char* name) { return std::string(SINKLAB_SOURCE_DIR) + "/models/" + name; }

struct KindNll {
  double free = 0, rule = 0;
};

// Mean NLL of free and rule queries of one task stream fed token by token.
KindNll stream_nll(const std::shared_ptr<const Model>& model, const std::string& cache, int64_t n) {
  const TaskConfig task = load_task_config_beside(model->path());
  const auto gen = make_task(task);
  const TaskSequence s = gen->generate(task_sequence_seed(1, 0x57ea), n);
  SessionOptions so;
  so.cache = cache;
  Session session(model, so);
  double sums[2] = {0, 0}, counts[2] = {0, 0};
  for (int64_t i = 0; i + 1 < n; ++i) {
    session.feed(std::span<const int32_t>(&s.tokens[size_t(i)], 1));
    const auto logits = session.logits();
    double mx = -INFINITY;
    for (float x : logits) mx = std::max(mx, double(x));
    double z = 0;
    for (float x : logits) z += std::exp(double(x) - mx);
    const double nll = mx + std::log(z) - double(logits[size_t(s.tokens[size_t(i + 1)])]);
    const int k = s.kind[size_t(i)] == QueryKind::Rule ? 1 : 0;
    sums[k] += nll;
    counts[k] += 1;
  }
  return {sums[0] / counts[0], sums[1] / counts[1]};
}

TEST(ShippedSinkModels, VanillaHasASinkOnBosAndTheSinkLogitModelParksInItsLogit) {
  for (const char* name : {"bb-vanilla-3l", "bb-sink-logit-3l"})
    ASSERT_TRUE(std::filesystem::exists(shipped(name) + "/model.safetensors")) << name << " is missing";
  const auto vanilla = Model::load(shipped("bb-vanilla-3l"));
  const SinkEmergence v = task_sink_emergence(vanilla, load_task_config_beside(vanilla->path()));
  EXPECT_GT(v.alpha_free_at(0, 0), 0.9) << "layer 0 parks its free queries on BOS";
  EXPECT_LT(v.alpha_rule_at(0, 0), 0.05) << "trigger queries look at the token to copy";
  EXPECT_LT(v.value_drain[0], 0.2) << "BOS's value is drained";
  const auto logit = Model::load(shipped("bb-sink-logit-3l"));
  const SinkEmergence s = task_sink_emergence(logit, load_task_config_beside(logit->path()));
  EXPECT_LT(s.alpha_free_at(0, 0), 0.05) << "with a sink logit, BOS is not needed";
  EXPECT_GT(s.sink_logit_free[0], 0.9) << "the free queries' attention goes into the sink logit";
}

// Measured (docs/results/sinks-study.md, 4096 tokens): vanilla free NLL 8.62
// window-only vs 2.28 with BOS kept; sink-logit 2.28 both ways; rule queries ~0.001.
TEST(ShippedSinkModels, WindowOnlyCollapsesTheVanillaModelAndNotTheSinkLogitModel) {
  const int64_t n = 1024;
  const auto vanilla = Model::load(shipped("bb-vanilla-3l"));
  const KindNll vw = stream_nll(vanilla, "window:window=64", n);
  const KindNll vs = stream_nll(vanilla, "sink:sink=1,window=63", n);
  EXPECT_GT(vw.free, 2.0 * vs.free) << "window-only " << vw.free << " vs sink+window " << vs.free;
  EXPECT_LT(vs.free, 2.6) << "with BOS kept the bigram NLL stays near its training value";
  EXPECT_LT(vs.rule, 0.05);
  EXPECT_LT(vw.rule, 0.05) << "copies look one token back: eviction does not touch them";
  const auto logit = Model::load(shipped("bb-sink-logit-3l"));
  const KindNll lw = stream_nll(logit, "window:window=64", n);
  const KindNll ls = stream_nll(logit, "sink:sink=1,window=63", n);
  EXPECT_NEAR(lw.free, ls.free, 0.01 * ls.free) << "the sink-logit model does not need BOS";
  EXPECT_LT(lw.free, 2.6);
}

}  // namespace
