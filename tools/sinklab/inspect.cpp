// `sinklab inspect`: runs every probe (sink scores, massive activations, value
// norms, propagation, super experts) on the first tokens of a text file, prints
// a short summary and writes DIR/report.json and a self-contained DIR/report.html.
// A model trained on a synthetic task (task.json beside it) is inspected on the
// task's probe sequences instead, with the sink split by query kind.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ablate_args.h"
#include "bench_harness.h"
#include "commands.h"
#include "input_files.h"
#include "inspect_image.h"
#include "output_guard.h"
#include "model_args.h"
#include "sinklab/json_text.h"
#include "sinklab/report.h"
#include "sinklab/train.h"

namespace sinklab::cli {

namespace {

struct InspectFlags {
  ModelArgs model;
  std::string text_file;
  int64_t tokens = 256;
  std::string out = "inspect-report";
  double eps = 0.3;
  int first_k = InspectOptions{}.first_k;
  bool no_bos = false;
  std::string json;  // a file, or "-" for stdout
  int threads = 0;
  std::vector<std::string> ablate;
  std::string run;  // a training run's folder with probes.json (default: the model's folder)
  bool out_given = false;
  OutputGuard guard;
  ImageInspectArgs image;  // --image: the vision path (inspect_image.cpp)
};

// Whether `path` is a report.json that `sinklab inspect` wrote.
bool is_inspect_report(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > (int64_t(1) << 30))
    return false;
  std::ifstream in(path, std::ios::binary);
  try {
    const nlohmann::json j = parse_json_text(
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), path.string());
    return j.is_object() && j.value("format", std::string()) == "sinklab-inspect-report";
  } catch (const Error&) {
    return false;
  }
}

// Per layer: the head with the most attention on token 0 from free queries,
// with its attention from rule queries, the value drain and the massive ratio.
std::string emergence_summary(const SinkEmergence& e) {
  std::string out = "by query kind (task probe set, " + std::to_string(e.sequences) + " sequences):\n";
  char line[200];
  for (int64_t l = 0; l < e.n_layers; ++l) {
    int64_t best = 0;
    for (int64_t h = 1; h < e.n_heads; ++h)
      if (e.alpha_free_at(l, h) > e.alpha_free_at(l, best)) best = h;
    double drain = e.value_drain[size_t(l * e.n_kv_heads)];
    for (int64_t g = 1; g < e.n_kv_heads; ++g) drain = std::min(drain, e.value_drain[size_t(l * e.n_kv_heads + g)]);
    std::snprintf(line, sizeof line,
                  "  layer %lld head %lld: alpha0 free %.3f, rule %.3f | value drain %.3f | resid norm ratio %.2f\n",
                  (long long)l, (long long)best, e.alpha_free_at(l, best), e.alpha_rule_at(l, best), drain,
                  e.resid_norm_ratio[size_t(l)]);
    out += line;
  }
  return out;
}

// Inputs from this many tokens on show the probes' cost and progress on stderr.
constexpr size_t kLongInspectTokens = 1024;

