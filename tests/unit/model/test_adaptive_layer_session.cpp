// adaptive-layer (adaptive sinks chosen per layer) in a Session:
//   - reindex: the survivors and each layer's view equal the brute-force model
//     of tests/unit/cache fed with the float64 oracle's probabilities; shift
//     equals reindex; absolute equals a dense run that hides, per layer, every
//     key that layer had lost when the query arrived (key masks);
//   - a planted 2-layer model whose layer 0 parks on token 0 and layer 1 on
//     token 7: adaptive-layer with sink=1 keeps both and stays close to dense,
//     adaptive with sink=1 (one set for all layers) keeps one and does not.
// Errors compare as max_v |got - ref| / max_v |ref| per next-token logits row.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
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

constexpr int64_t kVocab = 48, kDim = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kHidden = 64, kLayers = 2;
// The planted model's sinks: kSink0 (feature 2) is read by layer 0's keys,
// kSink7 (feature 1) by layer 1's; every other token carries feature 0.
constexpr int32_t kSink7 = kVocab - 1, kSink0 = kVocab - 2;

// A 2-layer llama decoder as safetensors, random weights. `planted`: q reads
// feature 0 and layer l's k reads feature 2 (l = 0) or 1 (l = 1) into head
// dim 7 (the slowest RoPE pair; theta 1e6), v ignores features 0..2, and no
// layer writes features 0..2 to the residual, so every query of layer 0
// parks on kSink0 and every query of layer 1 on kSink7 (no-op sinks).
std::shared_ptr<const Model> write_model(bool planted, const std::string& tag) {
  test::TinyDecoder model({kVocab, kDim, kHeads, kKvHeads, kHeadDim, kHidden}, 2718);
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, float scale, float offset = 0.f) {
    return model.add(name, rows, cols, scale, offset);
  };
  std::vector<float>* embed = add("model.embed_tokens.weight", kVocab, kDim, planted ? 0.3f : 1.f);
  add("lm_head.weight", kVocab, kDim, 0.5f);
  add("model.norm.weight", 1, kDim, 0.1f, 1.f);
  if (planted)
    for (int64_t t = 0; t < kVocab; ++t) {
      (*embed)[size_t(t * kDim)] = t == kSink0 || t == kSink7 ? 0.f : 1.f;
      (*embed)[size_t(t * kDim + 1)] = t == kSink7 ? 6.f : 0.f;
      (*embed)[size_t(t * kDim + 2)] = t == kSink0 ? 6.f : 0.f;
    }
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", 1, kDim, planted ? 0.f : 0.1f, 1.f);
    add(p + "post_attention_layernorm.weight", 1, kDim, 0.1f, 1.f);
    std::vector<float>* wq = add(p + "self_attn.q_proj.weight", kHeads * kHeadDim, kDim, planted ? 0.05f : 0.6f);
    std::vector<float>* wk = add(p + "self_attn.k_proj.weight", kKvHeads * kHeadDim, kDim, planted ? 0.05f : 0.6f);
    std::vector<float>* wv = add(p + "self_attn.v_proj.weight", kKvHeads * kHeadDim, kDim, 0.4f);
    std::vector<float>* wo = add(p + "self_attn.o_proj.weight", kDim, kHeads * kHeadDim, planted ? 0.1f : 0.3f);
    add(p + "mlp.gate_proj.weight", kHidden, kDim, 0.3f);
    add(p + "mlp.up_proj.weight", kHidden, kDim, 0.3f);
    std::vector<float>* wd = add(p + "mlp.down_proj.weight", kDim, kHidden, planted ? 0.1f : 0.3f);
    if (!planted) continue;
    const int64_t feature = l == 0 ? 2 : 1;
    for (int64_t h = 0; h < kHeads; ++h) (*wq)[size_t((h * kHeadDim + 7) * kDim)] = 1.5f;
    for (int64_t g = 0; g < kKvHeads; ++g) (*wk)[size_t((g * kHeadDim + 7) * kDim + feature)] = 1.5f;
    for (int64_t r = 0; r < kKvHeads * kHeadDim; ++r)
      for (int64_t f = 0; f < 3; ++f) (*wv)[size_t(r * kDim + f)] = 0.f;
    for (int64_t f = 0; f < 3; ++f) {
      std::fill_n(wo->begin() + f * kHeads * kHeadDim, kHeads * kHeadDim, 0.f);
      std::fill_n(wd->begin() + f * kHidden, kHidden, 0.f);
    }
  }
  return model.load(kLayers, planted ? 1e6 : 100.0, "adaptive_layer_" + tag);
}

