// The real stories260K checkpoint (llama2.c): greedy decoding from BOS must
// reproduce the golden ids exactly, with batched prefill and token-by-token
// decode agreeing.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "../../../src/model/weights.h"
#include "assets.h"
#include "sinklab/model.h"

using namespace sinklab;

namespace {

std::vector<int32_t> golden_ids() {
  std::ifstream f(test::asset("golden/stories260K_greedy200_ids.txt"));
  std::vector<int32_t> ids;
  for (int32_t x; f >> x;) ids.push_back(x);
  return ids;
}

std::shared_ptr<const Model> load_stories() {
  LoadOptions o;
  o.tokenizer_path = test::asset("models/stories260K/tok512.bin");
  return Model::load(test::asset("models/stories260K/stories260K.bin"), o);
}

}  // namespace

TEST(Stories260KModel, GreedyDecodingMatchesGolden) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing: " << test::assets_dir();
  auto model = load_stories();
  const std::vector<int32_t> want = golden_ids();
  ASSERT_EQ(want.size(), 200u);
  EXPECT_EQ(model->config().n_layers, 5);
  EXPECT_EQ(model->config().n_kv_heads, 4);
  Session s(model);
  Sampler greedy({});
  std::vector<int32_t> got;
  int32_t tok = model->config().bos_id;
  for (int i = 0; i < 200; ++i) {
    s.feed(std::span<const int32_t>(&tok, 1));
    tok = greedy.sample(s.logits(), got);
    got.push_back(tok);
  }
  EXPECT_EQ(got, want);
  std::ifstream f(test::asset("golden/stories260K_greedy200_expected.txt"));
  std::string text((std::istreambuf_iterator<char>(f)), {});
  ASSERT_NE(model->tokenizer(), nullptr);
  EXPECT_EQ(model->tokenizer()->decode(got), text);
}

TEST(Stories260KModel, BatchedPrefillEqualsTokenByToken) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto model = load_stories();
  std::vector<int32_t> ids = golden_ids();
  ids.insert(ids.begin(), 1);
  ids.resize(150);
  Session batched(model), single(model);
  std::vector<float> all;
  batched.feed(std::span<const int32_t>(ids.data(), 100), &all);
  batched.feed(std::span<const int32_t>(ids.data() + 100, 50));
  const int64_t V = model->config().vocab;
  ASSERT_EQ(all.size(), size_t(100 * V));
  double max_err = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    single.feed(std::span<const int32_t>(&ids[i], 1));
    const auto l = single.logits();
    const float* ref = i < 100 ? all.data() + i * size_t(V) : nullptr;
    if (i == 149) ref = batched.logits().data();
    if (!ref) continue;
    for (int64_t v = 0; v < V; ++v) max_err = std::max(max_err, double(std::fabs(l[size_t(v)] - ref[v])));
  }
  EXPECT_LT(max_err, 1e-3);
}

// LoadOptions::mmap = false copies the matrices into process memory: the same
// logits, bit for bit, from weights that do not point into the mapped file.
TEST(Stories260KModel, NoMmapLoadGivesIdenticalLogits) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  const auto mapped = load_stories();
  LoadOptions opts;
  opts.mmap = false;
  const auto copied = Model::load(test::asset("models/stories260K/stories260K.bin"), opts);
  EXPECT_EQ(copied->weight_bytes(), mapped->weight_bytes());
  EXPECT_TRUE(mapped->weights().owned.empty());  // f32 llama2.c matrices are views of the file
  EXPECT_FALSE(copied->weights().owned.empty());
  std::vector<int32_t> ids = golden_ids();
  ids.insert(ids.begin(), 1);
  ids.resize(40);
  Session a(mapped), b(copied);
  std::vector<float> la, lb;
  a.feed(ids, &la);
  b.feed(ids, &lb);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(la, lb);
}

TEST(Stories260KModel, ContextLimitIsAClearError) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto model = load_stories();
  SessionOptions o;
  o.context = 4;
  Session s(model, o);
  std::vector<int32_t> ids = {1, 2, 3, 4, 5};
  EXPECT_THROW(s.feed(ids), Error);
  std::vector<int32_t> bad = {1, 9999};
  EXPECT_THROW(s.feed(bad), Error);
}
