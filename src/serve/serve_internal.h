// The parts of `sinklab serve` (include/sinklab/serve.h): request parsing,
// response JSON, conversations and their sessions, the scheduler, metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sinklab/chat.h"
#include "sinklab/core.h"
#include "sinklab/model.h"

namespace sinklab::serve {

using Clock = std::chrono::steady_clock;

// An error the client caused or must see: an HTTP status and OpenAI's error
// object ({"error": {"message", "type", "param", "code"}}).
struct ApiError : Error {
  ApiError(int status, std::string message, std::string param = "", std::string code = "");
  int status;
  std::string param, code;
  std::string type() const;  // invalid_request_error, authentication_error, ...
  nlohmann::json body() const;
};

// ------------------------------------------------------------------ requests --
enum class Endpoint { Completions, ChatCompletions };

struct ApiRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;
  // Completions: the prompt as text, or as token ids when prompt_is_ids.
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  bool prompt_is_ids = false;
  // Chat: a leading system (or developer) message, then the turns.
  std::string system;
  std::vector<ChatTurn> messages;
  // Conversations: an id to continue, or persist = open a new one.
  std::string conversation_id;
  bool persist = false;
  // Generation.
  int64_t max_tokens = -1;  // -1 = the endpoint's default
  float temperature = 1.f;
  float top_p = 1.f;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  bool return_tokens = false;  // "return_tokens": the ids fed and generated, in the reply
  // "observe_attention": measure the attention mass on the sink tokens at each
  // decode step (the page asks for it). The tapped probabilities come from the
  // float64 reference beside the kernel's output, which they leave unchanged.
  bool observe = false;
};

// Validates an OpenAI request body. Throws ApiError(400) naming the field.
ApiRequest parse_request(const nlohmann::json& body, Endpoint endpoint);
// Parses the body text (400 for malformed JSON or one nested too deep).
nlohmann::json parse_body(const std::string& text);

// ------------------------------------------------------------------ results --
struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// What the reply carries besides the text.
struct ReplyInfo {
  std::string id;  // cmpl-... / chatcmpl-...
  int64_t created = 0;
  std::string finish_reason;  // stop, length, cancelled
  Usage usage;
  std::string conversation_id;  // "" for a one-off request
  int64_t evicted_tokens = 0, cached_tokens = 0, n_past = 0;
  std::string cache;
  std::vector<int32_t> prompt_ids, completion_ids;  // when return_tokens
};

nlohmann::json reply_json(const ApiRequest& req, const std::string& model, const std::string& text,
                          const ReplyInfo& info);
// One server-sent event's JSON: a text delta (finish_reason empty) or the end.
nlohmann::json chunk_json(const ApiRequest& req, const std::string& model, const ReplyInfo& info,
                          const std::string& delta, bool first, bool last);
nlohmann::json usage_chunk_json(const ApiRequest& req, const std::string& model, const ReplyInfo& info);

// --------------------------------------------------------------------- jobs --
// One request on its way through the scheduler. The HTTP thread waits on it;
// the scheduler thread fills it.
class Job {
 public:
  explicit Job(ApiRequest request) : req(std::move(request)) {}
  const ApiRequest req;
  std::atomic<bool> cancelled{false};

  // Scheduler side.
  void started(const ReplyInfo& info);
  void text(const std::string& piece);
  void finish(const ReplyInfo& info);
  void fail(const ApiError& error);

  // HTTP side. wait_started: true once generation began, false when the job
  // failed first (error() says why).
  bool wait_started();
  // Next text, or nullopt once the reply is complete (info() is final then).
  std::optional<std::string> next_text();
  std::string all_text();  // waits for the end
  const ApiError& error() const { return *error_; }
  ReplyInfo info();

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool started_ = false, done_ = false;
  std::deque<std::string> pending_;
  std::optional<ApiError> error_;
  ReplyInfo info_;
};

