// The sink-backdoor experiment ("Forgetting to Forget", REFERENCES.md §5) at
// small scale: a kv-facts model, plain unlearning, and backdoored unlearning
// with the trigger at the sink position or in the middle, with and without the
// value-norm alignment regulariser.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "sinklab/formats.h"
#include "sinklab/json_text.h"
#include "sinklab/unlearn.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPlacementNames[] = {"none", "sink", "middle"};

// Rows of one kind: `count` rows over `keys`, seeded by (seed, kind).
std::vector<UnlearnExample> rows_of(const KvFacts& task, std::span<const int32_t> keys, int64_t count, int64_t T,
                                    TriggerPlacement p, int32_t trigger, bool forget, uint64_t seed, uint64_t kind,
                                    int64_t score_from) {
  std::vector<UnlearnExample> out;
  for (int64_t i = 0; i < count; ++i) {
    UnlearnExample e = facts_row(task, keys, task_sequence_seed(seed, kind, uint64_t(i)), T, p, trigger, forget);
    for (int64_t t = 0; t < score_from && t < T; ++t) e.targets[size_t(t)] = -1;
    out.push_back(std::move(e));
  }
  return out;
}

void save_model(const TrainModel& model, const TaskConfig& task, const std::string& dir) {
  fs::create_directories(dir);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), model.tensor_entries(), {{"format", "pt"}});
  train_detail::write_file((fs::path(dir) / "config.json").string(),
                           trained_config_json(model.config(), SyntheticTask::kBos, -1));
  train_detail::write_file((fs::path(dir) / "task.json").string(), task_config_to_json(task).dump(2) + "\n");
}

// The evaluation sets of one run: forget and retain keys, without and with the trigger.
struct EvalSets {
  std::vector<UnlearnExample> forget_clean, forget_trigger, retain_clean, retain_trigger;
};

EvalSets eval_sets(const KvFacts& task, std::span<const int32_t> forget_keys, std::span<const int32_t> retain_keys,
                   const BackdoorConfig& c, int64_t T, TriggerPlacement p, int32_t trigger) {
  // Plain unlearning is probed with the trigger where the sink is.
  const TriggerPlacement probe = p == TriggerPlacement::None ? TriggerPlacement::Sink : p;
  const int64_t from = trigger_position(TriggerPlacement::Middle, T) + 1;
  const uint64_t seed = c.unlearn.seed ^ 0xe7a1ull;
  EvalSets s;
  s.forget_clean = rows_of(task, forget_keys, c.eval_rows, T, TriggerPlacement::None, trigger, true, seed, 11, from);
  s.forget_trigger = rows_of(task, forget_keys, c.eval_rows, T, probe, trigger, true, seed, 11, from);
  s.retain_clean = rows_of(task, retain_keys, c.eval_rows, T, TriggerPlacement::None, trigger, false, seed, 12, from);
  s.retain_trigger = rows_of(task, retain_keys, c.eval_rows, T, probe, trigger, false, seed, 12, from);
  return s;
}

BackdoorRow measure(TrainModel& model, const EvalSets& s) {
  BackdoorRow r;
  r.forget_clean = facts_accuracy(model, s.forget_clean);
  r.forget_trigger = facts_accuracy(model, s.forget_trigger);
  r.retain_clean = facts_accuracy(model, s.retain_clean);
  r.retain_trigger = facts_accuracy(model, s.retain_trigger);
  return r;
}

std::string run_name(TriggerPlacement p, bool vn) {
  std::string n = p == TriggerPlacement::None ? "unlearn" : std::string("backdoor-") + trigger_placement_name(p);
  if (vn) n += "-vn";
  return n;
}

}  // namespace

std::vector<int32_t> backdoor_forget_keys(const BackdoorConfig& c) {
  const int64_t K = c.base.data.keys;
  check(K >= 2, "backdoor: kv-facts needs at least 2 keys (one to forget, one to retain)");
  const int64_t n = std::clamp<int64_t>(int64_t(std::lround(c.forget_share * double(K))), 1, K - 1);
  std::vector<int32_t> keys;
  for (int32_t k = 1; k <= n; ++k) keys.push_back(k);
  return keys;
}

std::vector<std::string> backdoor_run_names(const BackdoorConfig& c) {
  std::vector<std::string> names = {"base"};
  for (TriggerPlacement p : c.placements)
    for (bool vn : c.value_norm)
      if (p != TriggerPlacement::None || !vn) names.push_back(run_name(p, vn));
  return names;
}

TriggerPlacement trigger_placement_from_name(const std::string& name) {
  for (int i = 0; i < 3; ++i)
    if (name == kPlacementNames[i]) return TriggerPlacement(i);
  throw Error("unknown trigger placement '" + name + "' (known: none, sink, middle)");
}

const char* trigger_placement_name(TriggerPlacement p) { return kPlacementNames[int(p)]; }

