// Sessions under the KV budget, and the conversations that hold them.
#include "serve_internal.h"

namespace sinklab::serve {

namespace {
std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }
}  // namespace

SessionPool::SessionPool(std::shared_ptr<const Model> model, SessionOptions options, size_t budget_bytes)
    : model_(std::move(model)), options_(std::move(options)) {
  // The first session tells what one costs; it stays in the pool.
  auto first = std::make_unique<Session>(model_, options_);
  const EvictStats s = first->evict_stats();
  bytes_per_session_ = std::max<size_t>(1, s.bytes);
  spec_ = first->cache_spec();
  streaming_ = first->streaming();
  max_sessions_ = int64_t(budget_bytes / bytes_per_session_);
  if (max_sessions_ < 1)
    throw Error("serve: the KV budget (" + mib(budget_bytes) + ") is below one session's KV memory (" +
                mib(bytes_per_session_) + " for cache " + cache_spec_string(spec_) + "); raise --kv-budget");
  allocated_ = 1;
  free_.push_back(std::move(first));
}

std::unique_ptr<Session> SessionPool::acquire() {
  if (!free_.empty()) {
    std::unique_ptr<Session> s = std::move(free_.back());
    free_.pop_back();
    ++in_use_;
    return s;
  }
  if (allocated_ >= max_sessions_) return nullptr;
  auto s = std::make_unique<Session>(model_, options_);
  ++allocated_;
  ++in_use_;
  return s;
}

void SessionPool::release(std::unique_ptr<Session> session) {
  if (!session) return;
  session->taps().clear();
  session->reset();
  free_.push_back(std::move(session));
  --in_use_;
}

// ------------------------------------------------------------ conversations --
std::shared_ptr<Conversation> ConversationStore::create(Endpoint endpoint) {
  std::lock_guard lock(m_);
  std::unique_ptr<Session> session = pool_.acquire();
  if (!session)
    throw ApiError(503,
                   "the KV budget is full (" + std::to_string(pool_.max_sessions()) +
                       " sessions of " + mib(pool_.bytes_per_session()) +
                       "): no room for a new conversation; retry later, end one (DELETE "
                       "/v1/conversations/{id}) or raise --kv-budget",
                   "", "kv_budget_full");
  auto c = std::make_shared<Conversation>();
  c->id = random_id("conv-");
  c->endpoint = endpoint;
  c->session = std::move(session);
  c->last_used = Clock::now();
  c->busy = true;
  by_id_[c->id] = c;
  return c;
}

std::shared_ptr<Conversation> ConversationStore::take(const std::string& id, Endpoint endpoint) {
  std::lock_guard lock(m_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end())
    throw ApiError(404, "conversation '" + id + "' is unknown or has expired", "conversation_id",
                   "conversation_not_found");
  Conversation& c = *it->second;
  if (c.busy)
    throw ApiError(409, "conversation '" + id + "' is answering another request; wait for it to end",
                   "conversation_id", "conversation_busy");
  if (c.endpoint != endpoint)
    throw ApiError(400,
                   "conversation '" + id + "' was started on " +
                       (c.endpoint == Endpoint::ChatCompletions ? "/v1/chat/completions" : "/v1/completions") +
                       "; continue it there",
                   "conversation_id");
  c.busy = true;
  c.last_used = Clock::now();
  return it->second;
}

void ConversationStore::give_back(const std::shared_ptr<Conversation>& c) {
  std::lock_guard lock(m_);
  c->busy = false;
  c->last_used = Clock::now();
  // Removed while it was answering: its session goes back now.
  if (by_id_.count(c->id) == 0 && c->session) pool_.release(std::move(c->session));
}

bool ConversationStore::remove(const std::string& id) {
  std::lock_guard lock(m_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  std::shared_ptr<Conversation> c = it->second;
  by_id_.erase(it);
  if (!c->busy) pool_.release(std::move(c->session));
  return true;
}

std::optional<CacheView> ConversationStore::view(const std::string& id) {
  std::lock_guard lock(m_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second->view;
}

void ConversationStore::set_view(Conversation& c, CacheView view) {
  std::lock_guard lock(m_);
  c.view = std::move(view);
}

void ConversationStore::expire(Clock::time_point now) {
  std::lock_guard lock(m_);
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    Conversation& c = *it->second;
    const double idle = std::chrono::duration<double>(now - c.last_used).count();
    if (!c.busy && idle > expiry_s_) {
      pool_.release(std::move(c.session));
      it = by_id_.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t ConversationStore::size() {
  std::lock_guard lock(m_);
  return int64_t(by_id_.size());
}

}  // namespace sinklab::serve
