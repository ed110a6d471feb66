// The vision runtime against an independent float64 PyTorch forward, one tiny
// random model per architecture and weight-naming form
// (tests/reference/make_tiny_vision_models.py): last_hidden_state, pooled
// output and CLIP's projected embedding within 1e-4 (per-row relative error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "sinklab/vision.h"
#include "tiny_vision_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

constexpr double kTolerance = 1e-4;

class VisionReference : public ::testing::TestWithParam<std::string> {};

TEST_P(VisionReference, MatchesFloat64Forward) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/" + GetParam();
  ASSERT_TRUE(std::filesystem::is_directory(folder)) << folder << " was not generated";
  const auto model = VisionModel::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const VisionOutput out = model->forward(g.pixels.data(), g.height, g.width);
  ASSERT_EQ(out.tokens, g.tokens);
  const size_t D = size_t(out.dim);
  const double e_hidden = max_row_relative_error(out.hidden, g.hidden, D);
  const double e_pooled = max_row_relative_error(out.pooled, g.pooled, D);
  std::printf("[ reference ] %-17s hidden %.2e  pooled %.2e", GetParam().c_str(), e_hidden, e_pooled);
  EXPECT_LE(e_hidden, kTolerance) << "last_hidden_state";
  EXPECT_LE(e_pooled, kTolerance) << "pooled output";
  if (!g.embeds.empty()) {
    const double e_embeds = max_row_relative_error(out.embeds, g.embeds, g.embeds.size());
    std::printf("  embeds %.2e", e_embeds);
    EXPECT_LE(e_embeds, kTolerance) << "image_embeds";
  } else {
    EXPECT_TRUE(out.embeds.empty());
  }
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(Tiny, VisionReference, ::testing::ValuesIn(tiny_vision_model_names()));

// Every block fires its taps with the documented shapes; attention rows sum to
// one; CLIP's last_hidden_state is the last block's resid_out.
TEST(VisionTaps, NamesShapesAndProbabilities) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = VisionModel::load(tiny_vision_dir() + "/clip_vision");
  const VisionGolden g = read_vision_golden(tiny_vision_dir() + "/clip_vision");
  const VisionConfig& c = model->config();
  Taps taps;
  std::map<std::string, std::pair<int64_t, int64_t>> seen;
  std::vector<float> last_resid, probs;
  taps.add("*", [&](const TapEvent& ev) {
    seen[ev.name] = {ev.rows, ev.cols};
    if (ev.name == "blk." + std::to_string(c.n_layers - 1) + ".resid_out") last_resid.assign(ev.data, ev.data + ev.rows * ev.cols);
    if (ev.name == "blk.0.attn_probs") probs.assign(ev.data, ev.data + ev.rows * ev.cols);
  });
  VisionForwardOptions opts;
  opts.taps = &taps;
  const VisionOutput out = model->forward(g.pixels.data(), g.height, g.width, opts);
  const int64_t T = out.tokens, D = c.dim;
  for (const char* name : {"token_embd", "pre_norm", "output_norm"}) {
    ASSERT_TRUE(seen.count(name)) << name;
    EXPECT_EQ(seen[name], std::make_pair(T, D)) << name;
  }
  for (int l = 0; l < c.n_layers; ++l)
    for (const char* what : {"attn_norm", "q", "k", "v", "attn_ctx", "attn_out", "resid_mid", "ffn_norm", "ffn_out",
                             "resid_out"}) {
      const std::string name = "blk." + std::to_string(l) + "." + what;
      ASSERT_TRUE(seen.count(name)) << name;
      EXPECT_EQ(seen[name], std::make_pair(T, D)) << name;
    }
  EXPECT_EQ(seen["blk.0.ffn_act"], std::make_pair(T, int64_t(c.hidden)));
  EXPECT_EQ(seen["blk.0.attn_probs"], std::make_pair(int64_t(c.n_heads) * T, T));
  for (int64_t r = 0; r < c.n_heads * T; ++r) {
    double s = 0;
    for (int64_t j = 0; j < T; ++j) s += probs[size_t(r * T + j)];
    EXPECT_NEAR(s, 1.0, 1e-5) << "row " << r;
  }
  EXPECT_EQ(last_resid, out.hidden);
}

// A tap that overwrites a tensor changes what follows: zeroing every block's
// attention output leaves the residual equal to the embeddings plus the MLPs.
TEST(VisionTaps, OverwriteChangesOutput) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = VisionModel::load(tiny_vision_dir() + "/vit");
  const VisionGolden g = read_vision_golden(tiny_vision_dir() + "/vit");
  Taps taps;
  taps.add("blk.*.attn_out", [](const TapEvent& ev) { std::memset(ev.data, 0, size_t(ev.rows * ev.cols) * 4); });
  std::vector<float> embd, mid;
  taps.add("token_embd", [&](const TapEvent& ev) { embd.assign(ev.data, ev.data + ev.rows * ev.cols); });
  taps.add("blk.0.resid_mid", [&](const TapEvent& ev) { mid.assign(ev.data, ev.data + ev.rows * ev.cols); });
  VisionForwardOptions opts;
  opts.taps = &taps;
  const VisionOutput edited = model->forward(g.pixels.data(), g.height, g.width, opts);
  EXPECT_EQ(embd, mid);
  EXPECT_GT(max_row_relative_error(edited.hidden, g.hidden, size_t(edited.dim)), 1e-2);
}

}  // namespace