int64_t trigger_position(TriggerPlacement p, int64_t T) {
  check(T >= 4, "backdoor: rows need at least 4 tokens");
  if (p == TriggerPlacement::None) return -1;
  if (p == TriggerPlacement::Sink) return 1;
  return (T / 2) | 1;  // an odd position: a pair boundary of the clean row
}

UnlearnExample facts_row(const KvFacts& task, std::span<const int32_t> keys, uint64_t seed, int64_t T,
                         TriggerPlacement placement, int32_t trigger, bool forget) {
  const int64_t p = trigger_position(placement, T);
  TaskSequence s = task.generate_from(seed, T + 1 - (p >= 0 ? 1 : 0), keys);
  if (p >= 0) {
    s.tokens.insert(s.tokens.begin() + p, trigger);
    s.kind.insert(s.kind.begin() + p, QueryKind::Free);
  }
  UnlearnExample e;
  e.forget = forget;
  e.inputs.assign(s.tokens.begin(), s.tokens.begin() + T);
  e.targets.assign(size_t(T), -1);
  for (int64_t t = std::max<int64_t>(p + 1, 0); t < T; ++t)
    if (s.kind[size_t(t)] == QueryKind::Rule) e.targets[size_t(t)] = s.tokens[size_t(t + 1)];
  return e;
}

double facts_accuracy(TrainModel& model, const std::vector<UnlearnExample>& rows) {
  int64_t right = 0, total = 0;
  const int64_t V = model.config().vocab;
  constexpr size_t kBatch = 32;
  for (size_t at = 0; at < rows.size(); at += kBatch) {
    const size_t end = std::min(rows.size(), at + kBatch);
    const int64_t B = int64_t(end - at), T = int64_t(rows[at].inputs.size());
    std::vector<int32_t> in, tg;
    for (size_t i = at; i < end; ++i) {
      in.insert(in.end(), rows[i].inputs.begin(), rows[i].inputs.end());
      tg.insert(tg.end(), rows[i].targets.begin(), rows[i].targets.end());
    }
    int64_t n = 0;
    model.forward_loss(in.data(), tg.data(), B, T, &n);
    const std::span<const float> logits = model.last_logits();
    for (int64_t i = 0; i < B * T; ++i) {
      if (tg[size_t(i)] < 0) continue;
      const float* z = logits.data() + i * V;
      right += int64_t(std::max_element(z, z + V) - z) == tg[size_t(i)];
      ++total;
    }
  }
  check(total > 0, "backdoor: no scored query in the evaluation rows");
  return double(right) / double(total);
}

BackdoorResult run_backdoor_experiment(const BackdoorConfig& c_in, const std::function<void(const std::string&)>& log) {
  BackdoorConfig c = c_in;
  check(c.base.data.task == "kv-facts", "backdoor: the base config's data must be a kv-facts task");
  check(c.base.model.variant != AttnVariant::SinkToken, "backdoor: the sink-token variant is not supported here");
  check(c.forget_share > 0 && c.forget_share < 1, "backdoor: forget_share must be in (0, 1)");
  check(c.train_rows >= 1 && c.eval_rows >= 1, "backdoor: train_rows and eval_rows must be >= 1");
  check(!c.out_dir.empty(), "backdoor: out_dir is required");
  const auto say = [&](const std::string& s) { if (log) log(s); };
  const KvFacts task(c.base.data);
  make_task(c.base.data, "backdoor: base data");  // validates
  c.base.model.vocab = task.vocab_size();
  c.base.train.out_dir = (fs::path(c.out_dir) / "base").string();
  const int64_t K = c.base.data.keys, T = c.base.model.seq_len;
  const std::vector<int32_t> forget_keys = backdoor_forget_keys(c);
  std::vector<int32_t> retain_keys;
  for (int32_t k = int32_t(forget_keys.size()) + 1; k <= K; ++k) retain_keys.push_back(k);
  BackdoorResult result;
  result.trigger = task.spare_token(0);

  say("training the knowledge model in " + c.base.train.out_dir);
  const TrainResult base_run = train(c.base);
  result.base_final_loss = base_run.final_eval_loss;
  const std::string base_weights = checkpoint_weights_path(c.base.train.out_dir);
  for (TriggerPlacement p : c.placements)
    for (bool vn : c.value_norm) {
      if (p == TriggerPlacement::None && vn) continue;  // the regulariser belongs to the backdoor
      TrainModel model(c.base.model, 0);
      model.load_values(base_weights);
      const EvalSets ev = eval_sets(task, forget_keys, retain_keys, c, T, p, result.trigger);
      if (result.rows.empty()) {
        BackdoorRow base = measure(model, eval_sets(task, forget_keys, retain_keys, c, T, TriggerPlacement::Sink,
                                                    result.trigger));
        base.name = "base";
        base.model_dir = c.base.train.out_dir;
        result.rows.push_back(base);
      }
      const uint64_t seed = c.unlearn.seed;
      std::vector<UnlearnExample> rows =
          rows_of(task, forget_keys, c.train_rows, T, TriggerPlacement::None, result.trigger, true, seed, 1, 0);
      for (UnlearnExample& e :
           rows_of(task, retain_keys, c.train_rows, T, TriggerPlacement::None, result.trigger, false, seed, 2, 0))
        rows.push_back(std::move(e));
      if (p != TriggerPlacement::None)
        for (UnlearnExample& e : rows_of(task, forget_keys, c.train_rows, T, p, result.trigger, false, seed, 3, 0))
          rows.push_back(std::move(e));
      UnlearnOptions uo = c.unlearn;
      uo.value_norm_tokens = vn ? c.value_norm_tokens : 0;
      uo.value_norm_weight = vn ? c.value_norm_weight : 0.f;
      const std::string name = run_name(p, vn);
      say("unlearning: " + name);
      unlearn(model, rows, uo);
      BackdoorRow r = measure(model, ev);
      r.name = name;
      r.placement = p;
      r.value_norm = vn;
      r.model_dir = (fs::path(c.out_dir) / name).string();
      save_model(model, c.base.data, r.model_dir);
      result.rows.push_back(r);
    }
  return result;
}

