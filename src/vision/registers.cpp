// Register neurons (the MLP neurons that write the high-norm outlier tokens)
// and the test-time register edit that moves their activations onto an
// appended zero token.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "sinklab/vision.h"

namespace sinklab {

namespace {

// Per image: the outlier tokens at the detection layer, then the sum of
// |ffn_act| at those tokens of every neuron in layers 0..highest.
struct Accumulator {
  const VisionConfig& c;
  int highest;
  std::vector<double> sum;  // [highest + 1, hidden]
  int64_t count = 0;
};

std::vector<int> outliers_at_detection(const VisionModel& model, const PixelImage& img, const RegisterNeuronOptions& o,
                                       double& threshold) {
  VisionInspectOptions io;
  io.norm_threshold = o.outlier_threshold;
  io.norm_factor = o.norm_factor;
  const VisionInspection r = inspect_vision(model, img.pixels, img.height, img.width, io);
  threshold = r.threshold[size_t(o.detection_layer)];
  return r.high_norm[size_t(o.detection_layer)];
}

void accumulate(const VisionModel& model, const PixelImage& img, const std::vector<int>& outliers, Accumulator& acc) {
  if (outliers.empty()) return;
  const int64_t H = acc.c.hidden;
  Taps taps;
  taps.add("blk.*.ffn_act", [&](const TapEvent& ev) {
    if (ev.layer > acc.highest) return;
    for (int t : outliers)
      for (int64_t n = 0; n < H; ++n)
        acc.sum[size_t(ev.layer * H + n)] += std::abs(double(ev.data[int64_t(t) * ev.cols + n]));
  });
  VisionForwardOptions fo;
  fo.taps = &taps;
  model.forward(img.pixels, img.height, img.width, fo);
  acc.count += int64_t(outliers.size());
}

}  // namespace

RegisterNeuronResult find_register_neurons(const VisionModel& model, const std::vector<PixelImage>& images,
                                           const RegisterNeuronOptions& opts) {
  const VisionConfig& c = model.config();
  RegisterNeuronOptions o = opts;
  if (o.detection_layer < 0) o.detection_layer = c.n_layers - 1;
  if (o.highest_layer < 0) o.highest_layer = o.detection_layer;
  check(o.detection_layer < c.n_layers, [&] {
    return "register neurons: detection layer " + std::to_string(o.detection_layer) + " is out of range (0.." +
           std::to_string(c.n_layers - 1) + ")";
  });
  check(o.highest_layer < c.n_layers, [&] {
    return "register neurons: highest layer " + std::to_string(o.highest_layer) + " is out of range (0.." +
           std::to_string(c.n_layers - 1) + ")";
  });
  check(o.top_k >= 1, "register neurons: top_k should be at least 1");
  check(!images.empty(), "register neurons: no images given");
  Accumulator acc{c, o.highest_layer, std::vector<double>(size_t(o.highest_layer + 1) * size_t(c.hidden), 0.0)};
  RegisterNeuronResult result;
  for (const PixelImage& img : images) {
    double threshold = 0;
    const std::vector<int> outliers = outliers_at_detection(model, img, o, threshold);
    result.outlier_thresholds.push_back(threshold);
    accumulate(model, img, outliers, acc);
  }
  result.images = int(images.size());
  result.outlier_tokens = acc.count;
  if (acc.count == 0) return result;  // no outliers: no register neurons
  std::vector<RegisterNeuron> all;
  all.reserve(acc.sum.size());
  for (size_t i = 0; i < acc.sum.size(); ++i)
    all.push_back({int(i / size_t(c.hidden)), int(i % size_t(c.hidden)), acc.sum[i] / double(acc.count)});
  const size_t k = std::min(all.size(), size_t(o.top_k));
  std::partial_sort(all.begin(), all.begin() + std::ptrdiff_t(k), all.end(), [](const auto& a, const auto& b) {
    return a.score != b.score ? a.score > b.score : std::tie(a.layer, a.neuron) < std::tie(b.layer, b.neuron);
  });
  result.neurons.assign(all.begin(), all.begin() + std::ptrdiff_t(k));
  return result;
}

std::vector<int> add_test_time_register_taps(Taps& taps, const VisionConfig& c,
                                             const std::vector<RegisterNeuron>& neurons, int n_registers) {
  check(n_registers >= 1, "test-time registers: at least one register token is needed");
  for (const RegisterNeuron& r : neurons) {
    check(r.layer >= 0 && r.layer < c.n_layers && r.neuron >= 0 && r.neuron < c.hidden, [&] {
      return "test-time registers: neuron " + std::to_string(r.layer) + ":" + std::to_string(r.neuron) +
             " is out of range (layers 0.." + std::to_string(c.n_layers - 1) + ", neurons 0.." +
             std::to_string(c.hidden - 1) + ")";
    });
  }
  std::vector<int> ids;
  for (int l = 0; l < c.n_layers; ++l) {
    std::vector<int> chosen;
    for (const RegisterNeuron& r : neurons)
      if (r.layer == l) chosen.push_back(r.neuron);
    if (chosen.empty()) continue;
    const bool keep_cls = c.cls_token;
    ids.push_back(taps.add("blk." + std::to_string(l) + ".ffn_act", [chosen, n_registers, keep_cls](const TapEvent& ev) {
      check(ev.rows > n_registers, "test-time registers: the forward has no room for the register tokens");
      const int64_t first_reg = ev.rows - n_registers;
      for (int n : chosen) {
        float top = -INFINITY;
        for (int64_t t = 0; t < ev.rows; ++t) top = std::max(top, ev.data[t * ev.cols + n]);
        for (int64_t t = keep_cls ? 1 : 0; t < ev.rows; ++t) ev.data[t * ev.cols + n] = t >= first_reg ? top : 0.f;
      }
    }));
  }
  return ids;
}

}  // namespace sinklab
