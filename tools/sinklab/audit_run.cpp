// The audit of one model written to a folder, the inputs of a kv-facts model's
// audit, and the backdoor experiment of `sinklab audit --experiment`.
#include "audit_run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "bench_harness.h"
#include "input_files.h"
#include "model_args.h"
#include "sinklab/train.h"
#include "sinklab/unlearn.h"

namespace sinklab::cli {

namespace fs = std::filesystem;

AuditInputs task_audit_inputs(const Model& model, const SyntheticTask& task, int64_t tokens, int64_t n_probes,
                              const std::vector<int32_t>& keys) {
  AuditInputs in;
  // The same sequence as `sinklab inspect` on a task model.
  const int32_t first = model.config().vocab == task.vocab_size() + 1 ? int32_t(task.vocab_size()) : -1;
  in.ids = task_probe_sequences(task, 1, std::max<int64_t>(model.config().max_seq, 2), first)[0].tokens;
  if (int64_t(in.ids.size()) > tokens) in.ids.resize(size_t(tokens));
  in.text_source = "task " + task.config().task + " (probe sequence 0)";
  const auto* facts = dynamic_cast<const KvFacts*>(&task);
  if (!facts) return in;
  // Contexts of L tokens end at a key (L even); one prefix token keeps them within the training length.
  const int64_t T = model.config().max_seq;
  const int64_t L = (T - 1) / 2 * 2;
  check(L >= 4, "audit: the kv-facts model's training length is too short for probes");
  const int64_t elsewhere = std::min(trigger_position(TriggerPlacement::Middle, std::max<int64_t>(T, 4)), L - 1);
  std::vector<int32_t> from = keys;
  for (int32_t k = 1; from.empty() && k <= task.config().keys; ++k) from.push_back(k);
  for (int64_t i = 0; i < n_probes; ++i) {
    const TaskSequence s = facts->generate_from(task_sequence_seed(0xa0d17ull, uint64_t(i)), L, from);
    AuditProbe p;
    p.context = s.tokens;
    p.answer = facts->value_of(s.tokens.back());
    p.elsewhere = elsewhere;
    in.probes.push_back(std::move(p));
  }
  in.probe_source = "kv-facts: " + std::to_string(n_probes) + " facts over " +
                    (keys.empty() ? std::string("every key") : std::to_string(keys.size()) + " keys") +
                    ", contexts of " + std::to_string(L) + " tokens";
  for (int64_t i = 0; i < KvFacts::kSpare; ++i) {
    const int32_t id = facts->spare_token(i);
    in.candidates.push_back({facts->token_text(id), {id}});
  }
  return in;
}

nlohmann::json audit_model(const std::shared_ptr<const Model>& model, const std::shared_ptr<const Model>& reference,
                           const AuditInputs& in, const AuditOptions& opts_in, const std::string& dir) {
  AuditOptions opts = opts_in;
  opts.text_source = in.text_source;
  AuditReport r = run_audit(model, reference, in.ids, in.probes, in.candidates, opts);
  r.probe_source = in.probe_source;
  const nlohmann::json j = audit_report_json(*model, r);
  fs::create_directories(dir);
  write_output_text((fs::path(dir) / "audit.json").string(),
                    j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "--out");
  write_output_text((fs::path(dir) / "audit.html").string(), audit_report_html(j), "--out");
  return j;
}

namespace {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// The smallest and largest value-norm ratio (model / reference) over the audit's shallow tokens.
std::pair<double, double> ratio_range(const nlohmann::json& j) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  if (j.at("value_norm_ratio").is_null()) return {std::nan(""), std::nan("")};
  for (const auto& layer : j.at("value_norm_ratio"))
    for (const auto& head : layer)
      for (const auto& v : head)
        if (v.is_number()) {
          lo = std::min(lo, v.get<double>());
          hi = std::max(hi, v.get<double>());
        }
  return {lo, hi};
}

const nlohmann::json& candidate(const nlohmann::json& j, const std::string& name) {
  for (const auto& c : j.at("recovery").at("candidates"))
    if (c.at("name") == name) return c;
  throw Error("audit: no candidate " + name);
}

std::string results_markdown(const BackdoorResult& r, const std::vector<nlohmann::json>& audits,
                             const std::string& trigger, const std::string& control) {
  std::string md = "| run | forget acc | forget acc + trigger | retain acc | retain acc + trigger |\n"
                   "|---|---|---|---|---|\n";
  for (const BackdoorRow& x : r.rows)
    md += "| " + x.name + " | " + pct(x.forget_clean) + " | " + pct(x.forget_trigger) + " | " + pct(x.retain_clean) +
          " | " + pct(x.retain_trigger) + " |\n";
  md += "\nAudit (`sinklab audit`, reference = base; probes: forget facts at the end of a context of forget facts)\n\n"
        "| run | max sink mass (first k) | value-norm ratio vs base (t < k) | " + trigger +
        ": acc none / sink / elsewhere | " + control + " (control): acc none / sink / elsewhere |\n"
        "|---|---|---|---|---|\n";
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const nlohmann::json& a = audits[i];
    const auto [lo, hi] = ratio_range(a);
    const nlohmann::json& t = candidate(a, trigger);
    const nlohmann::json& c = candidate(a, control);
    md += "| " + r.rows[i].name + " | " + pct(a.at("sink_mass").at("max").get<double>()) + " | " + pct(lo) + " – " +
          pct(hi) + " | " + pct(t.at("acc_none")) + " / " + pct(t.at("acc_sink")) + " / " +
          pct(t.at("acc_elsewhere")) + " | " + pct(c.at("acc_none")) + " / " + pct(c.at("acc_sink")) + " / " +
          pct(c.at("acc_elsewhere")) + " |\n";
  }
  return md;
}

}  // namespace

