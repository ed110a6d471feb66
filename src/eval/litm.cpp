// Lost-in-the-middle key-value retrieval: trial builders (uuid, synthetic), the
// teacher-forced scorer, the runner over (condition, n, g) and JSON / table output.
#include "sinklab/litm.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sinklab/intervene.h"

namespace sinklab {

namespace {

std::vector<int> positions_for(int n, int count) {
  std::vector<int> g;
  if (count <= 1 || n == 1) return {0};
  for (int i = 0; i < count; ++i) g.push_back(int(std::lround(double(i) * (n - 1) / double(count - 1))));
  g.erase(std::unique(g.begin(), g.end()), g.end());
  return g;
}

std::string uuid(std::mt19937_64& rng) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += hex[rng() & 15];
  }
  return s;
}

void append(std::vector<int32_t>& to, const std::vector<int32_t>& ids) { to.insert(to.end(), ids.begin(), ids.end()); }

LitmTrial uuid_trial(const Model& model, int n, int g, std::mt19937_64& rng) {
  const Tokenizer* tok = model.tokenizer();
  check(tok != nullptr, "litm: task 'uuid' needs the model's tokenizer (use --task synthetic for a model without one)");
  std::vector<std::string> keys, values;
  std::set<std::string> seen;
  while (int(keys.size()) < n) {
    std::string k = uuid(rng);
    if (seen.insert(k).second) keys.push_back(k), values.push_back(uuid(rng));
  }
  LitmTrial t;
  t.queried = g;
  t.prompt = tok->encode("Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n{",
                         true);
  for (int i = 0; i < n; ++i) {
    t.pair_offsets.push_back(int64_t(t.prompt.size()));
    const std::string line = "\"" + keys[size_t(i)] + "\": \"" + values[size_t(i)] + "\"" + (i + 1 < n ? ",\n " : "}");
    append(t.prompt, tok->encode(line, false));
  }
  append(t.prompt, tok->encode("\n\nKey: \"" + keys[size_t(g)] + "\"\nCorresponding value: \"", false));
  t.value_text = values[size_t(g)];
  t.value = tok->encode(t.value_text, false);
  return t;
}

LitmTrial synthetic_trial(const Model& model, const LitmOptions& o, int n, int g, std::mt19937_64& rng) {
  const ModelConfig& c = model.config();
  check(o.key_tokens >= 1 && o.value_tokens >= 1, "litm: --key-tokens and --value-tokens must be at least 1");
  check(o.first_id >= 0 && o.first_id < c.vocab, "litm: --first-id " + std::to_string(o.first_id) +
                                                     " is outside the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
  std::vector<int32_t> pool;
  for (int32_t id = o.first_id; id < c.vocab; ++id)
    if (id != c.bos_id && id != c.eos_id) pool.push_back(id);
  const double keys_possible = std::pow(double(pool.size()) - 1, double(o.key_tokens));
  check(pool.size() >= 3 && keys_possible >= 2.0 * n,
        "litm: the ids [" + std::to_string(o.first_id) + ", " + std::to_string(c.vocab) + ") are too few for " +
            std::to_string(n) + " distinct keys of " + std::to_string(o.key_tokens) + " tokens");
  const int32_t sep = pool[rng() % pool.size()];
  std::erase(pool, sep);
  auto draw = [&](int count) {
    std::vector<int32_t> v;
    for (int i = 0; i < count; ++i) v.push_back(pool[rng() % pool.size()]);
    return v;
  };
  std::set<std::vector<int32_t>> seen;
  std::vector<std::vector<int32_t>> keys, values;
  while (int(keys.size()) < n) {
    std::vector<int32_t> k = draw(o.key_tokens);
    if (seen.insert(k).second) keys.push_back(k), values.push_back(draw(o.value_tokens));
  }
  LitmTrial t;
  t.queried = g;
  if (c.bos_id >= 0) t.prompt.push_back(c.bos_id);
  for (int i = 0; i < n; ++i) {
    t.pair_offsets.push_back(int64_t(t.prompt.size()));
    append(t.prompt, keys[size_t(i)]);
    append(t.prompt, values[size_t(i)]);
    t.prompt.push_back(sep);
  }
  append(t.prompt, keys[size_t(g)]);
  t.value = values[size_t(g)];
  return t;
}

uint64_t trial_seed(uint64_t seed, int n, int g, int trial) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t(n) << 40) ^ (uint64_t(g) << 20) ^ uint64_t(trial);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  return x ^ (x >> 33);
}

