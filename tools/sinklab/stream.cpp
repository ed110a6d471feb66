// `sinklab stream`: unbounded generation through a streaming KV cache, text on
// stdout, a live stats line (tokens, speed, cache fill, evictions, memory) on stderr.
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"
#include "stream_args.h"
#include "token_meta_args.h"

namespace sinklab::cli {

namespace {

struct StreamFlags {
  ModelArgs model;
  CacheArgs cache;
  MetaArgs meta;
  std::string prompt;
  int64_t n_predict = 1024;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  int64_t seed = -1;
  int threads = 0;
  bool no_stats = false;
  bool ignore_eos = false;
};

int run_stream(const StreamFlags& f) {
  bench::set_threads(f.threads);
  SessionOptions so = session_options(f.cache);
  so.cache = with_group_size(so.cache, f.meta, /*strict=*/true);
  const TokenMetaSource meta(f.meta);
  const std::shared_ptr<const Model> model = load_model(f.model);
  const Tokenizer& tok = require_tokenizer(*model);
  Session session(model, so);
  std::vector<int32_t> history = tok.encode(f.prompt, true);
  check(!history.empty(), "the prompt is empty and the tokenizer adds no BOS: there is nothing to start from");
  SamplerOptions sopt;
  sopt.temperature = f.temperature;
  sopt.top_k = f.top_k;
  sopt.top_p = f.top_p;
  sopt.seed = f.seed >= 0 ? uint64_t(f.seed) : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
  Sampler sampler(sopt);
  StreamDecoder decoder(tok);
  for (int32_t id : history) {
    const std::string piece = decoder.push(id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
  }
  std::fflush(stdout);

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto last = t0;
  int64_t generated = 0;
  auto stats = [&](bool final) {
    if (f.no_stats) return;
    const EvictStats e = session.evict_stats();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    std::fprintf(stderr, "%s[stream] generated %lld  %.1f tok/s  cache %lld/%lld  evicted %lld  rss %.1f MiB%s",
                 final ? "\n" : "\r", (long long)generated, s > 0 ? double(generated) / s : 0.0,
                 (long long)e.cached, (long long)e.capacity, (long long)e.evicted, resident_mib(),
                 final ? "\n" : "");
    std::fflush(stderr);
  };
  session.feed(history, meta.range(0, int64_t(history.size())));
  std::string stop = "reached -n " + std::to_string(f.n_predict);
  for (int64_t i = 0; f.n_predict < 0 || i < f.n_predict; ++i) {
    if (i > 0) {
      const TokenMeta m = meta.at(session.n_past());
      session.feed(std::span<const int32_t>(&history.back(), 1), std::span<const TokenMeta>(&m, 1));
    }
    const int32_t next = sampler.sample(session.logits(), history);
    if (next == model->config().eos_id && !f.ignore_eos) {
      stop = "end of sequence";
      break;
    }
    history.push_back(next);
    if (history.size() > 4096) history.erase(history.begin(), history.end() - 2048);
    ++generated;
    const std::string piece = decoder.push(next);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    const auto now = clock::now();
    if (std::chrono::duration<double>(now - last).count() >= 1.0) {
      last = now;
      stats(false);
    }
  }
  const std::string rest = decoder.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fflush(stdout);
  stats(true);
  if (!f.no_stats)
    std::fprintf(stderr, "stopped: %s; cache %s\n", stop.c_str(), cache_spec_string(session.cache_spec()).c_str());
  return 0;
}

}  // namespace

Command stream_command() {
  auto f = std::make_shared<StreamFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "stream", "Unbounded generation through a streaming KV cache (default sink: 4 sink tokens + a window "
                  "of the model's context - 4)");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("-p,--prompt", f->prompt, "Prompt text (default: empty, generation starts from BOS)");
    sub->add_option("-n,--n-predict", f->n_predict, "Tokens to generate; -1 = until EOS (default 1024)")
        ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
    add_cache_flags(*sub, f->cache, "sink");
    add_meta_flags(*sub, f->meta);
    sub->add_option("--temp", f->temperature, "Temperature; 0 = greedy (default 0.8)")->check(CLI::Range(0.0f, 1e6f));
    sub->add_option("--top-k", f->top_k, "Keep the k most likely tokens; 0 = off (default 40)")
        ->check(CLI::Range(0, 1 << 30));
    sub->add_option("--top-p", f->top_p, "Nucleus sampling mass; 1 = off (default 0.95)")
        ->check(CLI::Range(1e-6f, 1.0f));
    sub->add_option("-s,--seed", f->seed, "Random seed; -1 = a random one (default -1)")
        ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
    sub->add_option("-t,--threads", f->threads, "Threads; 0 = every hardware thread (default 0)")
        ->check(CLI::Range(0, 4096));
    sub->add_flag("--no-stats", f->no_stats, "Do not print the stats line");
    sub->add_flag("--ignore-eos", f->ignore_eos, "Keep generating after the end-of-sequence token");
    return sub;
  };
  c.run = [f]() { return run_stream(*f); };
  return c;
}

}  // namespace sinklab::cli