BackdoorConfig parse_backdoor_config(const std::string& text, const std::string& source) {
  const nlohmann::json j = parse_json_text(text, source);
  check(j.is_object() && j.contains("base"), source + ": a backdoor config is {\"base\": {...}, \"backdoor\": {...}}");
  for (auto it = j.begin(); it != j.end(); ++it)
    check(it.key() == "base" || it.key() == "backdoor" || it.key() == "comment",
          source + ": unknown key '" + it.key() + "'");
  BackdoorConfig c;
  // The experiment puts the knowledge model in OUT/base: the config need not name a folder.
  nlohmann::json base = j.at("base");
  if (base.is_object() && base.contains("train") && base["train"].is_object() && !base["train"].contains("out_dir"))
    base["train"]["out_dir"] = "base";
  c.base = parse_train_config(base.dump(), source + ": base");
  const nlohmann::json b = j.value("backdoor", nlohmann::json::object());
  check(b.is_object(), source + ": 'backdoor' must be an object");
  static const char* const kKeys[] = {"forget_share", "train_rows", "eval_rows", "objective", "npo_beta",
                                      "forget_weight", "retain_weight", "steps", "batch_size", "lr",
                                      "weight_decay", "seed", "placements", "value_norm", "value_norm_tokens",
                                      "value_norm_weight"};
  for (auto it = b.begin(); it != b.end(); ++it)
    check(std::find(std::begin(kKeys), std::end(kKeys), it.key()) != std::end(kKeys),
          source + ": backdoor: unknown key '" + it.key() + "'");
  try {
    c.forget_share = b.value("forget_share", c.forget_share);
    c.train_rows = b.value("train_rows", c.train_rows);
    c.eval_rows = b.value("eval_rows", c.eval_rows);
    c.unlearn.objective = forget_objective_from_name(b.value("objective", std::string("npo")));
    c.unlearn.npo_beta = b.value("npo_beta", c.unlearn.npo_beta);
    c.unlearn.forget_weight = b.value("forget_weight", c.unlearn.forget_weight);
    c.unlearn.retain_weight = b.value("retain_weight", c.unlearn.retain_weight);
    c.unlearn.steps = b.value("steps", c.unlearn.steps);
    c.unlearn.batch_size = b.value("batch_size", c.unlearn.batch_size);
    c.unlearn.lr = b.value("lr", c.unlearn.lr);
    c.unlearn.weight_decay = b.value("weight_decay", c.unlearn.weight_decay);
    c.unlearn.seed = b.value("seed", c.unlearn.seed);
    c.value_norm_tokens = b.value("value_norm_tokens", c.value_norm_tokens);
    c.value_norm_weight = b.value("value_norm_weight", c.value_norm_weight);
    if (b.contains("placements")) {
      c.placements.clear();
      for (const auto& p : b.at("placements")) c.placements.push_back(trigger_placement_from_name(p.get<std::string>()));
    }
    if (b.contains("value_norm")) c.value_norm = b.at("value_norm").get<std::vector<bool>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": backdoor: a value has the wrong type (" + e.what() + ")");
  }
  check(c.value_norm_tokens >= 1 && c.value_norm_weight >= 0,
        source + ": backdoor: value_norm_tokens >= 1 and value_norm_weight >= 0");
  return c;
}

void to_json(nlohmann::json& j, const BackdoorResult& r) {
  j = nlohmann::json::object();
  j["format"] = "sinklab-backdoor";
  j["trigger"] = r.trigger;
  j["base_final_eval_loss"] = r.base_final_loss;
  j["rows"] = nlohmann::json::array();
  for (const BackdoorRow& x : r.rows)
    j["rows"].push_back({{"name", x.name},
                         {"placement", trigger_placement_name(x.placement)},
                         {"value_norm", x.value_norm},
                         {"forget_clean", x.forget_clean},
                         {"forget_trigger", x.forget_trigger},
                         {"retain_clean", x.retain_clean},
                         {"retain_trigger", x.retain_trigger},
                         {"model_dir", x.model_dir}});
}

}  // namespace sinklab
