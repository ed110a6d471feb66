// Scored eviction (scored_eviction.h): the window, the competition for the
// kept slots, and the attention tally per token.
#include "scored_eviction.h"

#include <algorithm>
#include <string>

namespace sinklab::cache_detail {

void ScoredEviction::append(const TokenMeta& t, std::vector<TokenMeta>& evicted) {
  order_.check(name_, t);
  order_.accept(t);
  recent_.push_back(t);
  tally_[t.index] = AttentionTally{};
  if (int64_t(recent_.size()) <= window_) return;
  kept_.push_back(recent_.front());  // older than every recent token, newer than every kept one
  recent_.pop_front();
  if (int64_t(kept_.size()) <= keep_) return;
  // The lowest score leaves; scanning newest first makes ties evict the newest.
  size_t victim = kept_.size() - 1;
  double lowest = score(tally_.at(kept_[victim].index));
  for (size_t i = kept_.size() - 1; i-- > 0;) {
    const double s = score(tally_.at(kept_[i].index));
    if (s < lowest) {
      lowest = s;
      victim = i;
    }
  }
  evicted.push_back(kept_[victim]);
  tally_.erase(kept_[victim].index);
  kept_.erase(kept_.begin() + std::ptrdiff_t(victim));
}

void ScoredEviction::survivors(std::vector<TokenMeta>& out) const {
  out.assign(kept_.begin(), kept_.end());
  out.insert(out.end(), recent_.begin(), recent_.end());
}

void ScoredEviction::observe_attention(const AttentionObservation& obs) { tally_attention(name_, tally_, obs); }

void tally_attention(const char* policy, std::unordered_map<int64_t, AttentionTally>& tally,
                     const AttentionObservation& obs) {
  const size_t n = obs.tokens.size();
  check(obs.n_layers >= 1 && obs.layer >= 0 && obs.layer < obs.n_layers && obs.n_kv_heads >= 1 &&
            obs.mass.size() == size_t(obs.n_kv_heads) * n,
        std::string(policy) + " cache: an attention observation of " + std::to_string(obs.mass.size()) +
            " masses for " + std::to_string(obs.n_kv_heads) + " kv heads x " + std::to_string(n) +
            " tokens (layer " + std::to_string(obs.layer) + " of " + std::to_string(obs.n_layers) + ")");
  const size_t cells = size_t(obs.n_layers) * size_t(obs.n_kv_heads);
  for (size_t i = 0; i < n; ++i) {
    const auto it = tally.find(obs.tokens[i].index);
    check(it != tally.end(), std::string(policy) + " cache: attention observed on token " +
                                  std::to_string(obs.tokens[i].index) + ", which the cache does not hold");
    AttentionTally& t = it->second;
    if (t.mass.size() != cells) t.mass.assign(cells, 0.0);
    for (int g = 0; g < obs.n_kv_heads; ++g)
      t.mass[size_t(obs.layer) * size_t(obs.n_kv_heads) + size_t(g)] += double(obs.mass[size_t(g) * n + i]);
    // Every layer sees the same queries: count them once per step, only those
    // at or after the token (a batch's earlier queries cannot see it).
    const int64_t blind = std::clamp<int64_t>(obs.tokens[i].index - obs.first_query, 0, obs.n_queries);
    if (obs.layer == 0) t.query_heads += (obs.n_queries - blind) * obs.heads_per_kv;
  }
}

}  // namespace sinklab::cache_detail
