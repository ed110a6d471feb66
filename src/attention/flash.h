// Internal entry points of the tiled (flash) CPU kernels. Inputs are already
// validated by the dispatcher (attention.cpp).
#pragma once

#include "common.h"

namespace sinklab::attn {

// Forward over all (batch, head, query-block) tiles; also handles stats.
void flash_forward(const AttnSpec& spec, const Dims& d, const TensorView& q, const TensorView& k,
                   const TensorView& v, const TensorView& o, const TensorView& lse,
                   AttnStats* stats);

// Backward (FlashAttention-2 style recomputation from lse).
void flash_backward(const AttnSpec& spec, const Dims& d, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& o, const TensorView& lse,
                    const TensorView& d_o, AttnGrads& grads);

}  // namespace sinklab::attn
