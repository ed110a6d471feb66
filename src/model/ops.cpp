#include "ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sinklab/blas_threads.h"
#include "sinklab/vec_math.h"
#include "decode_kernels.h"
#include "quant_kernels.h"

namespace sinklab::ops {

namespace {

// Rows per claimed piece of a matrix-vector product: ~96 KiB of weights, in
// whole 16-row groups so that threads never write to the same 64-byte line of
// y. Pieces this size keep the last thread's wait short while claims stay rare.
int64_t rows_per_piece(const WeightMatrix& w) {
  const int64_t row_bytes = std::max<int64_t>(1, w.row_bytes());
  return std::clamp<int64_t>((int64_t(96) << 10) / row_bytes / 16 * 16, 16, 256);
}

// Rows of bf16 or block-quantized weights converted to f32 in blocks, each
// block multiplied with BLAS (the prefill path of matrices not stored in f32).
void matmul_blocked(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  constexpr int64_t kRows = 64;
  const int64_t blocks = (w.rows + kRows - 1) / kRows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t row_bytes = w.row_bytes();
  const vec::SingleThreadedBlas blas_guard;
#pragma omp parallel if (double(n) * double(w.rows) * double(w.cols) > 3e5)
  {
    std::vector<float> tile(size_t(kRows * w.cols));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kRows, nr = std::min(kRows, w.rows - r0);
      if (w.quantized())
        quant::dequantize_rows(w.stored, base + r0 * row_bytes, nr, w.cols, tile.data());
      else
        to_f32(DType::BF16, base + r0 * row_bytes, tile.data(), size_t(nr * w.cols));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(w.cols), 1.f, x,
                  int(w.cols), tile.data(), int(w.cols), 0.f, y + r0, int(w.rows));
    }
  }
}

// y[n, rows] for a few rows of x: each weight row is read from memory once
// and multiplied with all n tokens while it sits in L1. 256-bit loads read
// DRAM ~25% faster than 512-bit loads, and neighbouring rows interleaved
// slower than one at a time, on the hosts measured.
void rows_product(const WeightMatrix& w, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  const int64_t rows = w.rows, cols = w.cols;
  if (w.quantized()) {
    quant::dot_rows(w.stored, static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes(), r1 - r0, cols, x, n, y + r0,
                    rows);
  } else if (w.dtype == DType::BF16) {
    const auto* base = static_cast<const uint16_t*>(w.data);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t t = 0; t < n; ++t) y[t * rows + r] = kernels::dot_bf16(base + r * cols, x + t * cols, cols);
  } else {
    const auto* base = static_cast<const float*>(w.data);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t t = 0; t < n; ++t) y[t * rows + r] = vec::dot(base + r * cols, x + t * cols, cols);
  }
}

// A run of rows of one matrix and where its products go.
struct RowRun {
  const WeightMatrix* w;
  float* y;
  int64_t r0, r1;
};

// Two runs at once, row i of `a` with row i of `b`, their loads alternating
// line by line: two memory streams per thread.
void rows_product_pair(const RowRun& a, const RowRun& b, const float* x, int64_t n) {
  const int64_t cols = a.w->cols, both = std::min(a.r1 - a.r0, b.r1 - b.r0);
  if (a.w->dtype != b.w->dtype || a.w->quantized() || b.w->quantized()) {
    rows_product(*a.w, x, n, a.y, a.r0, a.r1);
    rows_product(*b.w, x, n, b.y, b.r0, b.r1);
    return;
  }
  for (int64_t i = 0; i < both; ++i) {
    const int64_t ra = a.r0 + i, rb = b.r0 + i;
    for (int64_t t = 0; t < n; ++t) {
      float* ya = a.y + t * a.w->rows + ra;
      float* yb = b.y + t * b.w->rows + rb;
      if (a.w->dtype == DType::BF16)
        kernels::dot2_bf16(static_cast<const uint16_t*>(a.w->data) + ra * cols,
                           static_cast<const uint16_t*>(b.w->data) + rb * cols, x + t * cols, cols, *ya, *yb);
      else
        kernels::dot2_f32(static_cast<const float*>(a.w->data) + ra * cols,
                          static_cast<const float*>(b.w->data) + rb * cols, x + t * cols, cols, *ya, *yb);
    }
  }
  rows_product(*a.w, x, n, a.y, a.r0 + both, a.r1);
  rows_product(*b.w, x, n, b.y, b.r0 + both, b.r1);
}

