// Streaming caches in a Session, checked against exact references after many
// evictions (each stream is at least 3x the cache budget):
//   reindex  == a fresh dense Session fed only the surviving tokens (positions
//               0..n-1). Exact only for a one-layer model: with more layers the
//               survivors' keys depend on the context they were computed in,
//               which the fresh session does not have (that difference is the
//               StreamingLLM recompute baseline, not an error).
//   shift    == reindex (same positions, keys rotated on insert and re-rotated
//               on eviction).
//   absolute == a dense run of the whole stream whose attention hides every key
//               the cache had evicted when the query arrived. For sink S + window
//               W that is exactly the sink_keys = S, window = W mask (query t sees
//               keys j < S and t - j < W), which a dense Session applies with
//               SessionOptions::attn_sink_keys / attn_window; keys keep their
//               stream positions in both.
// Errors compare as max_v |got - ref| / max_v |ref| per next-token logits row.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../cache/cache_test_util.h"
#include "assets.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"

using namespace sinklab;

namespace {

double rel_err(std::span<const float> got, std::span<const float> ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(double(got[i]) - double(ref[i])));
    scale = std::max(scale, std::fabs(double(ref[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

std::shared_ptr<const Model> load_stories() {
  LoadOptions o;
  o.tokenizer_path = test::asset("models/stories260K/tok512.bin");
  return Model::load(test::asset("models/stories260K/stories260K.bin"), o);
}

std::vector<int32_t> stories_stream(size_t n) {
  std::ifstream f(test::asset("golden/stories260K_greedy200_ids.txt"));
  std::vector<int32_t> ids = {1};
  for (int32_t x; f >> x;) ids.push_back(x);
  while (ids.size() < n) ids.push_back(ids[ids.size() % 150 + 1]);
  ids.resize(n);
  return ids;
}

// A random one-layer decoder written as safetensors: llama (RoPE) or sinklab
// (learned sink logits, optionally without positional encoding).
struct TinySpec {
  std::string model_type = "llama";
  bool sinks = false;
  bool no_rope = false;
  int layers = 1;
};

std::shared_ptr<const Model> tiny_model(const TinySpec& t, const std::string& tag) {
  const int64_t V = 48, D = 32, H = 4, Hkv = 2, hd = 8, F = 64;
  // One folder per test process: ctest runs tests that write the same model in parallel.
  const std::string dir = ::testing::TempDir() + "/sinklab_streaming_" + tag + "_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<std::vector<float>> store;
  std::vector<TensorEntry> entries;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0.f) {
    int64_t numel = 1;
    for (int64_t s : shape) numel *= s;
    std::vector<float> w(static_cast<size_t>(numel));
    for (float& x : w) x = offset + scale * u(rng);
    store.push_back(std::move(w));
    const auto& b = store.back();
    entries.push_back({name, TensorType::F32, shape, reinterpret_cast<const uint8_t*>(b.data()),
                       b.size() * sizeof(float)});
  };
  store.reserve(64);
  add("model.embed_tokens.weight", {V, D}, 1.f);
  add("lm_head.weight", {V, D}, 0.5f);
  add("model.norm.weight", {D}, 0.1f, 1.f);
  for (int l = 0; l < t.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, 0.1f, 1.f);
    add(p + "post_attention_layernorm.weight", {D}, 0.1f, 1.f);
    add(p + "self_attn.q_proj.weight", {H * hd, D}, 0.6f);
    add(p + "self_attn.k_proj.weight", {Hkv * hd, D}, 0.6f);
    add(p + "self_attn.v_proj.weight", {Hkv * hd, D}, 0.4f);
    add(p + "self_attn.o_proj.weight", {D, H * hd}, 0.3f);
    add(p + "mlp.gate_proj.weight", {F, D}, 0.3f);
    add(p + "mlp.up_proj.weight", {F, D}, 0.3f);
    add(p + "mlp.down_proj.weight", {D, F}, 0.3f);
    if (t.sinks) add(p + "self_attn.sinks", {H}, 1.f, 1.f);
  }
  write_safetensors(dir + "/model.safetensors", entries);
  std::ofstream(dir + "/config.json")
      << "{\"model_type\": \"" << t.model_type << "\", \"vocab_size\": " << V << ", \"hidden_size\": " << D
      << ", \"num_hidden_layers\": " << t.layers << ", \"num_attention_heads\": " << H
      << ", \"num_key_value_heads\": " << Hkv << ", \"head_dim\": " << hd << ", \"intermediate_size\": " << F
      << ", \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, \"rope_theta\": 100.0"
      << (t.sinks ? ", \"attention_sinks\": true" : "")
      << (t.no_rope ? ", \"position_encoding\": \"none\"" : "") << "}";
  std::shared_ptr<const Model> model = Model::load(dir);
  std::filesystem::remove_all(dir);  // a loaded model no longer needs its files
  return model;
}

std::vector<int32_t> random_ids(size_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& x : ids) x = int32_t(rng() % uint32_t(vocab));
  return ids;
}

std::vector<int32_t> survivor_ids(const Session& s, const std::vector<int32_t>& stream) {
  std::vector<int32_t> out;
  for (const TokenMeta& t : s.cache().survivors()) out.push_back(stream[size_t(t.index)]);
  return out;
}

// Streams `ids` token by token through `cache`; after each eviction compares
// the next-token logits with a fresh dense Session on the survivors.
double reindex_vs_fresh(const std::shared_ptr<const Model>& m, const std::string& cache,
                        const std::vector<int32_t>& ids, int64_t* checked) {
  SessionOptions o;
  o.cache = cache;
  o.positions = "reindex";
  Session s(m, o);
  double worst = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    s.feed(std::span<const int32_t>(&ids[i], 1));
    if (s.evict_stats().evicted == 0) continue;
    Session fresh(m);
    fresh.feed(survivor_ids(s, ids));
    worst = std::max(worst, rel_err(s.logits(), fresh.logits()));
    ++*checked;
  }
  return worst;
}

}  // namespace

