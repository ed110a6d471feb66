// The scheduler (engine.h): admits requests, turns each into the tokens to
// feed, and steps the active ones in turn until each ends.
#include "engine.h"

#include <ctime>
#include <random>

namespace sinklab::serve {

struct Engine::Run {
  std::shared_ptr<Job> job;
  std::shared_ptr<Conversation> conv;  // null for a one-off request
  std::unique_ptr<Session> own;        // a one-off request's session
  Session* session = nullptr;
  std::vector<int32_t> feed;  // this request's prompt tokens
  size_t fed = 0;
  std::vector<int32_t> generated;
  std::optional<Sampler> sampler;
  std::optional<ChatReply> reply;       // chat: the reply's text as its tokens arrive
  std::optional<StreamDecoder> decoder;  // completions
  std::string held, text;               // text held back for a stop sequence; text sent
  std::vector<std::string> stops;
  std::vector<ChatTurn> new_turns;
  int64_t max_tokens = 0, evicted_before = 0;
  ReplyInfo info;
  bool decoding = false, ended = false;
  int tap = 0;
  std::vector<int32_t> sink_slots;
  std::vector<double> layer_mass;  // -1 = not measured
  bool chat() const { return job->req.endpoint == Endpoint::ChatCompletions; }
};

namespace {

int64_t sink_count(const CacheSpec& spec) {
  return kv_policy_reads(spec.policy, "sink") ? spec.options.sink : 0;
}

int64_t ns_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}

}  // namespace

Engine::Engine(std::shared_ptr<const Model> model, const ServeOptions& options, SessionPool& pool,
               ConversationStore& store, Metrics& metrics, const ChatFormat& format)
    : model_(std::move(model)), options_(options), pool_(pool), store_(store), metrics_(metrics),
      format_(format), tok_(format.tokenizer()) {
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { shutdown(0); }

void Engine::submit(std::shared_ptr<Job> job) {
  std::lock_guard lock(m_);
  if (stopping_) throw ApiError(503, "the server is shutting down", "", "shutting_down");
  if (int64_t(queue_.size()) >= options_.queue_limit)
    throw ApiError(503, "too many requests are waiting (" + std::to_string(queue_.size()) + "); retry later", "",
                   "queue_full");
  queue_.push_back(std::move(job));
  ++metrics_.queued;
  cv_.notify_all();
}

void Engine::shutdown(double grace_s) {
  {
    std::lock_guard lock(m_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s));
  while (Clock::now() < deadline && (metrics_.active > 0 || metrics_.queued > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    std::lock_guard lock(m_);
    cancel_all_ = true;
    cv_.notify_all();
  }
  thread_.join();
}

void Engine::loop() {
  auto last_expiry = Clock::now();
  for (;;) {
    admit();
    if (active_.empty()) {
      std::unique_lock lock(m_);
      if (stopping_ && (queue_.empty() || cancel_all_)) break;
      cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return !queue_.empty() || stopping_; });
    }
    for (auto it = active_.begin(); it != active_.end();) {
      Run& run = **it;
      if (cancel_all_) run.job->cancelled = true;
      bool more = false;
      try {
        more = step(run);
      } catch (const std::exception& e) {
        // A failure inside the model: the reply ends here, with what was sent.
        std::fprintf(stderr, "sinklab serve: request %s failed: %s\n", run.info.id.c_str(), e.what());
        end(run, "error");
      }
      if (!more) it = active_.erase(it);
      else ++it;
    }
    metrics_.active = int64_t(active_.size());
    if (Clock::now() - last_expiry > std::chrono::seconds(1)) {
      store_.expire(Clock::now());
      last_expiry = Clock::now();
    }
  }
  // Requests still queued when the server stops get a clear refusal.
  std::lock_guard lock(m_);
  for (auto& job : queue_) job->fail(ApiError(503, "the server is shutting down", "", "shutting_down"));
  metrics_.queued -= int64_t(queue_.size());
  queue_.clear();
}

