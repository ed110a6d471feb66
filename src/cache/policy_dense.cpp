// dense: keeps every token; exceeding the hard limit is an Error, never a
// silent eviction.
#include <string>

#include "policies.h"

namespace sinklab::cache_detail {

namespace {

class DensePolicy final : public KvPolicy {
 public:
  explicit DensePolicy(int64_t limit) : limit_(limit) {}
  std::string_view name() const override { return "dense"; }
  int64_t capacity() const override { return limit_; }
  int64_t size() const override { return int64_t(tokens_.size()); }

  void append(const TokenMeta& t, std::vector<TokenMeta>&) override {
    order_.check("dense", t);
    if (size() >= limit_)
      throw Error("dense cache: token " + std::to_string(t.index) + " would exceed limit=" +
                  std::to_string(limit_) +
                  " tokens; raise option 'limit' or use a streaming policy (window, sink)");
    order_.accept(t);
    tokens_.push_back(t);
  }
  void survivors(std::vector<TokenMeta>& out) const override {
    out.assign(tokens_.begin(), tokens_.end());
  }
  using KvPolicy::append;
  using KvPolicy::survivors;

 private:
  int64_t limit_;
  std::vector<TokenMeta> tokens_;
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_dense_policy(const CacheOptions& o) {
  require_at_least("dense", "limit", o.limit, 1);
  return std::make_unique<DensePolicy>(o.limit);
}

}  // namespace sinklab::cache_detail
