// `sinklab generate`: text generation with llama.cpp-style flags. Streams the
// text to stdout as tokens arrive, then prints token counts and speeds to stderr.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"

namespace sinklab::cli {

namespace {

struct GenerateFlags {
  ModelArgs model;
  std::string prompt;
  int64_t n_predict = 128;
  int threads = 0;
  int64_t context = 0;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  int64_t seed = -1;
  bool no_bos = false;
  bool no_display_prompt = false;
  bool json = false;
};

void add_flags(CLI::App& sub, GenerateFlags& f) {
  add_model_flags(sub, f.model, /*with_dtype=*/true);
  sub.add_option("-p,--prompt", f.prompt, "Prompt text (default: empty, generation starts from BOS)");
  sub.add_option("-n,--n-predict", f.n_predict,
                 "Tokens to generate; -1 = until EOS or the context is full (default 128)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  sub.add_option("-t,--threads", f.threads, "Threads; 0 = every hardware thread (default 0)")
      ->check(CLI::Range(0, 4096));
  sub.add_option("-c,--ctx-size", f.context,
                 "Context size in tokens; 0 = the model's training context (default 0)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  sub.add_option("--temp", f.temperature, "Temperature; 0 = greedy (default 0.8)")
      ->check(CLI::Range(0.0f, 1e6f));
  sub.add_option("--top-k", f.top_k, "Keep the k most likely tokens; 0 = off (default 40)")
      ->check(CLI::Range(0, 1 << 30));
  sub.add_option("--top-p", f.top_p, "Nucleus sampling: keep the smallest set with this mass; 1 = off (default 0.95)")
      ->check(CLI::Range(1e-6f, 1.0f));
  sub.add_option("--min-p", f.min_p,
                 "Drop tokens below min-p times the top probability; 0 = off (default 0.05)")
      ->check(CLI::Range(0.0f, 0.999999f));
  sub.add_option("--repeat-penalty", f.repeat_penalty,
                 "Penalty for tokens among the last repeat-last-n; 1 = off (default 1.0)")
      ->check(CLI::Range(1e-6f, 1e6f));
  sub.add_option("--repeat-last-n", f.repeat_last_n,
                 "Tokens the repeat penalty looks back on; 0 = off, -1 = the whole context (default 64)")
      ->check(CLI::Range(-1, 1 << 30));
  sub.add_option("-s,--seed", f.seed, "Random seed; -1 = a random one (default -1)")
      ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  sub.add_flag("--no-bos", f.no_bos, "Do not prepend the BOS token to the prompt");
  sub.add_flag("--no-display-prompt", f.no_display_prompt, "Print only the generated text, not the prompt");
  sub.add_flag("--json", f.json, "Print one JSON object (text, ids, counts, speeds) at the end instead of streaming");
}

struct Stats {
  int64_t prompt_tokens = 0, generated = 0, decode_steps = 0;
  double prefill_s = 0, decode_s = 0;
  std::string stop_reason;
  uint64_t seed = 0;
};

double tokens_per_s(int64_t tokens, double seconds) { return seconds > 0 ? double(tokens) / seconds : 0.0; }

void print_stats(const Stats& s) {
  std::fprintf(stderr, "\n\nprompt:    %lld tokens, prefill %.1f tokens/s (%.1f ms)\n", (long long)s.prompt_tokens,
               tokens_per_s(s.prompt_tokens, s.prefill_s), s.prefill_s * 1e3);
  if (s.decode_steps > 0)
    std::fprintf(stderr, "generated: %lld tokens, decode %.1f tokens/s (%.1f ms for %lld steps)\n",
                 (long long)s.generated, tokens_per_s(s.decode_steps, s.decode_s), s.decode_s * 1e3,
                 (long long)s.decode_steps);
  else
    std::fprintf(stderr, "generated: %lld tokens, decode n/a (no decode step)\n", (long long)s.generated);
  std::fprintf(stderr, "stopped:   %s; seed %llu\n", s.stop_reason.c_str(), (unsigned long long)s.seed);
}

int run_generate(const GenerateFlags& f) {
  bench::set_threads(f.threads);
  const std::shared_ptr<const Model> model = load_model(f.model);
  const Tokenizer& tok = require_tokenizer(*model);
  const ModelConfig& cfg = model->config();

  std::vector<int32_t> ids = tok.encode(f.prompt, !f.no_bos);
  check(!ids.empty(), "the prompt is empty and --no-bos was given: there is nothing to start from");
  SessionOptions so;
  so.context = f.context;
  Session session(model, so);
  check(int64_t(ids.size()) <= session.context(),
        "the prompt has " + std::to_string(ids.size()) + " tokens but the context holds " +
            std::to_string(session.context()) + " (raise -c/--ctx-size or shorten -p)");

  Stats stats;
  stats.seed = f.seed >= 0 ? uint64_t(f.seed) : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
  SamplerOptions sopt;
  sopt.temperature = f.temperature;
  sopt.top_k = f.top_k;
  sopt.top_p = f.top_p;
  sopt.min_p = f.min_p;
  sopt.repeat_penalty = f.repeat_penalty;
  sopt.repeat_last_n = f.repeat_last_n;
  sopt.seed = stats.seed;
  Sampler sampler(sopt);

  StreamDecoder decoder(tok);
  std::string text, prompt_text;
  for (int32_t id : ids) prompt_text += decoder.push(id);
  auto emit = [&](const std::string& piece) {
    if (piece.empty() || f.json) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  if (!f.no_display_prompt) emit(prompt_text);

  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  session.feed(ids);
  stats.prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
  stats.prompt_tokens = int64_t(ids.size());

  std::vector<int32_t> history = ids, generated;
  stats.stop_reason = "reached -n " + std::to_string(f.n_predict);
  for (int64_t i = 0; f.n_predict < 0 || i < f.n_predict; ++i) {
    if (i > 0) {
      if (session.n_past() >= session.context()) {
        stats.stop_reason = "context full (" + std::to_string(session.context()) + " tokens)";
        break;
      }
      t0 = clock::now();
      session.feed(std::span<const int32_t>(&history.back(), 1));
      stats.decode_s += std::chrono::duration<double>(clock::now() - t0).count();
      ++stats.decode_steps;
    }
    const int32_t next = sampler.sample(session.logits(), history);
    if (next == cfg.eos_id) {
      stats.stop_reason = "end of sequence";
      break;
    }
    history.push_back(next);
    generated.push_back(next);
    const std::string piece = decoder.push(next);
    text += piece;
    emit(piece);
  }
  const std::string rest = decoder.flush();
  text += rest;
  emit(rest);
  stats.generated = int64_t(generated.size());
  if (f.json) {
    const nlohmann::ordered_json j = {
        {"prompt", prompt_text},
        {"text", text},
        {"prompt_ids", ids},
        {"ids", generated},
        {"prompt_tokens", stats.prompt_tokens},
        {"generated_tokens", stats.generated},
        {"prefill_tokens_per_s", tokens_per_s(stats.prompt_tokens, stats.prefill_s)},
        {"decode_tokens_per_s", tokens_per_s(stats.decode_steps, stats.decode_s)},
        {"stop_reason", stats.stop_reason},
        {"seed", stats.seed},
    };
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  }
  print_stats(stats);
  return 0;
}

}  // namespace

Command generate_command() {
  auto f = std::make_shared<GenerateFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "generate", "Generate text from a prompt (llama.cpp-style sampling flags); streams to stdout");
    add_flags(*sub, *f);
    return sub;
  };
  c.run = [f]() { return run_generate(*f); };
  return c;
}

}  // namespace sinklab::cli
