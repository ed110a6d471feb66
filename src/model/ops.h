// Dense building blocks of the decoder forward (row-major float32 activations).
#pragma once

#include <cstdint>
#include <span>

#include "weights.h"

namespace sinklab::ops {

// y[n, w.rows] = x[n, w.cols] . W^T (+ bias). Threads over output rows or uses BLAS.
void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, const float* bias = nullptr);
// Several products of the same x, y_j[n, w_j.rows] = x . W_j^T (+ bias_j): one
// call shares one thread dispatch (and one wait for the last row) between
// them on the decode path, and is the same as separate matmul calls otherwise.
struct MatmulJob {
  const WeightMatrix* w;
  float* y;
  const float* bias = nullptr;
};
void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n);
// Row i of W (a [rows, cols] matrix) as float32.
void matrix_row(const WeightMatrix& w, int64_t i, float* out);
// y = x / rms(x) * weight over rows of length d (x and y may alias).
void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* y);
// a = silu(g) * u elementwise.
void swiglu(const float* g, const float* u, int64_t n, float* a);
// a = gelu_tanh(g) * u, GELU with the tanh approximation (Gemma's GeGLU).
void geglu_tanh(const float* g, const float* u, int64_t n, float* a);
// gpt-oss: g' = min(g, limit), u' = clamp(u, -limit, limit), a = g' * sigmoid(alpha g') * (u' + 1).
void clamped_swiglu(const float* g, const float* u, int64_t n, float limit, float alpha, float* a);
// In-place softmax over a row.
void softmax(float* x, int64_t n);

}  // namespace sinklab::ops