std::vector<int32_t> random_ids(size_t n, uint32_t seed, int32_t vocab = kVocab) {
  return test::random_ids(n, seed, vocab);
}

// The survivors cache layer `layer` does not see.
std::vector<int64_t> hidden_indices(const Session& s, int layer) {
  std::vector<TokenMeta> hidden;
  s.cache().policy().hidden_from_layer(layer, hidden);
  std::vector<int64_t> out;
  for (const TokenMeta& t : hidden) out.push_back(t.index);
  return out;
}

// One step's observation per layer from the float64 oracle's probabilities
// (one query per step): query heads summed per kv head, slots mapped to tokens.
void record_probs(const Session& s, const TapEvent& e, cache_test::StreamEvent& step) {
  const std::vector<TokenMeta> alive = s.cache().survivors();
  cache_test::Observed o;
  o.layer = e.layer;
  o.n_layers = int(kLayers);
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

}  // namespace

// With two layers a fresh dense run on the survivors would recompute layer 1's
// keys from a different history, so reindex is checked against the brute
// force here and against absolute's masked dense run through shift below.
TEST(AdaptiveLayerSession, ReindexFollowsTheBruteForce) {
  auto m = write_model(false, "reindex");
  const std::vector<int32_t> ids = random_ids(48, 21);
  SessionOptions o;
  o.cache = "adaptive-layer:sink=2,window=6";
  o.positions = "reindex";
  Session s(m, o);
  ASSERT_EQ(s.cache_spec().options.layers, kLayers);  // filled from the model
  ASSERT_EQ(s.cache().policy().capacity(), kLayers * 2 + 6);
  std::vector<cache_test::StreamEvent> log;
  s.taps().add("blk.*.attn_probs", [&](const TapEvent& e) { record_probs(s, e, log.back()); });
  int64_t with_hidden = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    log.push_back(cache_test::StreamEvent{{TokenMeta{int64_t(i), 0, 0}}, {}});
    s.feed(std::span<const int32_t>(&ids[i], 1));
    const cache_test::PerLayerKept want = cache_test::per_layer_brute_force(2, 6, int(kLayers), log);
    const std::vector<int64_t> alive = survivor_indices(s);
    ASSERT_EQ(alive, want.alive) << "token " << i;
    for (int layer = 0; layer < int(kLayers); ++layer) {
      std::vector<int64_t> seen;
      const std::vector<int64_t> hidden = hidden_indices(s, layer);
      for (int64_t t : alive)
        if (std::find(hidden.begin(), hidden.end(), t) == hidden.end()) seen.push_back(t);
      ASSERT_EQ(seen, want.visible[size_t(layer)]) << "layer " << layer << " token " << i;
      if (!hidden.empty()) ++with_hidden;
    }
  }
  EXPECT_GE(s.evict_stats().evicted, 30);
  EXPECT_GE(with_hidden, 10);  // the layers chose differently often enough to test the masks
  // A layer count that is not the model's is refused up front.
  SessionOptions bad;
  bad.cache = "adaptive-layer:sink=2,window=6,layers=3";
  EXPECT_THROW(Session(m, bad), Error);
}

