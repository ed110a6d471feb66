// An OpenAI-compatible HTTP server (`sinklab serve`) whose conversations keep
// their Session and KV cache across requests, so a long conversation under a
// sink/window policy goes on at constant memory. docs/SERVER.md documents the
// API, the conversation semantics under eviction, the limits and the defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "sinklab/cache.h"
#include "sinklab/model.h"

namespace sinklab {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;                 // 0 = any free port (Server::bind returns it)
  std::string cache = "sink";      // a --cache spec; unset sizes come from the model's context
  int64_t context = 0;             // the context cache sizes default to; 0 = the model's
  int parallel = 4;                // conversations decoding at once (their steps interleave)
  int queue_limit = 64;            // requests waiting beyond those; more get HTTP 503
  std::string api_key;             // empty = no authentication
  size_t kv_budget_bytes = 1ull << 30;  // all sessions' KV memory together
  double idle_expiry_s = 900;           // an idle conversation is dropped after this
  size_t max_body_bytes = 1u << 20;     // larger request bodies get HTTP 413
  int64_t default_max_tokens = 256;     // a chat request without max_tokens
  int64_t prefill_chunk = 256;          // most prompt tokens one scheduler step feeds
  std::string chat_format;              // "" = the model's (ChatFormat::for_model_or_plain)
  std::string model_id;                 // the name /v1/models lists; "" = the model folder's name
  double shutdown_grace_s = 10;         // SIGTERM: in-flight replies get this long, then are cancelled
};

class Server {
 public:
  // Throws Error for a bad option (cache spec, chat format, a budget too small
  // for one session).
  Server(std::shared_ptr<const Model> model, ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws Error when it cannot.
  int bind();
  // Serves until shutdown(); returns once every in-flight request has ended.
  void run();
  // Stops taking requests, lets in-flight replies finish for up to
  // shutdown_grace_s, cancels the rest and makes run() return. Thread-safe;
  // not async-signal-safe (call it from a thread that waited for the signal).
  void shutdown();
  // One line: model, cache, chat format, parallel, budget.
  std::string summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sinklab
