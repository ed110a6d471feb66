// Massive activations (Sun et al. 2024): residual-stream entries that are large
// in absolute terms and relative to the median magnitude of their layer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

using namespace probe_detail;

namespace {

double median_of(std::vector<float> values) {
  const size_t m = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + std::ptrdiff_t(m), values.end());
  const double upper = values[m];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + std::ptrdiff_t(m));
  return 0.5 * (lower + upper);
}

MassiveLayer measure_layer(const TapEvent& e, std::span<const int32_t> ids, const MassiveActivationOptions& opts) {
  const size_t count = size_t(e.rows * e.cols);
  std::vector<float> mags(count);
  for (size_t i = 0; i < count; ++i) mags[i] = std::fabs(e.data[i]);
  MassiveLayer m;
  m.layer = e.layer;
  m.median_abs = median_of(mags);
  auto ratio_of = [&](double mag) {
    if (m.median_abs > 0) return mag / m.median_abs;
    return mag > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  };
  auto entry_at = [&](size_t i) {
    ActivationEntry a;
    a.token = int64_t(i) / e.cols;
    a.dim = int64_t(i) % e.cols;
    a.token_id = ids[size_t(a.token)];
    a.value = e.data[i];
    a.ratio = ratio_of(mags[i]);
    a.above_abs = mags[i] > opts.abs_threshold;
    a.above_ratio = a.ratio > opts.ratio_threshold;
    return a;
  };
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t(0));
  auto larger = [&](size_t a, size_t b) { return mags[a] > mags[b] || (mags[a] == mags[b] && a < b); };
  const size_t top = std::min(count, size_t(std::max(opts.top_n, 0)));
  std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(top), order.end(), larger);
  for (size_t t = 0; t < top; ++t) m.top.push_back(entry_at(order[t]));
  if (count > 0) {
    const size_t big = *std::min_element(order.begin(), order.end(), larger);
    m.max_abs = mags[big];
    m.max_ratio = ratio_of(mags[big]);
  }
  std::vector<size_t> flagged;
  for (size_t i = 0; i < count; ++i) {
    if (mags[i] > opts.abs_threshold && ratio_of(mags[i]) > opts.ratio_threshold) flagged.push_back(i);
  }
  m.n_flagged = int64_t(flagged.size());
  std::sort(flagged.begin(), flagged.end(), larger);
  if (flagged.size() > opts.max_flagged) flagged.resize(opts.max_flagged);
  for (size_t i : flagged) m.flagged.push_back(entry_at(i));
  return m;
}

}  // namespace

MassiveActivations massive_activations(Session& session, std::span<const int32_t> ids,
                                       const MassiveActivationOptions& opts) {
  check_ids(ids, "massive_activations");
  check(std::isfinite(opts.abs_threshold) && std::isfinite(opts.ratio_threshold),
        "massive_activations: thresholds must be finite");
  check(opts.top_n >= 0, "massive_activations: top_n must be >= 0");
  const ModelConfig& c = session.model().config();
  const std::vector<int> layers = resolve_layers(c, opts.layers, "massive_activations");
  MassiveActivations out;
  out.abs_threshold = opts.abs_threshold;
  out.ratio_threshold = opts.ratio_threshold;
  std::vector<std::string> names;
  std::vector<bool> fired(layers.size(), false);
  TapGuard guard(session);
  for (size_t li = 0; li < layers.size(); ++li) {
    names.push_back(layer_tap(layers[li], "resid_out"));
    guard.add(names.back(), [&out, &fired, &opts, ids, li](const TapEvent& e) {
      check(e.rows == int64_t(ids.size()), "massive_activations: tap '" + e.name + "' has " +
                                               std::to_string(e.rows) + " rows, expected one per token");
      out.layers.push_back(measure_layer(e, ids, opts));
      fired[li] = true;
    });
  }
  session.reset();
  session.feed(ids);
  check_fired(names, fired, "massive_activations");
  return out;
}

MassiveActivations massive_activations(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                                       const MassiveActivationOptions& opts) {
  auto session = session_for(model, int64_t(ids.size()), "massive_activations");
  return massive_activations(*session, ids, opts);
}

}  // namespace sinklab
