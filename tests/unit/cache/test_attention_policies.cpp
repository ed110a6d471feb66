// The policies that evict by attention (heavy, adaptive, snapkv): on random
// streams in random batches, each followed by random attention on the cache,
// the survivors equal the brute-force models of attention_policy_model.h;
// StreamingCache hands the attention of its slots to the right tokens; the
// registry rows and option errors.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "attention_policy_model.h"
#include "cache_test_util.h"

using namespace sinklab;
using namespace cache_test;

namespace {

struct AttentionCase {
  std::string policy;
  CacheOptions options;
  int64_t keep = 0, window = 0;  // heavy, adaptive: the slots the brute force gets
  int n_layers = 2, n_kv_heads = 2, heads_per_kv = 2;
};

std::vector<AttentionCase> attention_cases() {
  std::vector<AttentionCase> cases;
  auto add = [&](std::string policy, auto set, int64_t keep, int64_t window, int layers, int kv, int group) {
    AttentionCase c;
    c.policy = std::move(policy);
    set(c.options);
    c.keep = keep;
    c.window = window;
    c.n_layers = layers;
    c.n_kv_heads = kv;
    c.heads_per_kv = group;
    cases.push_back(c);
  };
  add("heavy", [](CacheOptions& o) { o.heavy = 6; o.window = 10; }, 6, 10, 2, 2, 2);
  add("heavy", [](CacheOptions& o) { o.budget = 9; }, 4, 5, 1, 1, 4);
  add("heavy", [](CacheOptions& o) { o.heavy = 1; o.window = 1; }, 1, 1, 3, 1, 1);
  add("adaptive", [](CacheOptions& o) { o.sink = 4; o.window = 12; }, 4, 12, 2, 2, 2);
  add("adaptive", [](CacheOptions& o) { o.sink = 2; o.budget = 7; }, 2, 5, 3, 4, 1);
  add("adaptive", [](CacheOptions& o) { o.sink = 0; o.window = 3; }, 0, 3, 1, 1, 1);
  add("snapkv", [](CacheOptions& o) { o.prompt = 40; o.budget = 16; o.window = 6; o.pool = 3; }, 0, 0, 2, 2, 2);
  add("snapkv", [](CacheOptions& o) { o.prompt = 25; o.budget = 30; o.window = 4; o.pool = 1; }, 0, 0, 1, 1, 2);
  add("snapkv", [](CacheOptions& o) { o.prompt = 12; o.budget = 12; o.window = 12; o.pool = 7; }, 0, 0, 2, 1, 1);
  add("snapkv", [](CacheOptions& o) { o.prompt = 64; o.budget = 20; o.window = 8; o.pool = 7; }, 0, 0, 2, 3, 1);
  return cases;
}

// Random attention of one step on the survivors: a few tokens take most of it.
Observed random_observation(std::mt19937& rng, const AttentionCase& c, int layer, int64_t n_queries,
                            int64_t first_query, const std::vector<TokenMeta>& alive) {
  Observed o;
  o.layer = layer;
  o.n_layers = c.n_layers;
  o.n_kv_heads = c.n_kv_heads;
  o.heads_per_kv = c.heads_per_kv;
  o.n_queries = n_queries;
  o.first_query = first_query;
  o.tokens = indices(alive);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  o.mass.resize(size_t(c.n_kv_heads) * alive.size());
  for (float& m : o.mass) {
    const float x = u(rng);
    m = float(n_queries * c.heads_per_kv) * x * x * x * x;
  }
  return o;
}

void observe(KvPolicy& policy, const Observed& o) {
  std::vector<TokenMeta> tokens;
  for (int64_t i : o.tokens) tokens.push_back(TokenMeta{i, 0, 0});
  AttentionObservation obs;
  obs.layer = o.layer;
  obs.n_layers = o.n_layers;
  obs.n_kv_heads = o.n_kv_heads;
  obs.heads_per_kv = o.heads_per_kv;
  obs.n_queries = o.n_queries;
  obs.first_query = o.first_query;
  obs.tokens = tokens;
  obs.mass = o.mass;
  policy.observe_attention(obs);
}

std::vector<int64_t> expected_survivors(const AttentionCase& c, const std::vector<StreamEvent>& log) {
  if (c.policy == "snapkv") return snapkv_brute_force(c.options, log);
  return scored_brute_force(c.policy, c.keep, c.window, log);
}

}  // namespace

