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
#include "sinklab/tasks.h"
#include "stream_args.h"
#include "token_meta_args.h"

namespace sinklab::cli {

namespace {

struct PplFlags {
  ModelArgs model;
  CacheArgs cache;
  MetaArgs meta;
  std::string file;
  bool recompute = false;
  std::string json;
  int64_t max_tokens = 0;
  int64_t chunk = 1024;
  int threads = 0;
  std::string kl_base;  // cache spec of the reference configuration for --kl-base
  std::vector<std::string> ablate;  // intervention specs; the --kl-base run has none
  OutputGuard guard;
  int64_t task_stream = 0;          // tokens of a synthetic-task stream instead of -f
  uint64_t task_seed = 1;
};

double nll_of(std::span<const float> logits, int32_t target) {
  double mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, double(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(double(x) - mx);
  return mx + std::log(sum) - double(logits[size_t(target)]);
}

// KL(p || q) of the next-token distributions given by two logit vectors.
double kl_of(std::span<const float> p_logits, std::span<const float> q_logits) {
  auto log_norm = [](std::span<const float> l) {
    double mx = -INFINITY;
    for (float x : l) mx = std::max(mx, double(x));
    double sum = 0;
    for (float x : l) sum += std::exp(double(x) - mx);
    return mx + std::log(sum);
  };
  const double zp = log_norm(p_logits), zq = log_norm(q_logits);
  double kl = 0;
  for (size_t v = 0; v < p_logits.size(); ++v) {
    const double lp = double(p_logits[v]) - zp, lq = double(q_logits[v]) - zq;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(kl, 0.0);
}

struct Chunk {
  int64_t start = 0, count = 0;
  double nll = 0, kl = 0;
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

int run_ppl(PplFlags& f) {
  bench::set_threads(f.threads);
  if (!f.file.empty()) check_input_path(f.file, "-f: text file");
  if (!f.json.empty()) {
    for (const std::string& in : {resolve_model_path(f.model.model_path), f.model.tokenizer_path, f.file, f.meta.file})
      f.guard.input(in);
    f.guard.check_file(f.json, "--json");
  }
  SessionOptions so = session_options(f.cache);
  so.cache = with_group_size(so.cache, f.meta, /*strict=*/true);
  const TokenMetaSource meta(f.meta);
  const std::shared_ptr<const Model> model = load_model(f.model);
  std::vector<QueryKind> kinds;
  std::vector<int32_t> ids = stream_ids(f, *model, &kinds);
  if (f.max_tokens > 0 && int64_t(ids.size()) > f.max_tokens) ids.resize(size_t(f.max_tokens));
  check(ids.size() >= 2, "-f: text file '" + f.file + "' has fewer than 2 tokens: nothing to predict");
  check(meta.rows() == 0 || meta.rows() >= int64_t(ids.size()),
        "--meta: file '" + meta.file() + "' has " + std::to_string(meta.rows()) + " rows for " +
            std::to_string(ids.size()) + " tokens (expected one row per token, BOS first)");

  const std::vector<Intervention> ablate = parse_interventions(f.ablate);
  const std::vector<int32_t> prefix = intervention_prefix(ablate, model->config());  // fed, never scored
  Session session(model, so);
  const AttachedInterventions session_ablate(session, ablate);
  // --recompute: the policy alone decides which tokens survive; a dense session
  // re-encodes them at positions 0..n-1 for every prediction.
  std::unique_ptr<KvPolicy> policy;
  std::unique_ptr<Session> fresh;
  if (f.recompute) {
    policy = make_kv_policy(parse_cache_spec(so.cache));
    SessionOptions d;
    d.context = policy->capacity() + int64_t(prefix.size());
    fresh = std::make_unique<Session>(model, d);
  }
  const std::unique_ptr<AttachedInterventions> fresh_ablate =
      fresh ? std::make_unique<AttachedInterventions>(*fresh, ablate) : nullptr;
  // --kl-base: the same stream through a second configuration, compared token by token.
  std::unique_ptr<Session> base;
  if (!f.kl_base.empty()) {
    SessionOptions b;
    b.cache = with_group_size(f.kl_base, f.meta, /*strict=*/false);
    base = std::make_unique<Session>(model, b);
  }
  double total_kl = 0;
  const std::string mode = f.recompute ? "recompute" : position_contract_name(session.positions());
  if (!ablate.empty()) std::fprintf(stderr, "ppl: interventions %s\n", describe_interventions(ablate).c_str());
  std::fprintf(stderr, "ppl: %zu tokens, cache %s (capacity %lld), positions %s\n", ids.size(), so.cache.c_str(),
               (long long)session.context(), mode.c_str());

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto last_print = t0;
  std::vector<Chunk> chunks;
  double total = 0;
  double kind_nll[2] = {0, 0}, kind_count[2] = {0, 0};  // free, rule queries of a task stream
  int64_t predicted = 0;
  std::vector<TokenMeta> evicted, alive;
  std::vector<int32_t> window_ids;
  const int64_t n_pred = int64_t(ids.size()) - 1;
  auto progress = [&](bool final) {
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    const int64_t fill = f.recompute ? policy->size() : session.evict_stats().cached;
    std::fprintf(stderr, "\rtokens %lld/%lld  ppl %.4f  %.1f tok/s  cache %lld/%lld  rss %.1f MiB%s",
                 (long long)predicted, (long long)n_pred, std::exp(total / double(std::max<int64_t>(predicted, 1))),
                 s > 0 ? double(predicted) / s : 0.0, (long long)fill, (long long)session.context(), resident_mib(),
                 final ? "\n" : "");
    std::fflush(stderr);
  };
  if (!f.recompute && !prefix.empty()) session.feed(prefix);
  for (int64_t i = 0; i < n_pred; ++i) {
    std::span<const float> logits;
    try {
      if (f.recompute) {
        evicted.clear();
        policy->append(meta.at(i), evicted);
        policy->survivors(alive);
        window_ids.assign(prefix.begin(), prefix.end());
        for (const TokenMeta& t : alive) window_ids.push_back(ids[size_t(t.index)]);
        fresh->reset();
        fresh->feed(window_ids);
        logits = fresh->logits();
      } else {
        const TokenMeta m = meta.at(i);
        session.feed(std::span<const int32_t>(&ids[size_t(i)], 1), std::span<const TokenMeta>(&m, 1));
        logits = session.logits();
      }
    } catch (const Error& e) {
      progress(true);
      throw Error(std::string(e.what()) + " (perplexity over the first " + std::to_string(predicted) +
                  " predictions: " + std::to_string(std::exp(total / double(std::max<int64_t>(predicted, 1)))) + ")");
    }
    const double nll = nll_of(logits, ids[size_t(i + 1)]);
    total += nll;
    if (!kinds.empty()) {
      const int k = kinds[size_t(i)] == QueryKind::Rule ? 1 : 0;
      kind_nll[k] += nll;
      kind_count[k] += 1;
    }
    double kl = 0;
    if (base) {
      const TokenMeta m = meta.at(i);
      base->feed(std::span<const int32_t>(&ids[size_t(i)], 1), std::span<const TokenMeta>(&m, 1));
      kl = kl_of(base->logits(), logits);
      total_kl += kl;
    }
    if (chunks.empty() || chunks.back().count == f.chunk) chunks.push_back({i + 1, 0, 0, 0});
    chunks.back().count++;
    chunks.back().nll += nll;
    chunks.back().kl += kl;
    ++predicted;
    const auto now = clock::now();
    if (std::chrono::duration<double>(now - last_print).count() >= 1.0) {
      last_print = now;
      progress(false);
    }
  }
  progress(true);
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const double ppl = std::exp(total / double(predicted));
  std::printf("perplexity: %.4f (%lld predicted tokens, cache %s, positions %s)\n", ppl, (long long)predicted,
              so.cache.c_str(), mode.c_str());
  auto mean_nll = [&](int k) { return kind_count[k] > 0 ? kind_nll[k] / kind_count[k] : NAN; };
  if (!kinds.empty())
    std::printf("task nll: free queries %.4f (%.0f), rule queries %.4f (%.0f)\n", mean_nll(0), kind_count[0],
                mean_nll(1), kind_count[1]);
  if (!ablate.empty()) std::printf("interventions: %s\n", describe_interventions(ablate).c_str());
  if (base)
    std::printf("kl(base || this): %.6f nats per token (base cache %s)\n", total_kl / double(predicted),
                f.kl_base.c_str());
  if (!f.json.empty()) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const Chunk& c : chunks)
      rows.push_back({{"start", c.start}, {"tokens", c.count}, {"nll", c.nll / double(c.count)},
                      {"ppl", std::exp(c.nll / double(c.count))}, {"kl", c.kl / double(c.count)}});
    const nlohmann::ordered_json j = {
        {"model", model->path()},
        {"text", f.task_stream > 0 ? "task stream" : f.file},
        {"cache", so.cache},
        {"positions", mode},
        {"recompute", f.recompute},
        {"capacity", session.context()},
        {"tokens", ids.size()},
        {"predicted", predicted},
        {"nll", total / double(predicted)},
        {"ppl", ppl},
        {"tokens_per_s", seconds > 0 ? double(predicted) / seconds : 0.0},
        {"chunk_tokens", f.chunk},
        {"kl_base", f.kl_base},
        {"ablate", f.ablate},
        {"kl", base ? total_kl / double(predicted) : 0.0},
        {"chunks", rows},
    };
    nlohmann::ordered_json out_json = j;
    if (!kinds.empty()) {
      out_json["task_stream_seed"] = f.task_seed;
      out_json["nll_free"] = kind_count[0] > 0 ? nlohmann::ordered_json(mean_nll(0)) : nlohmann::ordered_json(nullptr);
      out_json["nll_rule"] = kind_count[1] > 0 ? nlohmann::ordered_json(mean_nll(1)) : nlohmann::ordered_json(nullptr);
    }
    write_output_text(f.json, out_json.dump(2) + "\n", "--json");
  }
  return 0;
}

}  // namespace

Command ppl_command() {
  auto f = std::make_shared<PplFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "ppl", "Perplexity of a text streamed token by token through a KV cache policy");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("-f,--file", f->file, "Text file (UTF-8)");
    sub->add_option("--task-stream", f->task_stream,
                    "Instead of -f: one stream of N tokens of the synthetic task the model was trained on "
                    "(task.json beside it; BOS only at 0); also prints the NLL of free and rule queries")
        ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
    sub->add_option("--task-seed", f->task_seed, "Seed of the --task-stream sequence (default 1)");
    add_cache_flags(*sub, f->cache);
    add_meta_flags(*sub, f->meta);
    sub->add_flag("--recompute", f->recompute,
                  "Re-encode the cached tokens (positions 0..n-1) from scratch for every token");
    add_ablate_flag(*sub, f->ablate);
    sub->add_option("--kl-base", f->kl_base,
                    "Also run the stream through this cache spec (e.g. dense) and report the mean "
                    "KL(base || this) of the next-token distributions (the base run has no --ablate)");
    sub->add_option("--json", f->json, "Write per-chunk NLL and perplexity to this JSON file");
    f->guard.add_force_flag(*sub);
    sub->add_option("--chunk", f->chunk, "Tokens per --json chunk (default 1024)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    sub->add_option("--max-tokens", f->max_tokens, "Use only the first N tokens of the text; 0 = all")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
    sub->add_option("-t,--threads", f->threads, "Threads; 0 = every hardware thread (default 0)")
        ->check(CLI::Range(0, 4096));
    return sub;
  };
  c.run = [f]() { return run_ppl(*f); };
  return c;
}

}  // namespace sinklab::cli
