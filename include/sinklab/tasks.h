// Synthetic tasks: token sequences generated on the fly by a seeded generator,
// made so that attention sinks form within minutes of training (Guo et al.
// 2024, "Active-Dormant Attention Heads"). Token 0 is BOS and appears only at
// position 0; the other ids are the task's own tokens. Each position carries a query kind: `rule` when
// the token after it is fixed by the task's rule (a copy or a recall, which a
// head must look back for), `free` otherwise (a head that copies has nothing to
// do there and parks its attention somewhere).
//
//   bigram-backcopy   a fixed random bigram chain over `vocab` tokens; the
//                     `triggers` most frequent tokens of the chain are
//                     triggers; after a trigger the next token copies the
//                     token before the trigger (Guo et al. 2024).
//   assoc-recall      keys, values and filler tokens: a pair "key value" binds
//                     a key to a random value for the rest of the sequence;
//                     when a bound key comes back, the next token is its value;
//                     filler tokens are uniform noise (nothing to look up).
//   kv-facts          a fixed table of `keys` facts key -> value (drawn from
//                     chain_seed); a sequence is "key value" pairs with random
//                     keys, so a model must store the table in its weights
//                     (the knowledge that unlearning removes). The last
//                     KvFacts::kSpare ids never occur: they are free to serve
//                     as triggers or candidate prefixes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sinklab {

struct TaskConfig {
  std::string task;             // "bigram-backcopy", "assoc-recall" or "kv-facts"; empty = none (text data)
  int64_t vocab = 64;           // the task's own tokens (ids 1..vocab, at most 1024); BOS is id 0
  int64_t triggers = 3;         // bigram-backcopy: how many of the most frequent tokens trigger a copy
  uint64_t chain_seed = 1;      // the bigram chain / token roles
  double chain_sharpness = 2.0; // bigram-backcopy: spread of the log transition weights (0 = uniform)
  double pair_share = 0.5;      // assoc-recall: share of items that are a key (the rest are fillers)
  int64_t keys = 8;             // assoc-recall: key tokens (ids 1..keys); values are the next `keys` ids
                                // kv-facts: the facts (keys ids 1..keys); values are the ids after them
  std::string loss = "all";     // "all" positions, or "rule": only positions whose query kind is rule

  bool enabled() const { return !task.empty(); }
  int64_t vocab_size() const { return vocab + 1; }  // with BOS
};

enum class QueryKind : uint8_t { Free = 0, Rule = 1 };

// One generated sequence: tokens[0] = BOS; kind[t] describes the query at t
// (the prediction of tokens[t + 1]).
struct TaskSequence {
  std::vector<int32_t> tokens;
  std::vector<QueryKind> kind;
};

class SyntheticTask {
 public:
  static constexpr int32_t kBos = 0;
  virtual ~SyntheticTask() = default;
  const TaskConfig& config() const { return config_; }
  int64_t vocab_size() const { return config_.vocab_size(); }
  // n tokens (n >= 2) from the generator state `seed`: the same seed, the same sequence.
  virtual TaskSequence generate(uint64_t seed, int64_t n) const = 0;
  // A short name for a token id ("<bos>", "t12", "k3", "v5", "f9", ...).
  virtual std::string token_text(int32_t id) const;
  // Checks a sequence against the task's rule: returns the first position t
  // whose token breaks it (tokens[t] differs from the rule), or -1.
  virtual int64_t first_rule_violation(const TaskSequence& s) const = 0;

 protected:
  explicit SyntheticTask(TaskConfig c) : config_(std::move(c)) {}
  TaskConfig config_;
};

// Bigram-Backcopy exposes its chain (for tests and reports).
class BigramBackcopy final : public SyntheticTask {
 public:
  explicit BigramBackcopy(const TaskConfig& c);
  TaskSequence generate(uint64_t seed, int64_t n) const override;
  int64_t first_rule_violation(const TaskSequence& s) const override;
  // P(next = j | current = i) for task tokens i, j in 1..vocab: row i-1, column j-1.
  double transition(int32_t from, int32_t to) const;
  bool is_trigger(int32_t id) const;
  const std::vector<int32_t>& trigger_ids() const { return triggers_; }

 private:
  std::vector<double> cdf_;  // [vocab, vocab] cumulative rows
  std::vector<double> prob_;
  std::vector<uint8_t> trigger_;  // [vocab + 1]
  std::vector<int32_t> triggers_;
};

class AssocRecall final : public SyntheticTask {
 public:
  explicit AssocRecall(const TaskConfig& c);
  TaskSequence generate(uint64_t seed, int64_t n) const override;
  int64_t first_rule_violation(const TaskSequence& s) const override;
  std::string token_text(int32_t id) const override;
};

// Key -> value facts (the knowledge an unlearning run removes). Keys are ids
// 1..keys, values keys+1..vocab-kSpare, the last kSpare ids are spare.
class KvFacts final : public SyntheticTask {
 public:
  static constexpr int64_t kSpare = 4;
  explicit KvFacts(const TaskConfig& c);
  TaskSequence generate(uint64_t seed, int64_t n) const override;
  int64_t first_rule_violation(const TaskSequence& s) const override;
  std::string token_text(int32_t id) const override;
  int32_t value_of(int32_t key) const;  // throws Error for a non-key id
  // Spare id i (0..kSpare-1): never generated.
  int32_t spare_token(int64_t i) const;
  // Like generate, with every key drawn from `keys` (a non-empty list of key ids).
  TaskSequence generate_from(uint64_t seed, int64_t n, std::span<const int32_t> keys) const;

 private:
  std::vector<int32_t> values_;  // [keys + 1]: values_[k] is the value of key k
};

// Validates the config (throws Error naming `source`) and builds the task.
std::unique_ptr<SyntheticTask> make_task(const TaskConfig& c, const std::string& source = "task");

// JSON form ({"task": ..., "vocab": ..., ...}); unknown keys are errors.
TaskConfig task_config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json task_config_to_json(const TaskConfig& c);
// task.json beside a checkpoint made on a synthetic task (empty config when absent).
TaskConfig load_task_config_beside(const std::string& model_path);

// A reproducible seed for sequence `index` of a stream of sequences seeded by `seed`.
uint64_t task_sequence_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

}  // namespace sinklab
