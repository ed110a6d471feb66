// `sinklab generate`: text generation with llama.cpp-style flags. Streams the
// text to stdout as tokens arrive, then prints token counts and speeds to stderr.
// With --chat the prompt is one user turn of the model's chat format and only
// the assistant's reply is printed.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_harness.h"
#include "chat_args.h"
#include "commands.h"
#include "model_args.h"
#include "output_guard.h"
#include "sampling_args.h"

namespace sinklab::cli {

namespace {

struct GenerateFlags {
  ModelArgs model;
  std::string prompt;
  int threads = 0;
  int64_t context = 0;
  GenerateOptions options;  // -n and the sampling flags
  bool no_bos = false;
  bool no_display_prompt = false;
  ChatArgs chat;
  std::string json;  // a file, or "-" to print it instead of the text
  OutputGuard guard;
};

void add_flags(CLI::App& sub, GenerateFlags& f) {
  add_model_flags(sub, f.model, /*with_dtype=*/true);
  sub.add_option("-p,--prompt", f.prompt, "Prompt text (default: empty, generation starts from BOS)");
  sub.add_option("-n,--n-predict", f.options.max_tokens,
                 "Tokens to generate; -1 = until EOS or the context is full (default 128)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40));
  add_threads_flag(sub, f.threads);
  sub.add_option("-c,--ctx-size", f.context,
                 "Context size in tokens; 0 = the model's training context (default 0)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  add_sampling_flags(sub, f.options);
  sub.add_flag("--no-bos", f.no_bos, "Do not prepend the BOS token to the prompt");
  sub.add_flag("--no-display-prompt", f.no_display_prompt, "Print only the generated text, not the prompt");
  add_chat_flags(sub, f.chat);
  sub.add_option("--json", f.json, "Write one JSON object (text, ids, counts, speeds, stop reason) to this file "
                                   "('-': stdout, instead of the streamed text)");
  f.guard.add_force_flag(sub);
}

double tokens_per_s(int64_t tokens, double seconds) { return seconds > 0 ? double(tokens) / seconds : 0.0; }

void print_stats(const GenerateResult& s) {
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

// What is fed and how the output is shown: plain text continues the prompt;
// a chat prompt is the user's turn and only the reply is shown.
struct Prompt {
  std::vector<int32_t> ids;
  std::string text;  // as --json reports it
  std::unique_ptr<ChatFormat> format;  // chat only
};

Prompt make_prompt(const GenerateFlags& f, const Model& model, const Tokenizer& tok) {
  Prompt p;
  if (!f.chat.enabled()) {
    p.ids = tok.encode(f.prompt, !f.no_bos);  // its text comes from the decoder that continues into the reply
    return p;
  }
  p.format = std::make_unique<ChatFormat>(chat_format(f.chat, model, tok));
  const std::vector<ChatTurn> turns = {{"user", f.prompt}};
  const ChatOptions options = chat_options(f.chat);
  p.ids = p.format->encode(turns, options);
  p.text = p.format->render(turns, options);
  if (f.no_bos && !p.ids.empty() && p.ids.front() == tok.bos_id()) p.ids.erase(p.ids.begin());
  return p;
}

// A chat reply that ended on its format's stop token reports it like EOS: the
// token is not among the generated ids and the reason names it.
void note_chat_stop(const ChatReply& reply, const Tokenizer& tok, GenerateResult& r) {
  if (!reply.stopped() || r.ids.empty()) return;
  r.stop_reason = "end of reply (" + tok.token_text(r.ids.back()) + ")";
  r.ids.pop_back();
  --r.generated;
}

void write_json(const GenerateFlags& f, const Prompt& p, const std::string& text, const GenerateResult& r,
                const ChatReply* reply) {
  nlohmann::ordered_json j = {
      {"prompt", p.text},
      {"text", text},
      {"prompt_ids", p.ids},
      {"ids", r.ids},
      {"prompt_tokens", r.prompt_tokens},
      {"generated_tokens", r.generated},
      {"prefill_tokens_per_s", tokens_per_s(r.prompt_tokens, r.prefill_s)},
      {"decode_tokens_per_s", tokens_per_s(r.decode_steps, r.decode_s)},
      {"stop_reason", r.stop_reason},
      {"seed", r.seed},
  };
  if (reply) {
    j["chat_format"] = p.format->name();
    j["messages"] = nlohmann::ordered_json::array();
    for (const ChatMessage& m : reply->messages())
      j["messages"].push_back({{"channel", m.channel}, {"content", m.content}});
  }
  write_output_text(f.json, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n", "--json");
}

int run_generate(GenerateFlags& f) {
  bench::set_threads(f.threads);
  if (!f.json.empty()) {
    f.guard.input(resolve_model_path(f.model.model_path));
    f.guard.check_file(f.json, "--json");
  }
  const std::shared_ptr<const Model> model = load_model(f.model);
  const Tokenizer& tok = require_tokenizer(*model);
  Prompt prompt = make_prompt(f, *model, tok);
  const std::vector<int32_t>& ids = prompt.ids;
  check(!ids.empty(), "the prompt is empty and --no-bos was given: there is nothing to start from");
  SessionOptions so;
  so.context = f.context;
  Session session(model, so);
  check(int64_t(ids.size()) <= session.context(),
        "the prompt has " + std::to_string(ids.size()) + " tokens but the context holds " +
            std::to_string(session.context()) + " (raise -c/--ctx-size or shorten -p)");
  const bool to_stdout = f.json != kStdoutPath;  // "--json -" prints the JSON instead of the text
  auto emit = [&](const std::string& piece) {
    if (piece.empty() || !to_stdout) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  StreamDecoder decoder(tok);
  std::unique_ptr<ChatReply> reply;
  if (prompt.format) {
    reply = std::make_unique<ChatReply>(*prompt.format, f.chat.show_channels);
  } else {
    for (int32_t id : ids) prompt.text += decoder.push(id);
    if (!f.no_display_prompt) emit(prompt.text);
  }
  std::string text;
  GenerateResult r = generate_tokens(session, ids, f.options, [&](int32_t id) {
    const std::string piece = reply ? reply->push(id) : decoder.push(id);
    text += piece;
    emit(piece);
    return !(reply && reply->stopped());
  });
  const std::string rest = reply ? reply->finish() : decoder.flush();
  text += rest;
  emit(rest);
  if (reply) note_chat_stop(*reply, tok, r);
  if (!f.json.empty()) write_json(f, prompt, text, r, reply.get());
  print_stats(r);
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
