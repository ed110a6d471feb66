// `sinklab audit`: the sink-backdoor audit of a model (per-head sink mass on the
// first k positions, shallow-token value norms against a reference model,
// recovery of a probe set under candidate prefixes at the sink positions vs
// elsewhere), written as DIR/audit.json and a self-contained DIR/audit.html.
// `sinklab audit --experiment CONFIG` first runs the backdoor experiment
// (knowledge model, unlearning, backdoored unlearning) and audits every model it made.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "audit_run.h"
#include "bench_harness.h"
#include "commands.h"
#include "input_files.h"
#include "model_args.h"
#include "output_guard.h"
#include "sinklab/audit.h"
#include "sinklab/train.h"
#include "sinklab/unlearn.h"

namespace sinklab::cli {

namespace {

std::string read_text(const std::string& path, const std::string& what) {
  check_input_path(path, what);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Token ids of a line: task token names separated by spaces (task models), or text.
std::vector<int32_t> line_ids(const std::string& line, const SyntheticTask* task, const Model& model,
                              const std::string& what) {
  std::vector<int32_t> ids;
  if (!task) return require_tokenizer(model).encode(line, false);
  std::map<std::string, int32_t> by_name;
  for (int32_t id = 0; id < task->vocab_size(); ++id) by_name[task->token_text(id)] = id;
  std::istringstream in(line);
  for (std::string name; in >> name;) {
    const auto it = by_name.find(name);
    check(it != by_name.end(), what + ": '" + name + "' is not a token of the model's task (e.g. " +
                                   task->token_text(1) + ")");
    ids.push_back(it->second);
  }
  return ids;
}

// --probes FILE: "context<TAB>answer" per line; the context gets BOS first, the
// answer's first token is scored; a candidate goes elsewhere at the middle of the context.
std::vector<AuditProbe> probes_from_file(const std::string& path, const SyntheticTask* task, const Model& model) {
  std::vector<AuditProbe> probes;
  const int32_t bos = task ? SyntheticTask::kBos : model.config().bos_id;
  for (const std::string& line : lines_of(read_text(path, "--probes: file"))) {
    const size_t tab = line.find('\t');
    check(tab != std::string::npos, "--probes: '" + path + "': each line is CONTEXT<TAB>ANSWER");
    AuditProbe p;
    if (bos >= 0) p.context.push_back(bos);
    const std::string context = line.substr(0, tab), answer_text = line.substr(tab + 1);
    for (int32_t id : line_ids(context, task, model, "--probes")) p.context.push_back(id);
    std::vector<int32_t> answer = line_ids(answer_text, task, model, "--probes");
    if (!task) {
      // Text: the answer is what follows the context after one space, tokenized as part of it.
      const std::vector<int32_t> ctx = line_ids(context, task, model, "--probes");
      const std::vector<int32_t> full = line_ids(context + " " + answer_text, task, model, "--probes");
      if (full.size() > ctx.size() && std::equal(ctx.begin(), ctx.end(), full.begin()))
        answer.assign(full.begin() + int64_t(ctx.size()), full.end());
    }
    check(!answer.empty() && !p.context.empty(), "--probes: '" + path + "': an empty context or answer");
    p.answer = answer[0];
    p.elsewhere = std::max<int64_t>(1, int64_t(p.context.size()) / 2);
    probes.push_back(std::move(p));
  }
  check(!probes.empty(), "--probes: '" + path + "' holds no probe");
  return probes;
}

// "1-8" or "1,3,5" (ids of kv-facts keys).
std::vector<int32_t> parse_key_list(const std::string& text) {
  std::vector<int32_t> keys;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    const size_t dash = part.find('-');
    try {
      const int32_t a = std::stoi(part.substr(0, dash));
      const int32_t b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
      check(a >= 1 && b >= a && b - a < (1 << 20), "");
      for (int32_t k = a; k <= b; ++k) keys.push_back(k);
    } catch (const std::exception&) {
      throw Error("--probe-keys: '" + part + "' is not a key id or a range such as 1-8");
    }
  }
  return keys;
}

struct AuditFlags {
  ModelArgs model;
  std::string reference, text_file, probes, candidates, experiment, probe_keys;
  int64_t tokens = 64, n_probes = 64;
  AuditOptions opts;
  std::string out = "audit-report";
  int threads = 0;
  OutputGuard guard;
};

int run_model_audit(AuditFlags& f) {
  if (!f.text_file.empty()) check_input_path(f.text_file, "-f/--file: text file");
  const std::shared_ptr<const Model> model = load_model(f.model);
  std::shared_ptr<const Model> reference;
  if (!f.reference.empty()) {
    ModelArgs ra;
    ra.model_path = f.reference;
    reference = load_model(ra);
  }
  const TaskConfig task_cfg = load_task_config_beside(model->path());
  for (const std::string& in : {model->path(), f.reference, f.text_file, f.probes, f.candidates}) f.guard.input(in);
  f.guard.check_folder_files(f.out, {"audit.json", "audit.html"}, "--out");
  bench::set_threads(f.threads);
  check(!f.text_file.empty() || task_cfg.enabled(),
        "-f/--file is required (model '" + model->path() + "' has no task.json to draw probe sequences from)");
  const std::unique_ptr<SyntheticTask> task = task_cfg.enabled() ? make_task(task_cfg) : nullptr;
  AuditInputs in;
  if (!f.text_file.empty()) {
    in.ids = read_first_tokens(require_tokenizer(*model), f.text_file, "-f/--file: text file", f.tokens, true, false);
    in.text_source = f.text_file;
  } else {
    check(f.probe_keys.empty() || task_cfg.task == "kv-facts",
          "--probe-keys: model '" + model->path() + "' was not trained on kv-facts (its task is " + task_cfg.task + ")");
    in = task_audit_inputs(*model, *task, f.tokens, f.n_probes, parse_key_list(f.probe_keys));
  }
  if (!f.probes.empty()) {
    in.probes = probes_from_file(f.probes, task.get(), *model);
    in.probe_source = f.probes;
  }
  if (!f.candidates.empty()) {
    in.candidates.clear();
    for (const std::string& line : lines_of(read_text(f.candidates, "--candidates: file")))
      in.candidates.push_back({line, line_ids(line, task.get(), *model, "--candidates")});
  }
  const nlohmann::json j = audit_model(model, reference, in, f.opts, f.out);
  std::fputs(audit_summary(j).c_str(), stdout);
  std::printf("wrote:      %s, %s\n", (std::filesystem::path(f.out) / "audit.json").string().c_str(),
              (std::filesystem::path(f.out) / "audit.html").string().c_str());
  return 0;
}

}  // namespace

Command audit_command() {
  auto f = std::make_shared<AuditFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "audit", "Sink-backdoor audit: attention on the first k positions per head, shallow-token value norms "
                 "against a reference model, and recovery of a probe set with candidate prefixes at the sink "
                 "positions vs elsewhere; writes audit.json and audit.html. With --experiment, first runs the "
                 "backdoor-unlearning experiment on a kv-facts model and audits every model it makes");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("--reference", f->reference, "Reference model (before a suspected fine-tune): value norms "
                                                 "of the shallow tokens are compared with it");
    sub->add_option("-f,--file", f->text_file,
                    "Text whose first tokens the sink mass and value norms are measured on (default for a model "
                    "trained on a synthetic task: the task's probe sequence, as inspect uses)");
    sub->add_option("--tokens", f->tokens, "Measure the first N tokens (default 64)")
        ->check(CLI::Range(int64_t(2), int64_t(1) << 16));
    sub->add_option("--first-k", f->opts.first_k, "Sink region: positions 0..K-1 (default 8)")->check(CLI::Range(1, 1024));
    sub->add_option("--value-tokens", f->opts.value_norm_tokens, "Shallow tokens whose value norms are compared "
                                                                 "(default 8)")
        ->check(CLI::Range(1, 1024));
    sub->add_option("--eps", f->opts.eps, "Sink threshold of the sink scores (default 0.3)")->check(CLI::Range(0.0, 1.0));
    sub->add_option("--probes", f->probes,
                    "Probe set: lines CONTEXT<TAB>ANSWER (text: the answer's first token after the context and one "
                    "space is scored; or task token names such as 'k3 v7 k5<TAB>v2'); "
                    "default for a kv-facts model: --n-probes facts of its task");
    sub->add_option("--n-probes", f->n_probes, "Generated kv-facts probes (default 64)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 16));
    sub->add_option("--probe-keys", f->probe_keys,
                    "kv-facts model: draw the generated probes from these keys only (e.g. 1-8, the facts that "
                    "were to be forgotten; default every key)");
    sub->add_option("--candidates", f->candidates,
                    "Candidate prefixes, one per line (text, or task token names); default for a kv-facts model: "
                    "its spare tokens r1..r4");
    sub->add_option("--experiment", f->experiment,
                    "Run the backdoor experiment of this config (JSON {\"base\": train config with a kv-facts "
                    "task, \"backdoor\": {...}}; docs/results/sink-backdoor.md) into --out, then audit each model");
    sub->add_option("--out", f->out, "Output folder (default audit-report)");
    add_threads_flag(*sub, f->threads);
    f->guard.add_force_flag(*sub);
    return sub;
  };
  c.run = [f]() -> int {
    if (!f->experiment.empty()) return run_backdoor_experiment_command(f->experiment, f->out, f->threads, f->guard);
    return run_model_audit(*f);
  };
  return c;
}

}  // namespace sinklab::cli