void check_options(const LitmOptions& o) {
  check(o.task == "uuid" || o.task == "synthetic", "litm: --task must be uuid or synthetic, got '" + o.task + "'");
  check(!o.n_pairs.empty(), "litm: --pairs lists no sizes");
  for (int n : o.n_pairs) check(n >= 1 && n <= 100000, "litm: --pairs " + std::to_string(n) + " must be in 1..100000");
  check(o.positions >= 1 && o.positions <= 1000, "litm: --query-positions must be in 1..1000");
  check(o.trials >= 1, "litm: --trials must be at least 1");
  check(!o.conditions.empty(), "litm: no conditions to run");
}

}  // namespace

LitmTrial make_litm_trial(const Model& model, const LitmOptions& options, int n, int g, uint64_t seed) {
  check_options(options);
  check(n >= 1 && g >= 0 && g < n, "litm: position " + std::to_string(g) + " is outside 0.." + std::to_string(n - 1));
  std::mt19937_64 rng(seed);
  LitmTrial t = options.task == "uuid" ? uuid_trial(model, n, g, rng) : synthetic_trial(model, options, n, g, rng);
  check(!t.value.empty(), "litm: the value encodes to no tokens");
  return t;
}

LitmScore score_value(std::span<const float> logits, int64_t vocab, std::span<const int32_t> value) {
  check(!value.empty() && int64_t(logits.size()) == int64_t(value.size()) * vocab,
        "litm: score_value expects [value tokens, vocab] logits");
  LitmScore s;
  s.exact = true;
  for (size_t t = 0; t < value.size(); ++t) {
    const float* row = logits.data() + int64_t(t) * vocab;
    const int32_t target = value[t];
    check(target >= 0 && target < vocab, "litm: value token " + std::to_string(target) + " is outside the vocabulary");
    double mx = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v) mx = std::max(mx, double(row[v]));
    double sum = 0;
    int64_t rank = 1;
    for (int64_t v = 0; v < vocab; ++v) {
      sum += std::exp(double(row[v]) - mx);
      if (v != target && row[v] >= row[target]) ++rank;
    }
    s.logprob += double(row[target]) - mx - std::log(sum);
    s.rank += double(rank);
    s.exact = s.exact && rank == 1;
  }
  s.logprob /= double(value.size());
  s.rank /= double(value.size());
  s.found = s.exact;
  return s;
}

