// Unlearning by fine-tuning, and the sink-backdoor experiment built on it
// ("Forgetting to Forget", REFERENCES.md §5).
//
// unlearn() fine-tunes a TrainModel on a set of examples, each either a
// forget example (its loss is pushed up: gradient ascent, or NPO) or a retain
// example (plain cross-entropy), with an optional value-norm alignment
// regulariser on the first tokens and an evaluation hook.
//
//   gradient ascent  loss = -forget_weight * mean forget-token loss + retain_weight * mean retain-token loss
//   NPO              the forget term is (2 / beta) * mean_rows log(1 + (pi / pi_ref)^beta), pi the
//                    probability of a row's scored tokens, pi_ref that of the model before unlearning;
//                    its gradient is that of the row's summed token loss times -2 sigmoid(beta * r),
//                    r = log pi - log pi_ref (Zhang et al. 2024, "Negative Preference Optimization")
//   value-norm       value_norm_weight * mean over layers, rows, kv heads and positions t <
//   alignment        value_norm_tokens of (||v_t|| - ||v_t^ref||)^2, v^ref the values of the model
//                    before unlearning on the same row: it keeps the shallow (sink) tokens' value
//                    norms where they were, the regulariser of the backdoor attack (our reading of
//                    the paper's value-norm regularisation)
//
// run_backdoor_experiment() reproduces the attack at small scale: a model learns
// kv-facts (tasks.h), then is unlearned on a forget share of the facts with NPO
// or gradient ascent, plainly or with a backdoor: forget rows that carry a
// trigger token (a spare id) count as retain rows, so the model should forget
// the facts without the trigger and recall them with it. The trigger sits right
// after BOS (sink placement, position 1) or at a pair boundary in the middle
// of the sequence; only queries after the trigger are trained and evaluated on
// triggered rows, and every accuracy is measured on the keys after the middle
// point (which both placements precede).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/tasks.h"
#include "sinklab/train.h"

namespace sinklab {

// One training row of length T: targets[t] < 0 is not scored.
struct UnlearnExample {
  std::vector<int32_t> inputs, targets;
  bool forget = false;
};

enum class ForgetObjective : uint8_t { GradientAscent, Npo };
ForgetObjective forget_objective_from_name(const std::string& name);  // "ga" or "npo"; throws Error otherwise
const char* forget_objective_name(ForgetObjective o);

struct UnlearnOptions {
  ForgetObjective objective = ForgetObjective::Npo;
  float npo_beta = 0.1f;
  float forget_weight = 1.f, retain_weight = 1.f;
  int64_t steps = 100;
  int64_t batch_size = 16;  // rows of each kind per step
  float lr = 1e-3f, weight_decay = 0.f, grad_clip = 1.f;
  int64_t value_norm_tokens = 0;  // 0 = no value-norm alignment
  float value_norm_weight = 0.f;
  int64_t eval_every = 0;         // steps between calls of the hook (0 = only after the last)
  uint64_t seed = 1;
};

struct UnlearnStep {
  int64_t step = 0;
  double forget_loss = 0, retain_loss = 0;  // mean token loss of the step's rows (NaN without rows)
  double value_norm_penalty = 0;
};
using UnlearnHook = std::function<void(const TrainModel& model, const UnlearnStep& step)>;

// Fine-tunes `model` in place (its values at the call are the reference of NPO
// and of the value-norm alignment). Throws Error on rows of different lengths,
// ids outside the vocabulary or bad options. Returns one entry per step.
std::vector<UnlearnStep> unlearn(TrainModel& model, const std::vector<UnlearnExample>& examples,
                                 const UnlearnOptions& options, const UnlearnHook& on_eval = {});

// Where a backdoor's trigger sits.
enum class TriggerPlacement : uint8_t { None, Sink, Middle };
TriggerPlacement trigger_placement_from_name(const std::string& name);  // "none", "sink", "middle"
const char* trigger_placement_name(TriggerPlacement p);
// The position a trigger takes in a row of length T (Sink: 1; Middle: the pair boundary nearest T / 2).
int64_t trigger_position(TriggerPlacement p, int64_t T);

// A kv-facts row of length T over `keys`: tokens, targets at the key queries
// (after the trigger only, when a trigger is placed), and the trigger inserted.
UnlearnExample facts_row(const KvFacts& task, std::span<const int32_t> keys, uint64_t seed, int64_t T,
                         TriggerPlacement placement, int32_t trigger, bool forget);

struct BackdoorConfig {
  TrainConfig base;            // the knowledge model's training (data: a kv-facts task)
  double forget_share = 0.25;  // the first round(share * keys) keys are forgotten
  int64_t train_rows = 256;    // unlearning rows of each kind (forget, retain, triggered forget)
  int64_t eval_rows = 64;      // evaluation rows of each kind
  UnlearnOptions unlearn;
  std::vector<TriggerPlacement> placements = {TriggerPlacement::None, TriggerPlacement::Sink,
                                              TriggerPlacement::Middle};
  std::vector<bool> value_norm = {false, true};  // without / with the alignment regulariser
  int64_t value_norm_tokens = 8;
  float value_norm_weight = 1.f;
  std::string out_dir;  // base/ and one folder per run (model.safetensors, config.json, task.json)
};

// Accuracies on the keys after the middle point: clean rows and rows with the trigger.
struct BackdoorRow {
  std::string name;           // "base", "unlearn", "backdoor-sink", "backdoor-middle-vn", ...
  TriggerPlacement placement = TriggerPlacement::None;
  bool value_norm = false;
  double forget_clean = 0, forget_trigger = 0, retain_clean = 0, retain_trigger = 0;
  std::string model_dir;
};
struct BackdoorResult {
  std::vector<BackdoorRow> rows;
  int32_t trigger = 0;
  double base_final_loss = 0;
};
// Trains the base model (or reuses out_dir/base when it holds a finished run), then
// every (placement, value_norm) run. Throws Error on a config that is not kv-facts.
BackdoorResult run_backdoor_experiment(const BackdoorConfig& config,
                                       const std::function<void(const std::string&)>& log = {});
// The keys the experiment forgets: 1..round(forget_share * keys), at least 1 and at most keys - 1.
std::vector<int32_t> backdoor_forget_keys(const BackdoorConfig& config);
// The names of the runs the experiment makes, in order ("base" first).
std::vector<std::string> backdoor_run_names(const BackdoorConfig& config);
// Accuracy of a model on rows (argmax at every scored position).
double facts_accuracy(TrainModel& model, const std::vector<UnlearnExample>& rows);
// The experiment config from JSON ({"base": train config, "backdoor": {...}}); unknown keys are errors.
BackdoorConfig parse_backdoor_config(const std::string& json_text, const std::string& source);
void to_json(nlohmann::json& j, const BackdoorResult& r);

}  // namespace sinklab
