// Register neurons and test-time registers on the tiny reference models: the
// edit moves exactly the chosen activations (every other value of every tap is
// unchanged), the appended register starts as a zero token, and the finder's
// scores are the mean |ffn_act| over the outlier tokens computed by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "sinklab/vision.h"
#include "tiny_vision_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

using TapLog = std::map<std::string, std::vector<float>>;

void log_into(Taps& taps, const std::string& pattern, TapLog& log) {
  taps.add(pattern, [&log](const TapEvent& ev) { log[ev.name].assign(ev.data, ev.data + ev.rows * ev.cols); });
}

class TestTimeRegister : public ::testing::TestWithParam<std::string> {};

TEST_P(TestTimeRegister, MovesExactlyTheChosenActivations) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/" + GetParam();
  const auto model = VisionModel::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const VisionConfig& c = model->config();
  const std::vector<RegisterNeuron> chosen = {{0, 3, 0}, {0, 7, 0}, {c.n_layers - 1, 5, 0}};

  // Plain run with one appended token; and the edited run, with the tensors seen
  // before (raw) and after (edited) the edit at each ffn_act.
  TapLog plain, raw, edited;
  Taps plain_taps;
  log_into(plain_taps, "*", plain);
  VisionForwardOptions opts;
  opts.test_time_registers = 1;
  opts.taps = &plain_taps;
  model->forward(g.pixels.data(), g.height, g.width, opts);
  Taps taps;
  log_into(taps, "*", raw);
  add_test_time_register_taps(taps, c, chosen, 1);
  log_into(taps, "*", edited);
  opts.taps = &taps;
  const VisionOutput out = model->forward(g.pixels.data(), g.height, g.width, opts);

  const int64_t T = out.tokens, D = c.dim, H = c.hidden;
  // The register is a zero token; everything up to layer 0's ffn_act is unchanged.
  for (int64_t j = 0; j < D; ++j) EXPECT_EQ(raw["token_embd"][size_t((T - 1) * D + j)], 0.f);
  for (const char* name : {"token_embd", "blk.0.attn_probs", "blk.0.resid_mid", "blk.0.ffn_act"})
    EXPECT_EQ(raw[name], plain[name]) << name;
  EXPECT_NE(edited["blk.0.ffn_out"], plain["blk.0.ffn_out"]);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string name = "blk." + std::to_string(l) + ".ffn_act";
    const std::vector<float>& a = raw[name];
    const std::vector<float>& b = edited[name];
    ASSERT_EQ(a.size(), size_t(T * H));
    ASSERT_EQ(b.size(), a.size());
    size_t moved = 0;
    for (int64_t n = 0; n < H; ++n) {
      const bool is_chosen = std::any_of(chosen.begin(), chosen.end(), [&](const RegisterNeuron& r) { return r.layer == l && r.neuron == n; });
      float top = -INFINITY;
      for (int64_t t = 0; t < T; ++t) top = std::max(top, a[size_t(t * H + n)]);
      for (int64_t t = 0; t < T; ++t) {
        const float want = !is_chosen ? a[size_t(t * H + n)] : t == 0 && c.cls_token ? a[size_t(n)] : t == T - 1 ? top : 0.f;
        EXPECT_EQ(b[size_t(t * H + n)], want) << name << " token " << t << " neuron " << n;
        moved += b[size_t(t * H + n)] != a[size_t(t * H + n)];
      }
    }
    if (l == 0) {
      EXPECT_GT(moved, 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, TestTimeRegister, ::testing::Values("vit", "dinov2_registers", "siglip"));

TEST(RegisterNeurons, ScoresAreMeanAbsActivationAtOutliers) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const std::string folder = tiny_vision_dir() + "/dinov2_registers";
  const auto model = VisionModel::load(folder);
  const VisionGolden g = read_vision_golden(folder);
  const VisionConfig& c = model->config();
  // Hand computation: norms at the detection layer, outliers above the median
  // of all tokens, mean |ffn_act| over them for layers 0..highest.
  TapLog log;
  Taps taps;
  log_into(taps, "*", log);
  VisionForwardOptions fo;
  fo.taps = &taps;
  const VisionOutput out = model->forward(g.pixels.data(), g.height, g.width, fo);
  const int detection = 1, highest = 1;
  const std::vector<float>& resid = log["blk.1.resid_out"];
  std::vector<float> norms;
  for (int64_t t = 0; t < out.tokens; ++t) {
    double s = 0;
    for (int64_t j = 0; j < c.dim; ++j) s += double(resid[size_t(t * c.dim + j)]) * resid[size_t(t * c.dim + j)];
    norms.push_back(float(std::sqrt(s)));
  }
  std::vector<float> sorted = norms;
  std::sort(sorted.begin(), sorted.end());
  const double threshold = sorted[sorted.size() / 2];
  std::vector<int> outliers;
  for (int t = 0; t < int(norms.size()); ++t)
    if (norms[size_t(t)] > threshold) outliers.push_back(t);
  ASSERT_GE(outliers.size(), 2u);
  RegisterNeuronOptions o;
  o.detection_layer = detection;
  o.highest_layer = highest;
  o.outlier_threshold = threshold;
  o.top_k = 5;
  const RegisterNeuronResult r = find_register_neurons(*model, {{g.pixels.data(), g.height, g.width}}, o);
  ASSERT_EQ(r.neurons.size(), 5u);
  EXPECT_EQ(r.outlier_tokens, int64_t(outliers.size()));
  std::vector<RegisterNeuron> want;
  for (int l = 0; l <= highest; ++l) {
    const std::vector<float>& act = log["blk." + std::to_string(l) + ".ffn_act"];
    for (int n = 0; n < c.hidden; ++n) {
      double s = 0;
      for (int t : outliers) s += std::abs(double(act[size_t(t * c.hidden + n)]));
      want.push_back({l, n, s / double(outliers.size())});
    }
  }
  std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(r.neurons[i].layer, want[i].layer) << i;
    EXPECT_EQ(r.neurons[i].neuron, want[i].neuron) << i;
    EXPECT_NEAR(r.neurons[i].score, want[i].score, 1e-9 * want[i].score) << i;
  }
}

TEST(RegisterNeurons, BadOptionsNameTheProblem) {
  SKIP_WITHOUT_TINY_VISION_MODELS();
  const auto model = VisionModel::load(tiny_vision_dir() + "/vit");
  const VisionGolden g = read_vision_golden(tiny_vision_dir() + "/vit");
  RegisterNeuronOptions o;
  o.detection_layer = 9;
  EXPECT_THROW(find_register_neurons(*model, {{g.pixels.data(), g.height, g.width}}, o), Error);
  EXPECT_THROW(find_register_neurons(*model, {}, {}), Error);
  Taps taps;
  EXPECT_THROW(add_test_time_register_taps(taps, model->config(), {{0, 100000, 0}}), Error);
}

}  // namespace