TEST(Streaming, ReindexEqualsFreshDenseOnSurvivorsOneLayer) {
  auto m = tiny_model({}, "llama1");
  const std::vector<int32_t> ids = random_ids(40, 48, 7);
  for (const char* cache : {"sink:sink=2,window=6", "window:window=8", "sink:sink=1,window=4"}) {
    int64_t checked = 0;
    const double err = reindex_vs_fresh(m, cache, ids, &checked);
    EXPECT_GE(checked, 30) << cache;
    EXPECT_LE(err, 1e-4) << cache;
  }
  // With two layers the survivors' keys remember the evicted context, so a
  // fresh encoding of the survivors differs (the recompute baseline).
  TinySpec two;
  two.layers = 2;
  int64_t checked = 0;
  EXPECT_GT(reindex_vs_fresh(tiny_model(two, "llama2"), "sink:sink=2,window=6", ids, &checked), 1e-3);
}

TEST(Streaming, SinkLogitModelKeepsItsSinksInEveryPolicy) {
  TinySpec t;
  t.model_type = "sinklab";
  t.sinks = true;
  auto m = tiny_model(t, "sinks1");
  const std::vector<int32_t> ids = random_ids(36, 48, 9);
  for (const char* cache : {"sink-logit:window=8", "sink:sink=2,window=6", "window:window=8"}) {
    int64_t checked = 0;
    EXPECT_LE(reindex_vs_fresh(m, cache, ids, &checked), 1e-4) << cache;
    EXPECT_GE(checked, 28) << cache;
  }
}

TEST(Streaming, ShiftEqualsReindexAfterManyEvictions) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  const std::vector<int32_t> ids = stories_stream(130);  // > 3x the budget of 32
  for (const char* cache : {"sink:sink=4,window=28", "window:window=32"}) {
    SessionOptions r, s;
    r.cache = s.cache = cache;
    r.positions = "reindex";
    s.positions = "shift";
    Session reindex(m, r), shift(m, s);
    double worst = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      reindex.feed(std::span<const int32_t>(&ids[i], 1));
      shift.feed(std::span<const int32_t>(&ids[i], 1));
      worst = std::max(worst, rel_err(shift.logits(), reindex.logits()));
    }
    EXPECT_LE(worst, 1e-4) << cache;
    SessionOptions a = r;
    a.positions = "absolute";
    Session absolute(m, a);
    absolute.feed(ids);
    // RoPE is relative: without sinks there are no gaps and absolute equals
    // reindex; the sinks' gap to the window makes them differ.
    const double abs_err = rel_err(absolute.logits(), reindex.logits());
    if (std::string(cache).starts_with("sink")) {
      EXPECT_GT(abs_err, 1e-3) << cache;
    } else {
      EXPECT_LE(abs_err, 1e-4) << cache;
    }
    EXPECT_EQ(shift.evict_stats().evicted, int64_t(ids.size()) - 32) << cache;
    EXPECT_GT(shift.evict_stats().rows_rotated, 0) << cache;
    EXPECT_EQ(reindex.evict_stats().rows_rotated, 0) << cache;
  }
}

