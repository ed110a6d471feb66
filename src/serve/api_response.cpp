// Response JSON in OpenAI's shapes (text_completion, chat.completion and their
// streamed chunks), with sinklab's conversation fields beside them, and the
// Job that carries a reply from the scheduler to the HTTP thread.
#include <random>

#include "serve_internal.h"

namespace sinklab::serve {

namespace {

bool chat(const ApiRequest& r) { return r.endpoint == Endpoint::ChatCompletions; }

nlohmann::json finish(const std::string& reason) {
  return reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(reason);
}

nlohmann::json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

nlohmann::json envelope(const ApiRequest& req, const std::string& model, const ReplyInfo& info, bool chunk) {
  const char* object = chat(req) ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  nlohmann::json j = {{"id", info.id}, {"object", object}, {"created", info.created}, {"model", model}};
  if (!info.conversation_id.empty()) j["conversation_id"] = info.conversation_id;
  return j;
}

// sinklab's own fields: where the conversation's cache stands after this reply.
void add_cache_fields(nlohmann::json& j, const ApiRequest& req, const ReplyInfo& info) {
  j["evicted_tokens"] = info.evicted_tokens;
  nlohmann::json s = {{"cache", info.cache},
                      {"cached_tokens", info.cached_tokens},
                      {"n_past", info.n_past},
                      {"evicted_tokens", info.evicted_tokens}};
  if (req.return_tokens) {
    s["prompt_ids"] = info.prompt_ids;
    s["completion_ids"] = info.completion_ids;
  }
  j["sinklab"] = s;
}

}  // namespace

nlohmann::json reply_json(const ApiRequest& req, const std::string& model, const std::string& text,
                          const ReplyInfo& info) {
  nlohmann::json j = envelope(req, model, info, false);
  nlohmann::json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish(info.finish_reason)}};
  if (chat(req)) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  j["choices"] = nlohmann::json::array({choice});
  j["usage"] = usage_json(info.usage);
  add_cache_fields(j, req, info);
  return j;
}

nlohmann::json chunk_json(const ApiRequest& req, const std::string& model, const ReplyInfo& info,
                          const std::string& delta, bool first, bool last) {
  nlohmann::json j = envelope(req, model, info, true);
  nlohmann::json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", last ? finish(info.finish_reason) : nullptr}};
  if (chat(req)) {
    nlohmann::json d = nlohmann::json::object();
    if (first) d["role"] = "assistant";
    if (!last) d["content"] = delta;
    choice["delta"] = d;
  } else {
    choice["text"] = delta;
  }
  j["choices"] = nlohmann::json::array({choice});
  if (last) add_cache_fields(j, req, info);
  return j;
}

nlohmann::json usage_chunk_json(const ApiRequest& req, const std::string& model, const ReplyInfo& info) {
  nlohmann::json j = envelope(req, model, info, true);
  j["choices"] = nlohmann::json::array();
  j["usage"] = usage_json(info.usage);
  return j;
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 36];
  return id;
}

uint64_t hash_turn(uint64_t h, const std::string& role, const std::string& content) {
  // FNV-1a over the role, a separator and the content.
  const auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
  };
  if (h == 0) h = 14695981039346656037ull;
  mix(role);
  mix(content);
  return h;
}

// -------------------------------------------------------------------- Job ----
void Job::started(const ReplyInfo& info) {
  std::lock_guard lock(m_);
  info_ = info;
  started_ = true;
  cv_.notify_all();
}

void Job::text(const std::string& piece) {
  if (piece.empty()) return;
  std::lock_guard lock(m_);
  pending_.push_back(piece);
  // A waiting HTTP thread wakes per piece only when it streams: every wake-up
  // takes a core from the forward's OpenMP team.
  if (req.stream) cv_.notify_all();
}

void Job::finish(const ReplyInfo& info) {
  std::lock_guard lock(m_);
  info_ = info;
  started_ = done_ = true;
  cv_.notify_all();
}

void Job::fail(const ApiError& error) {
  std::lock_guard lock(m_);
  error_ = error;
  done_ = true;
  cv_.notify_all();
}

bool Job::wait_started() {
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return started_ || done_; });
  return !error_;
}

std::optional<std::string> Job::next_text() {
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return !pending_.empty() || done_; });
  if (pending_.empty()) return std::nullopt;
  std::string piece;
  while (!pending_.empty()) {
    piece += pending_.front();
    pending_.pop_front();
  }
  return piece;
}

std::string Job::all_text() {
  std::string text;
  while (std::optional<std::string> piece = next_text()) text += *piece;
  return text;
}

ReplyInfo Job::info() {
  std::lock_guard lock(m_);
  return info_;
}

void Metrics::count(const std::string& route, int status) {
  std::lock_guard lock(m);
  ++by_status[route + " " + std::to_string(status)];
}

}  // namespace sinklab::serve
