// Argument checks and the choice of path for the block-type kernels; the
// kernels themselves are in quant/kernels_*.cpp, the quantisers in quant/quantize.cpp.
#include "model/quant_kernels.h"

#include <string>

#include "model/quant/quantize.h"
#include "model/quant/row_driver.h"

namespace sinklab::quant {

namespace {

std::string sizes_text(int64_t nrows, int64_t cols) {
  std::string s = std::to_string(nrows);
  s += " rows of ";
  s += std::to_string(cols);
  return s;
}

void check_rows(const char* what, TensorType t, int64_t nrows, int64_t cols) {
  if (nrows < 0 || cols < 0 || cols % tensor_type_block_size(t) != 0) {
    std::string msg = what;
    msg += ": ";
    msg += sizes_text(nrows, cols);
    msg += " elements do not fit ";
    msg += tensor_type_name(t);
    msg += " blocks of ";
    msg += std::to_string(tensor_type_block_size(t));
    throw Error(msg);
  }
}

detail::DotRowsFn kernel_for(KernelPath path, TensorType t) {
  switch (path) {
    case KernelPath::Portable: return detail::portable_dot_rows(t);
    case KernelPath::Avx2:
#if defined(SINKLAB_QUANT_AVX2)
      return detail::avx2_dot_rows(t);
#else
      break;
#endif
    case KernelPath::Avx512:
#if defined(SINKLAB_QUANT_AVX512)
      return detail::avx512_dot_rows(t);
#else
      break;
#endif
  }
  throw Error(std::string("dot_rows: the ") + kernel_path_name(path) + " kernels are not compiled into this build");
}

}  // namespace

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::Portable: return "portable";
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Avx512: return "avx512";
  }
  return "unknown";
}

const std::vector<KernelPath>& compiled_kernel_paths() {
  static const std::vector<KernelPath> paths = {
      KernelPath::Portable,
#if defined(SINKLAB_QUANT_AVX2)
      KernelPath::Avx2,
#endif
#if defined(SINKLAB_QUANT_AVX512)
      KernelPath::Avx512,
#endif
  };
  return paths;
}

KernelPath best_kernel_path() { return compiled_kernel_paths().back(); }

bool has_kernels(TensorType t) { return detail::portable_dot_rows(t) != nullptr; }

size_t row_bytes(TensorType t, int64_t cols) {
  check_rows("row_bytes", t, 1, cols);
  return tensor_type_nbytes(t, cols, "row_bytes");
}

void dot_rows(KernelPath path, TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, const float* x,
              int64_t n, float* y, int64_t ldy) {
  check_rows("dot_rows", t, nrows, cols);
  const detail::DotRowsFn fn = kernel_for(path, t);
  if (!fn) throw Error(std::string("dot_rows: no kernel for ") + tensor_type_name(t) + " rows");
  if (n < 0 || (n > 1 && ldy < nrows))
    throw Error("dot_rows: " + std::to_string(n) + " vectors with an output stride of " + std::to_string(ldy) +
                " for " + std::to_string(nrows) + " rows");
  if (nrows == 0 || n == 0) return;
  if (!rows || !x || !y) throw Error("dot_rows: null pointer");
  fn(rows, tensor_type_nbytes(t, cols, "dot_rows"), nrows, cols, x, n, y, ldy);
}

void dot_rows(TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, const float* x, int64_t n, float* y,
              int64_t ldy) {
  dot_rows(best_kernel_path(), t, rows, nrows, cols, x, n, y, ldy);
}

void dequantize_rows(TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, float* out) {
  check_rows("dequantize_rows", t, nrows, cols);
  if (nrows == 0 || cols == 0) return;
  const size_t stride = tensor_type_nbytes(t, cols, "dequantize_rows");
  for (int64_t r = 0; r < nrows; ++r) dequantize_row(t, rows + size_t(r) * stride, out + r * cols, cols);
}

void quantize_rows(TensorType t, const float* x, int64_t nrows, int64_t cols, uint8_t* out) {
  check_rows("quantize_rows", t, nrows, cols);
  if (nrows == 0 || cols == 0) return;
  const size_t stride = tensor_type_nbytes(t, cols, "quantize_rows");
  for (int64_t r = 0; r < nrows; ++r) quantize_row(t, x + r * cols, cols, out + size_t(r) * stride);
}

}  // namespace sinklab::quant