TEST(Streaming, AbsoluteEqualsDenseWithEvictedKeysMasked) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  const std::vector<int32_t> ids = stories_stream(130);
  struct Case {
    const char* cache;
    int64_t sink, window;
  };
  for (const Case& c : {Case{"sink:sink=4,window=28", 4, 28}, Case{"window:window=32", 0, 32}}) {
    SessionOptions ro;
    ro.attn_window = c.window;
    ro.attn_sink_keys = c.sink;
    Session ref(m, ro);
    std::vector<float> ref_rows;
    ref.feed(ids, &ref_rows);
    SessionOptions so;
    so.cache = c.cache;
    so.positions = "absolute";
    Session s(m, so);
    const int64_t V = m->config().vocab;
    double worst = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      s.feed(std::span<const int32_t>(&ids[i], 1));
      worst = std::max(worst, rel_err(s.logits(), std::span<const float>(ref_rows.data() + i * size_t(V),
                                                                       size_t(V))));
    }
    EXPECT_LE(worst, 1e-4) << c.cache;
    EXPECT_EQ(s.evict_stats().cached, 32) << c.cache;
  }
}

TEST(Streaming, BatchedFeedEqualsTokenByToken) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  const std::vector<int32_t> ids = stories_stream(110);
  for (const char* positions : {"reindex", "shift", "absolute"}) {
    SessionOptions o;
    o.cache = "sink:sink=4,window=28";
    o.positions = positions;
    Session batched(m, o), single(m, o);
    std::vector<float> rows;
    batched.feed(std::span<const int32_t>(ids.data(), 20));
    batched.feed(std::span<const int32_t>(ids.data() + 20, ids.size() - 20), &rows);
    const int64_t V = m->config().vocab;
    ASSERT_EQ(rows.size(), (ids.size() - 20) * size_t(V));
    double worst = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      single.feed(std::span<const int32_t>(&ids[i], 1));
      if (i < 20) continue;
      worst = std::max(worst, rel_err(single.logits(),
                                      std::span<const float>(rows.data() + (i - 20) * size_t(V), size_t(V))));
    }
    EXPECT_LE(worst, 1e-4) << positions;
    EXPECT_EQ(batched.evict_stats().fed, int64_t(ids.size()));
    EXPECT_EQ(batched.evict_stats().evicted, int64_t(ids.size()) - 32);
  }
}

TEST(Streaming, DenseBeyondTrainingLengthNeedsAStreamingPolicy) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  Session dense(m);
  EXPECT_EQ(dense.context(), 512);
  EXPECT_FALSE(dense.streaming());
  const std::vector<int32_t> ids = stories_stream(600);
  EXPECT_THROW(dense.feed(ids), Error);
  SessionOptions o;
  o.cache = "sink:sink=4,window=252";
  Session s(m, o);
  s.feed(ids);
  EXPECT_TRUE(s.streaming());
  EXPECT_EQ(s.evict_stats().cached, 256);
  EXPECT_EQ(s.evict_stats().evicted, 600 - 256);
  s.reset();
  EXPECT_EQ(s.evict_stats().fed, 0);
  EXPECT_EQ(s.evict_stats().cached, 0);
}

// reset() keeps the KV memory but nothing else: after a stream with evictions
// and re-rotated keys, the same session gives bit-identical logits to a new one.
TEST(Streaming, ResetStartsOverLikeANewSession) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  const std::vector<int32_t> first = stories_stream(100), second = stories_stream(70);
  for (const char* positions : {"reindex", "shift"}) {
    SessionOptions o;
    o.cache = "sink:sink=4,window=28";
    o.positions = positions;
    Session used(m, o), fresh(m, o);
    for (int32_t id : first) used.feed(std::span<const int32_t>(&id, 1));
    used.reset();
    EXPECT_EQ(used.evict_stats().rows_rotated, 0) << positions;
    for (size_t i = 0; i < second.size(); ++i) {
      used.feed(std::span<const int32_t>(&second[i], 1));
      fresh.feed(std::span<const int32_t>(&second[i], 1));
      const std::span<const float> a = used.logits(), b = fresh.logits();
      ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << positions << " token " << i;
    }
    EXPECT_EQ(used.evict_stats().evicted, fresh.evict_stats().evicted) << positions;
  }
}

