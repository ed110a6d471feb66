// The scheduler: one thread owns every forward. Up to `parallel` requests are
// active at once and take turns, one step each (a prefill chunk or one decoded
// token), so N conversations decode concurrently on all the cores, a request
// that is cancelled (its client went away) stops within one step, and a
// long prompt cannot hold the others up for more than one chunk.
#pragma once

#include <list>
#include <thread>

#include "serve_internal.h"
#include "sinklab/serve.h"

namespace sinklab::serve {

class Engine {
 public:
  Engine(std::shared_ptr<const Model> model, const ServeOptions& options, SessionPool& pool,
         ConversationStore& store, Metrics& metrics, const ChatFormat& format);
  ~Engine();

  // Queues a request; ApiError(503) when the queue is full or the server is
  // shutting down.
  void submit(std::shared_ptr<Job> job);
  // Stops taking requests, waits up to grace_s for the active and queued ones,
  // then cancels what is left. Returns when the scheduler thread has ended.
  void shutdown(double grace_s);

 private:
  struct Run;
  void loop();
  void admit();
  bool begin(Run& run);  // false when the request failed before generating
  bool step(Run& run);   // false when the request has ended
  void prefill(Run& run);
  void decode(Run& run);
  void end(Run& run, const std::string& reason);
  std::vector<int32_t> prompt_tokens(Run& run);
  void observe(Run& run, bool on);
  void update_view(Run& run);

  std::shared_ptr<const Model> model_;
  const ServeOptions& options_;
  SessionPool& pool_;
  ConversationStore& store_;
  Metrics& metrics_;
  const ChatFormat& format_;
  const Tokenizer& tok_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false, cancel_all_ = false;
  std::list<std::unique_ptr<Run>> active_;  // scheduler thread only
  std::thread thread_;
};

}  // namespace sinklab::serve
