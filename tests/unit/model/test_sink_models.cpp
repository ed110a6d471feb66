// gpt-oss and Gemma beyond the golden sequences: sliding layers in their own
// window cache give the logits of a shared cache (dense and streaming, past the
// window and past one forward's chunk), with memory of the window; Gemma 3's
// local RoPE refuses the shared cache.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "../../../src/model/weights.h"
#include "sinklab/export.h"
#include "sinklab/model.h"
#include "tiny_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

#define SKIP_WITHOUT_TINY_MODELS() \
  if (tiny_models_dir().empty()) GTEST_SKIP() << tiny_models_missing_message()

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

std::vector<float> run(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids, SessionOptions o,
                       bool stepwise = false, EvictStats* stats = nullptr) {
  Session s(model, o);
  std::vector<float> all, rows;
  if (stepwise) {
    for (const int32_t& id : ids) {
      s.feed(std::span<const int32_t>(&id, 1));
      all.insert(all.end(), s.logits().begin(), s.logits().end());
    }
  } else {
    s.feed(ids, &all);
  }
  if (stats) *stats = s.evict_stats();
  return all;
}

void ops_rows_f32(const WeightMatrix& m, float* out) {
  for (int64_t r = 0; r < m.rows; ++r)
    dequantize_row(m.stored, static_cast<const uint8_t*>(m.data) + r * m.row_bytes(), out + r * m.cols, m.cols);
}

double max_row_error(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t r = 0; r * size_t(vocab) < std::min(a.size(), b.size()); ++r) {
    double diff = 0, scale = 1e-6;
    for (int64_t v = 0; v < vocab; ++v) {
      const size_t i = r * size_t(vocab) + size_t(v);
      diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
      scale = std::max(scale, std::abs(double(b[i])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

TEST(LocalLayerCache, EqualsTheSharedCacheAndHoldsOnlyTheWindow) {
  SKIP_WITHOUT_TINY_MODELS();
  const auto model = Model::load(tiny_models_dir() + "/gpt_oss_float");
  const ModelConfig& c = model->config();
  ASSERT_EQ(c.layer_window, (std::vector<int32_t>{6, 0, 6, 0}));
  const std::vector<int32_t> ids = random_ids(600, c.vocab, 1);  // > window + one 256-token chunk
  SessionOptions local, shared;
  local.context = shared.context = 1024;
  shared.local_layer_cache = false;
  EvictStats st;
  const std::vector<float> a = run(model, ids, local, false, &st);
  const std::vector<float> b = run(model, ids, shared);
  EXPECT_LT(max_row_error(a, b, c.vocab), 1e-5);
  // Two full layers hold the context; two sliding layers hold window + 255 tokens.
  const size_t per_token_layer = size_t(2 * c.n_kv_heads * c.head_dim * 4);
  EXPECT_EQ(st.local_layers, 2);
  EXPECT_EQ(st.local_capacity, 6 + 255);
  EXPECT_EQ(st.local_bytes, 2 * per_token_layer * 261);
  EXPECT_EQ(st.bytes - st.local_bytes, 2 * per_token_layer * 1024);
  // Token by token (every step evicts from the window cache) gives the same.
  const std::vector<float> step = run(model, std::vector<int32_t>(ids.begin(), ids.begin() + 300), local, true);
  EXPECT_LT(max_row_error(step, std::vector<float>(b.begin(), b.begin() + ptrdiff_t(step.size())), c.vocab), 1e-5);
}

TEST(LocalLayerCache, StreamingPolicyLeavesSlidingLayersExact) {
  SKIP_WITHOUT_TINY_MODELS();
  const auto model = Model::load(tiny_models_dir() + "/gpt_oss");
  const std::vector<int32_t> ids = random_ids(400, model->config().vocab, 2);
  SessionOptions local, shared;
  local.cache = shared.cache = "sink:sink=4,window=60";
  shared.local_layer_cache = false;
  const std::vector<float> a = run(model, ids, local, true);
  const std::vector<float> b = run(model, ids, shared, true);
  EXPECT_LT(max_row_error(a, b, model->config().vocab), 1e-5);
}

TEST(LocalLayerCache, Gemma3LongStreamsAndRefusesTheSharedCache) {
  SKIP_WITHOUT_TINY_MODELS();
  const auto model = Model::load(tiny_models_dir() + "/gemma3");
  ASSERT_TRUE(model->config().rope_local.has_value());
  const std::vector<int32_t> ids = random_ids(300, model->config().vocab, 3);
  SessionOptions o;
  o.context = 512;
  const std::vector<float> batched = run(model, ids, o);
  const std::vector<float> stepwise = run(model, ids, o, true);
  EXPECT_LT(max_row_error(batched, stepwise, model->config().vocab), 1e-5);
  SessionOptions shared = o;
  shared.local_layer_cache = false;
  try {
    Session s(model, shared);
    FAIL() << "a Gemma 3 session without the local cache was made";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("own RoPE"), std::string::npos) << e.what();
  }
}

// The released gpt-oss layout, natively: experts stay mxfp4 in memory, and a
// GGUF export (q8_0 for the rest, as llama.cpp writes gpt-oss) keeps them mxfp4
// block for block; both give the reference logits within the tolerance of q8_0.
TEST(GptOssMxfp4, ExpertsStayMxfp4InMemoryAndInGguf) {
  SKIP_WITHOUT_TINY_MODELS();
  const std::string folder = tiny_models_dir() + "/gpt_oss";
  const auto hf = Model::load(folder);
  const ExpertWeights& e = hf->weights().layers[1].experts[2];
  EXPECT_EQ(e.gate.stored, TensorType::MXFP4);
  EXPECT_EQ(e.down.stored, TensorType::MXFP4);
  EXPECT_EQ(hf->weights().layers[1].wq.stored, TensorType::F32);
  const std::string path = ::testing::TempDir() + "/gpt_oss_mxfp4_" + std::to_string(::getpid()) + ".gguf";
  GgufExportOptions opts;
  opts.type = TensorType::Q8_0;
  export_gguf(*hf, path, opts);
  const auto back = Model::load(path);
  std::filesystem::remove(path);
  const ExpertWeights& b = back->weights().layers[1].experts[2];
  ASSERT_EQ(b.gate.stored, TensorType::MXFP4);
  for (const auto& [x, y] : {std::pair{&e.gate, &b.gate}, {&e.up, &b.up}, {&e.down, &b.down}}) {
    ASSERT_EQ(x->bytes(), y->bytes());
    std::vector<float> vx(size_t(x->rows * x->cols)), vy(vx.size());
    ops_rows_f32(*x, vx.data());
    ops_rows_f32(*y, vy.data());
    EXPECT_EQ(vx, vy) << "the exported mxfp4 blocks decode to other values";
  }
  EXPECT_EQ(back->weights().layers[1].wq.stored, TensorType::Q8_0);
}

}  // namespace
