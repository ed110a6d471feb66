// Factories of the built-in policies (one file each) and helpers they share.
#pragma once

#include <memory>
#include <string>

#include "sinklab/cache.h"

namespace sinklab::cache_detail {

std::unique_ptr<KvPolicy> make_dense_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_window_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_sink_logit_policy(const CacheOptions& o);
// A window policy reporting `name` (window, sink-logit).
std::unique_ptr<KvPolicy> make_named_window_policy(const char* name, const CacheOptions& o);
std::unique_ptr<KvPolicy> make_sink_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_modal_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_chunked_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_heavy_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_adaptive_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_adaptive_layer_policy(const CacheOptions& o);
std::unique_ptr<KvPolicy> make_snapkv_policy(const CacheOptions& o);

// Throws "<policy> cache: option '<option>' must be >= min (got value)".
void require_at_least(const char* policy, const char* option, int64_t value, int64_t min);

// Enforces strictly increasing stream indices and non-decreasing round ids.
class StreamOrder {
 public:
  void check(const char* policy, const TokenMeta& t) const;
  void accept(const TokenMeta& t) {
    last_index_ = t.index;
    last_round_ = t.round;
    started_ = true;
  }

 private:
  int64_t last_index_ = 0;
  int32_t last_round_ = 0;
  bool started_ = false;
};

}  // namespace sinklab::cache_detail
