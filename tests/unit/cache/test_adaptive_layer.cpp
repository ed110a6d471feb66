// adaptive-layer (adaptive sinks chosen per layer): on random streams in
// random batches, each followed by random attention on the cache, the
// survivors and the tokens each layer may see equal the brute-force model of
// attention_policy_model.h; StreamingCache hides the other layers' sinks by
// slot; the registry row and option errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "attention_policy_model.h"
#include "cache_test_util.h"

using namespace sinklab;
using namespace cache_test;

namespace {

Observed random_observation(std::mt19937& rng, int layer, int n_layers, int kv, int group, int64_t n_queries,
                            int64_t first_query, const std::vector<TokenMeta>& alive) {
  Observed o;
  o.layer = layer;
  o.n_layers = n_layers;
  o.n_kv_heads = kv;
  o.heads_per_kv = group;
  o.n_queries = n_queries;
  o.first_query = first_query;
  o.tokens = indices(alive);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  o.mass.resize(size_t(kv) * alive.size());
  for (float& m : o.mass) {
    const float x = u(rng);
    m = float(n_queries * group) * x * x * x * x;
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

// The survivors layer l may see: all minus those hidden from it.
std::vector<int64_t> visible(const KvPolicy& p, int layer) {
  std::vector<TokenMeta> hidden;
  p.hidden_from_layer(layer, hidden);
  std::set<int64_t> h;
  for (const TokenMeta& t : hidden) h.insert(t.index);
  std::vector<int64_t> out;
  for (const TokenMeta& t : p.survivors())
    if (!h.count(t.index)) out.push_back(t.index);
  return out;
}

}  // namespace

TEST(AdaptiveLayer, SurvivorsAndEachLayersViewEqualTheBruteForce) {
  struct Case {
    int64_t sink, window;
    int layers, kv, group;
  };
  for (const Case c : {Case{1, 6, 3, 2, 2}, Case{3, 10, 2, 1, 4}, Case{2, 4, 4, 3, 1}, Case{0, 3, 2, 1, 1}}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::string spec = "adaptive-layer:sink=" + std::to_string(c.sink) + ",window=" +
                               std::to_string(c.window) + ",layers=" + std::to_string(c.layers);
      SCOPED_TRACE(spec + " seed " + std::to_string(seed));
      std::mt19937 rng(seed * 7919u + uint32_t(c.layers));
      const std::vector<TokenMeta> stream = random_stream(rng, 250, 8, true, 1.0);
      auto policy = make_kv_policy(parse_cache_spec(spec));
      ASSERT_EQ(policy->name(), "adaptive-layer");
      ASSERT_EQ(policy->capacity(), c.layers * c.sink + c.window);
      std::vector<StreamEvent> log;
      std::set<int64_t> evicted_once;
      size_t shared_sinks_differ = 0;
      for (size_t pos = 0; pos < stream.size();) {
        const size_t n = std::min(stream.size() - pos, size_t(std::uniform_int_distribution<int>(1, 9)(rng)));
        StreamEvent e;
        e.batch.assign(stream.begin() + std::ptrdiff_t(pos), stream.begin() + std::ptrdiff_t(pos + n));
        std::vector<TokenMeta> evicted;
        policy->append(std::span<const TokenMeta>(e.batch), evicted);
        for (const TokenMeta& t : evicted) ASSERT_TRUE(evicted_once.insert(t.index).second) << t.index;
        const std::vector<TokenMeta> alive = policy->survivors();
        for (int layer = 0; layer < c.layers; ++layer) {
          e.observed.push_back(random_observation(rng, layer, c.layers, c.kv, c.group, int64_t(n), e.batch[0].index, alive));
          observe(*policy, e.observed.back());
        }
        log.push_back(std::move(e));
        pos += n;
        const PerLayerKept want = per_layer_brute_force(c.sink, c.window, c.layers, log);
        ASSERT_EQ(indices(policy->survivors()), want.alive) << "after " << pos << " tokens";
        for (int layer = 0; layer < c.layers; ++layer)
          ASSERT_EQ(visible(*policy, layer), want.visible[size_t(layer)]) << "layer " << layer << " after " << pos;
        if (want.visible[0] != want.visible[1]) ++shared_sinks_differ;
        ASSERT_LE(policy->size(), policy->capacity());
      }
      EXPECT_EQ(evicted_once.size() + size_t(policy->size()), stream.size());
      EXPECT_GT(evicted_once.size(), stream.size() / 2);
      // The layers choose differently (the test would not tell per-layer from one set otherwise).
      if (c.sink > 0) {
        EXPECT_GT(shared_sinks_differ, 10u);
      }
    }
  }
}

// The cache turns the policy's hidden tokens into -inf at their slots, per layer.
TEST(AdaptiveLayer, StreamingCacheHidesOtherLayersSinksBySlot) {
  KvStorageConfig sc;
  sc.n_layers = 2;
  sc.n_kv_heads = 1;
  sc.head_dim = 4;
  StreamingCache cache(make_kv_policy(parse_cache_spec("adaptive-layer:sink=1,window=2,layers=2")), sc,
                       PositionContract::Reindex);
  EXPECT_EQ(cache.storage().capacity(), 4);
  std::vector<TokenMeta> tokens;
  for (int64_t i = 0; i < 3; ++i) tokens.push_back(TokenMeta{i, 0, 0});
  cache.append(tokens);  // token 0 left the window: both layers keep it
  // Token 1 takes all of layer 1's attention (1 query, 1 head), nothing at layer 0.
  std::vector<float> mass(size_t(cache.storage().high_water()), 0.f);
  mass[size_t(cache.slot_of(1))] = 1.f;
  cache.observe_attention(1, 1, 1, 2, mass);
  std::fill(mass.begin(), mass.end(), 0.f);
  mass[size_t(cache.slot_of(0))] = 1.f;
  cache.observe_attention(0, 1, 1, 2, mass);
  // Token 3 pushes 1 out of the window: layer 0 keeps 0 (score 1 vs 0), layer 1 keeps 1.
  cache.append(std::vector<TokenMeta>{TokenMeta{3, 0, 0}});
  EXPECT_EQ(indices(cache.survivors()), (std::vector<int64_t>{0, 1, 2, 3}));
  for (int layer = 0; layer < 2; ++layer) {
    std::vector<float> bias = cache.slot_key_bias();
    cache.hide_from_layer(layer, bias);
    const int64_t hidden = layer == 0 ? 1 : 0;
    for (int64_t t = 0; t < 4; ++t) {
      const float b = bias[size_t(cache.slot_of(t))];
      if (t == hidden) {
        EXPECT_TRUE(std::isinf(b) && b < 0) << "layer " << layer << " token " << t;
      } else {
        EXPECT_EQ(b, 0.f) << "layer " << layer << " token " << t;
      }
    }
  }
  std::vector<float> bias = cache.slot_key_bias();
  EXPECT_THROW(cache.hide_from_layer(2, bias), Error);  // no layer 2
  bias.pop_back();
  EXPECT_THROW(cache.hide_from_layer(0, bias), Error);  // not one bias per slot
  EXPECT_THROW(cache.observe_attention(0, 1, 1, 3, std::vector<float>(3, 0.f)), Error);
}

TEST(AdaptiveLayer, RegistryRowAndOptionErrors) {
  const KvPolicyInfo& row = kv_policy_info("adaptive-layer");
  EXPECT_TRUE(row.needs_attention);
  EXPECT_TRUE(row.masks_per_layer);
  EXPECT_TRUE(row.streaming);
  for (const KvPolicyInfo& p : kv_policies()) {
    if (std::string(p.name) != "adaptive-layer") {
      EXPECT_FALSE(p.masks_per_layer) << p.name;
    }
  }
  // Every other policy hides nothing from any layer.
  std::vector<TokenMeta> hidden{TokenMeta{1, 0, 0}};
  make_kv_policy(parse_cache_spec("adaptive:sink=1,window=3"))->hidden_from_layer(0, hidden);
  EXPECT_TRUE(hidden.empty());
  EXPECT_EQ(make_kv_policy(parse_cache_spec("adaptive-layer:sink=2,budget=16,layers=3"))->capacity(), 3 * 2 + 14);
  EXPECT_EQ(make_kv_policy(with_default_sizes(parse_cache_spec("adaptive-layer:layers=2"), 300))->capacity(),
            2 * 4 + 296);
  const char* text = "adaptive-layer:sink=1,window=15,layers=3";
  EXPECT_EQ(cache_spec_string(parse_cache_spec(text)), text);
  for (const char* bad : {"adaptive-layer:sink=1,window=4", "adaptive-layer:sink=-1,window=4,layers=2",
                          "adaptive-layer:sink=4,budget=4,layers=2", "adaptive-layer:sink=1,window=3,budget=9,layers=2",
                          "adaptive-layer:sink=1,layers=2"}) {
    try {
      make_kv_policy(parse_cache_spec(bad));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("adaptive-layer cache: option"), std::string::npos) << e.what();
    }
  }
  // Attention from a cache of another number of layers is refused.
  auto p = make_kv_policy(parse_cache_spec("adaptive-layer:sink=1,window=2,layers=2"));
  std::vector<TokenMeta> ev;
  p->append(TokenMeta{0, 0, 0}, ev);
  Observed o;
  o.n_layers = 3;
  o.tokens = {0};
  o.mass = {1.f};
  EXPECT_THROW(observe(*p, o), Error);
}
