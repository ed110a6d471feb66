// Property tests: on long random streams fed in random batches, every
// policy keeps exactly the tokens its brute-force model says, never more
// than its capacity, and reports each dropped token exactly once.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "cache_test_util.h"

using namespace sinklab;
using namespace cache_test;

namespace {

std::string describe(const PolicyCase& c) {
  const CacheOptions& o = c.options;
  return c.policy + " (limit " + std::to_string(o.limit) + ", sink " + std::to_string(o.sink) +
         ", window " + std::to_string(o.window) + ", budget " + std::to_string(o.budget) +
         ", modal " + std::to_string(o.text_sink) + "/" + std::to_string(o.text_window) + "/" +
         std::to_string(o.vision_rounds) + "x" + std::to_string(o.round_tokens) + ", chunks " +
         std::to_string(o.sink_chunks) + "+" + std::to_string(o.window_chunks) + "x" +
         std::to_string(o.chunk_tokens) + ")";
}

}  // namespace

TEST(CachePolicyProperties, KeepsExactlyWhatItPromises) {
  for (const PolicyCase& c : policy_cases()) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE(describe(c) + " seed " + std::to_string(seed));
      std::mt19937 rng(seed * 7919u + uint32_t(c.policy.size()));
      const std::vector<TokenMeta> stream =
          random_stream(rng, 6000, c.group_max, c.count_all_tokens, c.text_share);
      auto policy = make_kv_policy(c.policy, c.options);
      ASSERT_EQ(policy->name(), c.policy);
      std::vector<TokenMeta> history;
      std::set<int64_t> evicted_once;
      size_t pos = 0;
      int batches = 0;
      while (pos < stream.size()) {
        const size_t n = std::min(stream.size() - pos,
                                  size_t(std::uniform_int_distribution<int>(1, 17)(rng)));
        const std::vector<int64_t> before = indices(policy->survivors());
        std::vector<TokenMeta> evicted;
        policy->append(std::span<const TokenMeta>(stream.data() + pos, n), evicted);
        history.insert(history.end(), stream.begin() + std::ptrdiff_t(pos),
                       stream.begin() + std::ptrdiff_t(pos + n));
        pos += n;
        ++batches;

        const std::vector<TokenMeta> survivors = policy->survivors();
        const std::vector<TokenMeta> expected = brute_force(c.policy, c.options, history);
        ASSERT_EQ(indices(survivors), indices(expected)) << "after " << history.size() << " tokens";
        ASSERT_EQ(policy->size(), int64_t(survivors.size()));
        ASSERT_LE(policy->size(), policy->capacity());
        for (size_t i = 0; i < survivors.size(); ++i) {
          ASSERT_EQ(survivors[i].modality, expected[i].modality);
          ASSERT_EQ(survivors[i].round, expected[i].round);
        }
        // Each eviction was cached before or arrived in this batch, and is
        // reported once.
        const std::set<int64_t> was(before.begin(), before.end());
        for (const TokenMeta& e : evicted) {
          ASSERT_TRUE(was.count(e.index) || e.index >= history[history.size() - n].index);
          ASSERT_TRUE(evicted_once.insert(e.index).second) << "evicted twice: " << e.index;
        }
      }
      // Everything that arrived is either cached or was evicted, never both.
      EXPECT_EQ(evicted_once.size() + size_t(policy->size()), history.size());
      for (const TokenMeta& t : policy->survivors()) EXPECT_EQ(evicted_once.count(t.index), 0u);
      EXPECT_GT(batches, 300);
      if (c.policy != "dense") {
        EXPECT_FALSE(evicted_once.empty()) << "stream never filled the cache";
      }
    }
  }
}

TEST(CachePolicyProperties, BatchAppendEqualsTokenByToken) {
  for (const PolicyCase& c : policy_cases()) {
    SCOPED_TRACE(describe(c));
    std::mt19937 rng(99);
    const auto stream = random_stream(rng, 2000, c.group_max, c.count_all_tokens, c.text_share);
    auto batched = make_kv_policy(c.policy, c.options);
    auto single = make_kv_policy(c.policy, c.options);
    std::vector<TokenMeta> ev_batched, ev_single;
    batched->append(stream, ev_batched);
    for (const TokenMeta& t : stream) single->append(t, ev_single);
    EXPECT_EQ(indices(ev_batched), indices(ev_single));
    EXPECT_EQ(indices(batched->survivors()), indices(single->survivors()));
  }
}

// Evictions per appended token: at most one for token-granular policies; a
// whole round/chunk at once (and only when a new one starts) otherwise.
TEST(CachePolicyProperties, EvictionGranularity) {
  for (const PolicyCase& c : policy_cases()) {
    SCOPED_TRACE(describe(c));
    std::mt19937 rng(5);
    const auto stream = random_stream(rng, 4000, c.group_max, c.count_all_tokens, c.text_share);
    auto policy = make_kv_policy(c.policy, c.options);
    for (const TokenMeta& t : stream) {
      std::vector<TokenMeta> evicted;
      policy->append(t, evicted);
      if (c.policy == "modal" || c.policy == "chunked") {
        // modal: one text token or one whole non-text round; chunked: one chunk.
        std::set<std::pair<int, int32_t>> groups;
        for (const TokenMeta& e : evicted) {
          const bool text = c.policy == "modal" && e.modality == uint8_t(Modality::Text);
          groups.insert({text, text ? 0 : e.round});
        }
        ASSERT_LE(groups.size(), 1u);
        if (c.policy == "chunked" && !evicted.empty()) {
          ASSERT_NE(evicted[0].round, t.round);
        }
        if (!evicted.empty() && evicted[0].modality == 0 && c.policy == "modal") {
          ASSERT_EQ(evicted.size(), 1u);
        }
      } else {
        ASSERT_LE(evicted.size(), 1u);
      }
    }
  }
}

TEST(CachePolicyProperties, DenseLimitIsAnErrorAndLeavesThePolicyUnchanged) {
  CacheOptions o;
  o.limit = 10;
  auto policy = make_kv_policy("dense", o);
  std::vector<TokenMeta> evicted;
  for (int64_t i = 0; i < 10; ++i) policy->append(TokenMeta{i, 0, 0}, evicted);
  try {
    policy->append(TokenMeta{10, 0, 0}, evicted);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("limit=10"), std::string::npos) << e.what();
  }
  EXPECT_EQ(policy->size(), 10);
  EXPECT_TRUE(evicted.empty());
}

TEST(CachePolicyProperties, RegistryListsEveryPolicyOnce) {
  std::set<std::string> names;
  for (const KvPolicyInfo& p : kv_policies()) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name;
    EXPECT_NE(std::string(p.summary), "");
  }
  for (const char* n : {"dense", "window", "sink", "sink-logit", "modal", "chunked"})
    EXPECT_EQ(names.count(n), 1u) << n;
}
