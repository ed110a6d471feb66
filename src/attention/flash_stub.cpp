// Placeholder until the tiled kernels land: the flash path reports itself missing.
#include "flash.h"

namespace sinklab::attn {
void flash_backward(const AttnSpec&, const Dims&, const TensorView&, const TensorView&,
                    const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                    AttnGrads&) {
  throw Error("attention: the flash backward is not available in this build");
}
}  // namespace sinklab::attn
