#include "ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/blas_threads.h"

namespace sinklab::ops {

namespace {

// Rows per claimed chunk: about 1 MiB of weights (long contiguous streams per
// thread read faster than finely interleaved ones), but at least two chunks per
// thread so that a thread the OS delays leaves little for the others to wait
// on; whole 16-row groups, so threads never write to the same 64-byte line of y.
int64_t rows_per_chunk(const WeightMatrix& w, int threads) {
  const int64_t by_bytes = (int64_t(1) << 20) / std::max<int64_t>(1, w.cols * int64_t(dtype_size(w.dtype)));
  const int64_t by_count = w.rows / (2 * std::max(threads, 1));
  return std::max<int64_t>(16, std::min(by_bytes, by_count) / 16 * 16);
}

// 16-float vectors (one AVX-512 register, two AVX2 ones) through GCC/Clang
// vector extensions, so the kernel needs no per-ISA intrinsics.
using f32x16 = float __attribute__((vector_size(64)));
using u32x16 = uint32_t __attribute__((vector_size(64)));
using u16x16 = uint16_t __attribute__((vector_size(32)));

// Helpers take and give vectors through references: a vector passed by value
// would have a different calling convention with and without AVX-512.
inline void load16(const float* p, f32x16& v) { __builtin_memcpy(&v, p, sizeof v); }
// bf16 -> f32 is a 16-bit shift of the bits.
inline void load16(const uint16_t* p, f32x16& v) {
  u16x16 h;
  __builtin_memcpy(&h, p, sizeof h);
  const u32x16 u = __builtin_convertvector(h, u32x16) << 16;
  __builtin_memcpy(&v, &u, sizeof v);
}
inline float widen(float v) { return v; }
inline float widen(uint16_t v) {
  const uint32_t u = uint32_t(v) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
inline float hsum(const f32x16& v) {
  float s = 0;
  for (int k = 0; k < 16; ++k) s += v[k];
  return s;
}

// y[r * y_stride] = W[r] . x for R consecutive rows of W (leading dimension ld).
// Each x vector is loaded once for R rows and the R accumulators are
// independent, so the loop is bound by the weight stream, not by FMA latency.
template <int R, class T>
inline void dot_rows(const T* w, int64_t ld, const float* x, int64_t n, float* y, int64_t y_stride) {
  f32x16 acc[R] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f32x16 xv, wv;
    load16(x + i, xv);
    for (int r = 0; r < R; ++r) {
      load16(w + r * ld + i, wv);
      acc[r] += wv * xv;
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum(acc[r]);
    for (int64_t j = i; j < n; ++j) s += widen(w[r * ld + j]) * x[j];
    y[r * y_stride] = s;
  }
}

// Rows [r0, r1) of y[n, rows] = x[n, cols] . W^T.
template <class T>
void matmul_row_range(const T* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y, int64_t r0,
                      int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4)
    for (int64_t t = 0; t < n; ++t) dot_rows<4>(w + r * cols, cols, x + t * cols, cols, y + t * rows + r, 1);
  for (; r < r1; ++r)
    for (int64_t t = 0; t < n; ++t) dot_rows<1>(w + r * cols, cols, x + t * cols, cols, y + t * rows + r, 1);
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

// y[n, rows] for a few rows of x: one dot product per (row, token), rows
// shared out in chunks. Reads each weight once for all n tokens.
void matmul_rows(const WeightMatrix& w, const float* x, int64_t n, float* y) {
  const int threads = double(n) * double(w.rows) * double(w.cols) > 3e5 ? num_threads() : 1;
  const int64_t chunk = rows_per_chunk(w, threads);
  const int64_t chunks = (w.rows + chunk - 1) / chunk;
  const bool bf16 = w.dtype == DType::BF16;
  parallel_tasks(chunks, threads, [&](int64_t c, int) {
    const int64_t r0 = c * chunk, r1 = std::min(w.rows, r0 + chunk);
    if (bf16)
      matmul_row_range(static_cast<const uint16_t*>(w.data), w.rows, w.cols, x, n, y, r0, r1);
    else
      matmul_row_range(static_cast<const float*>(w.data), w.rows, w.cols, x, n, y, r0, r1);
  });
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
    for (int64_t i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / double(d) + eps));
    for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

void swiglu(const float* g, const float* u, int64_t n, float* a) {
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
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
