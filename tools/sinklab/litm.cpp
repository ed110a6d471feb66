// `sinklab litm`: lost-in-the-middle key-value retrieval, accuracy and value
// log-probability by the position of the queried pair, for several list sizes,
// with and without interventions (--ablate). Table on stdout, progress on stderr,
// --json and a self-contained --html U-curve.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ablate_args.h"
#include "bench_harness.h"
#include "commands.h"
#include "output_guard.h"
#include "model_args.h"
#include "sinklab/litm.h"

namespace sinklab::cli {

namespace {

struct LitmFlags {
  ModelArgs model;
  LitmOptions options;
  std::vector<std::string> ablate;
  std::string json, html;
  int threads = 0;
  OutputGuard guard;
};

int run_litm_command(LitmFlags& f) {
  bench::set_threads(f.threads);
  f.guard.input(resolve_model_path(f.model.model_path));
  f.guard.input(f.model.tokenizer_path);
  if (!f.json.empty()) f.guard.check_file(f.json, "--json");
  if (!f.html.empty()) f.guard.check_file(f.html, "--html");
  check(f.json.empty() || f.html.empty() || f.json != f.html, "--json and --html name the same file");
  f.options.conditions = {{}};
  if (!f.ablate.empty()) f.options.conditions.push_back(f.ablate);
  const std::shared_ptr<const Model> model = load_model(f.model);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto last = t0;
  const LitmResult r = run_litm(model, f.options, [&](int64_t done, int64_t total) {
    const auto now = clock::now();
    if (done != total && std::chrono::duration<double>(now - last).count() < 0.5) return;
    last = now;
    const int width = 30, fill = int(width * done / std::max<int64_t>(total, 1));
    std::fprintf(stderr, "\rlitm [%s%s] %lld/%lld trials  %.1f s%s", std::string(size_t(fill), '#').c_str(),
                 std::string(size_t(width - fill), '.').c_str(), (long long)done, (long long)total,
                 std::chrono::duration<double>(now - t0).count(), done == total ? "\n" : "");
    std::fflush(stderr);
  });
  std::fputs(litm_table(r).c_str(), stdout);
  const nlohmann::json j = litm_json(*model, r);
  if (!f.json.empty())
    write_output_text(f.json, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "--json");
  if (!f.html.empty()) write_output_text(f.html, litm_html(j), "--html");
  return 0;
}

}  // namespace

Command litm_command() {
  auto f = std::make_shared<LitmFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "litm", "Lost in the middle: key-value retrieval accuracy by the position of the queried pair");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    LitmOptions& o = f->options;
    sub->add_option("--task", o.task, "uuid (UUID pairs in a JSON prompt, needs the tokenizer) or synthetic "
                                      "(random token ids, any model; default)")
        ->check(CLI::IsMember({"uuid", "synthetic"}));
    sub->add_option("--pairs", o.n_pairs, "List sizes n, e.g. --pairs 8,16 (default 8,16)")
        ->delimiter(',')
        ->check(CLI::Range(1, 100000));
    sub->add_option("--query-positions", o.positions,
                    "How many evenly spaced places g the queried pair takes per list size (default 5)")
        ->check(CLI::Range(1, 1000));
    sub->add_option("--trials", o.trials, "Random lists per cell (default 8)")->check(CLI::Range(1, 1000000));
    sub->add_option("--seed", o.seed, "Seed of the random lists (default 1)");
    sub->add_option("--key-tokens", o.key_tokens, "synthetic: tokens per key (default 2)")->check(CLI::Range(1, 64));
    sub->add_option("--value-tokens", o.value_tokens, "synthetic: tokens per value (default 2)")
        ->check(CLI::Range(1, 64));
    sub->add_option("--first-id", o.first_id, "synthetic: draw ids from [first-id, vocab) (default 3)")
        ->check(CLI::Range(0, 1 << 30));
    sub->add_flag("--beyond-context", o.beyond_context,
                  "Allow prompts longer than the model's training context (refused by default)");
    add_ablate_flag(*sub, f->ablate);
    sub->add_option("--json", f->json, "Write the result JSON to this file");
    sub->add_option("--html", f->html, "Write a self-contained HTML page with the U-curves to this file");
    f->guard.add_force_flag(*sub);
    add_threads_flag(*sub, f->threads);
    return sub;
  };
  c.run = [f]() { return run_litm_command(*f); };
  return c;
}

}  // namespace sinklab::cli
