// kv-facts: a fixed fact table, "key value" pairs that follow it, keys drawn
// only from the given subset, spare ids never generated, and config errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {
namespace {

TaskConfig facts_config() {
  TaskConfig c;
  c.task = "kv-facts";
  c.keys = 12;
  c.vocab = 30;  // 12 keys, 14 values, 4 spare
  c.chain_seed = 5;
  c.loss = "rule";
  return c;
}

TEST(KvFacts, PairsFollowTheTableAndSpareIdsNeverOccur) {
  const auto task = make_task(facts_config());
  const auto* facts = dynamic_cast<const KvFacts*>(task.get());
  ASSERT_NE(facts, nullptr);
  std::set<int32_t> values;
  for (int32_t k = 1; k <= 12; ++k) {
    const int32_t v = facts->value_of(k);
    EXPECT_GT(v, 12);
    EXPECT_LE(v, 26);
    values.insert(v);
  }
  EXPECT_GT(values.size(), 5u) << "the table should not map every key to a few values";
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const TaskSequence s = facts->generate(task_sequence_seed(4, seed), 33);
    ASSERT_EQ(s.tokens.size(), 33u);
    EXPECT_EQ(facts->first_rule_violation(s), -1);
    for (size_t t = 1; t < s.tokens.size(); ++t) {
      EXPECT_LT(s.tokens[t], facts->spare_token(0)) << "a spare id was generated at " << t;
      EXPECT_EQ(s.kind[t] == QueryKind::Rule, t % 2 == 1) << "keys are the rule queries";
      if (t % 2 == 0) {
        EXPECT_EQ(s.tokens[t], facts->value_of(s.tokens[t - 1]));
      }
    }
  }
  const TaskSequence a = facts->generate(77, 21), b = facts->generate(77, 21);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(facts->token_text(facts->spare_token(0)), "r1");
  EXPECT_EQ(facts->token_text(3), "k3");
}

TEST(KvFacts, GenerateFromUsesOnlyTheGivenKeys) {
  const KvFacts facts(facts_config());
  const std::vector<int32_t> keys = {2, 5};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const TaskSequence s = facts.generate_from(seed, 41, keys);
    for (size_t t = 1; t < s.tokens.size(); t += 2) EXPECT_TRUE(s.tokens[t] == 2 || s.tokens[t] == 5);
    EXPECT_EQ(facts.first_rule_violation(s), -1);
  }
  const std::vector<int32_t> bad = {13};
  EXPECT_THROW(facts.generate_from(1, 9, bad), Error);
  EXPECT_THROW(facts.generate_from(1, 9, {}), Error);
}

TEST(KvFacts, ConfigErrorsNameTheKey) {
  TaskConfig c = facts_config();
  c.vocab = 16;  // 12 keys + 4 spare leave no value id
  try {
    make_task(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'keys'"), std::string::npos) << e.what();
  }
  const nlohmann::json j = task_config_to_json(facts_config());
  const TaskConfig back = task_config_from_json(j, "test");
  EXPECT_EQ(back.task, "kv-facts");
  EXPECT_EQ(back.keys, 12);
  EXPECT_EQ(back.chain_seed, 5u);
}

}  // namespace
}  // namespace sinklab
