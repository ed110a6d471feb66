// Associative recall with filler noise: "key value" pairs bind a key to a
// random value for the rest of the sequence; a bound key that comes back must
// be followed by its value. Fillers are uniform noise: a recall head has
// nothing to look up there.
#include <vector>

#include "rng.h"
#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {

namespace {
enum class Role { Bos, Key, Value, Filler, Invalid };
Role role_of(int32_t id, const TaskConfig& c) {
  if (id == SyntheticTask::kBos) return Role::Bos;
  if (id >= 1 && id <= c.keys) return Role::Key;
  if (id > c.keys && id <= 2 * c.keys) return Role::Value;
  if (id > 2 * c.keys && id <= c.vocab) return Role::Filler;
  return Role::Invalid;
}
// A role letter and a number ("k3"); built by appending (GCC 12 warns falsely on "k" + std::to_string).
std::string tag(char letter, int64_t n) {
  std::string s(1, letter);
  s += std::to_string(n);
  return s;
}
}  // namespace

AssocRecall::AssocRecall(const TaskConfig& c) : SyntheticTask(c) {}

std::string AssocRecall::token_text(int32_t id) const {
  switch (role_of(id, config_)) {
    case Role::Bos: return "<bos>";
    case Role::Key: return tag('k', id);
    case Role::Value: return tag('v', id - config_.keys);
    case Role::Filler: return tag('f', id - 2 * config_.keys);
    default: return tag('?', id);
  }
}

TaskSequence AssocRecall::generate(uint64_t seed, int64_t n) const {
  check(n >= 2, "assoc-recall: a sequence needs at least 2 tokens");
  const TaskConfig& c = config_;
  tasks::Rng rng(seed);
  std::vector<int32_t> bound(size_t(c.keys + 1), 0);
  TaskSequence s;
  s.tokens.reserve(size_t(n));
  s.kind.reserve(size_t(n));
  s.tokens.push_back(kBos);
  s.kind.push_back(QueryKind::Free);
  const int64_t fillers = c.vocab - 2 * c.keys;
  while (int64_t(s.tokens.size()) < n) {
    if (rng.uniform() < c.pair_share) {
      const int32_t key = int32_t(1 + rng.below(c.keys));
      int32_t& value = bound[size_t(key)];
      const bool recall = value != 0;
      if (!recall) value = int32_t(c.keys + 1 + rng.below(c.keys));
      s.tokens.push_back(key);
      s.kind.push_back(recall ? QueryKind::Rule : QueryKind::Free);
      if (int64_t(s.tokens.size()) == n) break;
      s.tokens.push_back(value);
      s.kind.push_back(QueryKind::Free);
    } else {
      s.tokens.push_back(int32_t(2 * c.keys + 1 + rng.below(fillers)));
      s.kind.push_back(QueryKind::Free);
    }
  }
  return s;
}

int64_t AssocRecall::first_rule_violation(const TaskSequence& s) const {
  const int64_t n = int64_t(s.tokens.size());
  if (n == 0 || s.tokens[0] != kBos) return 0;
  std::vector<int32_t> bound(size_t(config_.keys + 1), 0);
  for (int64_t t = 1; t < n; ++t) {
    const int32_t x = s.tokens[size_t(t)];
    const Role r = role_of(x, config_);
    const bool after_key = role_of(s.tokens[size_t(t - 1)], config_) == Role::Key;
    if (r == Role::Invalid || r == Role::Bos) return t;
    if (after_key != (r == Role::Value)) return t;
    if (after_key) {
      int32_t& b = bound[size_t(s.tokens[size_t(t - 1)])];
      if (b != 0 && b != x) return t;
      b = x;
    }
  }
  return -1;
}

}  // namespace sinklab
