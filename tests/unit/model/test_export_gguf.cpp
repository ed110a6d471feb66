// GGUF export of a llama2.c checkpoint (stories260K): the converted file must
// decode the golden greedy ids; a q8_0 export must stay close to it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "assets.h"
#include "sinklab/export.h"
#include "sinklab/formats.h"
#include "tiny_models.h"

using namespace sinklab;

namespace {

const char* kStories = "models/stories260K/stories260K.bin";

std::shared_ptr<const Model> load_with_stories_tokenizer(const std::string& path) {
  LoadOptions o;
  o.tokenizer_path = test::asset("models/stories260K/tok512.bin");
  return Model::load(path, o);
}

std::string temp_path(const char* what) {
  return (std::filesystem::path(::testing::TempDir()) /
          ("sinklab_stories_" + std::to_string(::getpid()) + "_" + what + ".gguf"))
      .string();
}

std::vector<int32_t> greedy(const std::shared_ptr<const Model>& model, int n) {
  Session s(model);
  Sampler pick({});
  std::vector<int32_t> got;
  int32_t tok = model->config().bos_id;
  for (int i = 0; i < n; ++i) {
    s.feed(std::span<const int32_t>(&tok, 1));
    tok = pick.sample(s.logits(), got);
    got.push_back(tok);
  }
  return got;
}

TEST(GgufExport, Stories260KReproducesGoldenGreedyIds) {
  if (!test::have_asset(kStories)) GTEST_SKIP() << "assets missing: " << test::assets_dir();
  const auto model = load_with_stories_tokenizer(test::asset(kStories));
  const std::string path = temp_path("f32");
  const GgufExportSummary s = export_gguf(*model, path);
  EXPECT_EQ(s.gguf_arch, "llama");
  EXPECT_FALSE(s.permuted_qk);  // llama2.c rows already pair adjacent channels
  const auto back = load_with_stories_tokenizer(path);
  const TensorFile file = load_gguf(path);
  std::filesystem::remove(path);
  EXPECT_EQ(file.metadata().get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(file.metadata().get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(back->config().rope.style, RopeStyle::Interleaved);
  EXPECT_EQ(back->config().n_kv_heads, model->config().n_kv_heads);

  std::ifstream f(test::asset("golden/stories260K_greedy200_ids.txt"));
  std::vector<int32_t> want;
  for (int32_t x; f >> x;) want.push_back(x);
  ASSERT_EQ(want.size(), 200u);
  EXPECT_EQ(greedy(back, 200), want);
}

TEST(GgufExport, Stories260KQ8_0StaysClose) {
  if (!test::have_asset(kStories)) GTEST_SKIP() << "assets missing: " << test::assets_dir();
  const auto model = load_with_stories_tokenizer(test::asset(kStories));
  const std::string path = temp_path("q8_0");
  GgufExportOptions opts;
  opts.type = TensorType::Q8_0;
  const GgufExportSummary s = export_gguf(*model, path, opts);
  EXPECT_GT(s.n_converted, 0);
  EXPECT_GT(s.n_kept_f32, 0);  // the norms, and ffn_down whose rows of 172 do not fill q8_0 blocks
  const TensorFile file = load_gguf(path);
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").type, TensorType::Q8_0);
  EXPECT_EQ(file.tensor("blk.0.ffn_down.weight").type, TensorType::F32);
  const auto back = load_with_stories_tokenizer(path);
  std::filesystem::remove(path);

  std::vector<int32_t> ids = greedy(model, 64);
  ids.insert(ids.begin(), model->config().bos_id);
  const std::vector<float> ref = test::batched_logits(model, ids);
  const std::vector<float> got = test::batched_logits(back, ids);
  const double err = test::max_row_relative_error(got.data(), ref.data(), ids.size(), model->config().vocab);
  std::printf("[ gguf Q8_0 ] stories260K vs f32 %.2e\n", err);
  EXPECT_LE(err, 3e-2);  // measured 1.5e-2
}

TEST(GgufExport, RejectsUnknownTypeNames) {
  EXPECT_EQ(gguf_export_type_from_name("Q8_0"), TensorType::Q8_0);
  EXPECT_EQ(gguf_export_type_from_name("bf16"), TensorType::BF16);
  EXPECT_EQ(gguf_export_type_from_name("q4_k"), TensorType::Q4_K);
  EXPECT_THROW(gguf_export_type_from_name("q4_1"), Error);
}

}  // namespace
