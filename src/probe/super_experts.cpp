// Super experts (MoE): the largest |down_proj output| of every expert over
// calibration batches, flagged against the percentile and the overall maximum.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

using namespace probe_detail;

double percentile(std::vector<double> values, double q) {
  check(!values.empty(), "percentile: no values");
  check(q >= 0 && q <= 100, "percentile: q = " + std::to_string(q) + " is outside [0, 100]");
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * double(values.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - double(lo)) * (values[hi] - values[lo]);
}

namespace {

// The expert index in "blk.L.moe.expert.E.down_out", or -1 for another name.
int expert_of(const std::string& name, const std::string& prefix) {
  static const std::string suffix = ".down_out";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoi(digits);
}

}  // namespace

SuperExperts super_experts(Session& session, const std::vector<std::vector<int32_t>>& batches,
                           const SuperExpertOptions& opts) {
  const ModelConfig& c = session.model().config();
  check(c.moe.n_experts > 0, "super_experts: model '" + c.arch + "' has no experts (moe.n_experts = 0)");
  check(!batches.empty(), "super_experts: no calibration batches");
  for (const auto& b : batches) check_ids(b, "super_experts");
  check(opts.percentile >= 0 && opts.percentile <= 100, "super_experts: percentile must be in [0, 100]");
  check(std::isfinite(opts.max_fraction) && std::isfinite(opts.layer_fraction),
        "super_experts: fractions must be finite");
  SuperExperts out;
  out.n_layers = int(c.n_layers);
  out.n_experts = c.moe.n_experts;
  out.experts.resize(size_t(out.n_layers) * size_t(out.n_experts));
  for (int l = 0; l < out.n_layers; ++l)
    for (int e = 0; e < out.n_experts; ++e) {
      ExpertStat& s = out.experts[size_t(l * out.n_experts + e)];
      s.layer = l;
      s.expert = e;
    }
  int64_t events = 0;
  {
    TapGuard guard(session);
    for (int l = 0; l < out.n_layers; ++l) {
      const std::string prefix = layer_tap(l, "moe.expert.");
      guard.add(prefix + "*", [&out, &events, l, prefix](const TapEvent& ev) {
        const int e = expert_of(ev.name, prefix);
        if (e < 0) return;
        check(e < out.n_experts, "super_experts: tap '" + ev.name + "' names an expert beyond the config");
        ExpertStat& s = out.experts[size_t(l * out.n_experts + e)];
        s.routed += ev.rows;
        for (int64_t i = 0; i < ev.rows * ev.cols; ++i) {
          const double mag = std::fabs(double(ev.data[i]));
          if (mag > s.max_out || s.argmax_dim < 0) {
            s.max_out = std::max(mag, s.max_out);
            s.argmax_dim = i % ev.cols;
          }
        }
        ++events;
      });
    }
    for (const auto& b : batches) {
      session.reset();
      session.feed(b);
    }
  }
  check(events > 0, "super_experts: no 'blk.L.moe.expert.E.down_out' tap fired");
  std::vector<double> maxima;
  for (const ExpertStat& s : out.experts) maxima.push_back(s.max_out);
  out.percentile_value = percentile(maxima, opts.percentile);
  out.overall_max = *std::max_element(maxima.begin(), maxima.end());
  for (ExpertStat& s : out.experts) {
    s.super = double(s.layer) < opts.layer_fraction * double(out.n_layers) && s.max_out > out.percentile_value &&
              s.max_out > out.overall_max * opts.max_fraction;
    if (s.super) out.supers.push_back(s);
  }
  std::sort(out.supers.begin(), out.supers.end(),
            [](const ExpertStat& a, const ExpertStat& b) { return a.max_out > b.max_out; });
  return out;
}

SuperExperts super_experts(const std::shared_ptr<const Model>& model,
                           const std::vector<std::vector<int32_t>>& batches, const SuperExpertOptions& opts) {
  size_t longest = 1;
  for (const auto& b : batches) longest = std::max(longest, b.size());
  auto session = session_for(model, int64_t(longest), "super_experts");
  return super_experts(*session, batches, opts);
}

}  // namespace sinklab
