// Decode tiles: up to kFewRows (8) query rows (one query, or a GQA group)
// against a block of keys. They are bound by reading K and V, so BLAS packing
// costs more than it saves; each key row is read once and used for every query
// row (GQA 8:2 decode over 65536 keys: ~20% faster than through BLAS tiles,
// with the values fetched alongside the keys; a group of eight ~1.7x faster).
//
// One row: 8-float vectors, keys 8 at a time (few_rows_qk, few_rows_pv).
// Two to four rows (a GQA group): 16-float vectors, each key row loaded once
// for all rows (group_qk, group_pv), which halves the instructions per key
// where AVX-512 is there and keeps the register tiles small where it is not.
// Five to eight rows: two passes of at most four.
#pragma once

#include <cstdint>
#include <cstring>

#include "sinklab/vec_math.h"

namespace sinklab::attn {
using namespace sinklab::vec;  // the shared vector helpers
}  // namespace sinklab::attn

namespace sinklab::attn {

// Asks for rows [j0, j1) (row_bytes each) of the values of the keys whose
// logits are being computed, or of the next key block during a P.V, so that a
// long cache keeps two memory streams going (values with keys, keys with P.V)
// rather than one after the other.
struct PrefetchRows {
  const float* rows = nullptr;  // row j at rows + j * ld
  int64_t ld = 0, row_bytes = 0;
  void prefetch(int j0, int j1) const {
    if (!rows) return;
    for (int j = j0; j < j1; ++j) {
      const char* row = reinterpret_cast<const char*>(rows + j * ld);
      for (int64_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(row + o, 0, 3);
    }
  }
};

// Keys are taken 8 at a time (one query load feeds 8 key rows); the 8 keys'
// 2 KiB (head_dim 64) stay in L1 for the second row.
inline void few_rows_qk(const float* q, int n, int D, const float* k, int64_t k_stride, int nk, float* s,
                        int ld, const PrefetchRows& next) {
  int j = 0;
  if (D % 8 == 0)
    for (; j + 8 <= nk; j += 8) {
      next.prefetch(j, j + 8);
      for (int r = 0; r < n; ++r) dot_8rows(q + r * D, k + j * k_stride, k_stride, D, s + r * ld + j);
    }
  next.prefetch(j, nk);
  for (; j < nk; ++j)
    for (int r = 0; r < n; ++r) s[r * ld + j] = dot(q + r * D, k + j * k_stride, D);
}

// acc[r] += sum_j p[r][j] v[j]. The accumulator columns stay in registers over
// all keys (64 columns at a time, 8 independent vectors): adding into memory
// key by key would chain every key's store to the next key's load. The first
// pass over the keys also asks for the next key block's rows (`next`), so that
// memory keeps streaming while the values are summed from the caches.
inline void few_rows_pv(const float* p, int ldp, int n, int nk, const float* v, int64_t ldv, int64_t Dv,
                        float* acc, const PrefetchRows& next, int next_rows) {
  // One next row per key of the first pass; the rest after it.
  int next_done = next.rows ? 0 : next_rows;
  for (int r = 0; r < n; ++r) {
    const float* pr = p + r * ldp;
    float* a = acc + r * Dv;
    int64_t e = 0;
    for (; e + 64 <= Dv; e += 64) {
      f32x8 s[8];
      for (int u = 0; u < 8; ++u) load8(a + e + 8 * u, s[u]);
      for (int j = 0; j < nk; ++j) {
        if (next_done < next_rows) next.prefetch(next_done, next_done + 1), ++next_done;
        if (pr[j] == 0.f) continue;
        const f32x8 w = f32x8{} + pr[j];
        const float* vj = v + j * ldv + e;
        for (int u = 0; u < 8; ++u) {
          f32x8 x;
          load8(vj + 8 * u, x);
          s[u] += w * x;
        }
      }
      std::memcpy(a + e, s, sizeof s);
    }
    for (; e + 8 <= Dv; e += 8) {
      f32x8 s0;
      load8(a + e, s0);
      for (int j = 0; j < nk; ++j) {
        f32x8 x;
        load8(v + j * ldv + e, x);
        s0 += (f32x8{} + pr[j]) * x;
      }
      std::memcpy(a + e, &s0, sizeof s0);
    }
    for (; e < Dv; ++e) {
      float s0 = a[e];
      for (int j = 0; j < nk; ++j) s0 += pr[j] * v[j * ldv + e];
      a[e] = s0;
    }
  }
  next.prefetch(next_done, next_rows);
}

using f32x16 = float __attribute__((vector_size(64)));
using f32x4 = float __attribute__((vector_size(16)));

inline void load16(const void* p, f32x16& v) { std::memcpy(&v, p, sizeof v); }

// The four sums of four 16-float vectors, out[u] = sum of v[u]'s lanes: halves
// added, then pairs of vectors interleaved and added twice (a transpose by
// additions; four separate lane sums would take twice the shuffles).
inline void hsum4x16(const f32x16 (&v)[4], float* out) {
  f32x8 h[4];
  for (int u = 0; u < 4; ++u)
    h[u] = __builtin_shufflevector(v[u], v[u], 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v[u], v[u], 8, 9, 10, 11, 12, 13, 14, 15);
  const f32x8 p01 = __builtin_shufflevector(h[0], h[1], 0, 8, 2, 10, 4, 12, 6, 14) +
                    __builtin_shufflevector(h[0], h[1], 1, 9, 3, 11, 5, 13, 7, 15);
  const f32x8 p23 = __builtin_shufflevector(h[2], h[3], 0, 8, 2, 10, 4, 12, 6, 14) +
                    __builtin_shufflevector(h[2], h[3], 1, 9, 3, 11, 5, 13, 7, 15);
  // Lanes: v0 v1 v2 v3 (sums of lanes 0-3), then v0 v1 v2 v3 (lanes 4-7).
  const f32x8 q = __builtin_shufflevector(p01, p23, 0, 1, 8, 9, 4, 5, 12, 13) +
                  __builtin_shufflevector(p01, p23, 2, 3, 10, 11, 6, 7, 14, 15);
  const f32x4 sums = __builtin_shufflevector(q, q, 0, 1, 2, 3) + __builtin_shufflevector(q, q, 4, 5, 6, 7);
  std::memcpy(out, &sums, sizeof sums);
}

// s[r][j] = q[r] . k[j] for N rows, D a multiple of 16: keys four at a time,
// each 16-float piece of a key loaded once for all N rows (4 x N accumulators).
template <int N>
void group_qk(const float* q, int D, const float* k, int64_t k_stride, int nk, float* s, int ld,
              const PrefetchRows& next) {
  int j = 0;
  for (; j + 4 <= nk; j += 4) {
    next.prefetch(j, j + 4);
    f32x16 acc[N][4] = {};
    for (int i = 0; i < D; i += 16) {
      f32x16 kv[4];
      for (int u = 0; u < 4; ++u) load16(k + (j + u) * k_stride + i, kv[u]);
#pragma GCC unroll 4
      for (int r = 0; r < N; ++r) {
        f32x16 qv;
        load16(q + r * D + i, qv);
        for (int u = 0; u < 4; ++u) acc[r][u] += qv * kv[u];
      }
    }
    for (int r = 0; r < N; ++r) hsum4x16(acc[r], s + r * ld + j);
  }
  next.prefetch(j, nk);
  for (; j < nk; ++j)
    for (int r = 0; r < N; ++r) s[r * ld + j] = dot(q + r * D, k + j * k_stride, D);
}

// acc[r] += sum_j p[r][j] v[j] for N rows, Dv a multiple of 64: 64 columns at
// a time, each key's 64 values loaded once for all N rows (4 x N accumulators
// in registers over all keys). Keys whose probabilities are all 0 are skipped,
// as in few_rows_pv and the reference. The first pass asks for the next key
// block's rows, one per key, as few_rows_pv does.
template <int N>
void group_pv(const float* p, int ldp, int nk, const float* v, int64_t ldv, int64_t Dv, float* acc,
              const PrefetchRows& next, int next_rows) {
  int next_done = next.rows ? 0 : next_rows;
  for (int64_t e = 0; e < Dv; e += 64) {
    f32x16 a[N][4];
    for (int r = 0; r < N; ++r)
      for (int u = 0; u < 4; ++u) load16(acc + r * Dv + e + 16 * u, a[r][u]);
    for (int j = 0; j < nk; ++j) {
      if (next_done < next_rows) next.prefetch(next_done, next_done + 1), ++next_done;
      bool hidden = true;  // a key no row sees adds nothing, whatever its values hold
      for (int r = 0; r < N; ++r) hidden = hidden && p[r * ldp + j] == 0.f;
      if (hidden) continue;
      f32x16 x[4];
      for (int u = 0; u < 4; ++u) load16(v + j * ldv + e + 16 * u, x[u]);
#pragma GCC unroll 4
      for (int r = 0; r < N; ++r) {
        const f32x16 w = f32x16{} + p[r * ldp + j];
        for (int u = 0; u < 4; ++u) a[r][u] += w * x[u];
      }
    }
    for (int r = 0; r < N; ++r) std::memcpy(acc + r * Dv + e, a[r], sizeof a[r]);
  }
  next.prefetch(next_done, next_rows);
}

// The logits of n <= kFewRows rows: a group's kernel where the shapes allow;
// groups of five to eight rows in two passes of at most four (the second reads
// the block's keys from the caches).
inline void rows_qk(const float* q, int n, int D, const float* k, int64_t k_stride, int nk, float* s, int ld,
                    const PrefetchRows& next) {
  if (n < 2 || D % 16 != 0) return few_rows_qk(q, n, D, k, k_stride, nk, s, ld, next);
  if (n > 4) {
    rows_qk(q, 4, D, k, k_stride, nk, s, ld, next);
    return rows_qk(q + 4 * D, n - 4, D, k, k_stride, nk, s + 4 * ld, ld, PrefetchRows{});
  }
  if (n == 2) return group_qk<2>(q, D, k, k_stride, nk, s, ld, next);
  if (n == 3) return group_qk<3>(q, D, k, k_stride, nk, s, ld, next);
  return group_qk<4>(q, D, k, k_stride, nk, s, ld, next);
}

// The P.V of n <= kFewRows rows: a group's kernel where the shapes allow;
// groups of five to eight rows in two passes of at most four.
inline void rows_pv(const float* p, int ldp, int n, int nk, const float* v, int64_t ldv, int64_t Dv, float* acc,
                    const PrefetchRows& next, int next_rows) {
  if (n < 2 || Dv % 64 != 0) return few_rows_pv(p, ldp, n, nk, v, ldv, Dv, acc, next, next_rows);
  if (n > 4) {
    rows_pv(p, ldp, 4, nk, v, ldv, Dv, acc, next, next_rows);
    return rows_pv(p + 4 * ldp, ldp, n - 4, nk, v, ldv, Dv, acc + 4 * Dv, PrefetchRows{}, 0);
  }
  if (n == 2) return group_pv<2>(p, ldp, nk, v, ldv, Dv, acc, next, next_rows);
  if (n == 3) return group_pv<3>(p, ldp, nk, v, ldv, Dv, acc, next, next_rows);
  return group_pv<4>(p, ldp, nk, v, ldv, Dv, acc, next, next_rows);
}

}  // namespace sinklab::attn
