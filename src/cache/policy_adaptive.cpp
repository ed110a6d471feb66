// adaptive: the sinks this model uses, found online. Like `sink`, S slots for
// sinks plus the last W tokens, but the S are not the first tokens: a token
// that leaves the window competes for them by its sink score, the largest
// share of a query's attention it received on average, at the layer and kv
// head that leans on it most:
//   score = max over (layer, kv head) of  mass / (queries x query heads).
// A sink takes a large share from every query at some head; a token that one
// query copied from is diluted by the many queries that ignored it. Scores
// keep updating while a token is kept, so a sink the model stops using can
// lose its slot. The survivors are one set for every layer and head (the
// storage gives a token one slot): a token stays if any head parks on it.
#include <algorithm>
#include <string>

#include "scored_eviction.h"

namespace sinklab::cache_detail {

namespace {

class AdaptiveSinkPolicy final : public ScoredEviction {
 public:
  AdaptiveSinkPolicy(int64_t sink, int64_t window) : ScoredEviction("adaptive", sink, window) {}

 protected:
  double score(const AttentionTally& t) const override {
    if (t.query_heads == 0) return 0.0;
    double best = 0;
    for (double m : t.mass) best = std::max(best, m);
    return best / double(t.query_heads);
  }
};

}  // namespace

std::unique_ptr<KvPolicy> make_adaptive_policy(const CacheOptions& o) {
  require_at_least("adaptive", "sink", o.sink, 0);
  require_at_least("adaptive", "budget", o.budget, 0);
  int64_t window = o.window;
  if (o.budget > 0) {
    if (o.sink >= o.budget)
      throw Error("adaptive cache: option 'sink' (" + std::to_string(o.sink) +
                  ") must be smaller than option 'budget' (" + std::to_string(o.budget) +
                  ") so that the window keeps at least one token");
    if (o.window > 0 && o.sink + o.window != o.budget)
      throw Error("adaptive cache: options 'sink' + 'window' (" + std::to_string(o.sink) + " + " +
                  std::to_string(o.window) + ") disagree with option 'budget' (" + std::to_string(o.budget) +
                  "); set one of 'window' and 'budget'");
    window = o.budget - o.sink;
  } else if (window <= 0) {
    throw Error("adaptive cache: option 'window' must be >= 1 (got " + std::to_string(window) +
                "), or set option 'budget' = sink + window");
  }
  return std::make_unique<AdaptiveSinkPolicy>(o.sink, window);
}

}  // namespace sinklab::cache_detail
