// sink: StreamingLLM's "S+W": the first S tokens of the stream are never
// evicted; after them, the most recent W tokens are kept.
#include <deque>
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

class SinkPolicy final : public KvPolicy {
 public:
  SinkPolicy(int64_t sink, int64_t window) : sink_(sink), window_(window) {}
  std::string_view name() const override { return "sink"; }
  int64_t capacity() const override { return sink_ + window_; }
  int64_t size() const override { return int64_t(sinks_.size() + recent_.size()); }

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check("sink", t);
    order_.accept(t);
    if (int64_t(sinks_.size()) < sink_) {
      sinks_.push_back(t);
      return;
    }
    if (int64_t(recent_.size()) == window_) {
      evicted.push_back(recent_.front());
      recent_.pop_front();
    }
    recent_.push_back(t);
  }
  void survivors(std::vector<TokenMeta>& out) const override {
    out.assign(sinks_.begin(), sinks_.end());
    out.insert(out.end(), recent_.begin(), recent_.end());
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  int64_t sink_, window_;
  std::vector<TokenMeta> sinks_;
  std::deque<TokenMeta> recent_;
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_sink_policy(const CacheOptions& o) {
  require_at_least("sink", "sink", o.sink, 0);
  int64_t window = o.window;
  if (o.budget > 0) {
    if (o.sink >= o.budget)
      throw Error("sink cache: option 'sink' (" + std::to_string(o.sink) +
                  ") must be smaller than option 'budget' (" + std::to_string(o.budget) +
                  ") so that the window keeps at least one token");
    if (o.window > 0 && o.sink + o.window != o.budget)
      throw Error("sink cache: options 'sink' + 'window' (" + std::to_string(o.sink) + " + " +
                  std::to_string(o.window) + ") disagree with option 'budget' (" +
                  std::to_string(o.budget) + "); set one of 'window' and 'budget'");
    window = o.budget - o.sink;
  } else {
    require_at_least("sink", "budget", o.budget, 0);
    if (window <= 0)
      throw Error("sink cache: option 'window' must be >= 1 (got " + std::to_string(window) +
                  "), or set option 'budget' = sink + window");
  }
  return std::make_unique<SinkPolicy>(o.sink, window);
}

}  // namespace sinklab::cache_detail