TEST(AttentionPolicies, SurvivorsEqualTheBruteForceOverRandomStreams) {
  for (const AttentionCase& c : attention_cases()) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE(cache_spec_string(CacheSpec{c.policy, c.options}) + " seed " + std::to_string(seed));
      std::mt19937 rng(seed * 104729u + uint32_t(c.keep + c.window));
      const std::vector<TokenMeta> stream = random_stream(rng, 300, 8, true, 1.0);
      auto policy = make_kv_policy(c.policy, c.options);
      ASSERT_EQ(policy->name(), c.policy);
      ASSERT_TRUE(kv_policy_info(c.policy).needs_attention);
      std::vector<StreamEvent> log;
      std::set<int64_t> evicted_once;
      for (size_t pos = 0; pos < stream.size();) {
        // snapkv's observation window must arrive on its own, as the Session feeds it.
        int64_t most = std::uniform_int_distribution<int64_t>(1, 9)(rng);
        if (c.policy == "snapkv") most = std::min(most, std::max<int64_t>(1, policy->batch_room()));
        const size_t n = std::min(stream.size() - pos, size_t(most));
        StreamEvent e;
        e.batch.assign(stream.begin() + std::ptrdiff_t(pos), stream.begin() + std::ptrdiff_t(pos + n));
        std::vector<TokenMeta> evicted;
        policy->append(std::span<const TokenMeta>(e.batch), evicted);
        for (const TokenMeta& t : evicted) ASSERT_TRUE(evicted_once.insert(t.index).second) << t.index;
        const std::vector<TokenMeta> alive = policy->survivors();
        for (int layer = 0; layer < c.n_layers; ++layer) {
          e.observed.push_back(random_observation(rng, c, layer, int64_t(n), e.batch[0].index, alive));
          observe(*policy, e.observed.back());
        }
        log.push_back(std::move(e));
        pos += n;
        ASSERT_EQ(indices(policy->survivors()), expected_survivors(c, log)) << "after " << pos << " tokens";
        ASSERT_LE(policy->size(), policy->capacity());
      }
      EXPECT_EQ(evicted_once.size() + size_t(policy->size()), stream.size());
      EXPECT_GT(evicted_once.size(), stream.size() / 2);
    }
  }
}

// With no attention observed every score is 0 and ties evict the newest:
// adaptive keeps the first `sink` tokens, exactly as sink does.
TEST(AttentionPolicies, WithoutAttentionAdaptiveIsTheSinkCache) {
  for (const char* opts : {"sink=4,window=12", "sink=1,budget=9", "sink=0,window=5"}) {
    auto adaptive = make_kv_policy(parse_cache_spec(std::string("adaptive:") + opts));
    auto sink = make_kv_policy(parse_cache_spec(std::string("sink:") + opts));
    std::vector<TokenMeta> a_ev, s_ev;
    for (int64_t i = 0; i < 200; ++i) {
      adaptive->append(TokenMeta{i * 2, 0, 0}, a_ev);
      sink->append(TokenMeta{i * 2, 0, 0}, s_ev);
      ASSERT_EQ(indices(adaptive->survivors()), indices(sink->survivors())) << opts << " token " << i;
    }
    EXPECT_EQ(indices(a_ev), indices(s_ev)) << opts;
  }
}

