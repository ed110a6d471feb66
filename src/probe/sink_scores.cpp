// Sink scores (alpha_k per layer and head, Sink_k^eps) from the materialised
// attention probabilities, and value norms of the first tokens.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

using namespace probe_detail;

void add_sink_layer(SinkScores& s, int layer, const float* probs) {
  check(s.n_heads > 0 && s.n_tokens > 0 && s.n_keys > 0 && s.n_keys <= s.n_tokens,
        "add_sink_layer: the scores need n_heads, n_tokens and 1 <= n_keys <= n_tokens");
  check(s.first_k >= 1, "add_sink_layer: first_k must be at least 1");
  const int64_t n = s.n_tokens, H = s.n_heads, K = s.n_keys;
  const int64_t width = std::min<int64_t>(s.first_k, n);
  s.layers.push_back(layer);
  for (int64_t h = 0; h < H; ++h) {
    const float* A = probs + h * n * n;
    for (int64_t k = 0; k < K; ++k) {
      double sum = 0;
      for (int64_t i = k; i < n; ++i) sum += A[i * n + k];
      s.alpha.push_back(sum / double(n - k));
    }
    double mass = 0, dropped = 0;
    for (int64_t i = 0; i < n; ++i) {
      double row = 0;
      for (int64_t j = 0; j < n; ++j) row += A[i * n + j];
      dropped += std::max(0.0, 1.0 - row);
      for (int64_t j = 0; j < width; ++j) mass += A[i * n + j];
    }
    s.mass_first_k.push_back(mass / double(n));
    s.sink_logit_mass.push_back(dropped / double(n));
  }
  const size_t pairs = s.layers.size() * size_t(H);
  s.sink_percent.assign(size_t(K), 0.0);
  for (size_t p = 0; p < pairs; ++p)
    for (int64_t k = 0; k < K; ++k)
      if (s.alpha[p * size_t(K) + size_t(k)] > s.eps) s.sink_percent[size_t(k)] += 1;
  for (double& v : s.sink_percent) v = 100.0 * v / double(pairs);
}

SinkScores sink_scores(Session& session, std::span<const int32_t> ids, const SinkScoreOptions& opts) {
  check_ids(ids, "sink_scores");
  check(opts.max_keys >= 0, "sink_scores: max_keys must be >= 0 (0 = every key)");
  check(opts.first_k >= 1, "sink_scores: first_k must be >= 1");
  check(std::isfinite(opts.eps), "sink_scores: eps must be finite");
  const ModelConfig& c = session.model().config();
  const std::vector<int> layers = resolve_layers(c, opts.layers, "sink_scores");
  const int64_t n = int64_t(ids.size());
  check_attention_capture_fits(c, n, 1, "sink_scores");  // one layer's matrix at a time
  SinkScores s;
  s.eps = opts.eps;
  s.first_k = opts.first_k;
  s.n_heads = c.n_heads;
  s.n_tokens = n;
  s.n_keys = opts.max_keys > 0 ? std::min<int64_t>(opts.max_keys, n) : n;
  std::vector<std::string> names;
  std::vector<bool> fired(layers.size(), false);
  TapGuard guard(session);
  for (size_t li = 0; li < layers.size(); ++li) {
    names.push_back(layer_tap(layers[li], "attn_probs"));
    guard.add(names.back(), [&s, &fired, li, n](const TapEvent& e) {
      check(e.rows == s.n_heads * n && e.cols == n,
            "sink_scores: tap '" + e.name + "' has shape [" + std::to_string(e.rows) + ", " +
                std::to_string(e.cols) + "], expected [heads * tokens, tokens]");
      add_sink_layer(s, e.layer, e.data);
      fired[li] = true;
    });
  }
  session.reset();
  session.feed(ids);
  check_fired(names, fired, "sink_scores");
  return s;
}

SinkScores sink_scores(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                       const SinkScoreOptions& opts) {
  auto session = session_for(model, int64_t(ids.size()), "sink_scores");
  return sink_scores(*session, ids, opts);
}

ValueNorms value_norms(Session& session, std::span<const int32_t> ids, const ValueNormOptions& opts) {
  check_ids(ids, "value_norms");
  check(opts.first_n >= 0, "value_norms: first_n must be >= 0 (0 = every token)");
  const ModelConfig& c = session.model().config();
  const std::vector<int> layers = resolve_layers(c, opts.layers, "value_norms");
  const int64_t n = int64_t(ids.size());
  ValueNorms v;
  v.n_kv_heads = c.n_kv_heads;
  v.n_tokens = opts.first_n > 0 ? std::min<int64_t>(opts.first_n, n) : n;
  v.layers = layers;
  v.norms.assign(layers.size() * size_t(v.n_kv_heads * v.n_tokens), 0.0);
  std::vector<std::string> names;
  std::vector<bool> fired(layers.size(), false);
  TapGuard guard(session);
  const int64_t hd = c.head_dim;
  for (size_t li = 0; li < layers.size(); ++li) {
    names.push_back(layer_tap(layers[li], "v"));
    guard.add(names.back(), [&v, &fired, li, n, hd](const TapEvent& e) {
      check(e.rows == n && e.cols == v.n_kv_heads * hd,
            "value_norms: tap '" + e.name + "' has shape [" + std::to_string(e.rows) + ", " +
                std::to_string(e.cols) + "], expected [tokens, kv_heads * head_dim]");
      for (int64_t g = 0; g < v.n_kv_heads; ++g)
        for (int64_t t = 0; t < v.n_tokens; ++t) {
          const float* x = e.data + t * e.cols + g * hd;
          double sq = 0;
          for (int64_t d = 0; d < hd; ++d) sq += double(x[d]) * x[d];
          v.norms[(li * size_t(v.n_kv_heads) + size_t(g)) * size_t(v.n_tokens) + size_t(t)] = std::sqrt(sq);
        }
      fired[li] = true;
    });
  }
  session.reset();
  session.feed(ids);
  check_fired(names, fired, "value_norms");
  return v;
}

ValueNorms value_norms(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                       const ValueNormOptions& opts) {
  auto session = session_for(model, int64_t(ids.size()), "value_norms");
  return value_norms(*session, ids, opts);
}

}  // namespace sinklab
