// Key -> value facts: a fixed table drawn from chain_seed; sequences are
// "key value" pairs with random keys. The query at a key is a rule query (its
// value is fixed by the table, which lives only in the model's weights); the
// query at a value is free (the next key is random).
#include <vector>

#include "rng.h"
#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {

namespace {
std::string tag(char letter, int64_t n) {
  std::string s(1, letter);
  s += std::to_string(n);
  return s;
}
}  // namespace

KvFacts::KvFacts(const TaskConfig& c) : SyntheticTask(c), values_(size_t(c.keys + 1), 0) {
  const int64_t n_values = c.vocab - c.keys - kSpare;
  tasks::Rng rng(splitmix64(c.chain_seed ^ 0xfac75ull));
  for (int64_t k = 1; k <= c.keys; ++k) values_[size_t(k)] = int32_t(c.keys + 1 + rng.below(n_values));
}

std::string KvFacts::token_text(int32_t id) const {
  const int64_t keys = config_.keys, first_spare = config_.vocab - kSpare + 1;
  if (id == kBos) return "<bos>";
  if (id >= 1 && id <= keys) return tag('k', id);
  if (id > keys && id < first_spare) return tag('v', id - keys);
  if (id >= first_spare && id <= config_.vocab) return tag('r', id - first_spare + 1);
  return tag('?', id);
}

int32_t KvFacts::value_of(int32_t key) const {
  check(key >= 1 && key <= config_.keys, "kv-facts: id " + std::to_string(key) + " is not a key");
  return values_[size_t(key)];
}

int32_t KvFacts::spare_token(int64_t i) const {
  check(i >= 0 && i < kSpare, "kv-facts: spare token index out of range");
  return int32_t(config_.vocab - kSpare + 1 + i);
}

TaskSequence KvFacts::generate_from(uint64_t seed, int64_t n, std::span<const int32_t> keys) const {
  check(n >= 2, "kv-facts: a sequence needs at least 2 tokens");
  check(!keys.empty(), "kv-facts: no keys to draw from");
  for (int32_t k : keys) value_of(k);  // validates
  tasks::Rng rng(seed);
  TaskSequence s;
  s.tokens.reserve(size_t(n));
  s.kind.reserve(size_t(n));
  s.tokens.push_back(kBos);
  s.kind.push_back(QueryKind::Free);
  while (int64_t(s.tokens.size()) < n) {
    const int32_t key = keys[size_t(rng.below(int64_t(keys.size())))];
    s.tokens.push_back(key);
    s.kind.push_back(QueryKind::Rule);
    if (int64_t(s.tokens.size()) == n) break;
    s.tokens.push_back(values_[size_t(key)]);
    s.kind.push_back(QueryKind::Free);
  }
  return s;
}

TaskSequence KvFacts::generate(uint64_t seed, int64_t n) const {
  std::vector<int32_t> all(size_t(config_.keys));
  for (int64_t k = 0; k < config_.keys; ++k) all[size_t(k)] = int32_t(k + 1);
  return generate_from(seed, n, all);
}

int64_t KvFacts::first_rule_violation(const TaskSequence& s) const {
  const int64_t n = int64_t(s.tokens.size());
  if (n == 0 || s.tokens[0] != kBos) return 0;
  for (int64_t t = 1; t < n; ++t) {
    const int32_t x = s.tokens[size_t(t)];
    const bool want_key = t % 2 == 1;
    if (want_key && (x < 1 || x > config_.keys)) return t;
    if (!want_key && x != values_[size_t(s.tokens[size_t(t - 1)])]) return t;
  }
  return -1;
}

}  // namespace sinklab
