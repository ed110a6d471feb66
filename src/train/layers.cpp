#include "layers.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace sinklab::train_layers {

namespace {

// C[M, N] (+)= A op B with row-major operands, in the scalar's BLAS.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), 1.f, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
          int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), 1.0, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace

// ------------------------------------------------------------- embedding ----
template <typename T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t D) {
  for (int64_t i = 0; i < N; ++i) std::copy_n(table + int64_t(ids[i]) * D, D, out + i * D);
}

template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t D) {
  for (int64_t i = 0; i < N; ++i) {
    T* row = dtable + int64_t(ids[i]) * D;
    for (int64_t d = 0; d < D; ++d) row[d] += dout[i * D + d];
  }
}

// --------------------------------------------------------------- rmsnorm ----
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int64_t N, int64_t D, float eps) {
#pragma omp parallel for schedule(static) if (N * D > 65536)
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(xi[d]) * xi[d];
    const T r = T(1.0 / std::sqrt(ss / double(D) + double(eps)));
    rstd[i] = r;
    for (int64_t d = 0; d < D; ++d) out[i * D + d] = xi[d] * r * w[d];
  }
}

template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int64_t N,
                      int64_t D) {
  // y = x r w, r = (mean x^2 + eps)^-1/2:  dx = r (w dy) - r^3 x mean(x w dy)
#pragma omp parallel for schedule(static) if (N * D > 65536)
  for (int64_t i = 0; i < N; ++i) {
    const T* xi = x + i * D;
    const T* gi = dout + i * D;
    const T r = rstd[i];
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += double(gi[d]) * w[d] * xi[d];
    const T c = T(dot / double(D)) * r * r * r;
    for (int64_t d = 0; d < D; ++d) dx[i * D + d] += r * w[d] * gi[d] - c * xi[d];
  }
  // Parameter gradient: a column reduction, kept serial over rows for a fixed summation order.
  for (int64_t i = 0; i < N; ++i) {
    const T r = rstd[i];
    for (int64_t d = 0; d < D; ++d) dw[d] += dout[i * D + d] * x[i * D + d] * r;
  }
}

// ---------------------------------------------------------------- linear ----
template <typename T>
void linear_forward(T* out, const T* x, const T* W, int64_t N, int64_t I, int64_t O) {
  gemm(false, true, N, O, I, x, I, W, I, T(0), out, O);
}

template <typename T>
void linear_backward(T* dx, T* dW, const T* dout, const T* x, const T* W, int64_t N, int64_t I,
                     int64_t O, bool accumulate_dx) {
  if (dx) gemm(false, false, N, I, O, dout, O, W, I, accumulate_dx ? T(1) : T(0), dx, I);
  gemm(true, false, O, I, N, dout, O, x, I, T(1), dW, I);
}

// ---------------------------------------------------------------- swiglu ----
template <typename T>
void swiglu_forward(T* a, const T* g, const T* u, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) a[i] = g[i] * sigmoid(g[i]) * u[i];
}

template <typename T>
void swiglu_backward(T* dg, T* du, const T* da, const T* g, const T* u, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(g[i]);
    const T silu = g[i] * s;
    du[i] = da[i] * silu;
    dg[i] = da[i] * u[i] * (s + silu * (T(1) - s));
  }
}

// --------------------------------------------------------- cross-entropy ----
template <typename T>
double cross_entropy(T* logits, const int32_t* targets, int64_t N, int64_t V, T scale, bool backward,
                     int64_t* n_scored, const T* row_scale, double* row_loss) {
  std::vector<double> loss(static_cast<size_t>(N), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    T* z = logits + i * V;
    const int32_t t = targets[i];
    if (t < 0) {
      if (backward) std::fill(z, z + V, T(0));
      continue;
    }
    T m = z[0];
    for (int64_t j = 1; j < V; ++j) m = std::max(m, z[j]);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(double(z[j] - m));
    const double lse = double(m) + std::log(sum);
    loss[size_t(i)] = lse - double(z[t]);
    if (backward) {
      const T g = row_scale ? scale * row_scale[i] : scale;
      for (int64_t j = 0; j < V; ++j) z[j] = T(std::exp(double(z[j]) - lse)) * g;
      z[t] -= g;
    }
  }
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    total += loss[size_t(i)];
    count += targets[i] >= 0;
    if (row_loss) row_loss[i] = loss[size_t(i)];
  }
  *n_scored = count;
  return total;
}

// ------------------------------------------------------------- GOAT key ----
template <typename T>
void goat_key_forward(T* u, T* pre, const T* phi, const T* w1, const T* b1, const T* w2,
                      const T* first, int64_t n, int64_t P, int64_t Hu, int64_t Hkv) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < Hu; ++j) {
      T z = b1[j];
      for (int64_t p = 0; p < P; ++p) z += w1[j * P + p] * phi[i * P + p];
      pre[i * Hu + j] = z;
    }
    for (int64_t g = 0; g < Hkv; ++g) {
      T acc = i == 0 ? first[g] : T(0);
      for (int64_t j = 0; j < Hu; ++j) {
        const T z = pre[i * Hu + j];
        acc += w2[g * Hu + j] * z * sigmoid(z);
      }
      u[g * n + i] = acc;
    }
  }
}

template <typename T>
void goat_key_backward(T* dw1, T* db1, T* dw2, T* dfirst, const T* du, const T* pre, const T* phi,
                       const T* w2, int64_t n, int64_t P, int64_t Hu, int64_t Hkv) {
  std::vector<T> dact(static_cast<size_t>(Hu));
  for (int64_t i = 0; i < n; ++i) {
    std::fill(dact.begin(), dact.end(), T(0));
    for (int64_t g = 0; g < Hkv; ++g) {
      const T d = du[g * n + i];
      if (i == 0) dfirst[g] += d;
      for (int64_t j = 0; j < Hu; ++j) {
        const T z = pre[i * Hu + j];
        dw2[g * Hu + j] += d * z * sigmoid(z);
        dact[size_t(j)] += d * w2[g * Hu + j];
      }
    }
    for (int64_t j = 0; j < Hu; ++j) {
      const T z = pre[i * Hu + j];
      const T s = sigmoid(z);
      const T dz = dact[size_t(j)] * (s + z * s * (T(1) - s));
      db1[j] += dz;
      for (int64_t p = 0; p < P; ++p) dw1[j * P + p] += dz * phi[i * P + p];
    }
  }
}

#define SINKLAB_TRAIN_LAYERS(T)                                                                       \
  template void embedding_forward<T>(T*, const int32_t*, const T*, int64_t, int64_t);                 \
  template void embedding_backward<T>(T*, const T*, const int32_t*, int64_t, int64_t);                \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, float);              \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t); \
  template void linear_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);                 \
  template void linear_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,   \
                                   bool);                                                             \
  template void swiglu_forward<T>(T*, const T*, const T*, int64_t);                                   \
  template void swiglu_backward<T>(T*, T*, const T*, const T*, const T*, int64_t);                    \
  template double cross_entropy<T>(T*, const int32_t*, int64_t, int64_t, T, bool, int64_t*, const T*, double*);          \
  template void goat_key_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                    int64_t, int64_t, int64_t);                                       \
  template void goat_key_backward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, int64_t,  \
                                     int64_t, int64_t, int64_t);

SINKLAB_TRAIN_LAYERS(float)
SINKLAB_TRAIN_LAYERS(double)

}  // namespace sinklab::train_layers
