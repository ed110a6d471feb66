// Internal helpers shared by every attention implementation: validated
// dimensions, positions, the mask rule and the additive biases. Keeping them
// here is what lets every kernel consume the same AttnSpec.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sinklab/attention.h"

namespace sinklab::attn {

struct Dims {
  int64_t batch = 0, n_heads = 0, n_kv_heads = 0, n_q = 0, n_k = 0, head_dim = 0, v_dim = 0;
  int64_t group = 1;  // query heads per kv head
  int64_t kv_head(int64_t h) const { return h / group; }
};

// Checks q/k/v shapes, dtypes and every spec field; throws Error naming the problem.
Dims validate(const AttnSpec& spec, const TensorView& q, const TensorView& k, const TensorView& v);
// Checks an output view ([b, h, n_q, v_dim] or [b, h, n_q]).
void validate_outputs(const Dims& d, const TensorView& o, const TensorView& lse, const AttnStats* stats);
// Throws when check_finite is set and an input holds NaN or Inf.
void check_inputs_finite(const AttnSpec& spec, const Dims& d, const TensorView& q,
                         const TensorView& k, const TensorView& v);

inline float effective_scale(const AttnSpec& s, const Dims& d) {
  return s.scale > 0.f ? s.scale : float(1.0 / std::sqrt(double(d.head_dim)));
}

inline int32_t q_position(const AttnSpec& s, const Dims& d, int64_t b, int64_t i) {
  return s.q_pos ? s.q_pos[b * s.q_pos_batch_stride + i] : int32_t(i + d.n_k - d.n_q);
}
inline int32_t k_position(const AttnSpec& s, const Dims&, int64_t b, int64_t j) {
  return s.k_pos ? s.k_pos[b * s.k_pos_batch_stride + j] : int32_t(j);
}

// The mask rule of AttnSpec.
inline bool visible(const AttnSpec& s, int64_t j, int64_t qp, int64_t kp) {
  if (s.causal && kp > qp) return false;
  if (s.window > 0 && j >= s.sink_keys) {
    const int64_t dist = qp >= kp ? qp - kp : kp - qp;
    if (dist >= s.window) return false;
  }
  return true;
}

inline bool has_bias(const AttnSpec& s) {
  return s.goat.rank > 0 || !s.key_bias.empty() || s.alibi_slopes != nullptr;
}

inline float key_bias_at(const AttnSpec& s, int64_t b, int64_t g, int64_t j) {
  return *static_cast<const float*>(s.key_bias.at(b, g, j));
}

// Reads element i of row `row` (a pointer to a row of a possibly bf16/f16 view) as double.
inline double load_scalar(DType t, const void* row, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(row)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const bf16*>(row)[i]);
    case DType::F16: return f16_to_f32(static_cast<const f16*>(row)[i]);
  }
  return 0.0;
}

// Whether a parallel region of run_tasks pays for itself. Waking an OpenMP team
// costs about as much as a few hundred thousand multiply-adds, which tiny
// problems never recoup; the pool of a decode step (n_queries <=
// kPoolStepTokens) hands tasks to workers that spin between the step's
// products, a few microseconds' worth of work: single-query attention over
// 64 keys and 12 heads (~1e5 multiply-adds, K and V read cold after a step's
// weight stream) takes ~30 us on one thread; on two, whole decode steps of
// the benchmark model run 1.4% (f32) and 3-4% (bf16) faster
// (docs/results/model-bench.md).
inline bool worth_threads(double multiply_adds, int64_t n_queries) {
  return multiply_adds > (n_queries <= kPoolStepTokens ? 3e4 : 3e5);
}

// Runs body(task, slot) for tasks [0, n) on `threads` threads (slot < threads
// names the thread, for per-thread scratch) with the thread runtime of the
// model step around the call: a step of at most kPoolStepTokens queries (decode)
// runs its matrix products on parallel_tasks' pool, a longer one on OpenBLAS's
// OpenMP team. Sharing the runtime matters on small machines: the idle threads
// of one runtime spin for a while after each region and would take the CPU from
// the other's workers.
template <class Body>
void run_tasks(int64_t n, int threads, int64_t n_queries, const Body& body) {
  if (threads <= 1 || n <= 1) {
    for (int64_t t = 0; t < n; ++t) body(t, 0);
  } else if (n_queries <= kPoolStepTokens) {
    parallel_tasks(n, threads, body);
  } else {
#pragma omp parallel num_threads(threads)
    {
      const int slot = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < n; ++t) body(t, slot);
    }
  }
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace sinklab::attn
