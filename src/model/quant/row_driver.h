// The loop every dot_rows path shares: rows one after another, and for each
// row the activation vectors in groups of up to four, so that the row's bytes
// are read from memory once and the decoded weights serve every vector of a
// group. A path supplies one row kernel per type:
//   template <int N> static void Kernel::row(const uint8_t* w, int64_t cols,
//                                            const float* x, float* sums);
// giving sums[i] = dot(w, x + i * cols) for i < N.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sinklab/formats.h"

namespace sinklab::quant::detail {

// A type-and-path specific implementation of dot_rows; arguments already checked.
using DotRowsFn = void (*)(const uint8_t* rows, size_t row_stride, int64_t nrows, int64_t cols, const float* x,
                           int64_t n, float* y, int64_t ldy);

constexpr int kMaxGroup = 4;

template <class Kernel>
void dot_rows_with(const uint8_t* rows, size_t row_stride, int64_t nrows, int64_t cols, const float* x, int64_t n,
                   float* y, int64_t ldy) {
  for (int64_t r = 0; r < nrows; ++r) {
    const uint8_t* w = rows + size_t(r) * row_stride;
    float sums[kMaxGroup];
    for (int64_t i = 0; i < n;) {
      const float* xi = x + i * cols;
      const int64_t left = n - i;
      const int group = left >= 4 ? 4 : int(left);
      switch (group) {
        case 4: Kernel::template row<4>(w, cols, xi, sums); break;
        case 3: Kernel::template row<3>(w, cols, xi, sums); break;
        case 2: Kernel::template row<2>(w, cols, xi, sums); break;
        default: Kernel::template row<1>(w, cols, xi, sums); break;
      }
      for (int g = 0; g < group; ++g) y[(i + g) * ldy + r] = sums[g];
      i += group;
    }
  }
}

// The path tables (kernels_*.cpp): the function for type t, or null.
DotRowsFn portable_dot_rows(TensorType t);
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SINKLAB_QUANT_AVX2 1
DotRowsFn avx2_dot_rows(TensorType t);
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define SINKLAB_QUANT_AVX512 1
DotRowsFn avx512_dot_rows(TensorType t);
#endif

}  // namespace sinklab::quant::detail
