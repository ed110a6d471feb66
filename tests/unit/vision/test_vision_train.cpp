// ViT training: the analytic gradients of every parameter tensor match central
// finite differences of the loss along random directions, and a few AdamW
// steps lower the loss on a fixed batch; the saved checkpoint loads as a
// dinov2 model whose CLS output equals the trainer's final features.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "sinklab/vision.h"

using namespace sinklab;

namespace {

VitTrainConfig tiny(int registers) {
  VitTrainConfig c;
  c.image_size = 16, c.patch_size = 4, c.dim = 16, c.layers = 2, c.heads = 2, c.hidden = 32, c.registers = registers;
  c.batch = 8, c.lr = 3e-3f, c.seed = 3;
  return c;
}

class VitGradients : public ::testing::TestWithParam<int> {};

TEST_P(VitGradients, MatchFiniteDifferences) {
  VitTrainer t(tiny(GetParam()));
  // A few steps first, so LayerNorm and attention are away from their initial symmetry.
  for (int s = 0; s < 3; ++s) t.step(s);
  const ShapeImage img = make_shape_image(16, 77);
  t.loss(img.pixels.data(), img.label, true);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const std::string& name : t.parameter_names()) {
    if (name == "embeddings.mask_token") continue;  // unused by the forward
    const std::vector<float> grad = t.gradients(name);
    std::vector<float>& w = t.values(name);
    std::vector<float> dir(w.size());
    double gd = 0, dnorm = 0;
    for (size_t i = 0; i < w.size(); ++i) dir[i] = nd(rng), dnorm += double(dir[i]) * dir[i];
    const float eps = 1e-2f / float(std::sqrt(dnorm));
    for (size_t i = 0; i < w.size(); ++i) gd += double(grad[i]) * dir[i] * eps;
    const std::vector<float> saved = w;
    for (size_t i = 0; i < w.size(); ++i) w[i] = saved[i] + eps * dir[i];
    const double up = t.loss(img.pixels.data(), img.label, false);
    for (size_t i = 0; i < w.size(); ++i) w[i] = saved[i] - eps * dir[i];
    const double down = t.loss(img.pixels.data(), img.label, false);
    w = saved;
    const double fd = (up - down) / 2;
    EXPECT_NEAR(fd, gd, 2e-2 * std::abs(gd) + 2e-6) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Registers, VitGradients, ::testing::Values(0, 2));

TEST(VitTraining, LossFallsAndTheCheckpointLoads) {
  VitTrainConfig c = tiny(2);
  VitTrainer t(c);
  const ShapeImage img = make_shape_image(16, 5);
  const float before = t.loss(img.pixels.data(), img.label, false);
  float first = 0, last = 0;
  for (int s = 0; s < 30; ++s) {
    const VitStepResult r = t.step(s % 2);  // two fixed batches: the loss must fall
    if (s < 2) first += r.loss / 2;
    if (s >= 28) last += r.loss / 2;
  }
  EXPECT_LT(last, first * 0.8f);
  EXPECT_NE(t.loss(img.pixels.data(), img.label, false), before);
  const std::string dir = ::testing::TempDir() + "/sinklab_vit_" + std::to_string(::getpid());
  t.save(dir);
  const auto model = VisionModel::load(dir);
  EXPECT_EQ(model->config().n_registers, 2);
  const VisionOutput out = model->forward(img.pixels.data(), 16, 16);
  EXPECT_EQ(out.tokens, 1 + 2 + 16);
  // The classifier on the runtime's pooled CLS gives the trainer's loss.
  const std::vector<float>& W = t.values("classifier.weight");
  const std::vector<float>& b = t.values("classifier.bias");
  std::vector<double> logits(4);
  for (int k = 0; k < 4; ++k) {
    logits[size_t(k)] = b[size_t(k)];
    for (int d = 0; d < c.dim; ++d) logits[size_t(k)] += double(W[size_t(k * c.dim + d)]) * out.pooled[size_t(d)];
  }
  double z = 0, top = *std::max_element(logits.begin(), logits.end());
  for (double v : logits) z += std::exp(v - top);
  const double loss = std::log(z) + top - logits[size_t(img.label)];
  EXPECT_NEAR(loss, t.loss(img.pixels.data(), img.label, false), 1e-4);
  std::filesystem::remove_all(dir);
}

TEST(ShapeImages, DeterministicAndLabelled) {
  const ShapeImage a = make_shape_image(32, 9), b = make_shape_image(32, 9);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.label, b.label);
  std::vector<int> counts(4, 0);
  for (uint64_t s = 0; s < 200; ++s) ++counts[size_t(make_shape_image(16, s).label)];
  for (int c : counts) EXPECT_GT(c, 20);
}

}  // namespace
