// chunked: MotionStream / LongLive video generation. Tokens carry a chunk id
// in TokenMeta::round. The first sink_chunks chunks stay for good; after
// them, the last window_chunks chunks (the current one included) are kept,
// and a chunk leaves the cache whole when a newer one starts.
#include <deque>
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

struct Chunk {
  int32_t id = 0;
  std::vector<TokenMeta> tokens;
};

class ChunkedPolicy final : public KvPolicy {
 public:
  explicit ChunkedPolicy(const CacheOptions& o)
      : sink_chunks_(o.sink_chunks), window_chunks_(o.window_chunks), chunk_tokens_(o.chunk_tokens) {}
  std::string_view name() const override { return "chunked"; }
  int64_t capacity() const override { return (sink_chunks_ + window_chunks_) * chunk_tokens_; }
  int64_t size() const override { return size_; }

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check("chunked", t);
    Chunk* current = recent_.empty() ? (sinks_.empty() ? nullptr : &sinks_.back()) : &recent_.back();
    const bool same_chunk = current && current->id == t.round;
    if (same_chunk && int64_t(current->tokens.size()) >= chunk_tokens_)
      throw Error("chunked cache: chunk " + std::to_string(t.round) + " has more than " +
                  std::to_string(chunk_tokens_) + " tokens; raise option 'chunk_tokens'");
    order_.accept(t);
    if (!same_chunk) {
      if (int64_t(sinks_.size()) < sink_chunks_) {
        sinks_.push_back(Chunk{t.round, {}});
        current = &sinks_.back();
      } else {
        if (int64_t(recent_.size()) == window_chunks_) {
          // Whole-chunk eviction: the oldest window chunk leaves at once.
          for (const TokenMeta& old : recent_.front().tokens) evicted.push_back(old);
          size_ -= int64_t(recent_.front().tokens.size());
          recent_.pop_front();
        }
        recent_.push_back(Chunk{t.round, {}});
        current = &recent_.back();
      }
      current->tokens.reserve(size_t(chunk_tokens_));
    }
    current->tokens.push_back(t);
    ++size_;
  }
  void survivors(std::vector<TokenMeta>& out) const override {
    out.clear();
    out.reserve(size_t(size_));
    for (const Chunk& c : sinks_) out.insert(out.end(), c.tokens.begin(), c.tokens.end());
    for (const Chunk& c : recent_) out.insert(out.end(), c.tokens.begin(), c.tokens.end());
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  int64_t sink_chunks_, window_chunks_, chunk_tokens_;
  std::vector<Chunk> sinks_;
  std::deque<Chunk> recent_;
  int64_t size_ = 0;
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_chunked_policy(const CacheOptions& o) {
  require_at_least("chunked", "sink_chunks", o.sink_chunks, 0);
  require_at_least("chunked", "window_chunks", o.window_chunks, 1);
  require_at_least("chunked", "chunk_tokens", o.chunk_tokens, 1);
  return std::make_unique<ChunkedPolicy>(o);
}

}  // namespace sinklab::cache_detail
