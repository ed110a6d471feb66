// `sinklab serve`: the OpenAI-compatible server (include/sinklab/serve.h,
// docs/SERVER.md). SIGTERM or SIGINT lets in-flight replies finish (up to
// --shutdown-grace seconds), cancels the rest and exits 0.
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"
#include "sinklab/chat.h"
#include "sinklab/serve.h"

namespace sinklab::cli {

namespace {

struct ServeFlags {
  ModelArgs model;
  ServeOptions options;
  double kv_budget_mib = 1024;
  int threads = 0;
  std::string api_key_env;
};

// The key itself, or from an environment variable (keeps it out of `ps`).
std::string api_key(const ServeFlags& f) {
  if (f.api_key_env.empty()) return f.options.api_key;
  check(f.options.api_key.empty(), "serve: give --api-key or --api-key-env, not both");
  const char* v = std::getenv(f.api_key_env.c_str());
  check(v != nullptr && *v != '\0', "serve: --api-key-env " + f.api_key_env + " is not set or empty");
  return v;
}

int serve(ServeFlags& f) {
  bench::set_threads(f.threads);
  check(f.kv_budget_mib > 0 && f.kv_budget_mib < 1e9, "serve: --kv-budget must be a positive number of MiB");
  f.options.kv_budget_bytes = size_t(f.kv_budget_mib * double(1 << 20));
  f.options.api_key = api_key(f);
  // SIGTERM and SIGINT are taken by one thread (sigwait) rather than a handler:
  // shutting down takes locks and joins threads. Every thread made from here
  // on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const std::shared_ptr<const Model> model = load_model(f.model);
  Server server(model, f.options);
  const int port = server.bind();
  std::printf("sinklab serve: listening on http://%s:%d/ (%s)\n", f.options.host.c_str(), port,
              server.summary().c_str());
  std::fflush(stdout);
  std::thread waiter([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "sinklab serve: %s: finishing in-flight replies, then exiting\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.shutdown();
  });
  server.run();
  waiter.join();
  std::fprintf(stderr, "sinklab serve: stopped\n");
  return 0;
}

}  // namespace

Command serve_command() {
  auto f = std::make_shared<ServeFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "serve",
        "An OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models, /health, "
        "/metrics, a chat page at /) whose conversations keep their KV cache across requests: under a "
        "sink cache a conversation goes on forever at constant memory (docs/SERVER.md)");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    ServeOptions& o = f->options;
    sub->add_option("--host", o.host, "Address to listen on (default 127.0.0.1: this machine only)");
    sub->add_option("--port", o.port, "Port (default 8080; 0 = any free port, printed at start)")
        ->check(CLI::Range(0, 65535));
    std::string policies;
    for (const KvPolicyInfo& p : kv_policies()) policies += std::string(policies.empty() ? "" : ", ") + p.name;
    sub->add_option("--cache", o.cache,
                    "Cache of every conversation, as name:key=value,... (" + policies +
                        "); unset sizes come from the context (default sink: 4 sink tokens + the rest of "
                        "the context as the window)");
    sub->add_option("--context", o.context, "Context the cache sizes default to (default: the model's)")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
    sub->add_option("--parallel", o.parallel, "Requests generating at once; their steps interleave (default 4)")
        ->check(CLI::Range(1, 256));
    sub->add_option("--queue", o.queue_limit, "Requests that may wait for a slot; more get HTTP 503 (default 64)")
        ->check(CLI::Range(0, 4096));
    sub->add_option("--api-key", o.api_key, "Require Authorization: Bearer KEY on every route but / and /health");
    sub->add_option("--api-key-env", f->api_key_env, "Read the API key from this environment variable");
    sub->add_option("--kv-budget", f->kv_budget_mib,
                    "MiB of KV cache all conversations together may hold; a new conversation past it gets "
                    "HTTP 503 (default 1024)");
    sub->add_option("--idle-expiry", o.idle_expiry_s, "Seconds an idle conversation is kept (default 900)")
        ->check(CLI::Range(0.0, 1e9));
    sub->add_option("--max-body", o.max_body_bytes, "Largest request body in bytes; larger gets HTTP 413 (default 1 MiB)")
        ->check(CLI::Range(size_t(64), size_t(1) << 30));
    sub->add_option("--max-tokens", o.default_max_tokens,
                    "Tokens a chat reply may have when the request gives no max_tokens (default 256)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sub->add_option("--prefill-chunk", o.prefill_chunk,
                    "Most prompt tokens fed in one scheduler step (default 256)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    sub->add_option("--chat-template", o.chat_format,
                    "Chat format: harmony, gemma, chatml, llama3 or plain (default: from the model's chat "
                    "template, architecture or tokenizer; plain when none tells)")
        ->check(CLI::IsMember(ChatFormat::names()));
    sub->add_option("--model-id", o.model_id, "The model's name in /v1/models (default: its folder's name)");
    sub->add_option("--shutdown-grace", o.shutdown_grace_s,
                    "On SIGTERM, seconds in-flight replies may take to finish before they are cancelled "
                    "(default 10)")
        ->check(CLI::Range(0.0, 3600.0));
    add_threads_flag(*sub, f->threads);
    return sub;
  };
  c.run = [f]() -> int { return serve(*f); };
  return c;
}

}  // namespace sinklab::cli
