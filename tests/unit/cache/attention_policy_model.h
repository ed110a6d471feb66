// Brute-force models of the policies that evict by attention (heavy,
// adaptive, snapkv), written from their descriptions: the survivors after a
// history of appended batches, each followed by the attention observed on the
// cache. Scores are recomputed from the whole observation log each time they
// are needed (summed in arrival order, as the description says).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "sinklab/cache.h"

namespace cache_test {

// One AttentionObservation with owned data; tokens by stream index.
struct Observed {
  int layer = 0, n_layers = 1, n_kv_heads = 1, heads_per_kv = 1;
  int64_t n_queries = 1, first_query = 0;
  std::vector<int64_t> tokens;
  std::vector<float> mass;  // [n_kv_heads, tokens.size()]
};

// A batch of tokens appended, then the observations of that step.
struct StreamEvent {
  std::vector<sinklab::TokenMeta> batch;
  std::vector<Observed> observed;
};

namespace detail {

// Per (layer, kv head) attention on `index` summed over the log, and the
// (query, query head) pairs that could see it (queries first_query.. at or
// after the token), counted once per step (layer 0).
inline void tally_of(int64_t index, const std::vector<StreamEvent>& log, std::vector<double>& mass,
                     int64_t& query_heads) {
  mass.clear();
  query_heads = 0;
  for (const StreamEvent& e : log)
    for (const Observed& o : e.observed) {
      const auto it = std::find(o.tokens.begin(), o.tokens.end(), index);
      if (it == o.tokens.end()) continue;
      const size_t i = size_t(it - o.tokens.begin()), n = o.tokens.size();
      mass.resize(size_t(o.n_layers * o.n_kv_heads), 0.0);
      for (int g = 0; g < o.n_kv_heads; ++g) mass[size_t(o.layer * o.n_kv_heads + g)] += double(o.mass[size_t(g) * n + i]);
      const int64_t seeing = o.first_query + o.n_queries - std::max(index, o.first_query);
      if (o.layer == 0) query_heads += std::max<int64_t>(seeing, 0) * o.heads_per_kv;
    }
}

inline double score_of(const std::string& policy, int64_t index, const std::vector<StreamEvent>& log) {
  std::vector<double> mass;
  int64_t query_heads = 0;
  tally_of(index, log, mass, query_heads);
  if (policy == "heavy") return std::accumulate(mass.begin(), mass.end(), 0.0);
  if (query_heads == 0) return 0.0;
  return *std::max_element(mass.begin(), mass.end()) / double(query_heads);
}

}  // namespace detail

// heavy (keep = heavy) and adaptive (keep = sink): after every token, while
// more than keep + window are held, the token outside the last `window` with
// the lowest score leaves (ties: the newest).
inline std::vector<int64_t> scored_brute_force(const std::string& policy, int64_t keep, int64_t window,
                                               const std::vector<StreamEvent>& log) {
  std::vector<int64_t> alive;
  std::vector<StreamEvent> seen;
  for (const StreamEvent& e : log) {
    for (const sinklab::TokenMeta& t : e.batch) {
      alive.push_back(t.index);
      if (int64_t(alive.size()) <= keep + window) continue;
      size_t victim = 0;
      double lowest = 0;
      for (size_t i = 0; i + size_t(window) < alive.size(); ++i) {
        const double s = detail::score_of(policy, alive[i], seen);
        if (i == 0 || s <= lowest) {
          lowest = s;
          victim = i;
        }
      }
      alive.erase(alive.begin() + std::ptrdiff_t(victim));
    }
    seen.push_back(StreamEvent{{}, e.observed});
  }
  return alive;
}

// adaptive-layer: each of `n_layers` layers has its own list of kept tokens.
// After every token, the token that left the last `window` joins every
// layer's list; while a layer's list holds more than `keep`, its token with
// the lowest score at that layer (max over kv heads of the mass there /
// query heads) leaves it (ties: the newest). The cache holds every token some
// list holds plus the window; layer l sees its list plus the window.
struct PerLayerKept {
  std::vector<int64_t> alive;                 // ascending
  std::vector<std::vector<int64_t>> visible;  // per layer, ascending
};
inline PerLayerKept per_layer_brute_force(int64_t keep, int64_t window, int n_layers,
                                          const std::vector<StreamEvent>& log) {
  std::vector<int64_t> stream;
  std::vector<std::vector<int64_t>> lists(static_cast<size_t>(n_layers));
  std::vector<StreamEvent> seen;
  auto layer_score = [&](int l, int64_t index) {
    std::vector<double> mass;
    int64_t query_heads = 0;
    detail::tally_of(index, seen, mass, query_heads);
    if (query_heads == 0 || mass.empty()) return 0.0;
    const size_t heads = mass.size() / size_t(n_layers);
    double best = 0;
    for (size_t g = 0; g < heads; ++g) best = std::max(best, mass[size_t(l) * heads + g]);
    return best / double(query_heads);
  };
  for (const StreamEvent& e : log) {
    for (const sinklab::TokenMeta& t : e.batch) {
      stream.push_back(t.index);
      if (int64_t(stream.size()) <= window) continue;
      const int64_t leaving = stream[stream.size() - size_t(window) - 1];
      for (int l = 0; l < n_layers; ++l) {
        std::vector<int64_t>& list = lists[size_t(l)];
        list.push_back(leaving);
        if (int64_t(list.size()) <= keep) continue;
        size_t victim = 0;
        double lowest = 0;
        for (size_t i = 0; i < list.size(); ++i) {
          const double s = layer_score(l, list[i]);
          if (i == 0 || s <= lowest) {
            lowest = s;
            victim = i;
          }
        }
        list.erase(list.begin() + std::ptrdiff_t(victim));
      }
    }
    seen.push_back(StreamEvent{{}, e.observed});
  }
  PerLayerKept out;
  const size_t recent_from = stream.size() - std::min(stream.size(), size_t(window));
  const std::vector<int64_t> recent(stream.begin() + std::ptrdiff_t(recent_from), stream.end());
  for (const std::vector<int64_t>& list : lists) {
    out.alive.insert(out.alive.end(), list.begin(), list.end());
    std::vector<int64_t> v = list;
    v.insert(v.end(), recent.begin(), recent.end());
    out.visible.push_back(std::move(v));
  }
  std::sort(out.alive.begin(), out.alive.end());
  out.alive.erase(std::unique(out.alive.begin(), out.alive.end()), out.alive.end());
  out.alive.insert(out.alive.end(), recent.begin(), recent.end());
  return out;
}

// snapkv: the whole stream up to `prompt` tokens; after it, the prompt's first
// prompt - window tokens are scored by the observations whose queries all lie
// in the prompt's last `window` tokens (made before any later token arrived),
// max-pooled over `pool` neighbours; the best budget - window of them (ties:
// the earlier) stay, and the last tokens of the stream fill the budget.
inline std::vector<int64_t> snapkv_brute_force(const sinklab::CacheOptions& o, const std::vector<StreamEvent>& log) {
  std::vector<int64_t> all;
  std::vector<double> score(size_t(o.prompt), 0.0);
  for (const StreamEvent& e : log) {
    for (const sinklab::TokenMeta& t : e.batch) all.push_back(t.index);
    if (int64_t(all.size()) > o.prompt || int64_t(all.size()) <= o.prompt - o.window) continue;
    for (const Observed& ob : e.observed) {
      if (ob.first_query < all[size_t(o.prompt - o.window)]) continue;
      for (size_t i = 0; i < ob.tokens.size(); ++i)
        for (int g = 0; g < ob.n_kv_heads; ++g) {
          const size_t p = size_t(std::find(all.begin(), all.end(), ob.tokens[i]) - all.begin());
          score[p] += double(ob.mass[size_t(g) * ob.tokens.size() + i]);
        }
    }
  }
  if (int64_t(all.size()) <= o.prompt) return all;
  const int64_t prefix = o.prompt - o.window;
  std::vector<std::pair<double, int64_t>> ranked;  // (-pooled score, position): ascending = best first
  for (int64_t i = 0; i < prefix; ++i) {
    double best = -1e300;
    for (int64_t j = i - o.pool / 2; j <= i + (o.pool - 1) / 2; ++j)
      if (j >= 0 && j < prefix) best = std::max(best, score[size_t(j)]);
    ranked.push_back({-best, i});
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<int64_t> out;
  for (int64_t r = 0; r < std::min(o.budget - o.window, prefix); ++r) out.push_back(all[size_t(ranked[size_t(r)].second)]);
  std::sort(out.begin(), out.end());
  const size_t recent = size_t(o.budget) - out.size();
  for (size_t i = all.size() - std::min(recent, all.size() - size_t(prefix)); i < all.size(); ++i) out.push_back(all[i]);
  return out;
}

}  // namespace cache_test
