// heavy: H2O's heavy-hitter oracle (Zhang et al. 2023). The last W tokens
// stay; older tokens compete for H slots by the attention they have
// accumulated since they arrived, summed over every query, layer and head.
// (H2O scores each head on its own; here one score per token serves every
// layer and head, since a token has one slot in the storage.)
#include <string>

#include "scored_eviction.h"

namespace sinklab::cache_detail {

namespace {

class HeavyHitterPolicy final : public ScoredEviction {
 public:
  HeavyHitterPolicy(int64_t heavy, int64_t window) : ScoredEviction("heavy", heavy, window) {}

 protected:
  double score(const AttentionTally& t) const override {
    double sum = 0;
    for (double m : t.mass) sum += m;
    return sum;
  }
};

}  // namespace

// heavy + window = budget: with a budget alone, half each (H2O's split).
std::unique_ptr<KvPolicy> make_heavy_policy(const CacheOptions& o) {
  require_at_least("heavy", "heavy", o.heavy, 0);
  require_at_least("heavy", "window", o.window, 0);
  require_at_least("heavy", "budget", o.budget, 0);
  int64_t heavy = o.heavy, window = o.window;
  if (o.budget > 0) {
    if (heavy == 0 && window == 0) heavy = o.budget / 2;
    if (window == 0) window = o.budget - heavy;
    if (heavy == 0) heavy = o.budget - window;
    if (heavy + window != o.budget || heavy < 0)
      throw Error("heavy cache: options 'heavy' + 'window' (" + std::to_string(heavy) + " + " +
                  std::to_string(window) + ") disagree with option 'budget' (" + std::to_string(o.budget) +
                  "); set two of the three");
  } else if (heavy == 0 || window == 0) {
    throw Error("heavy cache: set option 'budget', or both 'heavy' and 'window' (got heavy=" +
                std::to_string(heavy) + ", window=" + std::to_string(window) + ")");
  }
  require_at_least("heavy", "window", window, 1);
  return std::make_unique<HeavyHitterPolicy>(heavy, window);
}

}  // namespace sinklab::cache_detail
