// `sinklab ppl`: perplexity of a text streamed token by token through a KV
// cache policy, or (--recompute) with the cache window re-encoded from scratch
// for every token (the StreamingLLM baseline). Progress on stderr, the final
// perplexity on stdout, per-chunk NLL with --json.
#include <chrono>
#include <cmath>
#include <cstdio>
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
#include "output_guard.h"
#include "model_args.h"
#include "sinklab/intervene.h"
#include "sinklab/perplexity.h"
#include "sinklab/tasks.h"
#include "stream_args.h"
#include "token_meta_args.h"

namespace sinklab::cli {

namespace {

struct PplFlags {
  ModelArgs model;
  CacheArgs cache;                  // --sink, --window, --positions, -c (--cache itself: caches)
  std::vector<std::string> caches;  // --cache, repeatable, comma lists allowed
  MetaArgs meta;
  std::string file;
  bool recompute = false;
  std::string json, html, csv;
  int64_t max_tokens = 0;
  int64_t chunk = 1024;
  int threads = 0;
  std::string kl_base;  // cache spec of the reference configuration for --kl-base
  std::vector<std::string> ablate;  // intervention specs; the --kl-base run has none
  OutputGuard guard;
  int64_t task_stream = 0;          // tokens of a synthetic-task stream instead of -f
  uint64_t task_seed = 1;
};

// The token stream: the text of -f, or one long sequence of the model's
// synthetic task (--task-stream N, BOS only at 0) with its query kinds.
std::vector<int32_t> stream_ids(const PplFlags& f, const Model& model, std::vector<QueryKind>* kinds) {
  check(f.file.empty() != (f.task_stream == 0), "give exactly one of -f/--file and --task-stream");
  if (f.task_stream > 0) {
    const TaskConfig task = load_task_config_beside(model.path());
    check(task.enabled(), "--task-stream: model '" + model.path() + "' has no task.json (not trained on a task)");
    const auto gen = make_task(task, model.path() + " (task.json)");
    TaskSequence s = gen->generate(task_sequence_seed(f.task_seed, 0x57ea), f.task_stream);
    if (model.config().vocab == gen->vocab_size() + 1) {  // the sink-token variant: its token first
      s.tokens.insert(s.tokens.begin(), int32_t(gen->vocab_size()));
      s.kind.insert(s.kind.begin(), QueryKind::Free);
    }
    *kinds = std::move(s.kind);
    return std::move(s.tokens);
  }
  // With --max-tokens only the needed prefix of the file is read and tokenized.
  check_input_path(f.file, "-f: text file");
  return read_first_tokens(require_tokenizer(model), f.file, "-f: text file", f.max_tokens, true);
}

// "dense,sink:sink=4,window=60,window" -> {"dense", "sink:sink=4,window=60", "window"}:
// an item with '=' but no ':' continues the spec before it.
std::vector<std::string> split_cache_list(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const std::string& flag : given) {
    size_t at = 0;
    while (at <= flag.size()) {
      const size_t comma = std::min(flag.find(',', at), flag.size());
      const std::string item = flag.substr(at, comma - at);
      if (!out.empty() && item.find('=') != std::string::npos && item.find(':') == std::string::npos &&
          out.back().find(':') != std::string::npos)
        out.back() += "," + item;
      else
        out.push_back(item);
      at = comma + 1;
    }
  }
  for (const std::string& spec : out) check(!spec.empty(), "--cache: an empty entry in the list");
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void print_comparison(const std::vector<PerplexityResult>& runs, const std::string& csv_path) {
  std::printf("%-28s %-10s %8s %10s %12s %8s %9s %7s\n", "cache", "positions", "capacity", "ppl", "KL to first",
              "KV MiB", "tok/s", "windows");
  std::string csv = "cache,positions,capacity,ppl,nll,kl_to_first,kv_bytes,tokens_per_s,windows\n";
  for (const PerplexityResult& r : runs) {
    const double tps = r.seconds > 0 ? double(r.predicted) / r.seconds : 0.0;
    std::printf("%-28s %-10s %8lld %10.4f %12.6f %8.2f %9.1f %7lld\n", r.cache.c_str(), r.positions.c_str(),
                (long long)r.capacity, r.ppl, r.kl, double(r.kv_bytes) / (1 << 20), tps, (long long)r.windows);
    csv += "\"" + r.cache + "\"," + r.positions + "," + std::to_string(r.capacity) + "," + fixed(r.ppl, 6) + "," +
           fixed(r.nll, 6) + "," + fixed(r.kl, 8) + "," + std::to_string(r.kv_bytes) + "," + fixed(tps, 2) + "," +
           std::to_string(r.windows) + "\n";
  }
  if (!csv_path.empty()) write_output_text(csv_path, csv, "--csv");
}

int run_ppl(PplFlags& f) {
  bench::set_threads(f.threads);
  if (!f.file.empty()) check_input_path(f.file, "-f: text file");
  for (const std::string& in : {resolve_model_path(f.model.model_path), f.model.tokenizer_path, f.file, f.meta.file})
    f.guard.input(in);
  if (!f.json.empty()) f.guard.check_file(f.json, "--json");
  if (!f.html.empty()) f.guard.check_file(f.html, "--html");
  if (!f.csv.empty()) f.guard.check_file(f.csv, "--csv");
  const std::vector<std::string> caches = f.caches.empty() ? std::vector<std::string>{""} : split_cache_list(f.caches);
  const bool compare = caches.size() > 1;
  check(!compare || (f.cache.sink < 0 && f.cache.window < 0),
        "--sink and --window apply to one --cache; with several, give the sizes in each spec "
        "(e.g. --cache dense,sink:sink=4,window=252)");
  check(!compare || f.kl_base.empty(), "--kl-base: with several --cache entries, the KL is to the first entry");
  const TokenMetaSource meta_source(f.meta);
  const std::shared_ptr<const Model> model = load_model(f.model);
  std::vector<QueryKind> kinds;
  const std::vector<int32_t> ids = stream_ids(f, *model, &kinds);
  check(ids.size() >= 2, "the text gives " + std::to_string(ids.size()) + " token(s); perplexity needs 2 or more");
  check(meta_source.rows() == 0 || meta_source.rows() >= int64_t(ids.size()),
        "--meta: file '" + meta_source.file() + "' has " + std::to_string(meta_source.rows()) + " rows for " +
            std::to_string(ids.size()) + " tokens (expected one row per token, BOS first)");
  const std::vector<TokenMeta> meta =
      meta_source.active() ? meta_source.range(0, int64_t(ids.size())) : std::vector<TokenMeta>{};

  std::vector<PerplexityResult> runs;
  for (size_t k = 0; k < caches.size(); ++k) {
    CacheArgs args = f.cache;
    args.cache = caches[k];
    PerplexityOptions o;
    o.cache = with_group_size(cache_spec_from_flags(args), f.meta, /*strict=*/true);
    o.positions = f.cache.positions;
    o.context = f.cache.context;
    o.recompute = f.recompute;
    o.ablate = f.ablate;
    o.chunk = f.chunk;
    o.kl_base = compare ? (k > 0 ? runs[0].cache : "")
                        : f.kl_base.empty() ? "" : with_group_size(f.kl_base, f.meta, /*strict=*/false);
    o.keep_token_nll = !f.html.empty() || !kinds.empty() || !f.json.empty();
    {
      // The resolved spec, capacity and windows are known once the sessions exist: say them first.
      SessionOptions probe;
      probe.cache = o.cache;
      probe.positions = o.positions;
      probe.context = o.context;
      Session s(model, probe);
      const AttachedInterventions check_ablate(s, parse_interventions(o.ablate));  // refuses what does not apply
      check(!o.recompute || !kv_policy_info(s.cache_spec().policy).needs_attention,
            "--recompute runs the cache policy without a model, and '" + s.cache_spec().policy +
                "' evicts by the attention it observes (stream it instead)");
      if (k == 0 && !f.ablate.empty())
        std::fprintf(stderr, "ppl: interventions %s\n", describe_interventions(parse_interventions(f.ablate)).c_str());
      const int64_t n_pred = int64_t(ids.size()) - 1;
      std::fprintf(stderr, "ppl: %zu tokens, cache %s (capacity %lld), positions %s\n", ids.size(),
                   cache_spec_string(s.cache_spec()).c_str(), (long long)s.context(),
                   o.recompute ? "recompute" : position_contract_name(s.positions()));
      if (!s.streaming() && !o.recompute && n_pred > s.context())
        std::fprintf(stderr, "ppl: dense: the text is longer than the context %lld; it is scored in windows of "
                             "%lld tokens, each from a fresh cache that starts with the first token\n",
                     (long long)s.context(), (long long)s.context());
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto last = t0;
    runs.push_back(run_perplexity(model, ids, meta, o, [&](const PerplexityProgress& p) {
      const auto now = std::chrono::steady_clock::now();
      const bool final = p.predicted == p.total;
      if (!final && std::chrono::duration<double>(now - last).count() < 1.0) return;
      last = now;
      const double secs = std::chrono::duration<double>(now - t0).count();
      std::fprintf(stderr, "\rtokens %lld/%lld  ppl %.4f  %.1f tok/s  cache %lld/%lld  rss %.1f MiB%s",
                   (long long)p.predicted, (long long)p.total, std::exp(p.nll_sum / double(std::max<int64_t>(p.predicted, 1))),
                   secs > 0 ? double(p.predicted) / secs : 0.0, (long long)p.cached, (long long)p.capacity,
                   resident_mib(), final ? "\n" : "");
      std::fflush(stderr);
    }));
  }

  const PerplexityResult& r = runs[0];
  if (compare) {
    print_comparison(runs, f.csv);
  } else {
    std::printf("perplexity: %.4f (%lld predicted tokens, cache %s, positions %s%s)\n", r.ppl, (long long)r.predicted,
                r.cache.c_str(), r.positions.c_str(),
                r.windows > 1 ? (", dense in " + std::to_string(r.windows) + " windows").c_str() : "");
    if (!f.kl_base.empty())
      std::printf("kl(base || this): %.6f nats per token (base cache %s)\n", r.kl, f.kl_base.c_str());
    if (r.kv_sliding_bytes > 0)
      std::printf("kv cache: %.2f MiB for the full layers, %.2f MiB for the sliding layers (their window)\n",
                  double(r.kv_bytes - r.kv_sliding_bytes) / (1 << 20), double(r.kv_sliding_bytes) / (1 << 20));
    if (!f.csv.empty()) print_comparison(runs, f.csv);
  }
  double kind_nll[2] = {0, 0}, kind_count[2] = {0, 0};  // free, rule queries of a task stream
  for (size_t i = 0; i < kinds.size() && i < r.token_nll.size(); ++i) {
    const int k = kinds[i] == QueryKind::Rule ? 1 : 0;
    kind_nll[k] += r.token_nll[i];
    kind_count[k] += 1;
  }
  auto mean_nll = [&](int k) { return kind_count[k] > 0 ? kind_nll[k] / kind_count[k] : NAN; };
  if (!kinds.empty())
    std::printf("task nll: free queries %.4f (%.0f), rule queries %.4f (%.0f)\n", mean_nll(0), kind_count[0],
                mean_nll(1), kind_count[1]);
  if (!f.ablate.empty()) std::printf("interventions: %s\n", describe_interventions(parse_interventions(f.ablate)).c_str());

  const std::string text = f.task_stream > 0 ? "task stream" : f.file;
  nlohmann::json comparison = {{"format", "sinklab-ppl-comparison"}, {"model", model->path()}, {"text", text},
                               {"tokens", ids.size()},            {"runs", nlohmann::json::array()}};
  for (const PerplexityResult& x : runs) comparison["runs"].push_back(perplexity_json(x));
  if (!f.html.empty()) write_output_text(f.html, perplexity_compare_html(comparison), "--html");
  if (f.json.empty()) return 0;
  for (auto& run : comparison["runs"]) run.erase("token_nll");
  nlohmann::ordered_json out;
  if (compare) {
    out = comparison;
  } else {
    out = {{"model", model->path()},   {"text", text},
           {"cache", r.cache},         {"positions", r.positions},
           {"recompute", f.recompute}, {"capacity", r.capacity},
           {"tokens", ids.size()},     {"predicted", r.predicted},
           {"nll", r.nll},             {"ppl", r.ppl},
           {"tokens_per_s", r.seconds > 0 ? double(r.predicted) / r.seconds : 0.0},
           {"chunk_tokens", f.chunk},  {"kl_base", f.kl_base},
           {"ablate", f.ablate},       {"kl", r.kl},
           {"windows", r.windows},     {"kv_bytes", r.kv_bytes},
           {"kv_sliding_bytes", r.kv_sliding_bytes},
           {"chunks", comparison["runs"][0]["chunks"]}};
  }
  if (!kinds.empty()) {
    out["task_stream_seed"] = f.task_seed;
    out["nll_free"] = kind_count[0] > 0 ? nlohmann::ordered_json(mean_nll(0)) : nlohmann::ordered_json(nullptr);
    out["nll_rule"] = kind_count[1] > 0 ? nlohmann::ordered_json(mean_nll(1)) : nlohmann::ordered_json(nullptr);
  }
  write_output_text(f.json, out.dump(2) + "\n", "--json");
  return 0;
}

}  // namespace

Command ppl_command() {
  auto f = std::make_shared<PplFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "ppl", "Perplexity of a text streamed token by token through one or several KV cache policies "
               "(e.g. --cache dense,window,sink compares them on the same tokens)");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("-f,--file", f->file, "Text file (UTF-8)");
    sub->add_option("--task-stream", f->task_stream,
                    "Instead of -f: one stream of N tokens of the synthetic task the model was trained on "
                    "(task.json beside it; BOS only at 0); also prints the NLL of free and rule queries")
        ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
    sub->add_option("--task-seed", f->task_seed, "Seed of the --task-stream sequence (default 1)");
    add_cache_flags(*sub, f->cache, "dense", &f->caches);
    add_meta_flags(*sub, f->meta);
    sub->add_flag("--recompute", f->recompute,
                  "Re-encode the cached tokens (positions 0..n-1) from scratch for every token");
    add_ablate_flag(*sub, f->ablate);
    sub->add_option("--kl-base", f->kl_base,
                    "Also run the stream through this cache spec (e.g. dense) and report the mean "
                    "KL(base || this) of the next-token distributions (the base run has no --ablate)");
    sub->add_option("--json", f->json, "Write per-chunk NLL and perplexity to this JSON file (with several "
                                       "--cache entries: every run)");
    sub->add_option("--html", f->html, "Write a self-contained HTML page: running mean NLL by position for "
                                       "every cache, and the table");
    sub->add_option("--csv", f->csv, "Write the table of runs (cache, ppl, KL to the first, KV bytes, tok/s) "
                                     "as CSV to this file");
    f->guard.add_force_flag(*sub);
    sub->add_option("--chunk", f->chunk, "Tokens per --json chunk (default 1024)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    sub->add_option("--max-tokens", f->max_tokens, "Use only the first N tokens of the text; 0 = all")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    add_threads_flag(*sub, f->threads);
    return sub;
  };
  c.run = [f]() { return run_ppl(*f); };
  return c;
}

}  // namespace sinklab::cli
