// Lost in the middle (Liu et al.): key-value retrieval with the queried pair
// at a chosen position g of n pairs, scored by position, with and without
// interventions (sinklab/intervene.h). Part of the eval module.
//
// Tasks
//   uuid       n random UUID -> UUID pairs as a JSON object in Liu et al.'s prompt
//              ("Extract the value corresponding to the specified key ..."); needs
//              the model's tokenizer. The answer follows `Corresponding value: "`.
//   synthetic  tokenizer-agnostic: BOS, then per pair the key tokens, the value tokens
//              and one separator token; then the queried key's tokens, after which the
//              value tokens are expected. Keys, values and the separator are random ids
//              from [first_id, vocab) (all keys distinct, the separator in no key or value).
//
// Scoring of one trial (teacher forcing: one prefill of prompt + value[:-1]):
//   exact      every value token is the argmax given the prompt and the earlier value
//              tokens, i.e. greedy decoding reproduces the value token for token
//   found      uuid only: the value string occurs in the greedy continuation
//              (value tokens + 8 more), Liu et al.'s accuracy; synthetic: = exact
//   logprob    mean log-probability of the value tokens
//   rank       mean rank of the value tokens (1 = argmax; ties count against)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/model.h"

namespace sinklab {

struct LitmOptions {
  std::string task = "synthetic";     // "synthetic" or "uuid"
  std::vector<int> n_pairs = {8, 16};
  int positions = 5;                  // evenly spaced g = round(i * (n - 1) / (positions - 1))
  int trials = 8;                     // random lists per (n, g, condition); same lists for every condition
  uint64_t seed = 1;
  int key_tokens = 2, value_tokens = 2;  // synthetic
  int first_id = 3;                      // synthetic ids are drawn from [first_id, vocab)
  std::vector<std::vector<std::string>> conditions = {{}};  // intervention sets; {} = baseline
  // Prompts longer than the model's training context (max_seq) are refused
  // unless this is set: positions past it are outside what the model learned,
  // and the attention cost grows with the square of the prompt.
  bool beyond_context = false;
};

struct LitmTrial {
  std::vector<int32_t> prompt;          // fed before the value (BOS first when the model has one)
  std::vector<int32_t> value;           // expected continuation
  std::string value_text;               // uuid: the value string
  std::vector<int64_t> pair_offsets;    // index in prompt of each pair's first token
  int queried = 0;                      // the pair asked for (= g)
};

// Builds one trial with the queried pair at position g (0 <= g < n); throws
// Error for bad options or a model the task cannot use.
LitmTrial make_litm_trial(const Model& model, const LitmOptions& options, int n, int g, uint64_t seed);

struct LitmScore {
  bool exact = false, found = false;
  double logprob = 0, rank = 0;
};

// Scores teacher-forced logits [value.size(), vocab]: row t predicts value[t].
LitmScore score_value(std::span<const float> logits, int64_t vocab, std::span<const int32_t> value);

struct LitmCell {
  int condition = 0, n_pairs = 0, position = 0;
  double relative = 0;   // position / (n - 1)
  int trials = 0;
  double accuracy = 0;   // fraction found
  double exact = 0, logprob = 0, rank = 0;  // means over trials
};

struct LitmResult {
  LitmOptions options;
  std::vector<std::string> condition_names;  // "baseline" or the joined specs
  std::vector<LitmCell> cells;               // condition-major, then n, then position
  int64_t max_prompt_tokens = 0;
};

// Progress: called after each trial with (done, total).
using LitmProgress = std::function<void(int64_t, int64_t)>;
LitmResult run_litm(const std::shared_ptr<const Model>& model, const LitmOptions& options,
                    const LitmProgress& progress = {});

// JSON: format "sinklab-litm", version 1, model, options, conditions, cells[], max_prompt_tokens.
nlohmann::json litm_json(const Model& model, const LitmResult& result);
// A fixed-width table: one row per (n, position), accuracy / exact / logprob / rank per condition.
std::string litm_table(const LitmResult& result);
// A self-contained HTML page: the U-curves (accuracy and mean log-probability by position).
std::string litm_html(const nlohmann::json& litm);

}  // namespace sinklab
