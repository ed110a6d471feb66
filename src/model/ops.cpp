#include "ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/blas_threads.h"
#include "attention/vec_math.h"
#include "decode_kernels.h"

namespace sinklab::ops {

namespace {

// Row ranges the threads claim in order (guided scheduling): each range is the
// remaining rows divided by twice the thread count, so long contiguous streams
// come first and the ranges shrink towards the end, where a thread the OS delays
// would otherwise leave the others waiting on a large last range. Whole 16-row
// groups, so threads never write to the same 64-byte line of y.
std::vector<int64_t> guided_row_bounds(int64_t rows, int threads) {
  std::vector<int64_t> bounds{0};
  while (bounds.back() < rows) {
    const int64_t left = rows - bounds.back();
    const int64_t take = std::max<int64_t>(16, left / (2 * std::max(threads, 1)) / 16 * 16);
    bounds.push_back(bounds.back() + std::min(take, left));
  }
  return bounds;
}

// Rows of bf16 weights converted in blocks, each block multiplied with BLAS.
void matmul_bf16_blocked(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  constexpr int64_t kRows = 64;
  const int64_t blocks = (w.rows + kRows - 1) / kRows;
  const uint16_t* base = static_cast<const uint16_t*>(w.data);
  const attn::SingleThreadedBlas blas_guard;
#pragma omp parallel if (double(n) * double(w.rows) * double(w.cols) > 3e5)
  {
    std::vector<float> tile(size_t(kRows * w.cols));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kRows, nr = std::min(kRows, w.rows - r0);
      to_f32(DType::BF16, base + r0 * w.cols, tile.data(), size_t(nr * w.cols));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.f, x,
                  int(w.cols), tile.data(), int(w.cols), 0.f, y + r0, int(w.rows));
    }
  }
}

}  // namespace

// y[n, rows] for a few rows of x: each weight row is read from memory once
// and multiplied with all n tokens while it sits in L1; rows shared out in
// guided ranges. One row at a time keeps each thread on a single sequential
// stream; with 256-bit loads this read DRAM ~25% faster than 512-bit loads or
// interleaved rows on the hosts measured (docs/results/model-bench.md).
void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  const int threads = double(n) * double(w.rows) * double(w.cols) > 3e5 ? num_threads() : 1;
  const std::vector<int64_t> bounds = guided_row_bounds(w.rows, threads);
  const int64_t rows = w.rows, cols = w.cols;
  if (w.dtype == DType::BF16) {
    const auto* base = static_cast<const uint16_t*>(w.data);
    parallel_tasks(int64_t(bounds.size()) - 1, threads, [&](int64_t c, int) {
      for (int64_t r = bounds[size_t(c)]; r < bounds[size_t(c) + 1]; ++r)
        for (int64_t t = 0; t < n; ++t)
          y[t * rows + r] = kernels::dot_bf16(base + r * cols, x + t * cols, cols);
    });
  } else {
    const auto* base = static_cast<const float*>(w.data);
    parallel_tasks(int64_t(bounds.size()) - 1, threads, [&](int64_t c, int) {
      for (int64_t r = bounds[size_t(c)]; r < bounds[size_t(c) + 1]; ++r)
        for (int64_t t = 0; t < n; ++t) y[t * rows + r] = attn::dot(base + r * cols, x + t * cols, cols);
    });
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, const float* bias) {
  if (n <= kPoolStepTokens && (w.dtype == DType::F32 || w.dtype == DType::BF16)) {
    matmul_rows(w, x, n, y);
  } else if (w.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.f, x,
                int(w.cols), static_cast<const float*>(w.data), int(w.cols), 0.f, y, int(w.rows));
  } else {
    matmul_bf16_blocked(w, x, n, y);
  }
  if (bias)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < w.rows; ++r) y[i * w.rows + r] += bias[r];
}

void matrix_row(const WeightMatrix& w, int64_t i, float* out) {
  const size_t es = dtype_size(w.dtype);
  to_f32(w.dtype, static_cast<const uint8_t*>(w.data) + size_t(i * w.cols) * es, out, size_t(w.cols));
}

void rmsnorm(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / double(d) + eps));
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

// silu(g) = g * sigmoid(g), with e = exp(-|g|) <= 1 from the branch-free
// exp_nonpos so that the loop vectorises: sigmoid(g) = 1 / (1 + e) for g >= 0
// and e / (1 + e) for g < 0 (neither overflows).
void swiglu(const float* g, const float* u, int64_t n, float* a) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float e = attn::exp_nonpos(-std::abs(g[i]));
    const float sig = (g[i] >= 0.f ? 1.f : e) / (1.f + e);
    a[i] = g[i] * sig * u[i];
  }
}

void softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  const float inv = float(1.0 / s);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace sinklab::ops