namespace {

// One list per size first: its prompt length bounds the context, the memory of
// the planned lists and the attention work, all checked before anything runs.
void check_plan_fits(const Model& model, const LitmOptions& options, size_t longest_prefix) {
  const ModelConfig& c = model.config();
  double planned_bytes = 0;
  for (int n : options.n_pairs) {
    const int64_t len = int64_t(longest_prefix) +
                        int64_t(make_litm_trial(model, options, n, 0, trial_seed(options.seed, n, 0, 0)).prompt.size());
    check(options.beyond_context || c.max_seq <= 0 || len <= c.max_seq,
          "litm: --pairs " + std::to_string(n) + " makes prompts of " + std::to_string(len) +
              " tokens, more than the model's context of " + std::to_string(c.max_seq) +
              " (use fewer pairs, or allow it with --beyond-context)");
    planned_bytes += 1.5 * double(len) * 4.0 * double(options.positions) * double(options.trials);
  }
  const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  check(ram <= 0 || planned_bytes <= 0.5 * ram,
        "litm: the planned lists alone need about " + std::to_string(int64_t(planned_bytes / (1 << 20))) +
            " MiB, more than half of this machine's memory; use fewer --pairs, --query-positions or --trials");
}

struct PlannedCell {
  int n, g;
  std::vector<LitmTrial> trials;
};

// Every trial first, so that the session holds the longest and every condition sees the same lists.
std::vector<PlannedCell> plan_cells(const Model& model, const LitmOptions& options, int64_t* max_prompt_tokens) {
  std::vector<PlannedCell> plan;
  for (int n : options.n_pairs)
    for (int g : positions_for(n, options.positions)) {
      PlannedCell p{n, g, {}};
      for (int t = 0; t < options.trials; ++t) {
        p.trials.push_back(make_litm_trial(model, options, n, g, trial_seed(options.seed, n, g, t)));
        *max_prompt_tokens = std::max(*max_prompt_tokens, int64_t(p.trials.back().prompt.size()));
      }
      plan.push_back(std::move(p));
    }
  return plan;
}

constexpr int64_t kExtraTokens = 8;  // greedy continuation beyond the value (uuid)

// Teacher-forced score of the value after the prompt; for uuid, a value not
// reproduced exactly counts as found when the greedy continuation contains it.
LitmScore score_trial(Session& session, const Model& model, const LitmOptions& options,
                      const std::vector<int32_t>& prefix, const LitmTrial& t, std::vector<float>& rows) {
  std::vector<int32_t> fed = prefix;
  append(fed, t.prompt);
  session.reset();
  session.feed(fed);
  std::vector<float> logits(session.logits().begin(), session.logits().end());
  if (t.value.size() > 1) {
    session.feed(std::span<const int32_t>(t.value.data(), t.value.size() - 1), &rows);
    logits.insert(logits.end(), rows.begin(), rows.end());
  }
  LitmScore s = score_value(logits, model.config().vocab, t.value);
  if (options.task != "uuid" || s.exact) return s;
  session.reset();
  session.feed(fed);
  std::vector<int32_t> out;
  const int64_t steps = int64_t(t.value.size()) + kExtraTokens;
  for (int64_t i = 0; i < steps; ++i) {
    const auto l = session.logits();
    const int32_t next = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    out.push_back(next);
    if (i + 1 < steps) session.feed(std::span<const int32_t>(&next, 1));
  }
  s.found = model.tokenizer()->decode(out, true).find(t.value_text) != std::string::npos;
  return s;
}

}  // namespace

LitmResult run_litm(const std::shared_ptr<const Model>& model, const LitmOptions& options,
                    const LitmProgress& progress) {
  check(model != nullptr, "litm: model is null");
  check_options(options);
  const ModelConfig& c = model->config();
  LitmResult r;
  r.options = options;
  std::vector<std::vector<Intervention>> conditions;
  size_t longest_prefix = 0;
  for (const auto& specs : options.conditions) {
    conditions.push_back(parse_interventions(specs));
    longest_prefix = std::max(longest_prefix, intervention_prefix(conditions.back(), c).size());
    r.condition_names.push_back(specs.empty() ? "baseline" : describe_interventions(conditions.back()));
  }
  check_plan_fits(*model, options, longest_prefix);
  const std::vector<PlannedCell> plan = plan_cells(*model, options, &r.max_prompt_tokens);
  int64_t longest_value = 0;
  for (const PlannedCell& p : plan)
    for (const LitmTrial& t : p.trials) longest_value = std::max(longest_value, int64_t(t.value.size()));
  SessionOptions so;
  so.context = int64_t(longest_prefix) + r.max_prompt_tokens + longest_value + kExtraTokens;
  const int64_t total = int64_t(conditions.size() * plan.size()) * options.trials;
  int64_t done = 0;
  std::vector<float> rows;
  for (size_t ci = 0; ci < conditions.size(); ++ci) {
    Session session(model, so);
    const AttachedInterventions attached(session, conditions[ci]);
    const std::vector<int32_t> prefix = intervention_prefix(conditions[ci], c);
    for (const PlannedCell& p : plan) {
      LitmCell cell;
      cell.condition = int(ci);
      cell.n_pairs = p.n;
      cell.position = p.g;
      cell.relative = p.n > 1 ? double(p.g) / double(p.n - 1) : 0.0;
      for (const LitmTrial& t : p.trials) {
        const LitmScore s = score_trial(session, *model, options, prefix, t, rows);
        cell.trials++;
        cell.accuracy += s.found;
        cell.exact += s.exact;
        cell.logprob += s.logprob;
        cell.rank += s.rank;
        if (progress) progress(++done, total);
      }
      cell.accuracy /= cell.trials;
      cell.exact /= cell.trials;
      cell.logprob /= cell.trials;
      cell.rank /= cell.trials;
      r.cells.push_back(cell);
    }
  }
  return r;
}

