// window: the last W tokens (StreamingLLM's "0+W"). Also the base of
// sink-logit, which differs only by name.
#include <deque>
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

class WindowPolicy final : public KvPolicy {
 public:
  WindowPolicy(const char* name, int64_t window) : name_(name), window_(window) {}
  std::string_view name() const override { return name_; }
  int64_t capacity() const override { return window_; }
  int64_t size() const override { return int64_t(tokens_.size()); }

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check(name_, t);
    order_.accept(t);
    if (size() == window_) {
      evicted.push_back(tokens_.front());
      tokens_.pop_front();
    }
    tokens_.push_back(t);
  }
  void survivors(std::vector<TokenMeta>& out) const override {
    out.assign(tokens_.begin(), tokens_.end());
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  const char* name_;
  int64_t window_;
  std::deque<TokenMeta> tokens_;
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_named_window_policy(const char* name, const CacheOptions& o) {
  require_at_least(name, "window", o.window, 1);
  return std::make_unique<WindowPolicy>(name, o.window);
}

std::unique_ptr<KvPolicy> make_window_policy(const CacheOptions& o) {
  return make_named_window_policy("window", o);
}

}  // namespace sinklab::cache_detail
