// Sink emergence: attention on token 0 split by query kind, the value drain of
// token 0 and its residual-norm ratio, averaged over several sequences.
#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

namespace {

double row_norm(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return std::sqrt(s);
}

double median(std::vector<double> v) {
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + int64_t(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2) return hi;
  return 0.5 * (hi + *std::max_element(v.begin(), v.begin() + int64_t(mid)));
}

}  // namespace

SinkEmergence sink_emergence(Session& session, const std::vector<std::vector<int32_t>>& sequences,
                             const std::vector<std::vector<uint8_t>>& kinds) {
  using namespace probe_detail;
  const char* probe = "sink_emergence";
  check(!sequences.empty(), std::string(probe) + ": no sequences");
  check(!session.streaming(), std::string(probe) + ": needs a dense session (columns in stream order)");
  check(kinds.empty() || kinds.size() == sequences.size(),
        std::string(probe) + ": kinds must be empty or have one entry per sequence");
  const ModelConfig& mc = session.model().config();
  SinkEmergence r;
  r.n_layers = mc.n_layers;
  r.n_heads = mc.n_heads;
  r.n_kv_heads = mc.n_kv_heads;
  const int64_t L = r.n_layers, H = r.n_heads, Hkv = r.n_kv_heads, hd = mc.head_dim, D = mc.dim;
  const bool relu = mc.relu_attention;
  std::vector<double> sum_rule(size_t(L * H), 0), sum_free(size_t(L * H), 0), drain(size_t(L * Hkv), 0);
  std::vector<double> massive(size_t(L), 0);
  std::vector<double> none_rule(size_t(L * H), 0), none_free(size_t(L * H), 0);  // 1 - sum_j p_ij
  std::vector<std::string> names;
  for (int l = 0; l < L; ++l)
    for (const char* what : {"attn_probs", "v", "resid_out"}) names.push_back(layer_tap(l, what));
  for (size_t s = 0; s < sequences.size(); ++s) {
    const std::vector<int32_t>& ids = sequences[s];
    const int64_t n = int64_t(ids.size());
    check(n >= 2, std::string(probe) + ": sequence " + std::to_string(s) + " has fewer than 2 tokens");
    check(kinds.empty() || int64_t(kinds[s].size()) == n,
          std::string(probe) + ": kinds of sequence " + std::to_string(s) + " do not match its length");
    check(n <= session.context(), std::string(probe) + ": sequence " + std::to_string(s) + " of " +
                                       std::to_string(n) + " tokens does not fit the session");
    const auto cap = capture_taps(session, ids, names);
    for (int64_t t = 1; t < n; ++t) (kinds.empty() || !kinds[s][size_t(t)] ? r.free_queries : r.rule_queries)++;
    for (int l = 0; l < L; ++l) {
      const CapturedTensor& p = cap.at(layer_tap(l, "attn_probs"));
      check(p.rows == H * n && p.cols >= n, std::string(probe) + ": attention probabilities of layer " +
                                                std::to_string(l) + " are not [heads * tokens, tokens]");
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 1; t < n; ++t) {
          const float* row = p.row(h * n + t);
          double total = 0;
          for (int64_t j = 0; j <= t; ++j) total += row[j];
          const bool free_query = kinds.empty() || !kinds[s][size_t(t)];
          // ReLU attention's weights are unnormalised: token 0's share of the row's weight.
          const double a0 = relu ? (total > 0 ? row[0] / total : 0.0) : row[0];
          (free_query ? sum_free : sum_rule)[size_t(l * H + h)] += a0;
          (free_query ? none_free : none_rule)[size_t(l * H + h)] += relu ? 0.0 : std::max(0.0, 1.0 - total);
        }
      const CapturedTensor& v = cap.at(layer_tap(l, "v"));
      for (int64_t g = 0; g < Hkv; ++g) {
        double others = 0;
        for (int64_t t = 1; t < n; ++t) others += row_norm(v.row(t) + g * hd, hd);
        others /= double(n - 1);
        drain[size_t(l * Hkv + g)] += others > 0 ? row_norm(v.row(0) + g * hd, hd) / others : 0.0;
      }
      const CapturedTensor& x = cap.at(layer_tap(l, "resid_out"));
      std::vector<double> norms(static_cast<size_t>(n));
      for (int64_t t = 0; t < n; ++t) norms[size_t(t)] = row_norm(x.row(t), D);
      const double med = median(norms);
      massive[size_t(l)] += med > 0 ? norms[0] / med : 0.0;
    }
    r.sequences++;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.alpha_rule.resize(size_t(L * H));
  r.alpha_free.resize(size_t(L * H));
  r.sink_logit_rule.resize(size_t(L * H));
  r.sink_logit_free.resize(size_t(L * H));
  for (size_t i = 0; i < size_t(L * H); ++i) {
    r.alpha_rule[i] = r.rule_queries > 0 ? sum_rule[i] / double(r.rule_queries) : nan;
    r.alpha_free[i] = r.free_queries > 0 ? sum_free[i] / double(r.free_queries) : nan;
    r.sink_logit_rule[i] = r.rule_queries > 0 ? none_rule[i] / double(r.rule_queries) : nan;
    r.sink_logit_free[i] = r.free_queries > 0 ? none_free[i] / double(r.free_queries) : nan;
  }
  r.value_drain.resize(drain.size());
  for (size_t i = 0; i < drain.size(); ++i) r.value_drain[i] = drain[i] / double(r.sequences);
  r.resid_norm_ratio.resize(massive.size());
  for (size_t i = 0; i < massive.size(); ++i) r.resid_norm_ratio[i] = massive[i] / double(r.sequences);
  return r;
}

SinkEmergence sink_emergence(const std::shared_ptr<const Model>& model,
                             const std::vector<std::vector<int32_t>>& sequences,
                             const std::vector<std::vector<uint8_t>>& kinds) {
  int64_t n = 1;
  for (const auto& s : sequences) n = std::max<int64_t>(n, int64_t(s.size()));
  auto session = probe_detail::session_for(model, n, "sink_emergence");
  return sink_emergence(*session, sequences, kinds);
}

namespace {
nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
  return a;
}
}  // namespace

void to_json(nlohmann::json& j, const SinkEmergence& s) {
  j = {{"n_layers", s.n_layers},       {"n_heads", s.n_heads},
       {"n_kv_heads", s.n_kv_heads},   {"sequences", s.sequences},
       {"rule_queries", s.rule_queries}, {"free_queries", s.free_queries},
       {"alpha_rule", numbers(s.alpha_rule)}, {"alpha_free", numbers(s.alpha_free)},
       {"sink_logit_rule", numbers(s.sink_logit_rule)}, {"sink_logit_free", numbers(s.sink_logit_free)},
       {"value_drain", numbers(s.value_drain)}, {"resid_norm_ratio", numbers(s.resid_norm_ratio)}};
}

}  // namespace sinklab
