// The layers of the training decoder, each forward next to its backward
// (llm.c style). Row-major [N, C] activations; weights [out, in] as in
// PyTorch's nn.Linear. Backward functions ADD into parameter gradients and
// write (or add, where named) input gradients. Templated on the scalar so the
// same code runs in float (training) and double (finite-difference tests).
#pragma once

#include <cstdint>

namespace sinklab::train_layers {

// out[i] = table[ids[i]]
template <typename T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t D);
// dtable[ids[i]] += dout[i]
template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t D);

// out = x / rms(x) * w; rstd[N] saved for backward.
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int64_t N, int64_t D, float eps);
// dx += ..., dw += ...
template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int64_t N,
                      int64_t D);

// out[N, O] = x[N, I] W[O, I]^T
template <typename T>
void linear_forward(T* out, const T* x, const T* W, int64_t N, int64_t I, int64_t O);
// dx[N, I] (= or += per accumulate_dx), dW[O, I] +=
template <typename T>
void linear_backward(T* dx, T* dW, const T* dout, const T* x, const T* W, int64_t N, int64_t I,
                     int64_t O, bool accumulate_dx);

// a = silu(g) * u
template <typename T>
void swiglu_forward(T* a, const T* g, const T* u, int64_t n);
template <typename T>
void swiglu_backward(T* dg, T* du, const T* da, const T* g, const T* u, int64_t n);

// Softmax cross-entropy per row; targets < 0 are skipped. Overwrites logits
// with d(sum of losses * scale * row_scale[i])/d logits when `backward`
// (row_scale null = 1; a negative one ascends). Returns the loss sum, sets
// *n_scored and, when row_loss is given, each row's loss (0 where skipped).
template <typename T>
double cross_entropy(T* logits, const int32_t* targets, int64_t N, int64_t V, T scale, bool backward,
                     int64_t* n_scored, const T* row_scale = nullptr, double* row_loss = nullptr);

// GOAT key prior u for positions 0..n-1 of one layer (see PriorConfig):
// phi [n, P] are the position features, act [n, Hu] the saved pre-activations.
template <typename T>
void goat_key_forward(T* u, T* pre, const T* phi, const T* w1, const T* b1, const T* w2,
                      const T* first, int64_t n, int64_t P, int64_t Hu, int64_t Hkv);
// du [Hkv, n] -> dw1 [Hu, P], db1 [Hu], dw2 [Hkv, Hu], dfirst [Hkv] (all +=).
template <typename T>
void goat_key_backward(T* dw1, T* db1, T* dw2, T* dfirst, const T* du, const T* pre, const T* phi,
                       const T* w2, int64_t n, int64_t P, int64_t Hu, int64_t Hkv);

}  // namespace sinklab::train_layers
