// Named taps on the real stories260K model: every documented name fires with
// the documented shape, a callback can overwrite a tensor, and the
// probabilities tap agrees with the model's own attention.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "assets.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"

using namespace sinklab;

namespace {

std::shared_ptr<const Model> stories() {
  LoadOptions o;
  o.tokenizer_path = test::asset("models/stories260K/tok512.bin");
  return Model::load(test::asset("models/stories260K/stories260K.bin"), o);
}

const std::vector<int32_t> kIds = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};

}  // namespace

TEST(Taps, EveryNameFiresWithItsShape) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = stories();
  const ModelConfig& c = m->config();
  Session s(m);
  std::map<std::string, std::pair<int64_t, int64_t>> seen;
  s.taps().add("*", [&](const TapEvent& e) { seen[e.name] = {e.rows, e.cols}; });
  s.feed(kIds);
  const int64_t n = int64_t(kIds.size()), D = c.dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  std::map<std::string, std::pair<int64_t, int64_t>> want = {
      {"token_embd", {n, D}}, {"output_norm", {n, D}}, {"logits", {1, c.vocab}}};
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* x : {"attn_norm", "attn_out", "resid_mid", "ffn_norm", "ffn_out", "resid_out"})
      want[p + x] = {n, D};
    want[p + "q"] = {n, qd};
    want[p + "k"] = {n, kvd};
    want[p + "v"] = {n, kvd};
    want[p + "attn_ctx"] = {n, qd};
    want[p + "attn_probs"] = {c.n_heads * n, n};
    want[p + "ffn_act"] = {n, c.hidden};
  }
  EXPECT_EQ(seen, want);
}

TEST(Taps, OverwritingChangesExactlyWhatFollows) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = stories();
  Session plain(m), identity(m), ablated(m);
  plain.feed(kIds);
  identity.taps().add("blk.2.attn_out", [](const TapEvent&) {});
  identity.feed(kIds);
  std::vector<float> resid_before, resid_after;
  ablated.taps().add("blk.1.resid_out", [&](const TapEvent& e) {
    resid_before.assign(e.data, e.data + e.rows * e.cols);
  });
  ablated.taps().add("blk.2.attn_out", [](const TapEvent& e) {
    std::fill(e.data, e.data + e.rows * e.cols, 0.f);
  });
  ablated.taps().add("blk.2.resid_mid", [&](const TapEvent& e) {
    resid_after.assign(e.data, e.data + e.rows * e.cols);
  });
  ablated.feed(kIds);
  const auto a = plain.logits(), b = identity.logits(), z = ablated.logits();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::fabs(a[i] - z[i]);
  EXPECT_GT(diff, 1e-3);
  // With the attention output zeroed, the residual passes through unchanged.
  EXPECT_EQ(resid_before, resid_after);
}

TEST(Taps, AttentionProbabilitiesAreCausalAndNormalised) {
  if (!test::have_asset("models/stories260K/stories260K.bin")) GTEST_SKIP() << "assets missing";
  auto m = stories();
  Session s(m);
  std::vector<float> p;
  int64_t rows = 0, cols = 0;
  s.taps().add("blk.0.attn_probs", [&](const TapEvent& e) {
    p.assign(e.data, e.data + e.rows * e.cols);
    rows = e.rows;
    cols = e.cols;
  });
  s.feed(kIds);
  const int64_t n = int64_t(kIds.size());
  ASSERT_EQ(cols, n);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % n;
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      if (j > i) {
        EXPECT_EQ(p[size_t(r * cols + j)], 0.f);
      }
      sum += p[size_t(r * cols + j)];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(Taps, RejectsEmptyNamesAndCallbacks) {
  Taps t;
  EXPECT_THROW(t.add("", [](const TapEvent&) {}), Error);
  EXPECT_THROW(t.add("logits", TapFn{}), Error);
}

TEST(Taps, PatternsMatchWithStarsAnywhere) {
  Taps t;
  t.add("blk.*.attn_probs", [](const TapEvent&) {});
  EXPECT_TRUE(t.wants("blk.0.attn_probs"));
  EXPECT_TRUE(t.wants("blk.11.attn_probs"));
  EXPECT_FALSE(t.wants("blk.0.attn_out"));
  EXPECT_FALSE(t.wants("blk.0.attn_probs.x"));
  Taps u;
  u.add("blk.3.*", [](const TapEvent&) {});
  EXPECT_TRUE(u.wants("blk.3.resid_out"));
  EXPECT_FALSE(u.wants("blk.30.resid_out"));
  Taps v;
  v.add("*.moe.*.down_out", [](const TapEvent&) {});
  EXPECT_TRUE(v.wants("blk.1.moe.expert.7.down_out"));
  EXPECT_FALSE(v.wants("blk.1.moe.router_probs"));
  Taps exact;
  exact.add("logits", [](const TapEvent&) {});
  EXPECT_TRUE(exact.wants("logits"));
  EXPECT_FALSE(exact.wants("logits2"));
}

TEST(ModelLoad, UnknownArchitectureIsAClearError) {
  const std::string dir = ::testing::TempDir() + "/sinklab_unknown_arch";
  std::filesystem::create_directories(dir);
  std::vector<float> w(4, 0.f);
  TensorEntry e{"model.embed_tokens.weight", TensorType::F32, {2, 2}, reinterpret_cast<const uint8_t*>(w.data()), 16};
  write_safetensors(dir + "/model.safetensors", {e});
  std::ofstream(dir + "/config.json") << R"({"model_type": "gpt2", "vocab_size": 2})";
  try {
    Model::load(dir);
    FAIL() << "expected an Error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("unknown architecture"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("gpt2"), std::string::npos) << err.what();
  }
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "vocab_size": 2, "hidden_size": 2,
      "num_hidden_layers": 1, "num_attention_heads": 3, "intermediate_size": 4})";
  EXPECT_THROW(Model::load(dir), Error);  // heads do not divide / missing tensors
  std::filesystem::remove_all(dir);
}
