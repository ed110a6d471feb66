// modal: StreamingVLM. Text tokens: the first text_sink of the stream are
// kept for good, then the last text_window. Every other modality (vision,
// audio): the tokens of the last vision_rounds rounds, the current round
// included; a round leaves the cache whole when a newer one starts.
#include <deque>
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

struct Round {
  int32_t id = 0;
  std::vector<TokenMeta> tokens;
};

class ModalPolicy final : public KvPolicy {
 public:
  explicit ModalPolicy(const CacheOptions& o)
      : text_sink_(o.text_sink),
        text_window_(o.text_window),
        rounds_max_(o.vision_rounds),
        round_tokens_(o.round_tokens) {}
  std::string_view name() const override { return "modal"; }
  int64_t capacity() const override {
    return text_sink_ + text_window_ + rounds_max_ * round_tokens_;
  }
  int64_t size() const override {
    return int64_t(text_sinks_.size() + text_recent_.size()) + vision_size_;
  }

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check("modal", t);
    if (t.modality == uint8_t(Modality::Text)) {
      order_.accept(t);
      append_text(t, evicted);
      return;
    }
    const bool same_round = !rounds_.empty() && rounds_.back().id == t.round;
    if (same_round && int64_t(rounds_.back().tokens.size()) >= round_tokens_)
      throw Error("modal cache: round " + std::to_string(t.round) + " has more than " +
                  std::to_string(round_tokens_) +
                  " non-text tokens; raise option 'round_tokens'");
    order_.accept(t);
    if (!same_round) {
      if (int64_t(rounds_.size()) == rounds_max_) {
        // Whole-round eviction: the oldest round leaves at once.
        for (const TokenMeta& old : rounds_.front().tokens) evicted.push_back(old);
        vision_size_ -= int64_t(rounds_.front().tokens.size());
        rounds_.pop_front();
      }
      rounds_.push_back(Round{t.round, {}});
      rounds_.back().tokens.reserve(size_t(round_tokens_));
    }
    rounds_.back().tokens.push_back(t);
    ++vision_size_;
  }

  // Survivors in stream order: a merge of the three index-sorted groups.
  void survivors(std::vector<TokenMeta>& out) const override {
    std::vector<TokenMeta> text(text_sinks_.begin(), text_sinks_.end());
    text.insert(text.end(), text_recent_.begin(), text_recent_.end());
    out.clear();
    out.reserve(size_t(size()));
    size_t ti = 0;
    for (const Round& r : rounds_)
      for (const TokenMeta& v : r.tokens) {
        while (ti < text.size() && text[ti].index < v.index) out.push_back(text[ti++]);
        out.push_back(v);
      }
    out.insert(out.end(), text.begin() + std::ptrdiff_t(ti), text.end());
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  void append_text(const TokenMeta& t, std::vector<TokenMeta>& evicted) {
    if (int64_t(text_sinks_.size()) < text_sink_) {
      text_sinks_.push_back(t);
      return;
    }
    if (int64_t(text_recent_.size()) == text_window_) {
      evicted.push_back(text_recent_.front());
      text_recent_.pop_front();
    }
    text_recent_.push_back(t);
  }

  int64_t text_sink_, text_window_, rounds_max_, round_tokens_;
  std::vector<TokenMeta> text_sinks_;
  std::deque<TokenMeta> text_recent_;
  std::deque<Round> rounds_;
  int64_t vision_size_ = 0;
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_modal_policy(const CacheOptions& o) {
  require_at_least("modal", "text_sink", o.text_sink, 0);
  require_at_least("modal", "text_window", o.text_window, 1);
  require_at_least("modal", "vision_rounds", o.vision_rounds, 1);
  require_at_least("modal", "round_tokens", o.round_tokens, 1);
  return std::make_unique<ModalPolicy>(o);
}

}  // namespace sinklab::cache_detail
