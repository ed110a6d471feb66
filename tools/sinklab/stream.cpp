// `sinklab stream`: unbounded generation through a streaming KV cache, text on
// stdout, a live stats line (tokens, speed, cache fill, evictions, memory) on stderr.
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ablate_args.h"
#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"
#include "output_guard.h"
#include "sampling_args.h"
#include "sinklab/intervene.h"
#include "stream_args.h"
#include "token_meta_args.h"

namespace sinklab::cli {

namespace {

struct StreamFlags {
  ModelArgs model;
  CacheArgs cache;
  MetaArgs meta;
  std::string prompt;
  GenerateOptions options = stream_defaults();  // -n and the sampling flags
  int threads = 0;
  bool no_stats = false;
  std::string json;  // a file, or "-" to print it instead of the text
  std::vector<std::string> ablate;
  OutputGuard guard;

  static GenerateOptions stream_defaults() {
    GenerateOptions o;
    o.max_tokens = 1024;
    o.keep_ids = false;  // unbounded: only counts are kept
    return o;
  }
};

int run_stream(StreamFlags& f) {
  bench::set_threads(f.threads);
  for (const std::string& in : {resolve_model_path(f.model.model_path), f.model.tokenizer_path, f.meta.file})
    f.guard.input(in);
  if (!f.json.empty()) f.guard.check_file(f.json, "--json");
  SessionOptions so = session_options(f.cache);
  so.cache = with_group_size(so.cache, f.meta, /*strict=*/true);
  const TokenMetaSource meta(f.meta);
  const std::shared_ptr<const Model> model = load_model(f.model);
  const Tokenizer& tok = require_tokenizer(*model);
  Session session(model, so);
  const std::vector<Intervention> ablate = parse_interventions(f.ablate);
  const AttachedInterventions attached(session, ablate);
  std::vector<int32_t> prompt = intervention_prefix(ablate, model->config());
  const std::vector<int32_t> text_ids = tok.encode(f.prompt, true);
  prompt.insert(prompt.end(), text_ids.begin(), text_ids.end());
  check(!prompt.empty(), "the prompt is empty and the tokenizer adds no BOS: there is nothing to start from");
  const bool to_stdout = f.json != kStdoutPath;
  StreamDecoder decoder(tok);
  auto emit = [&](const std::string& piece) {
    if (!to_stdout || piece.empty()) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  for (int32_t id : text_ids) emit(decoder.push(id));

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
  const GenerateResult r = generate_tokens(
      session, prompt, f.options,
      [&](int32_t id) {
        ++generated;
        emit(decoder.push(id));
        const auto now = clock::now();
        if (std::chrono::duration<double>(now - last).count() >= 1.0) {
          last = now;
          stats(false);
        }
        return true;
      },
      meta.active() ? std::function<TokenMeta(int64_t)>([&](int64_t i) { return meta.at(i); }) : nullptr);
  emit(decoder.flush());
  stats(true);
  const EvictStats e = session.evict_stats();
  const std::string cache = cache_spec_string(session.cache_spec());
  // The reason goes to stderr, after the text, whatever the stop.
  std::fprintf(stderr, "%sstopped: %s; cache %s; seed %llu\n", f.no_stats && to_stdout ? "\n" : "",
               r.stop_reason.c_str(), cache.c_str(), (unsigned long long)r.seed);
  if (!f.json.empty()) {
    const double decode_tps = r.decode_s > 0 ? double(r.decode_steps) / r.decode_s : 0.0;
    const nlohmann::ordered_json j = {{"prompt", f.prompt},          {"prompt_tokens", r.prompt_tokens},
                                      {"generated_tokens", r.generated}, {"decode_tokens_per_s", decode_tps},
                                      {"stop_reason", r.stop_reason},    {"seed", r.seed},
                                      {"cache", cache},                  {"cached", e.cached},
                                      {"capacity", e.capacity},          {"evicted", e.evicted},
                                      {"kv_bytes", e.bytes},             {"kv_sliding_bytes", e.local_bytes},
                                      {"ablate", f.ablate}};
    write_output_text(f.json, j.dump(2) + "\n", "--json");
  }
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
    sub->add_option("-n,--n-predict", f->options.max_tokens, "Tokens to generate; -1 = until EOS (default 1024)")
        ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
    add_cache_flags(*sub, f->cache, "sink");
    add_meta_flags(*sub, f->meta);
    add_sampling_flags(*sub, f->options);
    add_ablate_flag(*sub, f->ablate);
    add_threads_flag(*sub, f->threads);
    sub->add_flag("--no-stats", f->no_stats, "Do not print the stats line");
    sub->add_option("--json", f->json, "Write counts, speed, cache and stop reason as JSON to this file ('-': "
                                       "stdout, instead of the text)");
    f->guard.add_force_flag(*sub);
    return sub;
  };
  c.run = [f]() { return run_stream(*f); };
  return c;
}

}  // namespace sinklab::cli
