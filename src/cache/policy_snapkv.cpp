// snapkv: prompt compression as in SnapKV (Li et al. 2024). The first
// `prompt` tokens are held whole; the attention their last `window` tokens
// (the observation window) pay to the earlier prompt tokens scores those,
// summed over layers, kv heads and the window's queries and max-pooled over
// `pool` neighbouring keys (SnapKV pools so that a kept key keeps its
// neighbours). When the first token after the prompt arrives, the best
// budget - window prompt keys stay (ties: the earlier), with the observation
// window; from then on the kept prompt keys are fixed and the most recent
// tokens fill the rest of the budget (the last `window` when the prompt was
// longer than the budget) and slide. The cache holds max(prompt, budget)
// tokens at most: the prompt is whole until it is compressed. One selection
// serves every layer and head.
#include <algorithm>
#include <deque>
#include <numeric>
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

class SnapKvPolicy final : public KvPolicy {
 public:
  SnapKvPolicy(int64_t prompt, int64_t budget, int64_t window, int64_t pool)
      : prompt_len_(prompt), budget_(budget), window_(window), pool_(pool) {}
  std::string_view name() const override { return "snapkv"; }
  int64_t capacity() const override { return std::max(prompt_len_, budget_); }
  int64_t size() const override { return int64_t(kept_.size() + recent_.size()); }

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check("snapkv", t);
    order_.accept(t);
    if (!compressed_ && int64_t(recent_.size()) < prompt_len_) {
      if (int64_t(recent_.size()) == prompt_len_ - window_) obs_start_ = t.index;
      recent_.push_back(t);
      return;
    }
    if (!compressed_) compress(evicted);
    recent_.push_back(t);
    if (size() > budget_) {
      evicted.push_back(recent_.front());
      recent_.pop_front();
    }
  }

  void survivors(std::vector<TokenMeta>& out) const override {
    out.assign(kept_.begin(), kept_.end());
    out.insert(out.end(), recent_.begin(), recent_.end());
  }

  // Only the observation window's queries score the prompt keys.
  void observe_attention(const AttentionObservation& obs) override {
    if (compressed_ || obs.first_query < obs_start_ || int64_t(recent_.size()) <= prompt_len_ - window_) return;
    const size_t n = obs.tokens.size();
    check(obs.mass.size() == size_t(obs.n_kv_heads) * n && n == recent_.size(),
          "snapkv cache: an attention observation of " + std::to_string(obs.mass.size()) + " masses for " +
              std::to_string(n) + " tokens, while the prompt holds " + std::to_string(recent_.size()));
    scores_.resize(n, 0.0);
    for (size_t i = 0; i < n; ++i)
      for (int g = 0; g < obs.n_kv_heads; ++g) scores_[i] += double(obs.mass[size_t(g) * n + i]);
  }

  // The prompt in batches that end where the observation window starts, so
  // that the window's queries are observed on their own.
  int64_t batch_room() const override {
    if (compressed_) return budget_ - size();
    const int64_t held = int64_t(recent_.size());
    return held < prompt_len_ - window_ ? prompt_len_ - window_ - held : prompt_len_ - held;
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  void compress(std::vector<TokenMeta>& evicted) {
    compressed_ = true;
    const int64_t prefix = prompt_len_ - window_;
    scores_.resize(size_t(prompt_len_), 0.0);
    std::vector<double> pooled(static_cast<size_t>(prefix));
    for (int64_t i = 0; i < prefix; ++i) {
      const int64_t lo = std::max<int64_t>(0, i - pool_ / 2), hi = std::min(prefix - 1, i + (pool_ - 1) / 2);
      pooled[size_t(i)] = *std::max_element(scores_.begin() + lo, scores_.begin() + hi + 1);
    }
    std::vector<int64_t> order(static_cast<size_t>(prefix));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return pooled[size_t(a)] > pooled[size_t(b)]; });
    std::vector<char> keep(static_cast<size_t>(prefix), 0);
    for (int64_t r = 0; r < std::min(budget_ - window_, prefix); ++r) keep[size_t(order[size_t(r)])] = 1;
    for (int64_t i = 0; i < prefix; ++i) (keep[size_t(i)] ? kept_ : evicted).push_back(recent_[size_t(i)]);
    recent_.erase(recent_.begin(), recent_.begin() + prefix);
    scores_.clear();
  }

  int64_t prompt_len_, budget_, window_, pool_;
  bool compressed_ = false;
  int64_t obs_start_ = 0;         // stream index of the observation window's first token
  std::vector<double> scores_;    // per prompt token, from the observation window
  std::vector<TokenMeta> kept_;   // the prompt keys kept by compression
  std::deque<TokenMeta> recent_;  // the prompt (before compression), then the last W tokens
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_snapkv_policy(const CacheOptions& o) {
  require_at_least("snapkv", "prompt", o.prompt, 1);
  require_at_least("snapkv", "window", o.window, 1);
  require_at_least("snapkv", "pool", o.pool, 1);
  if (o.window > o.prompt)
    throw Error("snapkv cache: option 'window' (" + std::to_string(o.window) +
                ") must not exceed option 'prompt' (" + std::to_string(o.prompt) +
                "): the observation window is the prompt's last tokens");
  if (o.budget < o.window)
    throw Error("snapkv cache: option 'budget' (" + std::to_string(o.budget) +
                ") must be at least option 'window' (" + std::to_string(o.window) +
                "): the observation window is kept whole");
  return std::make_unique<SnapKvPolicy>(o.prompt, o.budget, o.window, o.pool);
}

}  // namespace sinklab::cache_detail
