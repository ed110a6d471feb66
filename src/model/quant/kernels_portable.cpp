// The portable dot_rows path: each stretch of a row is decoded to floats by
// the same decoder as sinklab::dequantize, then dotted with every vector of
// the group with 8-float vector extensions (no intrinsics).
#include <algorithm>

#include "model/quant/row_driver.h"
#include "sinklab/vec_math.h"

namespace sinklab::quant::detail {

namespace {

template <TensorType T>
struct DecodeThenDot {
  // Elements decoded at a time: a multiple of every block size, small enough for the stack.
  static constexpr int64_t kStretch = 512;

  template <int N>
  static void row(const uint8_t* w, int64_t cols, const float* x, float* sums) {
    const int64_t block = tensor_type_block_size(T);
    const size_t block_bytes = tensor_type_block_bytes(T);
    float decoded[kStretch];
    float acc[N] = {};
    for (int64_t c = 0; c < cols; c += kStretch) {
      const int64_t len = std::min(kStretch, cols - c);
      dequantize_row(T, w + size_t(c / block) * block_bytes, decoded, len);
      for (int i = 0; i < N; ++i) acc[i] += vec::dot(decoded, x + i * cols + c, len);
    }
    for (int i = 0; i < N; ++i) sums[i] = acc[i];
  }
};

}  // namespace

DotRowsFn portable_dot_rows(TensorType t) {
  switch (t) {
    case TensorType::F16: return dot_rows_with<DecodeThenDot<TensorType::F16>>;
    case TensorType::Q8_0: return dot_rows_with<DecodeThenDot<TensorType::Q8_0>>;
    case TensorType::Q4_0: return dot_rows_with<DecodeThenDot<TensorType::Q4_0>>;
    case TensorType::Q4_K: return dot_rows_with<DecodeThenDot<TensorType::Q4_K>>;
    case TensorType::Q5_K: return dot_rows_with<DecodeThenDot<TensorType::Q5_K>>;
    case TensorType::Q6_K: return dot_rows_with<DecodeThenDot<TensorType::Q6_K>>;
    case TensorType::MXFP4: return dot_rows_with<DecodeThenDot<TensorType::MXFP4>>;
    default: return nullptr;  // F32 and BF16 have kernels in the matrix product
  }
}

}  // namespace sinklab::quant::detail
