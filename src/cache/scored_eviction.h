// Scored eviction: the base of the attention-driven policies (heavy, adaptive).
// The last `window` tokens always stay; the tokens that leave the window
// compete for `keep` slots, and when there are more than `keep` of them the
// one with the lowest score leaves (ties: the newest leaves, so with no
// attention observed the policy keeps the first `keep` tokens, as `sink`
// does). Scores come from the attention the Session hands over after each
// step (KvPolicy::observe_attention), tallied per token, layer and kv head.
//
// One set of survivors serves every layer and kv head (KvStorage gives a token
// one slot everywhere); a policy folds the per-layer, per-head tallies into
// one score per token.
#pragma once

#include <deque>
#include <unordered_map>
#include <vector>

#include "policies.h"

namespace sinklab::cache_detail {

// The attention one token has received since it arrived.
struct AttentionTally {
  std::vector<double> mass;  // [n_layers * n_kv_heads]: probability summed over queries and query heads
  int64_t query_heads = 0;   // (query, query head) pairs that could see it (causal), counted once per step
};

// Adds one observation to the tallies of the tokens it names (every one must
// be in `tally`); errors name `policy`.
void tally_attention(const char* policy, std::unordered_map<int64_t, AttentionTally>& tally,
                     const AttentionObservation& obs);

class ScoredEviction : public KvPolicy {
 public:
  ScoredEviction(const char* name, int64_t keep, int64_t window) : name_(name), keep_(keep), window_(window) {}
  std::string_view name() const override { return name_; }
  int64_t capacity() const override { return keep_ + window_; }
  int64_t size() const override { return int64_t(kept_.size() + recent_.size()); }
  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override;
  void survivors(std::vector<TokenMeta>& out) const override;
  void observe_attention(const AttentionObservation& obs) override;
  using KvPolicy::append;
  using KvPolicy::survivors;

 protected:
  // Higher keeps the token; `t` may hold no observation yet (empty mass).
  virtual double score(const AttentionTally& t) const = 0;

 private:
  const char* name_;
  int64_t keep_, window_;
  std::vector<TokenMeta> kept_;  // left the window and won a slot; ascending index
  std::deque<TokenMeta> recent_;
  std::unordered_map<int64_t, AttentionTally> tally_;  // by stream index, for every survivor
  StreamOrder order_;
};

}  // namespace sinklab::cache_detail
