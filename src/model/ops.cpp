#include "ops.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/blas_threads.h"

namespace sinklab::ops {

namespace {

// Dot product of a bf16 row with a float vector: widen by shifting the bits,
// which the compiler vectorises.
inline float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) {
      const uint32_t u = uint32_t(w[i + k]) << 16;
      float f;
      __builtin_memcpy(&f, &u, 4);
      acc[k] += f * x[i + k];
    }
  float s = 0;
  for (int k = 0; k < 16; ++k) s += acc[k];
  for (; i < n; ++i) {
    const uint32_t u = uint32_t(w[i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    s += f * x[i];
  }
  return s;
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

void matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, const float* bias) {
  if (w.dtype == DType::F32) {
    const float* W = static_cast<const float*>(w.data);
    if (n == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(w.rows), int(w.cols), 1.f, W, int(w.cols), x, 1,
                  0.f, y, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(w.rows), int(w.cols), 1.f, x,
                  int(w.cols), W, int(w.cols), 0.f, y, int(w.rows));
  } else if (n <= 4) {
    const uint16_t* W = static_cast<const uint16_t*>(w.data);
#pragma omp parallel for schedule(static) if (double(n) * double(w.rows) * double(w.cols) > 3e5)
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = dot_bf16(W + r * w.cols, x + i * w.cols, w.cols);
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
