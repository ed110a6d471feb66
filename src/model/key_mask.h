// Attention of one layer with the Session's key masks (sink ablation) applied.
#pragma once

#include <span>
#include <utility>
#include <vector>

#include "sinklab/model.h"

namespace sinklab::key_mask {

// Stream token index of each storage slot in [0, n_ctx); -1 for free slots.
std::vector<int64_t> slot_tokens(const StreamingCache& cache, int64_t n_ctx);

// attention_forward(spec, q, k, v, o) with the keys hidden by the masks that
// name `layer` (q [1, H, n, d], k/v [1, Hkv, n_ctx, d], spec.key_bias empty or
// [1, Hkv, n_ctx]). When probs is given it receives the materialised
// probabilities [H * n, n_ctx] of the float64 oracle under the same masks;
// when column_sums is given it receives the kernel's AttnStats::column_sums
// [H, n_ctx] (attention on each key summed over the n queries).
void attend(const AttnSpec& spec, std::span<const std::pair<int, KeyMask>> masks, int layer,
            std::span<const int64_t> slot_tokens, const TensorView& q, const TensorView& k, const TensorView& v,
            const TensorView& o, std::vector<float>* probs, float* column_sums = nullptr);

}  // namespace sinklab::key_mask