// Threads for products of this many multiply-adds: below ~3e5 a dispatch costs
// more than it saves.
int threads_for(double multiply_adds) { return multiply_adds > 3e5 ? num_threads() : 1; }

// The rows of every job cut into pieces of ~96 KiB (rows_per_piece), piece p
// paired with piece p + half: each thread streams from two places half the
// work apart, which the hardware prefetchers keep in flight together (a
// decode step's products read 7-12% faster than with one stream per thread,
// docs/results/model-bench.md). Each thread streams its own contiguous share
// of the pairs and helps with the others' only at the end (parallel_ranges):
// handing out rows from one shared counter in shrinking ranges read the
// products ~20% slower.
void product_pieces(std::span<const MatmulJob> jobs, const float* x, int64_t n, int threads) {
  std::vector<RowRun> pieces;
  for (const MatmulJob& j : jobs) {
    const int64_t rows = j.w->rows, step = rows_per_piece(*j.w);
    for (int64_t r = 0; r < rows; r += step) pieces.push_back({j.w, j.y, r, std::min(rows, r + step)});
  }
  const int64_t count = int64_t(pieces.size());
  const int64_t half = (count + 1) / 2;
  parallel_ranges(half, 1, threads, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const RowRun& a = pieces[size_t(p)];
      if (p + half < count)
        rows_product_pair(a, pieces[size_t(p + half)], x, n);
      else
        rows_product(*a.w, x, n, a.y, a.r0, a.r1);
    }
  });
}

void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  const MatmulJob job{&w, y};
  product_pieces({&job, 1}, x, n, threads_for(double(n) * double(w.rows) * double(w.cols)));
}

void add_bias(const float* bias, int64_t n, int64_t rows, float* y) {
  if (bias)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < rows; ++r) y[i * rows + r] += bias[r];
}

bool rows_path(const WeightMatrix& w, int64_t n) {
  return n <= kPoolStepTokens && (w.quantized() || w.dtype == DType::F32 || w.dtype == DType::BF16);
}

}  // namespace

// The pieces of all jobs handed out in one dispatch (product_pieces).
void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n) {
  bool all_rows = true;
  double work = 0;
  for (const MatmulJob& j : jobs) {
    check(j.w->cols == jobs[0].w->cols, [&] {
      return "matmul_group: every matrix must take the same input width (" + std::to_string(jobs[0].w->cols) +
             " and " + std::to_string(j.w->cols) + ")";
    });
    all_rows = all_rows && rows_path(*j.w, n);
    work += double(n) * double(j.w->rows) * double(j.w->cols);
  }
  if (!all_rows || jobs.size() < 2) {
    for (const MatmulJob& j : jobs) matmul(*j.w, x, n, j.y, j.bias);
    return;
  }
  product_pieces(jobs, x, n, threads_for(work));
  for (const MatmulJob& j : jobs) add_bias(j.bias, n, j.w->rows, j.y);
}

void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, const float* bias) {
  if (rows_path(w, n)) {
    matmul_rows(w, x, n, y);
  } else if (!w.quantized() && w.dtype == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.f, x,
                int(w.cols), static_cast<const float*>(w.data), int(w.cols), 0.f, y, int(w.rows));
  } else {
    matmul_blocked(w, x, n, y);
  }
  add_bias(bias, n, w.rows, y);
}

void matrix_row(const WeightMatrix& w, int64_t i, float* out) {
  const uint8_t* row = static_cast<const uint8_t*>(w.data) + i * w.row_bytes();
  if (w.quantized())
    quant::dequantize_rows(w.stored, row, 1, w.cols, out);
  else
    to_f32(w.dtype, row, out, size_t(w.cols));
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
    const float e = vec::exp_nonpos(-std::abs(g[i]));
    const float sig = (g[i] >= 0.f ? 1.f : e) / (1.f + e);
    a[i] = g[i] * sig * u[i];
  }
}

void geglu_tanh(const float* g, const float* u, int64_t n, float* a) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    a[i] = 0.5f * x * (1.f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * u[i];
  }
}

void clamped_swiglu(const float* g, const float* u, int64_t n, float limit, float alpha, float* a) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = std::min(g[i], limit);
    const float y = std::clamp(u[i], -limit, limit);
    a[i] = x / (1.f + std::exp(-alpha * x)) * (y + 1.f);
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