// The cache folds query heads onto kv heads and hands each slot's mass to
// the token in it, wherever the free list put it.
TEST(AttentionPolicies, StreamingCacheHandsSlotMassToItsToken) {
  KvStorageConfig sc;
  sc.n_layers = 2;
  sc.n_kv_heads = 2;
  sc.head_dim = 4;
  StreamingCache cache(make_kv_policy(parse_cache_spec("heavy:heavy=2,window=2")), sc, PositionContract::Reindex);
  std::vector<TokenMeta> tokens;
  for (int64_t i = 0; i < 4; ++i) tokens.push_back(TokenMeta{i, 0, 0});
  cache.append(tokens);  // slots 0..3 hold tokens 0..3
  // 4 query heads (2 per kv head) x 4 slots: token 1 gets 0.9 from one head, token 0 gets 0.5.
  std::vector<float> mass(16, 0.f);
  mass[size_t(3 * 4 + cache.slot_of(1))] = 0.9f;
  mass[size_t(0 * 4 + cache.slot_of(0))] = 0.5f;
  cache.observe_attention(1, 4, 1, 3, mass);
  // Token 4 pushes token 2 out of the window: tokens 0, 1, 2 compete for 2 slots; 2 scored 0 leaves.
  cache.append(std::vector<TokenMeta>{TokenMeta{4, 0, 0}});
  EXPECT_EQ(indices(cache.survivors()), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(cache.slot_of(2), -1);
  // Token 5: 0 (0.5), 1 (0.9) and 3 (0) compete; 3 leaves. Then token 0 gets 0.5 more than 1 has.
  cache.append(std::vector<TokenMeta>{TokenMeta{5, 0, 0}});
  EXPECT_EQ(indices(cache.survivors()), (std::vector<int64_t>{0, 1, 4, 5}));
  std::fill(mass.begin(), mass.end(), 0.f);
  mass[size_t(1 * 4 + cache.slot_of(0))] = 0.5f;  // head 1 of kv head 0
  cache.observe_attention(0, 4, 1, 5, mass);
  cache.append(std::vector<TokenMeta>{TokenMeta{6, 0, 0}});  // 0 (1.0), 1 (0.9), 4 (0): 4 leaves
  cache.append(std::vector<TokenMeta>{TokenMeta{7, 0, 0}});  // 0 (1.0), 1 (0.9), 5 (0): 5 leaves
  EXPECT_EQ(indices(cache.survivors()), (std::vector<int64_t>{0, 1, 6, 7}));
  EXPECT_THROW(cache.observe_attention(2, 4, 1, 7, mass), Error);  // no layer 2
  EXPECT_THROW(cache.observe_attention(0, 3, 1, 7, mass), Error);  // 3 heads do not fold onto 2 kv heads
}

TEST(AttentionPolicies, RegistryRowsAndDefaults) {
  for (const char* name : {"heavy", "adaptive", "snapkv"}) {
    EXPECT_TRUE(kv_policy_info(name).needs_attention) << name;
    EXPECT_TRUE(kv_policy_info(name).streaming) << name;
  }
  for (const char* name : {"dense", "window", "sink", "sink-logit", "modal", "chunked"})
    EXPECT_FALSE(kv_policy_info(name).needs_attention) << name;
  EXPECT_EQ(make_kv_policy(with_default_sizes(parse_cache_spec("heavy"), 300))->capacity(), 300);
  EXPECT_EQ(make_kv_policy(with_default_sizes(parse_cache_spec("adaptive"), 300))->capacity(), 300);
  EXPECT_EQ(make_kv_policy(parse_cache_spec("heavy:budget=64"))->capacity(), 64);
  EXPECT_EQ(make_kv_policy(parse_cache_spec("heavy:heavy=10,budget=64"))->capacity(), 64);
  EXPECT_EQ(make_kv_policy(parse_cache_spec("adaptive:sink=8,budget=64"))->capacity(), 64);
  const CacheSpec snap = with_default_sizes(parse_cache_spec("snapkv:prompt=100,budget=40"), 300);
  EXPECT_EQ(snap.options.window, 32);
  EXPECT_EQ(make_kv_policy(snap)->capacity(), 100);
  EXPECT_EQ(make_kv_policy(parse_cache_spec("snapkv:prompt=10,budget=40,window=4"))->capacity(), 40);
  for (const char* text : {"heavy:window=48,heavy=16", "heavy:budget=64", "adaptive:sink=4,window=60",
                           "snapkv:window=16,budget=64,prompt=256,pool=7"}) {
    EXPECT_EQ(cache_spec_string(parse_cache_spec(text)), text);
  }
}

TEST(AttentionPolicies, BadOptionsNameTheOption) {
  struct Case {
    const char* spec;
    const char* needle;
  };
  for (const Case& c : {Case{"heavy:window=8", "'budget'"}, Case{"heavy:heavy=4,window=8,budget=20", "'budget'"},
                        Case{"heavy:heavy=5,budget=4", "'window'"}, Case{"heavy:heavy=-1,window=3", "'heavy'"},
                        Case{"adaptive:sink=4", "'window'"}, Case{"adaptive:sink=8,budget=8", "'budget'"},
                        Case{"adaptive:sink=-2,window=3", "'sink'"}, Case{"snapkv:budget=8,window=4", "'prompt'"},
                        Case{"snapkv:prompt=8,budget=8,window=9", "'window'"},
                        Case{"snapkv:prompt=64,budget=2,window=4", "'budget'"},
                        Case{"snapkv:prompt=64,budget=8,window=4,pool=0", "'pool'"}}) {
    try {
      make_kv_policy(parse_cache_spec(c.spec));
      ADD_FAILURE() << c.spec << ": expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << c.spec << ": " << e.what();
    }
  }
  // An observation that does not fit the cache is an error, not a crash.
  auto policy = make_kv_policy(parse_cache_spec("heavy:budget=4"));
  std::vector<TokenMeta> evicted;
  policy->append(TokenMeta{0, 0, 0}, evicted);
  const std::vector<TokenMeta> stranger = {TokenMeta{9, 0, 0}};
  const std::vector<float> mass = {1.f};
  AttentionObservation obs;
  obs.tokens = stranger;
  obs.mass = mass;
  EXPECT_THROW(policy->observe_attention(obs), Error);
  obs.tokens = {};
  EXPECT_THROW(policy->observe_attention(obs), Error);
}
