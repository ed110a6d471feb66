// sink-logit: a plain window of W tokens for models whose attention has a
// learned sink logit (gpt-oss), so no sink token needs to be kept. Named
// separately so callers can check that the model really has sink logits.
#include "policies.h"

namespace sinklab::cache_detail {

std::unique_ptr<KvPolicy> make_sink_logit_policy(const CacheOptions& o) {
  return make_named_window_policy("sink-logit", o);
}

}  // namespace sinklab::cache_detail
