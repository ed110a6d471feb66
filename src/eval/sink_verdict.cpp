// The sink verdict of an inspection report: one line that says whether token 0
// is an attention sink and how strongly (heads above eps, value drain, massive
// ratio), with the definitions and a plain-English explanation (report.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "sinklab/report.h"

namespace sinklab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
nlohmann::json layer_or_null(int layer) { return layer >= 0 ? nlohmann::json(layer) : nlohmann::json(nullptr); }

// Two significant digits below 100 ("0.08", "1.5", "12"), whole numbers above ("240").
std::string short_number(double v) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 ? "%.0f" : "%.2g", v);
  return buf;
}

std::string alpha_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Layers (by number) that have at least one head with alpha_0 > eps.
std::vector<int> sink_layers(const SinkScores& s, double eps) {
  std::vector<int> layers;
  for (size_t li = 0; li < s.layers.size(); ++li)
    for (int64_t h = 0; h < s.n_heads; ++h)
      if (s.alpha_at(li, h, 0) > eps) {
        layers.push_back(s.layers[li]);
        break;
      }
  return layers;
}

// Per layer: ||v_0|| / mean_{t>=1} ||v_t||, each averaged over kv heads; the smallest
// over `layers` (every layer when empty). Sets *at to its layer.
double value_drain(const ValueNorms& v, const std::vector<int>& layers, int* at) {
  *at = -1;
  const int64_t G = v.n_kv_heads, T = v.n_tokens;
  if (G <= 0 || T < 2) return kNaN;
  check(v.norms.size() == v.layers.size() * size_t(G * T),
        "sink verdict: value_norms holds " + std::to_string(v.norms.size()) + " norms, expected layers x kv heads x tokens");
  double best = kNaN;
  for (size_t li = 0; li < v.layers.size(); ++li) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), v.layers[li]) == layers.end()) continue;
    double first = 0, rest = 0;
    for (int64_t g = 0; g < G; ++g) {
      first += v.at(li, g, 0);
      for (int64_t t = 1; t < T; ++t) rest += v.at(li, g, t);
    }
    first /= double(G);
    rest /= double(G * (T - 1));
    const double ratio = rest > 0 ? first / rest : (first > 0 ? std::numeric_limits<double>::infinity() : kNaN);
    if (std::isnan(ratio)) continue;
    if (std::isnan(best) || ratio < best) {
      best = ratio;
      *at = v.layers[li];
    }
  }
  return best;
}

// The largest max |h_0| / median |h| over the layers of the massive_activations probe.
double massive_ratio(const MassiveActivations& m, const std::vector<double>& token0_max_abs, int* at) {
  *at = -1;
  if (token0_max_abs.empty()) return kNaN;
  check(token0_max_abs.size() == m.layers.size(),
        "sink verdict: token0_max_abs has " + std::to_string(token0_max_abs.size()) + " entries, expected one per " +
            "massive_activations layer (" + std::to_string(m.layers.size()) + ")");
  double best = kNaN;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const double top = token0_max_abs[i], median = m.layers[i].median_abs;
    if (std::isnan(top)) continue;
    const double ratio = median > 0 ? top / median : (top > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    if (std::isnan(best) || ratio > best) {
      best = ratio;
      *at = m.layers[i].layer;
    }
  }
  return best;
}

// What the attention variant adds to the verdict line.
std::string variant_note(const InspectReport& r, bool sink) {
  if (r.variant == "sink-token") {
    if (!r.token0_is_sink_token) return " (this sink-token model's learned <|sink|> token is not token 0)";
    return sink ? "" : " (token 0 is the learned <|sink|> token)";
  }
  if (!r.sink_logits.empty()) return "; the model has learned per-head sink logits (see sink_logits)";
  return "";
}

}  // namespace