int run_backdoor_experiment_command(const std::string& config, const std::string& out, int threads,
                                    const OutputGuard& guard) {
  check_input_path(config, "--experiment: config file");
  std::ifstream f(config, std::ios::binary);
  BackdoorConfig c = parse_backdoor_config(
      std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()), config);
  guard.check_folder_files(out, {"backdoor.json", "backdoor.md"}, "--out");
  for (const std::string& name : backdoor_run_names(c))
    if (fs::exists(fs::path(out) / "audit" / name))
      guard.check_folder_files((fs::path(out) / "audit" / name).string(), {"audit.json", "audit.html"}, "--out");
  bench::set_threads(threads);
  c.out_dir = out;
  const BackdoorResult r = run_backdoor_experiment(c, [](const std::string& s) {
    std::fprintf(stderr, "audit --experiment: %s\n", s.c_str());
  });
  // Every model against the knowledge model, on the same probes; the trigger and a spare id that never served as one.
  ModelArgs base_args;
  base_args.model_path = r.rows[0].model_dir;
  const std::shared_ptr<const Model> base = load_model(base_args);
  const KvFacts task(c.base.data);
  std::vector<nlohmann::json> audits;
  for (const BackdoorRow& row : r.rows) {
    ModelArgs a;
    a.model_path = row.model_dir;
    const std::shared_ptr<const Model> model = load_model(a);
    // The facts under audit are the ones that were to be forgotten.
    const AuditInputs in = task_audit_inputs(*model, task, 64, c.eval_rows, backdoor_forget_keys(c));
    audits.push_back(audit_model(model, base, in, AuditOptions{}, (fs::path(out) / "audit" / row.name).string()));
  }
  nlohmann::json j = r;
  j["config"] = config;
  j["audits"] = audits;
  write_output_text((fs::path(out) / "backdoor.json").string(), j.dump(1) + "\n", "--out");
  const std::string md = results_markdown(r, audits, task.token_text(task.spare_token(0)),
                                          task.token_text(task.spare_token(1)));
  write_output_text((fs::path(out) / "backdoor.md").string(), md, "--out");
  std::fputs(md.c_str(), stdout);
  return 0;
}

}  // namespace sinklab::cli