TEST(Streaming, BadCombinationsAreClearErrors) {
  TinySpec t;
  t.model_type = "sinklab";
  t.no_rope = true;
  auto norope = tiny_model(t, "norope");
  auto rope = tiny_model({}, "llama_err");
  auto expect_error = [](const std::shared_ptr<const Model>& m, SessionOptions o, const std::string& needle) {
    try {
      Session s(m, o);
      FAIL() << "expected an Error for cache=" << o.cache << " positions=" << o.positions;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SessionOptions o;
  o.cache = "window:window=8";
  o.positions = "shift";
  expect_error(norope, o, "shift");
  o.positions = "sideways";
  expect_error(rope, o, "sideways");
  o.positions = "";
  o.cache = "sink-logit:window=8";
  expect_error(rope, o, "sink logits");
  o.cache = "nosuch";
  expect_error(rope, o, "nosuch");
  o.cache = "sink:sink=8,budget=8";
  expect_error(rope, o, "sink");
  // Without RoPE the default (and reindex) contract is absolute.
  o.cache = "window:window=8";
  Session s(norope, o);
  EXPECT_EQ(s.positions(), PositionContract::Absolute);
  o.positions = "reindex";
  Session r(norope, o);
  EXPECT_EQ(r.positions(), PositionContract::Absolute);
  const std::vector<int32_t> ids = random_ids(30, 48, 3);
  r.feed(ids);
  EXPECT_EQ(r.evict_stats().cached, 8);
}

// ---- per-token metadata: modal and chunked caches in a Session ----
// Random metadata streams (cache_test::random_stream) are fed token by token.
// After every token the Session's cache must hold exactly the tokens the
// brute-force model of the policy names (tests/unit/cache), and its logits
// must equal a fresh dense Session fed only those tokens: exact for a
// one-layer model under reindex (RoPE) and under absolute without RoPE, where
// positions change nothing but the order.
namespace {

struct MetaCase {
  std::string policy;
  std::string spec;
  CacheOptions options;
  int group_max;
  bool count_all_tokens;
  double text_share;
};

std::vector<MetaCase> meta_cases() {
  MetaCase chunked{"chunked", "chunked:sink_chunks=1,window_chunks=3,chunk_tokens=4", {}, 4, true, 0.5};
  chunked.options.sink_chunks = 1;
  chunked.options.window_chunks = 3;
  chunked.options.chunk_tokens = 4;
  MetaCase modal{"modal", "modal:text_sink=2,text_window=5,vision_rounds=2,round_tokens=4", {}, 4, false, 0.45};
  modal.options.text_sink = 2;
  modal.options.text_window = 5;
  modal.options.vision_rounds = 2;
  modal.options.round_tokens = 4;
  return {chunked, modal};
}

// Checks one Session configuration over `seeds` random streams of n tokens.
void check_meta_session(const std::shared_ptr<const Model>& m, const MetaCase& c, const std::string& positions,
                        int seeds, int n) {
  for (int seed = 1; seed <= seeds; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<TokenMeta> stream = cache_test::random_stream(rng, n, c.group_max, c.count_all_tokens, c.text_share);
    for (size_t i = 0; i < stream.size(); ++i) stream[i].index = int64_t(i);  // the Session numbers tokens 0, 1, ...
    const std::vector<int32_t> ids = random_ids(stream.size(), 48, uint32_t(100 + seed));
    SessionOptions o;
    o.cache = c.spec;
    o.positions = positions;
    Session s(m, o);
    double worst = 0;
    int64_t evicting_steps = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      s.feed(std::span<const int32_t>(&ids[i], 1), std::span<const TokenMeta>(&stream[i], 1));
      const std::vector<TokenMeta> history(stream.begin(), stream.begin() + std::ptrdiff_t(i + 1));
      const std::vector<TokenMeta> expected = cache_test::brute_force(c.policy, c.options, history);
      const std::vector<TokenMeta> got = s.cache().survivors();
      ASSERT_EQ(cache_test::indices(got), cache_test::indices(expected)) << c.spec << " seed " << seed << " token " << i;
      for (size_t k = 0; k < got.size(); ++k) {
        ASSERT_EQ(got[k].modality, expected[k].modality);
        ASSERT_EQ(got[k].round, expected[k].round);
      }
      if (got.size() < i + 1) ++evicting_steps;
      Session fresh(m);
      fresh.feed(survivor_ids(s, ids));
      worst = std::max(worst, rel_err(s.logits(), fresh.logits()));
    }
    EXPECT_GE(evicting_steps, n / 2) << c.spec << " seed " << seed << ": the stream should evict most of the time";
    EXPECT_LE(worst, 1e-4) << c.spec << " positions " << positions << " seed " << seed;
  }
}

}  // namespace

TEST(StreamingMeta, ModalAndChunkedKeepWhatThePolicyPromisesReindex) {
  auto m = tiny_model({}, "llama_meta");
  for (const MetaCase& c : meta_cases()) check_meta_session(m, c, "reindex", 4, 48);
}

TEST(StreamingMeta, ModalAndChunkedKeepWhatThePolicyPromisesAbsoluteWithoutRope) {
  TinySpec t;
  t.model_type = "sinklab";
  t.no_rope = true;
  auto m = tiny_model(t, "norope_meta");
  for (const MetaCase& c : meta_cases()) check_meta_session(m, c, "absolute", 3, 48);
}

TEST(StreamingMeta, ShiftEqualsReindexWithWholeChunkEvictions) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = load_stories();
  const std::vector<int32_t> ids = stories_stream(90);
  std::vector<TokenMeta> meta(ids.size());
  for (size_t i = 0; i < meta.size(); ++i) meta[i].round = int32_t(i / 6);  // chunks of 6 tokens
  SessionOptions r, s;
  r.cache = s.cache = "chunked:sink_chunks=1,window_chunks=3,chunk_tokens=6";
  r.positions = "reindex";
  s.positions = "shift";
  Session reindex(m, r), shift(m, s);
  double worst = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    reindex.feed(std::span<const int32_t>(&ids[i], 1), std::span<const TokenMeta>(&meta[i], 1));
    shift.feed(std::span<const int32_t>(&ids[i], 1), std::span<const TokenMeta>(&meta[i], 1));
    worst = std::max(worst, rel_err(shift.logits(), reindex.logits()));
  }
  EXPECT_LE(worst, 1e-4);
  EXPECT_GT(shift.evict_stats().rows_rotated, 0);
  // A whole batch with metadata gives the same cache as token by token.
  Session batched(m, r);
  batched.feed(ids, meta);
  EXPECT_EQ(cache_test::indices(batched.cache().survivors()), cache_test::indices(reindex.cache().survivors()));
  EXPECT_LE(rel_err(batched.logits(), reindex.logits()), 1e-4);
}