SinkVerdict sink_verdict(const InspectReport& r) {
  const SinkScores& s = r.sinks;
  check(s.alpha.size() == s.layers.size() * size_t(std::max<int64_t>(s.n_heads, 0)) * size_t(std::max<int64_t>(s.n_keys, 0)),
        "sink verdict: sink_scores holds " + std::to_string(s.alpha.size()) + " alphas, expected layers x heads x keys");
  SinkVerdict v;
  v.eps = r.options.eps;
  v.token0_is_sink_token = r.token0_is_sink_token;
  if (s.n_keys >= 1) {
    for (size_t li = 0; li < s.layers.size(); ++li)
      for (int64_t h = 0; h < s.n_heads; ++h) {
        const double a = s.alpha_at(li, h, 0);
        ++v.heads_total;
        v.heads_above += a > v.eps;
        if (std::isfinite(a)) v.max_alpha0 = std::max(v.max_alpha0, a);
      }
  }
  v.sink = v.heads_above >= 1;
  v.value_drain = value_drain(r.value_norms, sink_layers(s, v.eps), &v.value_drain_layer);
  v.massive_ratio = massive_ratio(r.massive, r.token0_max_abs, &v.massive_ratio_layer);
  if (v.sink) {
    v.text = std::string("sink on token 0") + (r.token0_is_sink_token ? " (the learned <|sink|> token)" : "") + ": " +
             std::to_string(v.heads_above) + " of " + std::to_string(v.heads_total) + " heads with α0 > " +
             alpha_text(v.eps) + "; value drain " + short_number(v.value_drain) + "; massive ratio " +
             short_number(v.massive_ratio);
  } else {
    v.text = "no sink: max α0 = " + alpha_text(v.max_alpha0) + " ≤ ε = " + alpha_text(v.eps);
  }
  v.text += variant_note(r, v.sink);
  return v;
}

const char* sink_verdict_definitions() {
  return "Heads above ε: the (layer, head) pairs whose α0 (the mean attention that the queries give to token 0) "
         "exceeds ε; the verdict is \"sink\" when at least one head is above ε. Value drain: over the layers with a "
         "head above ε (every layer when none), the smallest ‖v0‖ / mean over t ≥ 1 of ‖vt‖, each value norm "
         "averaged over kv heads, over the first tokens of the value-norm probe; well below 1 means that attending "
         "to token 0 adds little. Massive ratio: the largest, over layers, of the largest |h| among token 0's "
         "residual-stream entries (after the block) divided by that layer's median |h| over every token and "
         "dimension.";
}

const char* attention_sink_explanation() {
  return "An attention sink is a token that soaks up a head's spare attention. Softmax makes every head spend all "
         "of its attention somewhere, so a head that has nothing useful to attend to for a query parks that "
         "attention on one token, usually the first token of the sequence, whatever it says. The sink's value "
         "vector is small, so attending to it is close to a no-op: the head adds almost nothing to the residual "
         "stream. Sinks go with massive activations: a few entries of the sink token's residual stream grow to "
         "hundreds or thousands of times the median, which gives its key a direction that every query can find. A "
         "model that relies on its sink breaks when a streaming cache evicts that token: the spare attention has "
         "to land on real tokens and perplexity explodes, which is why StreamingLLM keeps the first tokens. A "
         "learned sink token (a <|sink|> token put first) or learned sink logits (a per-head softmax term without "
         "a value) give the model a sink on purpose.";
}

void to_json(nlohmann::json& j, const SinkVerdict& v) {
  j = {{"sink", v.sink},
       {"heads_above", v.heads_above},
       {"heads_total", v.heads_total},
       {"max_alpha0", v.max_alpha0},
       {"eps", v.eps},
       {"value_drain", number(v.value_drain)},
       {"value_drain_layer", layer_or_null(v.value_drain_layer)},
       {"massive_ratio", number(v.massive_ratio)},
       {"massive_ratio_layer", layer_or_null(v.massive_ratio_layer)},
       {"token0_is_sink_token", v.token0_is_sink_token},
       {"text", v.text},
       {"definitions", sink_verdict_definitions()},
       {"explanation", attention_sink_explanation()}};
}

}  // namespace sinklab
