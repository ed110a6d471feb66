// Caches that evict by attention (heavy, adaptive, snapkv) in a Session:
//   - the attention the Session hands over makes the same survivors as the
//     brute-force models of tests/unit/cache, fed with the float64 oracle's
//     probabilities of the same steps (the attn_probs tap);
//   - position contracts as for the fixed policies: reindex equals a fresh
//     dense Session on the survivors (one layer), shift equals reindex, and
//     absolute equals a dense run whose attention hides every key the cache
//     had evicted when the query arrived (key masks), for any number of layers;
//   - a planted model whose attention parks on token 7 (not 0): adaptive keeps
//     token 7 and stays close to dense, the fixed 4 + W cache does not.
// Errors compare as max_v |got - ref| / max_v |ref| per next-token logits row.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../cache/attention_policy_model.h"
#include "tiny_decoder.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"

using namespace sinklab;
using sinklab::test::rel_err;
using sinklab::test::survivor_indices;

namespace {

constexpr int64_t kVocab = 48, kDim = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kHidden = 64;
constexpr int32_t kSinkToken = kVocab - 1;  // the planted model's sink: the only token with feature 1

// A llama decoder written as safetensors. Random weights; `planted` makes
// every query of layer 0 park on kSinkToken: all other tokens carry a
// constant feature 0, kSinkToken alone carries feature 1, q reads feature 0
// and k reads feature 1 into head dim 7 (the slowest RoPE pair in both pair
// layouts, with theta 1e6 it barely turns), and v ignores both features, so
// the sink's value is small (a no-op sink).
std::shared_ptr<const Model> write_model(int layers, bool planted, const std::string& tag) {
  test::TinyDecoder model({kVocab, kDim, kHeads, kKvHeads, kHeadDim, kHidden}, 4321);
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, float scale, float offset = 0.f) {
    return model.add(name, rows, cols, scale, offset);
  };
  std::vector<float>* embed = add("model.embed_tokens.weight", kVocab, kDim, planted ? 0.3f : 1.f);
  add("lm_head.weight", kVocab, kDim, 0.5f);
  add("model.norm.weight", 1, kDim, 0.1f, 1.f);
  if (planted)
    for (int64_t t = 0; t < kVocab; ++t) {
      (*embed)[size_t(t * kDim)] = t == kSinkToken ? 0.f : 1.f;
      (*embed)[size_t(t * kDim + 1)] = t == kSinkToken ? 6.f : 0.f;
    }
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", 1, kDim, planted ? 0.f : 0.1f, 1.f);
    add(p + "post_attention_layernorm.weight", 1, kDim, 0.1f, 1.f);
    std::vector<float>* wq = add(p + "self_attn.q_proj.weight", kHeads * kHeadDim, kDim, planted ? 0.05f : 0.6f);
    std::vector<float>* wk = add(p + "self_attn.k_proj.weight", kKvHeads * kHeadDim, kDim, planted ? 0.05f : 0.6f);
    std::vector<float>* wv = add(p + "self_attn.v_proj.weight", kKvHeads * kHeadDim, kDim, 0.4f);
    if (planted) {
      for (int64_t h = 0; h < kHeads; ++h) (*wq)[size_t((h * kHeadDim + 7) * kDim)] = 1.05f;
      for (int64_t g = 0; g < kKvHeads; ++g) (*wk)[size_t((g * kHeadDim + 7) * kDim + 1)] = 1.05f;
      for (int64_t r = 0; r < kKvHeads * kHeadDim; ++r) (*wv)[size_t(r * kDim)] = (*wv)[size_t(r * kDim + 1)] = 0.f;
    }
    add(p + "self_attn.o_proj.weight", kDim, kHeads * kHeadDim, 0.3f);
    add(p + "mlp.gate_proj.weight", kHidden, kDim, 0.3f);
    add(p + "mlp.up_proj.weight", kHidden, kDim, 0.3f);
    add(p + "mlp.down_proj.weight", kDim, kHidden, 0.3f);
  }
  return model.load(layers, planted ? 1e6 : 100.0, "attn_caches_" + tag);
}

std::vector<int32_t> random_ids(size_t n, uint32_t seed, int32_t vocab = kVocab) {
  return test::random_ids(n, seed, vocab);
}

// What the brute force needs of one cache: its sizes and which model to use.
struct PolicyUnderTest {
  std::string spec;
  std::string policy;
  CacheOptions options;
  int64_t keep = 0, window = 0;
};