TEST(AdaptiveLayerSession, AbsoluteEqualsDenseWithPerLayerMasksAndShiftEqualsReindex) {
  auto m = write_model(false, "absolute");
  const std::vector<int32_t> ids = random_ids(44, 22);
  SessionOptions a, r, sh;
  a.cache = r.cache = sh.cache = "adaptive-layer:sink=2,window=5";
  a.positions = "absolute";
  r.positions = "reindex";
  sh.positions = "shift";
  Session absolute(m, a), reindex(m, r), shift(m, sh), dense(m);
  // A token a layer has lost (hidden or evicted) never comes back to it: one mask each.
  std::set<std::pair<int64_t, int>> masked;
  double worst_abs = 0, worst_shift = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::span<const int32_t> one(&ids[i], 1);
    absolute.feed(one);
    const std::vector<int64_t> alive = survivor_indices(absolute);
    for (int layer = 0; layer < int(kLayers); ++layer) {
      const std::vector<int64_t> hidden = hidden_indices(absolute, layer);
      for (int64_t t = 0; t < int64_t(i); ++t) {
        const bool gone = std::find(alive.begin(), alive.end(), t) == alive.end() ||
                          std::find(hidden.begin(), hidden.end(), t) != hidden.end();
        if (gone && masked.insert({t, layer}).second) dense.add_key_mask(KeyMask{{t}, {layer}, {}});
      }
    }
    dense.feed(one);
    worst_abs = std::max(worst_abs, rel_err(absolute.logits(), dense.logits()));
    reindex.feed(one);
    shift.feed(one);
    ASSERT_EQ(survivor_indices(shift), survivor_indices(reindex)) << "token " << i;
    worst_shift = std::max(worst_shift, rel_err(shift.logits(), reindex.logits()));
  }
  EXPECT_GE(absolute.evict_stats().evicted, 25);
  EXPECT_LE(worst_abs, 1e-4);
  EXPECT_LE(worst_shift, 1e-4);
  EXPECT_GT(shift.evict_stats().rows_rotated, 0);
}

// Tolerance as for adaptive's planted sink at token 7: within 2% of dense
// (relative to the largest logit) at every step once the caches evict every
// step; the cache that drops a layer's sink is off by more than 20%.
TEST(AdaptiveLayerSession, KeepsEachLayersPlantedSinkWhereOneSetKeepsOne) {
  auto m = write_model(true, "planted");
  std::vector<int32_t> ids = random_ids(64, 23, kVocab - 2);
  ids[0] = kSink0;
  ids[7] = kSink7;
  Session dense(m);
  std::vector<float> rows;
  dense.feed(ids, &rows);
  SessionOptions pl, gl;
  pl.cache = "adaptive-layer:sink=1,window=8";
  gl.cache = "adaptive:sink=1,window=8";
  Session per_layer(m, pl), global(m, gl);
  double worst_per_layer = 0, worst_global = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::span<const int32_t> one(&ids[i], 1);
    per_layer.feed(one);
    global.feed(one);
    if (i < 20) continue;  // token 7 has left the window of 8 (at token 15) and the caches evict every step
    EXPECT_EQ(hidden_indices(per_layer, 0), std::vector<int64_t>{7}) << "token " << i;
    EXPECT_EQ(hidden_indices(per_layer, 1), std::vector<int64_t>{0}) << "token " << i;
    const std::span<const float> ref(rows.data() + i * size_t(kVocab), size_t(kVocab));
    worst_per_layer = std::max(worst_per_layer, rel_err(per_layer.logits(), ref));
    worst_global = std::max(worst_global, rel_err(global.logits(), ref));
  }
  const std::vector<int64_t> kept = survivor_indices(global);
  const bool global_kept_both = std::count_if(kept.begin(), kept.end(), [](int64_t t) { return t == 0 || t == 7; }) == 2;
  std::printf("planted sinks at tokens 0 (layer 0) and 7 (layer 1): worst relative logit error vs dense: "
              "adaptive-layer sink=1 %.5f, adaptive sink=1 %.5f\n",
              worst_per_layer, worst_global);
  EXPECT_FALSE(global_kept_both);
  EXPECT_LE(worst_per_layer, 0.02);
  EXPECT_GE(worst_global, 0.2);
}
