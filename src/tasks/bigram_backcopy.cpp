// Bigram-Backcopy (Guo et al. 2024, "Active-Dormant Attention Heads"): a fixed
// random bigram chain, except that after a trigger token the next token copies
// the token before the trigger.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "rng.h"
#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {

BigramBackcopy::BigramBackcopy(const TaskConfig& c) : SyntheticTask(c) {
  const int64_t V = c.vocab;
  prob_.assign(size_t(V * V), 0.0);
  cdf_.assign(size_t(V * V), 0.0);
  // Log-normal transition weights: sharper chains are more predictable.
  tasks::Rng rng(task_sequence_seed(c.chain_seed, 0xb16a4));
  for (int64_t i = 0; i < V; ++i) {
    double* p = prob_.data() + i * V;
    double total = 0;
    for (int64_t j = 0; j < V; ++j) total += p[j] = std::exp(c.chain_sharpness * rng.normal());
    double run = 0;
    for (int64_t j = 0; j < V; ++j) {
      p[j] /= total;
      run += p[j];
      cdf_[size_t(i * V + j)] = run;
    }
    cdf_[size_t(i * V + V - 1)] = 1.0;
  }
  // Triggers: the most frequent tokens of the chain's stationary distribution.
  std::vector<double> pi(static_cast<size_t>(V), 1.0 / double(V)), next(static_cast<size_t>(V));
  for (int it = 0; it < 1000; ++it) {  // power iteration, until it stops moving
    std::fill(next.begin(), next.end(), 0.0);
    for (int64_t i = 0; i < V; ++i)
      for (int64_t j = 0; j < V; ++j) next[size_t(j)] += pi[size_t(i)] * prob_[size_t(i * V + j)];
    double moved = 0;
    for (int64_t j = 0; j < V; ++j) moved += std::fabs(next[size_t(j)] - pi[size_t(j)]);
    pi.swap(next);
    if (moved < 1e-13) break;
  }
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 1);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return pi[size_t(a - 1)] > pi[size_t(b - 1)]; });
  trigger_.assign(size_t(V + 1), 0);
  triggers_.assign(order.begin(), order.begin() + c.triggers);
  std::sort(triggers_.begin(), triggers_.end());
  for (int32_t t : triggers_) trigger_[size_t(t)] = 1;
}

double BigramBackcopy::transition(int32_t from, int32_t to) const {
  const int64_t V = config_.vocab;
  check(from >= 1 && from <= V && to >= 1 && to <= V, "bigram-backcopy: token ids are 1..vocab");
  return prob_[size_t((from - 1) * V + (to - 1))];
}

bool BigramBackcopy::is_trigger(int32_t id) const { return id >= 0 && id < int32_t(trigger_.size()) && trigger_[size_t(id)]; }

TaskSequence BigramBackcopy::generate(uint64_t seed, int64_t n) const {
  check(n >= 2, "bigram-backcopy: a sequence needs at least 2 tokens");
  const int64_t V = config_.vocab;
  tasks::Rng rng(seed);
  TaskSequence s;
  s.tokens.resize(size_t(n));
  s.kind.assign(size_t(n), QueryKind::Free);
  s.tokens[0] = kBos;
  // The first token is not a trigger, so a copy never reaches back to BOS.
  const int64_t plain = V - int64_t(triggers_.size());
  int64_t pick = rng.below(plain);
  for (int32_t id = 1; id <= V; ++id)
    if (!trigger_[size_t(id)] && pick-- == 0) {
      s.tokens[1] = id;
      break;
    }
  for (int64_t t = 2; t < n; ++t) {
    const int32_t prev = s.tokens[size_t(t - 1)];
    if (trigger_[size_t(prev)]) {
      s.tokens[size_t(t)] = s.tokens[size_t(t - 2)];
      continue;
    }
    const double* cdf = cdf_.data() + (prev - 1) * V;
    const double u = rng.uniform();
    s.tokens[size_t(t)] = int32_t(std::upper_bound(cdf, cdf + V, u) - cdf) + 1;
    if (s.tokens[size_t(t)] > V) s.tokens[size_t(t)] = int32_t(V);
  }
  for (int64_t t = 1; t < n; ++t)
    if (trigger_[size_t(s.tokens[size_t(t)])]) s.kind[size_t(t)] = QueryKind::Rule;
  return s;
}

int64_t BigramBackcopy::first_rule_violation(const TaskSequence& s) const {
  const int64_t n = int64_t(s.tokens.size()), V = config_.vocab;
  if (n == 0 || s.tokens[0] != kBos) return 0;
  for (int64_t t = 1; t < n; ++t) {
    const int32_t x = s.tokens[size_t(t)];
    if (x < 1 || x > V) return t;
    if (t >= 2 && trigger_[size_t(s.tokens[size_t(t - 1)])] && x != s.tokens[size_t(t - 2)]) return t;
    if (t == 1 && trigger_[size_t(x)]) return t;
  }
  return -1;
}

}  // namespace sinklab