std::vector<PolicyUnderTest> policies_under_test() {
  std::vector<PolicyUnderTest> out;
  for (const char* spec : {"heavy:heavy=3,window=5", "adaptive:sink=2,window=6", "snapkv:prompt=16,budget=8,window=4,pool=3"}) {
    PolicyUnderTest p;
    p.spec = spec;
    const CacheSpec parsed = parse_cache_spec(spec);
    p.policy = parsed.policy;
    p.options = parsed.options;
    p.keep = p.policy == "heavy" ? parsed.options.heavy : parsed.options.sink;
    p.window = parsed.options.window;
    out.push_back(p);
  }
  return out;
}

// One step's observation per layer from the float64 oracle's probabilities
// (one query per step): query heads summed per kv head, slots mapped to tokens.
void record_probs(const Session& s, const TapEvent& e, cache_test::StreamEvent& step) {
  const std::vector<TokenMeta> alive = s.cache().survivors();
  cache_test::Observed o;
  o.layer = e.layer;
  o.n_layers = int(s.model().config().n_layers);
  o.n_kv_heads = int(kKvHeads);
  o.heads_per_kv = int(kHeads / kKvHeads);
  o.n_queries = 1;
  o.first_query = e.tokens[0];
  o.mass.assign(size_t(kKvHeads) * alive.size(), 0.f);
  for (size_t i = 0; i < alive.size(); ++i) {
    o.tokens.push_back(alive[i].index);
    const int32_t slot = s.cache().slot_of(alive[i].index);
    for (int64_t h = 0; h < kHeads; ++h)
      o.mass[size_t(h / o.heads_per_kv) * alive.size() + i] += e.data[h * e.cols + slot];
  }
  step.observed.push_back(std::move(o));
}

std::vector<int64_t> brute_force(const PolicyUnderTest& p, const std::vector<cache_test::StreamEvent>& log) {
  if (p.policy == "snapkv") return cache_test::snapkv_brute_force(p.options, log);
  return cache_test::scored_brute_force(p.policy, p.keep, p.window, log);
}

}  // namespace

TEST(AttentionCaches, SurvivorsFollowTheAttentionAndReindexEqualsFreshDense) {
  auto m = write_model(1, false, "one_layer");
  const std::vector<int32_t> ids = random_ids(48, 11);
  for (const PolicyUnderTest& p : policies_under_test()) {
    SessionOptions o;
    o.cache = p.spec;
    o.positions = "reindex";
    Session s(m, o);
    std::vector<cache_test::StreamEvent> log;
    s.taps().add("blk.*.attn_probs", [&](const TapEvent& e) { record_probs(s, e, log.back()); });
    double worst = 0;
    int64_t checked = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      log.push_back(cache_test::StreamEvent{{TokenMeta{int64_t(i), 0, 0}}, {}});
      s.feed(std::span<const int32_t>(&ids[i], 1));
      ASSERT_EQ(survivor_indices(s), brute_force(p, log)) << p.spec << " token " << i;
      if (s.evict_stats().evicted == 0) continue;
      std::vector<int32_t> kept;
      for (int64_t t : survivor_indices(s)) kept.push_back(ids[size_t(t)]);
      Session fresh(m);
      fresh.feed(kept);
      worst = std::max(worst, rel_err(s.logits(), fresh.logits()));
      ++checked;
    }
    EXPECT_GE(checked, 30) << p.spec;
    EXPECT_LE(worst, 1e-4) << p.spec;
  }
}

TEST(AttentionCaches, AbsoluteEqualsDenseWithEvictedKeysMaskedAndShiftEqualsReindex) {
  auto m = write_model(2, false, "two_layers");
  const std::vector<int32_t> ids = random_ids(44, 12);
  for (const PolicyUnderTest& p : policies_under_test()) {
    SessionOptions a, r, sh;
    a.cache = r.cache = sh.cache = p.spec;
    a.positions = "absolute";
    r.positions = "reindex";
    sh.positions = "shift";
    Session absolute(m, a), reindex(m, r), shift(m, sh), dense(m);
    std::vector<char> hidden(ids.size(), 0);
    double worst_abs = 0, worst_shift = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::span<const int32_t> one(&ids[i], 1);
      absolute.feed(one);
      // The dense run hides what the cache evicted up to and including this token.
      std::vector<char> alive(ids.size(), 0);
      for (int64_t t : survivor_indices(absolute)) alive[size_t(t)] = 1;
      for (size_t t = 0; t < i; ++t)
        if (!alive[t] && !hidden[t]) {
          dense.add_key_mask(KeyMask{{int64_t(t)}, {}, {}});
          hidden[t] = 1;
        }
      dense.feed(one);
      worst_abs = std::max(worst_abs, rel_err(absolute.logits(), dense.logits()));
      reindex.feed(one);
      shift.feed(one);
      ASSERT_EQ(survivor_indices(shift), survivor_indices(reindex)) << p.spec << " token " << i;
      worst_shift = std::max(worst_shift, rel_err(shift.logits(), reindex.logits()));
    }
    EXPECT_GE(absolute.evict_stats().evicted, 30) << p.spec;
    EXPECT_LE(worst_abs, 1e-4) << p.spec;
    EXPECT_LE(worst_shift, 1e-4) << p.spec;
    EXPECT_GT(shift.evict_stats().rows_rotated, 0) << p.spec;
  }
}

