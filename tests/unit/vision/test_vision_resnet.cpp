// CLIP's ModifiedResNet against the float64 PyTorch forward of
// make_tiny_vision_models.py (features, attention-pool weights, embedding),
// and the neuron x head decomposition: its terms sum back to the embedding.
#include <gtest/gtest.h>

#include <cmath>

#include "sinklab/vision.h"
#include "tiny_vision_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

TEST(ClipResNetReference, MatchesFloat64Forward) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/clip_resnet";
  const auto model = ClipResNet::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const ClipResNetOutput out = model->forward(g.pixels.data(), g.height, g.width);
  const size_t D = size_t(model->config().feature_dim());
  const double e_feat = max_row_relative_error(out.features, g.hidden, D);
  const double e_pool = max_row_relative_error(out.pooled, g.pooled, g.pooled.size());
  const double e_attn = max_row_relative_error(out.attn, g.embeds, size_t(g.tokens));
  std::printf("[ reference ] clip_resnet features %.2e  pooled %.2e  attention %.2e\n", e_feat, e_pool, e_attn);
  EXPECT_LE(e_feat, 1e-4);
  EXPECT_LE(e_pool, 1e-4);
  EXPECT_LE(e_attn, 1e-4);
}

TEST(ClipResNetReference, DecompositionSumsToTheEmbedding) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/clip_resnet";
  const auto model = ClipResNet::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const ClipResNetOutput out = model->forward(g.pixels.data(), g.height, g.width);
  const ClipResNetConfig& c = model->config();
  const AttnPoolDecomposition d = model->decompose(out, 5);
  const size_t E = size_t(c.embed_dim);
  std::vector<double> pairs_sum(E, 0.0);
  for (int h = 0; h < c.heads; ++h)
    for (int n = 0; n < c.feature_dim(); ++n) {
      const std::vector<double> v = model->pair_contribution(d, n, h);
      for (size_t e = 0; e < E; ++e) pairs_sum[e] += v[e];
    }
  double err = 0, scale = 0;
  for (size_t e = 0; e < E; ++e) {
    const double total = d.neuron_head_sum[e] + d.position_term[e] + d.value_bias_term[e] + d.output_bias[e];
    err = std::max(err, std::abs(total - double(out.pooled[e])));
    scale = std::max(scale, std::abs(double(out.pooled[e])));
    EXPECT_NEAR(pairs_sum[e], d.neuron_head_sum[e], 1e-9 * (1 + std::abs(d.neuron_head_sum[e]))) << e;
  }
  std::printf("[ reference ] clip_resnet decomposition: max |sum of terms - embedding| / max |embedding| = %.2e\n",
              err / scale);
  EXPECT_LE(err / scale, 1e-5);
  ASSERT_EQ(d.top.size(), 5u);
  for (size_t i = 0; i + 1 < d.top.size(); ++i) EXPECT_GE(d.top[i].norm, d.top[i + 1].norm);
  const std::vector<double> top = model->pair_contribution(d, d.top[0].neuron, d.top[0].head);
  double sq = 0;
  for (double v : top) sq += v * v;
  EXPECT_NEAR(std::sqrt(sq), d.top[0].norm, 1e-9 * d.top[0].norm);
}

TEST(ClipResNet, WrongImageSizeIsNamed) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = ClipResNet::load(tiny_vision_dir() + "/clip_resnet");
  std::vector<float> px(3 * 32 * 32, 0.f);
  try {
    model->forward(px.data(), 32, 32);
    ADD_FAILURE() << "a 32x32 image ran through a 64-pixel model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64x64"), std::string::npos) << e.what();
  }
}

}  // namespace