int run_inspect_command(InspectFlags& f) {
  if (!f.image.image.empty()) {
    check(f.text_file.empty(), "--image and -f/--file are exclusive (a vision model reads an image, a language model a text)");
    return run_image_inspect(f.image, {f.model.model_path, f.out, f.out_given, f.json, f.threads, &f.guard});
  }
  if (!f.text_file.empty()) check_input_path(f.text_file, "-f/--file: text file");
  const std::shared_ptr<const Model> model = load_model(f.model);
  const TaskConfig task = load_task_config_beside(model->path());
  // The training run's probes (beside the model, or --run DIR): their curves
  // become DIR/emergence.html, linked from the report.
  const std::filesystem::path model_dir = std::filesystem::is_directory(model->path())
                                              ? std::filesystem::path(model->path())
                                              : std::filesystem::path(model->path()).parent_path();
  const std::filesystem::path probes = (f.run.empty() ? model_dir : std::filesystem::path(f.run)) / "probes.json";
  nlohmann::json probe_doc;
  if (std::filesystem::is_regular_file(probes)) {
    std::ifstream in(probes, std::ios::binary);
    probe_doc = parse_json_text(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
                                probes.string());
    check(probe_doc.is_object() && probe_doc.contains("records") && probe_doc["records"].is_array(),
          probes.string() + ": not a probe record of `sinklab train --probe-every`");
  } else {
    check(f.run.empty(), "--run: '" + f.run + "' holds no probes.json (train with --probe-every N)");
  }
  std::vector<std::string> outputs = {"report.json", "report.html"};
  if (!probe_doc.is_null()) outputs.push_back("emergence.html");
  for (const std::string& in : {model->path(), f.model.tokenizer_path, f.text_file, probes.string()}) f.guard.input(in);
  // Without --out, the default folder's own earlier report may be replaced
  // (so the same command can be run twice); anything else needs --force.
  if (!f.out_given && is_inspect_report(std::filesystem::path(f.out) / "report.json")) f.guard.set_force(true);
  f.guard.check_folder_files(f.out, outputs, "--out");
  if (!f.json.empty()) f.guard.check_file(f.json, "--json");
  bench::set_threads(f.threads);
  check(!f.text_file.empty() || task.enabled(),
        "-f/--file is required (model '" + model->path() + "' has no task.json to draw probe sequences from)");
  std::vector<int32_t> ids;
  std::unique_ptr<SyntheticTask> task_gen;
  SinkEmergence emergence;
  if (!f.text_file.empty()) {
    // Any bytes are data here (invalid UTF-8 becomes byte tokens), as the report shows them.
    ids = read_first_tokens(require_tokenizer(*model), f.text_file, "-f/--file: text file", f.tokens, !f.no_bos,
                            /*require_utf8=*/false);
    check(!ids.empty(), "-f/--file: text file '" + f.text_file + "' gives no tokens");
  } else {
    task_gen = make_task(task, model->path() + " (task.json)");
    emergence = task_sink_emergence(model, task);
    const int32_t first = model->config().vocab == task_gen->vocab_size() + 1 ? int32_t(task_gen->vocab_size()) : -1;
    ids = task_probe_sequences(*task_gen, 1, std::max<int64_t>(model->config().max_seq, 2), first)[0].tokens;
  }
  if (int64_t(ids.size()) > f.tokens) ids.resize(size_t(f.tokens));

  InspectOptions opts;
  opts.eps = f.eps;
  opts.first_k = int(std::min<int64_t>(f.first_k, int64_t(ids.size())));
  opts.text_source = task_gen ? "task " + task.task + " (probe sequence 0)" : f.text_file;
  opts.ablate = f.ablate;
  // Long inputs say what they cost (heads x n^2 attention per layer) and how far along they are.
  const bool long_input = ids.size() >= kLongInspectTokens;
  const auto started = std::chrono::steady_clock::now();
  const int64_t ctx = model->config().max_seq;
  InspectReport report = run_inspect(model, ids, opts, [&](const std::string& probe, int index, int count) {
    if (index == 0 && ctx > 0 && int64_t(ids.size()) > ctx)  // after the memory check
      std::fprintf(stderr,
                   "inspect: warning: %zu tokens run past the model's training context of %lld; attention past "
                   "it is outside what the model learned (use --tokens %lld to stay inside)\n",
                   ids.size(), static_cast<long long>(ctx), static_cast<long long>(ctx));
    if (!long_input) return;
    if (index == 0)  // the memory check has passed
      std::fprintf(stderr, "inspect: %zu tokens; the attention probes materialise %lld heads x %zu^2 floats per layer\n",
                   ids.size(), static_cast<long long>(model->config().n_heads), ids.size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "inspect: probe %d/%d %s (%.1f s)\n", index + 1, count, probe.c_str(), s);
  });
  if (task_gen && report.tokens.empty())
    for (int32_t id : report.ids)
      report.tokens.push_back(id < task_gen->vocab_size() ? task_gen->token_text(id) : "<sink>");
  nlohmann::json j = inspect_report_json(*model, report);
  if (task_gen) {
    j["task"] = task_config_to_json(task);
    j["sink_emergence"] = emergence;
  }
  if (!probe_doc.is_null()) {
    j["emergence_page"] = "emergence.html";
    j["emergence_records"] = probe_doc["records"].size();
  }
  write_inspect_report(f.out, j);
  if (!probe_doc.is_null()) {
    write_output_text((std::filesystem::path(f.out) / "emergence.html").string(), emergence_html(probe_doc), "--out");
  }
  const std::filesystem::path dir(f.out);
  if (!f.json.empty())
    write_output_text(f.json, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "--json");
  if (f.json != kStdoutPath) {
    std::fputs(inspect_summary(j).c_str(), stdout);
    if (task_gen) std::fputs(emergence_summary(emergence).c_str(), stdout);
    std::printf("wrote:      %s, %s\n", (dir / "report.json").string().c_str(), (dir / "report.html").string().c_str());
  }
  return 0;
}

}  // namespace

Command inspect_command() {
  auto f = std::make_shared<InspectFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "inspect", "Measure attention sinks, massive activations, value norms, propagation and super experts on a "
                   "text; write report.json and report.html");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("-f,--file", f->text_file,
                    "Text file to inspect (required unless the model was trained on a synthetic task: then the "
                    "task's probe sequences are used and the sink is split by query kind)");
    sub->add_option("--tokens", f->tokens, "Inspect the first N tokens of the text (default 256)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    sub->add_option("--out", f->out,
                    "Folder for report.json and report.html (default inspect-report, whose own earlier report is "
                    "replaced; an existing report in a folder named here needs --force)")
        ->each([f](const std::string&) { f->out_given = true; });
    sub->add_option("--eps", f->eps, "Sink threshold: a head is a sink of key k when alpha_k > eps (default 0.3)")
        ->check(CLI::Range(0.0, 1.0));
    sub->add_option("--first-k", f->first_k, "Report alpha_k and Sink_k for keys 0..K-1 (default 4)")
        ->check(CLI::Range(1, 1024));
    sub->add_flag("--no-bos", f->no_bos, "Do not prepend the BOS token");
    add_ablate_flag(*sub, f->ablate);
    add_image_inspect_flags(*sub, f->image);
    sub->add_option("--run", f->run,
                    "Training run folder whose probes.json (sinklab train --probe-every) is drawn as emergence "
                    "curves in OUT/emergence.html and linked from the report (default: the model's folder, when it "
                    "holds one)");
    sub->add_option("--json", f->json, "Also write the report JSON to this file ('-': stdout, instead of the "
                                       "summary)");
    add_threads_flag(*sub, f->threads);
    f->guard.add_force_flag(*sub);
    return sub;
  };
  c.run = [f]() -> int { return run_inspect_command(*f); };
  return c;
}

}  // namespace sinklab::cli
