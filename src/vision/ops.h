// Dense pieces of the vision forward on row-major float32 tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "weights.h"

namespace sinklab::vision_ops {

// y[n, l.out] = x[n, l.in] . W^T (+ b).
void linear(const VisionLinear& l, const float* x, int64_t n, float* y);
// LayerNorm over rows of length d (statistics in double); x and y may alias.
void layernorm(const VisionNorm& norm, const float* x, int64_t rows, int64_t d, float eps, float* y);
// In-place activation of n values.
void activate(VisionActivation act, float* x, int64_t n);
// Patches of one image [channels, height, width] as rows [gh * gw, channels * p * p],
// in the (channel, row, column) order of a convolution kernel [out, channels, p, p].
std::vector<float> im2col(const float* pixels, int channels, int height, int width, int p);
// PyTorch's F.interpolate(mode="bicubic", align_corners=False) of a grid
// [src_h, src_w, d] (channels last) to [dst_h, dst_w, d].
std::vector<float> bicubic_resize(const float* src, int src_h, int src_w, int d, int dst_h, int dst_w);

}  // namespace sinklab::vision_ops