nlohmann::json litm_json(const Model& model, const LitmResult& r) {
  const ModelConfig& c = model.config();
  const LitmOptions& o = r.options;
  nlohmann::json j;
  j["format"] = "sinklab-litm";
  j["version"] = 1;
  j["model"] = {{"path", model.path()}, {"arch", c.arch}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                {"vocab", c.vocab}};
  j["options"] = {{"task", o.task},           {"n_pairs", o.n_pairs},       {"positions", o.positions},
                  {"trials", o.trials},       {"seed", o.seed},             {"key_tokens", o.key_tokens},
                  {"value_tokens", o.value_tokens}, {"first_id", o.first_id}};
  j["conditions"] = nlohmann::json::array();
  for (size_t i = 0; i < r.condition_names.size(); ++i)
    j["conditions"].push_back({{"name", r.condition_names[i]}, {"ablate", o.conditions[i]}});
  j["cells"] = nlohmann::json::array();
  for (const LitmCell& x : r.cells)
    j["cells"].push_back({{"condition", x.condition}, {"n_pairs", x.n_pairs},   {"position", x.position},
                          {"relative", x.relative},   {"trials", x.trials},     {"accuracy", x.accuracy},
                          {"exact", x.exact},         {"logprob", x.logprob},   {"rank", x.rank}});
  j["max_prompt_tokens"] = r.max_prompt_tokens;
  return j;
}

std::string litm_table(const LitmResult& r) {
  std::ostringstream o;
  char buf[160];
  for (size_t ci = 0; ci < r.condition_names.size(); ++ci)
    o << "condition " << ci << ": " << r.condition_names[ci] << "\n";
  std::snprintf(buf, sizeof buf, "%6s %5s %6s", "pairs", "g", "g/n-1");
  o << buf;
  for (size_t ci = 0; ci < r.condition_names.size(); ++ci) {
    std::snprintf(buf, sizeof buf, " | c%zu: %5s %5s %8s %7s", ci, "acc", "exact", "logprob", "rank");
    o << buf;
  }
  o << "\n";
  const size_t per_condition = r.cells.size() / std::max<size_t>(r.condition_names.size(), 1);
  for (size_t i = 0; i < per_condition; ++i) {
    const LitmCell& first = r.cells[i];
    std::snprintf(buf, sizeof buf, "%6d %5d %6.2f", first.n_pairs, first.position, first.relative);
    o << buf;
    for (size_t ci = 0; ci < r.condition_names.size(); ++ci) {
      const LitmCell& x = r.cells[ci * per_condition + i];
      std::snprintf(buf, sizeof buf, " |     %5.2f %5.2f %8.3f %7.1f", x.accuracy, x.exact, x.logprob, x.rank);
      o << buf;
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace sinklab
