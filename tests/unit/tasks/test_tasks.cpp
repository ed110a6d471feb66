// Synthetic task generators: the rule holds, BOS only at 0, the bigram chain's
// transition statistics (chi-square), reproducibility from the seed, and the
// config parser's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {
namespace {

TaskConfig bb_config(uint64_t chain_seed = 3) {
  TaskConfig c;
  c.task = "bigram-backcopy";
  c.vocab = 32;
  c.triggers = 3;
  c.chain_seed = chain_seed;
  return c;
}

TEST(BigramBackcopy, SequencesFollowTheRuleWithBosOnlyAtZero) {
  const BigramBackcopy task(bb_config());
  ASSERT_EQ(task.trigger_ids().size(), 3u);
  int64_t copies = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const TaskSequence s = task.generate(task_sequence_seed(9, seed), 97);
    ASSERT_EQ(s.tokens.size(), 97u);
    ASSERT_EQ(s.tokens[0], SyntheticTask::kBos);
    for (size_t t = 1; t < s.tokens.size(); ++t) {
      ASSERT_NE(s.tokens[t], SyntheticTask::kBos) << "BOS at " << t;
      ASSERT_GE(s.tokens[t], 1);
      ASSERT_LE(s.tokens[t], 32);
      const bool trigger = task.is_trigger(s.tokens[t]);
      EXPECT_EQ(s.kind[t] == QueryKind::Rule, trigger) << "query kind at " << t;
      if (t >= 2 && task.is_trigger(s.tokens[t - 1])) {
        ASSERT_EQ(s.tokens[t], s.tokens[t - 2]) << "copy rule at " << t;
        ++copies;
      }
    }
    EXPECT_EQ(task.first_rule_violation(s), -1);
  }
  EXPECT_GT(copies, 500) << "the triggers are the most frequent tokens: copies must be common";
}

TEST(BigramBackcopy, RuleCheckerCatchesABrokenCopy) {
  const BigramBackcopy task(bb_config());
  TaskSequence s = task.generate(11, 200);
  size_t t = 2;
  while (t < s.tokens.size() && !task.is_trigger(s.tokens[t - 1])) ++t;
  ASSERT_LT(t, s.tokens.size());
  s.tokens[t] = s.tokens[t - 2] == 1 ? 2 : 1;
  EXPECT_EQ(task.first_rule_violation(s), int64_t(t));
  s = task.generate(11, 200);
  s.tokens[5] = SyntheticTask::kBos;
  EXPECT_EQ(task.first_rule_violation(s), 5);
}

// Pearson's chi-square of the observed transitions out of non-trigger tokens
// against the chain's probabilities (cells with expected count >= 5).
double chi_square(const BigramBackcopy& observed_task, const BigramBackcopy& model, int64_t* dof) {
  std::map<std::pair<int, int>, double> counts;
  std::map<int, double> from;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    const TaskSequence s = observed_task.generate(task_sequence_seed(5, seed), 256);
    for (size_t t = 2; t < s.tokens.size(); ++t) {
      const int a = s.tokens[t - 1];
      if (observed_task.is_trigger(a)) continue;
      counts[{a, s.tokens[t]}] += 1;
      from[a] += 1;
    }
  }
  double chi = 0;
  *dof = 0;
  for (const auto& [a, n] : from) {
    int64_t cells = 0;
    for (int b = 1; b <= 32; ++b) {
      const double e = n * model.transition(a, b);
      if (e < 5) continue;
      const auto it = counts.find({a, b});
      const double o = it == counts.end() ? 0 : it->second;
      chi += (o - e) * (o - e) / e;
      ++cells;
    }
    if (cells > 1) *dof += cells - 1;
  }
  return chi;
}

TEST(BigramBackcopy, TransitionsMatchTheChain) {
  const BigramBackcopy task(bb_config());
  int64_t dof = 0;
  const double chi = chi_square(task, task, &dof);
  ASSERT_GT(dof, 50);
  // Mean dof, sd sqrt(2 dof): six standard deviations is far out in the tail.
  EXPECT_LT(chi, double(dof) + 6 * std::sqrt(2.0 * double(dof))) << "dof " << dof;
  // The same statistic against another chain must be far off (the test can fail).
  const BigramBackcopy other(bb_config(4));
  const double wrong = chi_square(task, other, &dof);
  EXPECT_GT(wrong, double(dof) + 6 * std::sqrt(2.0 * double(dof)));
}