TEST(StreamingMeta, BadMetadataIsAnErrorAndTheSessionGoesOn) {
  auto m = tiny_model({}, "llama_meta_err");
  SessionOptions o;
  o.cache = "chunked:window_chunks=2,chunk_tokens=2";
  Session s(m, o);
  const std::vector<int32_t> ids = {1, 2, 3};
  std::vector<TokenMeta> meta(3);
  auto expect_error = [&](const std::vector<TokenMeta>& mt, size_t n_ids, const std::string& needle) {
    try {
      s.feed(std::span<const int32_t>(ids.data(), n_ids), mt);
      FAIL() << "expected an Error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(std::vector<TokenMeta>(2), 3, "2 metadata entries for 3 tokens");
  meta[1].modality = 7;
  expect_error(meta, 3, "modality 7");
  meta[1].modality = 0;
  meta[1].round = 2;
  meta[2].round = 1;
  expect_error(meta, 3, "must not decrease");
  EXPECT_EQ(s.n_past(), 0);
  // Three tokens in one chunk of at most two: the third is refused, the first two stay.
  expect_error(std::vector<TokenMeta>(3), 3, "chunk_tokens");
  EXPECT_EQ(s.n_past(), 2);
  EXPECT_EQ(s.evict_stats().cached, 2);
  TokenMeta next;
  next.round = 1;
  s.feed(std::span<const int32_t>(&ids[2], 1), std::span<const TokenMeta>(&next, 1));
  EXPECT_EQ(s.n_past(), 3);
  EXPECT_EQ(s.evict_stats().cached, 3);
}
