// Kernels over weight rows kept in their stored GGUF type (F16 and the ggml
// block types), so a model need not be dequantised at load:
//   dot_rows         fused dequantise-and-dot for the decode matrix-vector
//                    products: each weight block is decoded in registers and
//                    multiplied with n float32 activation vectors (no
//                    activation quantisation), reading each row once for all n;
//   dequantize_rows  rows to float32, for tiles handed to a GEMM (prefill);
//   quantize_rows    llama.cpp's reference (importance-free) quantisers, for
//                    writing GGUF files that llama.cpp reads.
// Rows are consecutive, each row_bytes(type, cols) long; pointers need no
// alignment (mapped GGUF data is not aligned). The kernels are single-threaded:
// callers split rows across threads.
//
// Each instruction-set path is compiled when the compiler targets it and can
// be called by name (tests run every compiled path); the plain overloads use
// the best one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sinklab/formats.h"

namespace sinklab::quant {

enum class KernelPath : uint8_t {
  Portable,  // plain C++: decode a block to floats, then 8-float vector dots
  Avx2,      // AVX2 + FMA + F16C
  Avx512,    // AVX-512 F/BW/VL/DQ
};
const char* kernel_path_name(KernelPath p);  // "portable", "avx2", "avx512"
// Every path compiled into this build (Portable first, the best last).
const std::vector<KernelPath>& compiled_kernel_paths();
KernelPath best_kernel_path();

// True for the types dot_rows serves: F16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, MXFP4
// (F32 and BF16 rows have their own kernels in the matrix product).
bool has_kernels(TensorType t);

// Bytes of one row of `cols` elements; throws Error unless cols is a
// non-negative multiple of the type's block size.
size_t row_bytes(TensorType t, int64_t cols);

// y[i * ldy + r] = dot(row r, x + i * cols) for r in [0, nrows), i in [0, n),
// accumulated in float32. ldy >= nrows when n > 1. Throws Error for a type
// without kernels or inconsistent sizes.
void dot_rows(TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, const float* x, int64_t n, float* y,
              int64_t ldy);
// The same through one named path; throws Error when `path` is not compiled in.
void dot_rows(KernelPath path, TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, const float* x,
              int64_t n, float* y, int64_t ldy);

// out[r * cols + c] = element c of row r, bit-for-bit the values of
// sinklab::dequantize (any TensorType).
void dequantize_rows(TensorType t, const uint8_t* rows, int64_t nrows, int64_t cols, float* out);

// Writes nrows rows of `cols` floats in type t (any TensorType; F32, F16 and
// BF16 are plain conversions). Quantized types follow llama.cpp's reference
// quantisers (quantize_row_*_ref), so the blocks are those llama.cpp itself
// would write without an importance matrix. cols must be a multiple of the block size.
void quantize_rows(TensorType t, const float* x, int64_t nrows, int64_t cols, uint8_t* out);

}  // namespace sinklab::quant
