// Lost-in-the-middle: the task builder puts the queried pair where asked, the
// scorer scores planted logits right, and the runner compares conditions on
// the same random lists.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "../model/assets.h"
#include "../probe/planted_models.h"
#include "sinklab/litm.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

std::shared_ptr<const Model> tiny_model() {
  PlantedModel m = zero_decoder(40, 16, 2, 2, 8, 16, /*rope=*/true);
  m.config["bos_token_id"] = 1;
  Lcg rng(5);
  for (auto& [name, t] : m.tensors)
    if (name.find("norm") == std::string::npos) fill_random(t, rng, 0.6f);
  return m.write_and_load("litm_tiny");
}

}  // namespace

TEST(LitmTask, SyntheticPlacesTheQueriedPairWhereAsked) {
  auto model = tiny_model();
  LitmOptions o;
  o.key_tokens = 2;
  o.value_tokens = 3;
  for (int g : {0, 3, 6}) {
    const LitmTrial t = make_litm_trial(*model, o, 7, g, 100 + uint64_t(g));
    ASSERT_EQ(t.pair_offsets.size(), 7u);
    EXPECT_EQ(t.queried, g);
    EXPECT_EQ(t.prompt.front(), 1);  // BOS
    EXPECT_EQ(t.prompt.size(), 1u + 7u * 6u + 2u);
    const int64_t at = t.pair_offsets[size_t(g)];
    // The prompt ends with the queried key; the value follows that key inside the list.
    EXPECT_EQ(t.prompt[t.prompt.size() - 2], t.prompt[size_t(at)]);
    EXPECT_EQ(t.prompt[t.prompt.size() - 1], t.prompt[size_t(at + 1)]);
    ASSERT_EQ(t.value.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(t.value[i], t.prompt[size_t(at + 2) + i]);
    // Keys are distinct, and the separator (last token of every pair) appears in no key or value.
    std::set<std::pair<int32_t, int32_t>> keys;
    const int32_t sep = t.prompt[size_t(t.pair_offsets[0] + 5)];
    for (int64_t off : t.pair_offsets) {
      keys.insert({t.prompt[size_t(off)], t.prompt[size_t(off + 1)]});
      EXPECT_EQ(t.prompt[size_t(off + 5)], sep);
      for (int64_t i = 0; i < 5; ++i) {
        EXPECT_NE(t.prompt[size_t(off + i)], sep);
        EXPECT_GE(t.prompt[size_t(off + i)], 3);
      }
    }
    EXPECT_EQ(keys.size(), 7u);
  }
  EXPECT_THROW(make_litm_trial(*model, o, 7, 7, 1), Error);
  o.first_id = 39;
  EXPECT_THROW(make_litm_trial(*model, o, 7, 0, 1), Error);
  o = LitmOptions{};
  o.task = "uuid";
  EXPECT_THROW(make_litm_trial(*model, o, 3, 0, 1), Error);  // no tokenizer
}

TEST(LitmTask, UuidPromptHoldsTheQueriedPairAtItsOffset) {
  if (!have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing: " << assets_dir();
  LoadOptions lo;
  lo.tokenizer_path = asset("models/stories260K/tok512.bin");
  auto model = Model::load(asset("models/stories260K/stories260K.bin"), lo);
  LitmOptions o;
  o.task = "uuid";
  const LitmTrial t = make_litm_trial(*model, o, 4, 2, 9);
  ASSERT_EQ(t.pair_offsets.size(), 4u);
  EXPECT_EQ(t.value_text.size(), 36u);
  const Tokenizer& tok = *model->tokenizer();
  const std::string pair = tok.decode(std::span<const int32_t>(t.prompt).subspan(
      size_t(t.pair_offsets[2]), size_t(t.pair_offsets[3] - t.pair_offsets[2])));
  EXPECT_NE(pair.find(": \"" + t.value_text + "\""), std::string::npos) << pair;
  const std::string tail = tok.decode(std::span<const int32_t>(t.prompt).subspan(size_t(t.pair_offsets[3])));
  const std::string key = pair.substr(pair.find('"') + 1, 36);
  EXPECT_NE(tail.find("Key: \"" + key + "\"\nCorresponding value: \""), std::string::npos) << tail;
  EXPECT_NE(tok.decode(t.value).find(t.value_text), std::string::npos);
}

TEST(LitmScore, ScoresPlantedLogits) {
  constexpr int64_t V = 5;
  // Row 0 predicts token 2 as the argmax; row 1 ranks token 4 third.
  const std::vector<float> logits = {0, 1, 3, 0, 0, /**/ 2, 0, 5, 0, 1};
  const std::vector<int32_t> value = {2, 4};
  const LitmScore s = score_value(logits, V, value);
  auto logp = [&](int row, int target) {
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(double(logits[size_t(row * V + v)]));
    return double(logits[size_t(row * V + target)]) - std::log(z);
  };
  EXPECT_FALSE(s.exact);
  EXPECT_DOUBLE_EQ(s.rank, (1.0 + 3.0) / 2.0);
  EXPECT_NEAR(s.logprob, (logp(0, 2) + logp(1, 4)) / 2.0, 1e-12);
  const LitmScore one = score_value(std::span<const float>(logits).first(5), V, std::vector<int32_t>{2});
  EXPECT_TRUE(one.exact);
  EXPECT_TRUE(one.found);
  EXPECT_EQ(one.rank, 1.0);
  // A tie with a lower id is not a win.
  const std::vector<float> tie = {3, 0, 3, 0, 0};
  EXPECT_FALSE(score_value(tie, V, std::vector<int32_t>{2}).exact);
  EXPECT_THROW(score_value(tie, V, std::vector<int32_t>{2, 3}), Error);
  EXPECT_THROW(score_value(tie, V, std::vector<int32_t>{7}), Error);
}

TEST(LitmRun, ConditionsSeeTheSameListsAndJsonHasEveryCell) {
  auto model = tiny_model();
  LitmOptions o;
  o.n_pairs = {3, 5};
  o.positions = 3;
  o.trials = 2;
  // The second condition resets a logit column of a token that never occurs: a no-op.
  o.conditions = {{}, {"reset:tap=logits,dims=0,tokens=100000"}, {"sink:keys=1"}};
  int64_t calls = 0, last_total = 0;
  const LitmResult r = run_litm(model, o, [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(done, calls);
    last_total = total;
  });
  EXPECT_EQ(last_total, 3 * 6 * 2);
  ASSERT_EQ(r.cells.size(), 18u);
  ASSERT_EQ(r.condition_names.size(), 3u);
  EXPECT_EQ(r.condition_names[0], "baseline");
  bool differs = false;
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.cells[i].logprob, r.cells[6 + i].logprob);
    EXPECT_EQ(r.cells[i].accuracy, r.cells[6 + i].accuracy);
    differs = differs || r.cells[i].logprob != r.cells[12 + i].logprob;
    EXPECT_TRUE(std::isfinite(r.cells[i].logprob));
    EXPECT_LE(r.cells[i].logprob, 0.0);
    EXPECT_GE(r.cells[i].rank, 1.0);
  }
  EXPECT_TRUE(differs) << "masking the first list token changed nothing";
  EXPECT_EQ(r.cells[0].position, 0);
  EXPECT_EQ(r.cells[1].position, 1);
  EXPECT_EQ(r.cells[2].position, 2);
  EXPECT_EQ(r.cells[4].position, 2);
  EXPECT_DOUBLE_EQ(r.cells[4].relative, 0.5);
  const nlohmann::json j = litm_json(*model, r);
  EXPECT_EQ(j["format"], "sinklab-litm");
  EXPECT_EQ(j["cells"].size(), 18u);
  EXPECT_EQ(j["conditions"][2]["ablate"][0], "sink:keys=1");
  const std::string html = litm_html(j);
  EXPECT_NE(html.find("id=\"litm-data\""), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no other URL
  EXPECT_NE(litm_table(r).find("condition 2: sink:keys=1"), std::string::npos);
}

TEST(LitmRun, RefusesPromptsPastTheContextAndPlansPastMemoryBeforeRunning) {
  auto model = tiny_model();
  const int64_t context = model->config().max_seq;
  ASSERT_GT(context, 0);
  LitmOptions o;
  o.n_pairs = {3, int(context / 4)};  // 5 tokens per pair: the second size is past the context
  o.trials = 1;
  int64_t calls = 0;
  auto count = [&](int64_t, int64_t) { ++calls; };
  try {
    run_litm(model, o, count);
    FAIL() << "a prompt past the context was run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--beyond-context"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls, 0);
  o.beyond_context = true;
  o.positions = 1;
  EXPECT_NO_THROW(run_litm(model, o, count));
  o = LitmOptions{};
  o.n_pairs = {3};
  o.positions = 1000;
  o.trials = 1000000;  // ~10^9 planned lists
  try {
    run_litm(model, o, count);
    FAIL() << "a plan larger than memory was started";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("planned lists"), std::string::npos) << e.what();
  }
}