// snapkv's prompt fed in one call splits where the observation window starts
// (KvPolicy::batch_room), so the window's queries score the prompt alone; the
// scores are sums over those queries, so one batch keeps what token-by-token keeps.
TEST(AttentionCaches, BatchedFeedEqualsTokenByToken) {
  auto m = write_model(2, false, "batched");
  const std::vector<int32_t> ids = random_ids(40, 13);
  for (const char* spec : {"snapkv:prompt=24,budget=10,window=6", "heavy:heavy=4,window=6", "adaptive:sink=3,window=5"}) {
    SessionOptions o;
    o.cache = spec;
    Session batched(m, o), single(m, o);
    batched.feed(std::span<const int32_t>(ids.data(), 24));
    for (size_t i = 0; i < 24; ++i) single.feed(std::span<const int32_t>(&ids[i], 1));
    EXPECT_LE(rel_err(batched.logits(), single.logits()), 1e-4) << spec;
    for (size_t i = 24; i < ids.size(); ++i) {
      batched.feed(std::span<const int32_t>(&ids[i], 1));
      single.feed(std::span<const int32_t>(&ids[i], 1));
      ASSERT_EQ(survivor_indices(batched), survivor_indices(single)) << spec << " token " << i;
    }
    EXPECT_LE(rel_err(batched.logits(), single.logits()), 1e-4) << spec;
  }
}

// The planted sink is token 7 (kSinkToken appears nowhere else). Tolerance:
// adaptive's next-token logits stay within 2% of dense (relative to the
// largest logit) at every step after the cache first evicts; the fixed 4 + 8
// cache loses token 7 and is off by more than 20%.
TEST(AttentionCaches, AdaptiveFindsAPlantedSinkAtToken7) {
  auto m = write_model(1, true, "planted");
  std::vector<int32_t> ids = random_ids(64, 14, kVocab - 1);
  ids[7] = kSinkToken;
  Session dense(m);
  std::vector<float> rows;
  dense.feed(ids, &rows);
  const int64_t V = kVocab;
  double worst_adaptive = 0, worst_sink = 0, worst_heavy = 0;
  SessionOptions ad, sk, hv;
  ad.cache = "adaptive:sink=4,window=8";
  sk.cache = "sink:sink=4,window=8";
  hv.cache = "heavy:heavy=4,window=8";
  Session adaptive(m, ad), sink(m, sk), heavy(m, hv);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::span<const int32_t> one(&ids[i], 1);
    adaptive.feed(one);
    sink.feed(one);
    heavy.feed(one);
    if (i < 20) continue;  // token 7 has left the window of 8 (at token 15) and the caches evict every step
    const std::vector<int64_t> kept = survivor_indices(adaptive);
    ASSERT_NE(std::find(kept.begin(), kept.end(), 7), kept.end()) << "adaptive lost token 7 at token " << i;
    const std::vector<int64_t> heavy_kept = survivor_indices(heavy);
    ASSERT_NE(std::find(heavy_kept.begin(), heavy_kept.end(), 7), heavy_kept.end()) << "heavy, token " << i;
    const std::span<const float> ref(rows.data() + i * size_t(V), size_t(V));
    worst_adaptive = std::max(worst_adaptive, rel_err(adaptive.logits(), ref));
    worst_heavy = std::max(worst_heavy, rel_err(heavy.logits(), ref));
    worst_sink = std::max(worst_sink, rel_err(sink.logits(), ref));
  }
  std::printf("planted sink at token 7: worst relative logit error vs dense: adaptive %.5f, heavy %.5f, sink 4+8 %.5f\n",
              worst_adaptive, worst_heavy, worst_sink);
  EXPECT_LE(worst_adaptive, 0.02);
  EXPECT_LE(worst_heavy, 0.02);
  EXPECT_GE(worst_sink, 0.2);
}