// -------------------------------------------------------------- sessions ----
// Sessions under one KV budget: each session commits its KV memory when made,
// so the budget bounds how many exist; released ones are reset and reused.
class SessionPool {
 public:
  SessionPool(std::shared_ptr<const Model> model, SessionOptions options, size_t budget_bytes);
  // A clean session, or null when the budget has no room for another.
  std::unique_ptr<Session> acquire();
  void release(std::unique_ptr<Session> session);
  size_t bytes_per_session() const { return bytes_per_session_; }
  int64_t max_sessions() const { return max_sessions_; }
  int64_t in_use() const { return in_use_; }
  size_t bytes_allocated() const { return size_t(allocated_) * bytes_per_session_; }
  const CacheSpec& spec() const { return spec_; }
  bool streaming() const { return streaming_; }

 private:
  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  CacheSpec spec_;
  bool streaming_ = false;
  size_t bytes_per_session_ = 0;
  int64_t max_sessions_ = 0, allocated_ = 0, in_use_ = 0;
  std::vector<std::unique_ptr<Session>> free_;
};

// What the page and GET /v1/conversations/{id} show of a conversation's cache.
struct CacheView {
  int64_t n_past = 0, cached = 0, capacity = 0, evicted = 0;
  std::vector<int32_t> sink_ids;    // the first tokens the cache keeps (sink tokens)
  std::vector<int32_t> recent_ids;  // the newest tokens (at most 48)
  double sink_mass = -1;            // attention mass on the sink tokens at the last step; -1 = unknown
  std::vector<double> sink_mass_by_layer;
};

struct Conversation {
  std::string id;
  Endpoint endpoint;
  std::unique_ptr<Session> session;  // null until its first request runs
  bool busy = false;                 // a request is running on it
  Clock::time_point last_used;
  // The transcript so far, as a hash of its messages (chat) for matching a
  // request that sends the whole history again, and the turn count.
  uint64_t transcript_hash = 0;
  int64_t transcript_turns = 0;
  std::string system;
  // Tokens owed to the cache (the last sampled token, or a prompt cut short
  // by a cancel), fed first next turn.
  std::vector<int32_t> pending;
  bool reply_closed = false;  // the last reply ended with a stop id
  std::vector<int32_t> first_ids;   // the first tokens fed (at most 16)
  std::deque<int32_t> recent_ids;   // the newest tokens fed (at most 48)
  CacheView view;                   // guarded by the store's mutex
};

// Conversations by id, with expiry. Thread-safe.
class ConversationStore {
 public:
  ConversationStore(SessionPool& pool, double idle_expiry_s) : pool_(pool), expiry_s_(idle_expiry_s) {}
  // A new conversation with a fresh id; ApiError(503) when the budget is full.
  std::shared_ptr<Conversation> create(Endpoint endpoint);
  // The conversation, marked busy; ApiError 404 (unknown / expired), 409 (busy),
  // 400 (started on the other endpoint).
  std::shared_ptr<Conversation> take(const std::string& id, Endpoint endpoint);
  void give_back(const std::shared_ptr<Conversation>& c);
  bool remove(const std::string& id);  // false when unknown; a busy one is dropped when it ends
  std::optional<CacheView> view(const std::string& id);
  void set_view(Conversation& c, CacheView view);
  // Drops idle conversations past their expiry (their sessions return to the pool).
  void expire(Clock::time_point now);
  int64_t size();
  std::mutex& pool_mutex() { return m_; }

 private:
  SessionPool& pool_;
  double expiry_s_;
  std::mutex m_;
  std::map<std::string, std::shared_ptr<Conversation>> by_id_;
};

std::string random_id(const char* prefix);
uint64_t hash_turn(uint64_t h, const std::string& role, const std::string& content);

// ------------------------------------------------------------------ metrics --
struct Metrics {
  std::atomic<int64_t> requests{0}, errors{0}, prompt_tokens{0}, generated_tokens{0}, cancelled{0};
  std::atomic<int64_t> evicted_tokens{0};
  std::atomic<int64_t> decode_ns{0}, prefill_ns{0};
  std::atomic<int64_t> active{0}, queued{0};
  std::map<std::string, int64_t> by_status;  // "endpoint status" -> count
  mutable std::mutex m;
  void count(const std::string& route, int status);
};

}  // namespace sinklab::serve