void Engine::admit() {
  while (int64_t(active_.size()) < options_.parallel) {
    std::shared_ptr<Job> job;
    {
      std::lock_guard lock(m_);
      if (queue_.empty() || cancel_all_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      --metrics_.queued;
    }
    if (job->cancelled) {
      job->fail(ApiError(499, "the client closed the request"));
      ++metrics_.cancelled;
      continue;
    }
    auto run = std::make_unique<Run>();
    run->job = std::move(job);
    if (begin(*run)) active_.push_back(std::move(run));
    metrics_.active = int64_t(active_.size());
  }
}

bool Engine::begin(Run& run) {
  const ApiRequest& r = run.job->req;
  run.info.id = random_id(run.chat() ? "chatcmpl-" : "cmpl-");
  run.info.created = int64_t(std::time(nullptr));
  run.info.cache = cache_spec_string(pool_.spec());
  try {
    if (!r.conversation_id.empty()) {
      run.conv = store_.take(r.conversation_id, r.endpoint);
    } else if (r.persist) {
      run.conv = store_.create(r.endpoint);
    } else {
      std::lock_guard lock(store_.pool_mutex());
      run.own = pool_.acquire();
      if (!run.own)
        throw ApiError(503, "the KV budget is full: no session is free for this request; retry later", "",
                       "kv_budget_full");
    }
    run.session = run.conv ? run.conv->session.get() : run.own.get();
    run.feed = prompt_tokens(run);
    for (int32_t id : run.feed)
      if (id < 0 || id >= model_->config().vocab)
        throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary (" +
                                std::to_string(model_->config().vocab) + " tokens)", "prompt");
    if (!pool_.streaming() && run.session->n_past() + int64_t(run.feed.size()) > run.session->context())
      throw ApiError(400,
                     "the prompt (" + std::to_string(run.feed.size()) + " tokens) does not fit the " +
                         std::to_string(run.session->context() - run.session->n_past()) +
                         " tokens left in this dense cache; serve with a streaming cache (--cache sink)",
                     run.chat() ? "messages" : "prompt", "context_length_exceeded");
  } catch (const ApiError& e) {
    if (run.conv) store_.give_back(run.conv);
    std::lock_guard lock(store_.pool_mutex());
    pool_.release(std::move(run.own));
    run.job->fail(e);
    return false;
  }
  run.max_tokens = r.max_tokens >= 0 ? r.max_tokens : run.chat() ? options_.default_max_tokens : 16;
  run.stops = r.stop;
  if (run.chat())
    for (const std::string& s : format_.stop_texts()) run.stops.push_back(s);
  SamplerOptions so;
  so.temperature = r.temperature;
  so.top_p = r.top_p;
  so.seed = r.seed >= 0 ? uint64_t(r.seed) : std::random_device{}();
  run.sampler.emplace(so);
  if (run.chat()) run.reply.emplace(format_);
  else run.decoder.emplace(tok_);
  const EvictStats st = run.session->evict_stats();
  run.evicted_before = st.evicted;
  run.info.usage.cached_tokens = st.cached;
  if (run.conv) run.info.conversation_id = run.conv->id;
  run.job->started(run.info);
  return true;
}

std::vector<int32_t> Engine::prompt_tokens(Run& run) {
  const ApiRequest& r = run.job->req;
  Conversation* c = run.conv.get();
  const bool continuing = c && c->session->n_past() > 0;
  std::vector<int32_t> ids = c ? c->pending : std::vector<int32_t>{};
  std::vector<int32_t> added;
  if (!run.chat()) {
    added = r.prompt_is_ids ? r.prompt_ids : tok_.encode(r.prompt, /*add_bos=*/!continuing);
    if (added.empty()) throw ApiError(400, "'prompt' is empty", "prompt");
  } else if (!continuing) {
    if (c) c->system = r.system;
    run.new_turns = r.messages;
    ChatOptions o;
    o.system = r.system;
    added = format_.encode(run.new_turns, o);
  } else {
    if (!r.system.empty() && r.system != c->system)
      throw ApiError(400, "a conversation's system message is set by its first request", "messages");
    // A client that sends the whole history again: the turns already in the
    // cache are recognised by their hash and skipped.
    size_t skip = 0;
    if (int64_t(r.messages.size()) > c->transcript_turns) {
      uint64_t h = 0;
      for (int64_t i = 0; i < c->transcript_turns; ++i) h = hash_turn(h, r.messages[size_t(i)].role, r.messages[size_t(i)].content);
      if (h == c->transcript_hash) skip = size_t(c->transcript_turns);
    }
    run.new_turns.assign(r.messages.begin() + std::ptrdiff_t(skip), r.messages.end());
    ChatOptions o;
    o.system = c->system;
    added = format_.encode_next(run.new_turns, c->reply_closed, o);
  }
  ids.insert(ids.end(), added.begin(), added.end());
  if (c) c->pending.clear();
  return ids;
}

bool Engine::step(Run& run) {
  if (run.job->cancelled) {
    end(run, "cancelled");
    return false;
  }
  if (!run.decoding) prefill(run);
  else decode(run);
  return !run.ended;
}

void Engine::prefill(Run& run) {
  const auto t0 = Clock::now();
  const size_t n = std::min(run.feed.size() - run.fed, size_t(std::max<int64_t>(1, options_.prefill_chunk)));
  run.session->feed(std::span<const int32_t>(run.feed.data() + run.fed, n));
  if (run.conv) {
    for (size_t i = run.fed; i < run.fed + n; ++i) {
      if (run.conv->first_ids.size() < 16) run.conv->first_ids.push_back(run.feed[i]);
      run.conv->recent_ids.push_back(run.feed[i]);
      if (run.conv->recent_ids.size() > 48) run.conv->recent_ids.pop_front();
    }
  }
  run.fed += n;
  metrics_.prompt_tokens += int64_t(n);
  metrics_.prefill_ns += ns_since(t0);
  if (run.fed < run.feed.size()) return;
  run.decoding = true;
  if (run.max_tokens == 0) return end(run, "length");
  if (run.job->req.observe && run.conv) observe(run, true);
}

namespace {

// Adds `piece` to the held text and sends what can no longer become a stop
// sequence; true when a stop sequence appeared (the text before it is sent).
bool emit(std::string& held, const std::string& piece, const std::vector<std::string>& stops,
          const std::function<void(const std::string&)>& send) {
  held += piece;
  size_t cut = std::string::npos;
  for (const std::string& s : stops) cut = std::min(cut, held.find(s));
  if (cut != std::string::npos) {
    send(held.substr(0, cut));
    held.clear();
    return true;
  }
  size_t keep = 0;
  for (const std::string& s : stops)
    for (size_t k = std::min(s.size() - 1, held.size()); k > keep; --k)
      if (held.compare(held.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
  send(held.substr(0, held.size() - keep));
  held.erase(0, held.size() - keep);
  return false;
}

}  // namespace

void Engine::decode(Run& run) {
  const auto t0 = Clock::now();
  const int32_t id = run.sampler->sample(run.session->logits(), {});
  run.generated.push_back(id);
  ++metrics_.generated_tokens;
  const auto send = [&run](const std::string& t) {
    run.text += t;
    run.job->text(t);
  };
  const bool stop_id = run.chat() ? format_.is_stop(id) : id == model_->config().eos_id;
  if (run.conv) {
    run.conv->pending = {id};
    run.conv->reply_closed = stop_id;
  }
  if (stop_id) return end(run, "stop");
  const std::string piece = run.chat() ? run.reply->push(id) : run.decoder->push(id);
  if (emit(run.held, piece, run.stops, send)) return end(run, "stop");
  if (int64_t(run.generated.size()) >= run.max_tokens) return end(run, "length");
  if (!pool_.streaming() && run.session->n_past() >= run.session->context()) return end(run, "length");
  run.session->feed(std::span<const int32_t>(&id, 1));
  if (run.conv) {
    run.conv->pending.clear();
    run.conv->recent_ids.push_back(id);
    if (run.conv->recent_ids.size() > 48) run.conv->recent_ids.pop_front();
  }
  metrics_.decode_ns += ns_since(t0);
}

void Engine::end(Run& run, const std::string& reason) {
  if (run.ended) return;
  run.ended = true;
  const auto send = [&run](const std::string& t) {
    run.text += t;
    run.job->text(t);
  };
  if (reason == "length" || reason == "cancelled" || reason == "error") {
    // The text held back for a stop sequence, and a character cut by the last token.
    const std::string tail = run.reply ? run.reply->finish() : run.decoder ? run.decoder->flush() : "";
    if (!emit(run.held, tail, run.stops, send)) send(run.held);
  }
  observe(run, false);
  const EvictStats st = run.session->evict_stats();
  ReplyInfo& info = run.info;
  info.finish_reason = reason == "error" ? "cancelled" : reason;
  info.usage.prompt_tokens = int64_t(run.fed);
  info.usage.completion_tokens = int64_t(run.generated.size());
  info.evicted_tokens = st.evicted;
  info.cached_tokens = st.cached;
  info.n_past = run.session->n_past();
  metrics_.evicted_tokens += st.evicted - run.evicted_before;
  if (reason == "cancelled") ++metrics_.cancelled;
  if (run.job->req.return_tokens) {
    info.prompt_ids.assign(run.feed.begin(), run.feed.begin() + std::ptrdiff_t(run.fed));
    info.completion_ids = run.generated;
  }
  if (run.conv) {
    Conversation& c = *run.conv;
    // A prompt cut short by a cancel is owed to the cache.
    c.pending.insert(c.pending.begin(), run.feed.begin() + std::ptrdiff_t(run.fed), run.feed.end());
    if (run.chat()) {
      for (const ChatTurn& t : run.new_turns) c.transcript_hash = hash_turn(c.transcript_hash, t.role, t.content);
      c.transcript_hash = hash_turn(c.transcript_hash, "assistant", run.text);
      c.transcript_turns += int64_t(run.new_turns.size()) + 1;
    }
    update_view(run);
    store_.give_back(run.conv);
  } else {
    std::lock_guard lock(store_.pool_mutex());
    pool_.release(std::move(run.own));
  }
  run.job->finish(info);
}

// Attention mass on the sink tokens, per layer, at each decode step (tapped
// probabilities: columns are storage slots).
void Engine::observe(Run& run, bool on) {
  Session& s = *run.session;
  if (!on) {
    if (run.tap) s.taps().remove(run.tap);
    run.tap = 0;
    return;
  }
  const int64_t sinks = sink_count(pool_.spec());
  run.sink_slots.clear();
  for (int64_t i = 0; i < sinks; ++i)
    if (const int32_t slot = s.cache().slot_of(i); slot >= 0) run.sink_slots.push_back(slot);
  const ModelConfig& cfg = model_->config();
  run.layer_mass.assign(size_t(cfg.n_layers), -1.0);
  if (run.sink_slots.empty()) return;
  const bool local = s.evict_stats().local_layers > 0;
  run.tap = s.taps().add("blk.*.attn_probs", [&run, &cfg, local](const TapEvent& ev) {
    if (ev.layer < 0 || ev.layer >= cfg.n_layers) return;
    if (local && !cfg.layer_window.empty() && cfg.layer_window[size_t(ev.layer)] > 0) return;
    double mass = 0;
    for (int64_t r = 0; r < ev.rows; ++r)
      for (int32_t slot : run.sink_slots)
        if (slot < ev.cols) mass += ev.data[r * ev.cols + slot];
    run.layer_mass[size_t(ev.layer)] = ev.rows > 0 ? mass / double(ev.rows) : -1;
  });
}

void Engine::update_view(Run& run) {
  Conversation& c = *run.conv;
  const EvictStats st = run.session->evict_stats();
  CacheView v;
  v.n_past = run.session->n_past();
  v.cached = st.cached;
  v.capacity = st.capacity;
  v.evicted = st.evicted;
  const int64_t sinks = std::min<int64_t>(sink_count(pool_.spec()), int64_t(c.first_ids.size()));
  v.sink_ids.assign(c.first_ids.begin(), c.first_ids.begin() + sinks);
  v.recent_ids.assign(c.recent_ids.begin(), c.recent_ids.end());
  double sum = 0;
  int measured = 0;
  for (double m : run.layer_mass)
    if (m >= 0) {
      sum += m;
      ++measured;
    }
  v.sink_mass = measured ? sum / measured : -1;
  v.sink_mass_by_layer = run.layer_mass;
  // Without a new measurement the last one stands.
  if (measured == 0) {
    if (const auto old = store_.view(c.id)) {
      v.sink_mass = old->sink_mass;
      v.sink_mass_by_layer = old->sink_mass_by_layer;
    }
  }
  store_.set_view(c, std::move(v));
}

}  // namespace sinklab::serve