TEST(BigramBackcopy, ReproducibleFromTheSeed) {
  const BigramBackcopy a(bb_config()), b(bb_config());
  EXPECT_EQ(a.generate(77, 300).tokens, b.generate(77, 300).tokens);
  EXPECT_NE(a.generate(77, 300).tokens, a.generate(78, 300).tokens);
  EXPECT_EQ(a.trigger_ids(), b.trigger_ids());
  const BigramBackcopy c(bb_config(99));
  EXPECT_NE(a.generate(77, 300).tokens, c.generate(77, 300).tokens);
}

TEST(AssocRecall, BoundKeysRecallTheirValues) {
  TaskConfig c;
  c.task = "assoc-recall";
  c.vocab = 40;
  c.keys = 6;
  const auto task = make_task(c);
  int64_t recalls = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const TaskSequence s = task->generate(task_sequence_seed(1, seed), 128);
    ASSERT_EQ(s.tokens[0], SyntheticTask::kBos);
    EXPECT_EQ(task->first_rule_violation(s), -1);
    std::map<int32_t, int32_t> bound;
    for (size_t t = 1; t + 1 < s.tokens.size(); ++t) {
      const int32_t x = s.tokens[t];
      ASSERT_NE(x, SyntheticTask::kBos);
      if (x >= 1 && x <= 6) {
        const bool known = bound.count(x) != 0;
        EXPECT_EQ(s.kind[t] == QueryKind::Rule, known);
        if (known) {
          EXPECT_EQ(s.tokens[t + 1], bound[x]);
          ++recalls;
        }
        bound[x] = s.tokens[t + 1];
      } else {
        EXPECT_EQ(s.kind[t], QueryKind::Free);
      }
    }
  }
  EXPECT_GT(recalls, 1000);
  TaskSequence broken = task->generate(3, 128);
  for (size_t t = 1; t + 1 < broken.tokens.size(); ++t)
    if (broken.kind[t] == QueryKind::Rule) {
      broken.tokens[t + 1] = broken.tokens[t + 1] == 7 ? 8 : 7;
      EXPECT_EQ(task->first_rule_violation(broken), int64_t(t + 1));
      break;
    }
}

TEST(TaskConfig, JsonRoundTripAndClearErrors) {
  const TaskConfig c = task_config_from_json(
      nlohmann::json::parse(R"({"task": "bigram-backcopy", "vocab": 16, "triggers": 2, "loss": "rule"})"), "cfg");
  EXPECT_EQ(c.vocab, 16);
  EXPECT_EQ(c.loss, "rule");
  const TaskConfig back = task_config_from_json(task_config_to_json(c), "back");
  EXPECT_EQ(back.vocab, c.vocab);
  EXPECT_EQ(back.triggers, c.triggers);
  auto err = [](const char* text) {
    try {
      task_config_from_json(nlohmann::json::parse(text), "cfg");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(R"({"task": "nope"})").find("unknown task 'nope'"), std::string::npos);
  EXPECT_NE(err(R"({"task": "bigram-backcopy", "vocab": 5.5})").find("'vocab' must be an integer"), std::string::npos);
  EXPECT_NE(err(R"({"task": "bigram-backcopy", "triggers": 64})").find("'triggers'"), std::string::npos);
  EXPECT_NE(err(R"({"task": "bigram-backcopy", "typo": 1})").find("unknown key 'typo'"), std::string::npos);
  EXPECT_NE(err(R"({"task": "assoc-recall", "keys": 40})").find("'keys'"), std::string::npos);
  EXPECT_NE(err(R"({"task": "bigram-backcopy", "chain_seed": -1})").find("'chain_seed' must be >= 0"),
            std::string::npos);
}

}  // namespace
}  // namespace sinklab
