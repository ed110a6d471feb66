// llama.cpp's reference quantisers (ggml's quantize_row_*_ref), one row at a time.
#pragma once

#include <cstdint>

#include "sinklab/formats.h"

namespace sinklab::quant {

// Writes the n elements of x (a multiple of t's block size) in type t at out.
// Throws Error naming the element when a value to quantise is not finite
// (F32, F16 and BF16 convert infinities and NaNs like any value).
void quantize_row(TensorType t, const float* x, int64_t n, uint8_t* out);

}  // namespace sinklab::quant
