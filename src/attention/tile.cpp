#include "tile.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "few_rows.h"
#include "sinklab/vec_math.h"

namespace sinklab::attn {
using namespace sinklab::vec;  // the shared vector helpers
}  // namespace sinklab::attn

namespace sinklab::attn {

namespace {

// Smallest and largest query and key positions of batch entry b (INT64_MAX /
// INT64_MIN when there are none).
struct PositionBounds {
  int64_t qmin = INT64_MAX, qmax = INT64_MIN, kmin = INT64_MAX, kmax = INT64_MIN;
};
PositionBounds position_bounds(const AttnSpec& spec, const Dims& d, int64_t b) {
  PositionBounds pb;
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t p = q_position(spec, d, b, i);
    pb.qmin = std::min(pb.qmin, p);
    pb.qmax = std::max(pb.qmax, p);
  }
  for (int64_t j = 0; j < d.n_k; ++j) {
    const int64_t p = k_position(spec, d, b, j);
    pb.kmin = std::min(pb.kmin, p);
    pb.kmax = std::max(pb.kmax, p);
  }
  return pb;
}

}  // namespace

TileContext::TileContext(const AttnSpec& s, const Dims& dims, bool for_backward) : spec(s), d(dims) {
  scale = effective_scale(s, dims);
  rope = s.rope.style != RopeStyle::None;
  if (rope) {
    rope_table = sinklab::rope_table(s.rope, int(dims.head_dim));
    build_rope_cs();
  }
  goat_rank = s.goat.rank;
  goat_omega = goat_frequencies(goat_rank, s.goat.base);
  alibi = s.alibi_slopes != nullptr;
  key_bias = !s.key_bias.empty();
  if (goat_rank > 0 || alibi) build_rel_table();
  need_goat_features = goat_rank > 0 && (for_backward || !use_rel_table());
}

void TileContext::build_rel_table() {
  rel_per_batch = spec.q_pos_batch_stride != 0 || spec.k_pos_batch_stride != 0;
  const int64_t tables = rel_per_batch ? d.batch : 1;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t b = 0; b < tables; ++b) {
    const PositionBounds pb = position_bounds(spec, d, b);
    if (d.n_q == 0 || d.n_k == 0) return;
    lo = std::min(lo, pb.qmin - pb.kmax);
    hi = std::max(hi, pb.qmax - pb.kmin);
  }
  const int64_t range = hi - lo + 1;
  // Sparse positions (large gaps) or a huge table: keep the per-tile product.
  if (range > 4 * (d.n_q + d.n_k) + 256 || range * tables * d.n_heads > (int64_t(1) << 24)) return;
  rel_min = lo;
  rel_range = range;
  rel.assign(size_t(tables * d.n_heads * range), 0.f);
  std::vector<double> kappa(static_cast<size_t>(range));
  const int R = goat_rank;
  for (int64_t t = 0; t < tables; ++t)
    for (int64_t g = 0; g < d.n_kv_heads; ++g) {
      std::fill(kappa.begin(), kappa.end(), 0.0);
      for (int r = 0; r < R; ++r) {
        const double A = spec.goat.lambda_sym[g * R + r], B = spec.goat.lambda_asym[g * R + r];
        // cos/sin of w*delta for consecutive deltas by rotation, in double.
        const double w = goat_omega[size_t(r)], cw = std::cos(w), sw = std::sin(w);
        double c = std::cos(w * double(lo)), s = std::sin(w * double(lo));
        for (int64_t i = 0; i < range; ++i) {
          kappa[size_t(i)] += A * c + B * s;
          const double c2 = c * cw - s * sw;
          s = s * cw + c * sw;
          c = c2;
        }
      }
      for (int64_t h = g * d.group; h < (g + 1) * d.group; ++h) {
        float* row = rel.data() + (t * d.n_heads + h) * range;
        const double slope = alibi ? double(spec.alibi_slopes[h]) : 0.0;
        for (int64_t i = 0; i < range; ++i)
          row[i] = float(kappa[size_t(i)] - slope * double(std::abs(lo + i)));
      }
    }
}

namespace {

// cos and sin of angle = pos * freq, with the angle formed and reduced in double
// so that large positions keep full float precision.
inline void cos_sin(double pos, double freq, float& c, float& s) {
  double a = std::fmod(pos * freq, 2 * std::numbers::pi);
  c = float(std::cos(a));
  s = float(std::sin(a));
}

// Rotates x (f32, head_dim) to position pos as RopeSpec defines (direction +1),
// or applies the transposed rotation (direction -1, for gradients).
void rotate_dir(const TileContext& c, float* x, int32_t pos, float direction) {
  const int half = int(c.rope_table.inv_freq.size());
  const bool neox = c.spec.rope.style == RopeStyle::RotateHalf;
  const float ms = c.rope_table.mscale;
  const int64_t row = int64_t(pos) - c.rope_pos0;
  const float* cached = c.rope_cs && row >= 0 && row < c.rope_npos ? c.rope_cs->data() + row * 2 * half : nullptr;
  for (int i = 0; i < half; ++i) {
    float cs, sn;
    if (cached) {
      cs = cached[i];
      sn = direction * cached[half + i];
    } else {
      cos_sin(pos, c.rope_table.inv_freq[size_t(i)], cs, sn);
      cs *= ms;
      sn *= ms * direction;
    }
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float xa = x[a], xb = x[b];
    x[a] = xa * cs - xb * sn;
    x[b] = xb * cs + xa * sn;
  }
}

}  // namespace

void TileContext::build_rope_cs() {
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t b = 0; b < d.batch; ++b) {
    const PositionBounds pb = position_bounds(spec, d, b);
    lo = std::min({lo, pb.qmin, pb.kmin});
    hi = std::max({hi, pb.qmax, pb.kmax});
  }
  if (lo > hi) return;
  const int64_t half = int64_t(rope_table.inv_freq.size()), need = hi - lo + 1;
  constexpr int64_t kMaxFloats = int64_t(1) << 22;  // 16 MiB kept per thread at most
  // Sparse positions (e.g. sinks at 0 and a window near 10^6) or a huge table:
  // rotate with a sine and cosine per pair as before.
  if (half == 0 || need > 4 * (d.n_q + d.n_k) + 256 || need * 2 * half > kMaxFloats) return;
  struct Cached {
    std::vector<double> inv_freq;
    float mscale = 0.f;
    int64_t pos0 = 0, npos = 0;
    std::shared_ptr<const std::vector<float>> cs;
  };
  thread_local Cached cache;
  if (!cache.cs || cache.inv_freq != rope_table.inv_freq || cache.mscale != rope_table.mscale ||
      lo < cache.pos0 || hi >= cache.pos0 + cache.npos) {
    // Room for positions to come: decode steps move them one at a time.
    const int64_t npos = std::min(need + need / 4 + 64, kMaxFloats / (2 * half));
    auto cs = std::make_shared<std::vector<float>>(size_t(npos * 2 * half));
    for (int64_t p = 0; p < npos; ++p) {
      float* row = cs->data() + p * 2 * half;
      for (int64_t i = 0; i < half; ++i) {
        cos_sin(double(lo + p), rope_table.inv_freq[size_t(i)], row[i], row[half + i]);
        row[i] *= rope_table.mscale;
        row[half + i] *= rope_table.mscale;
      }
    }
    cache = Cached{rope_table.inv_freq, rope_table.mscale, lo, npos, std::move(cs)};
  }
  rope_cs = cache.cs;
  rope_pos0 = cache.pos0;
  rope_npos = cache.npos;
}

namespace {

void rotate(const TileContext& c, float* x, int32_t pos) { rotate_dir(c, x, pos, 1.f); }

}  // namespace

void rotate_back(const TileContext& c, float* x, int32_t pos) { rotate_dir(c, x, pos, -1.f); }

namespace {

void load_row_f32(const TensorView& t, int64_t i0, int64_t i1, int64_t i2, float* dst, int64_t n) {
  to_f32(t.dtype, t.at(i0, i1, i2), dst, size_t(n));
}

// fn(j) for every key j in [0, nk), in blocks of 64 keys on run_tasks when the
// work (about work_per_key multiply-adds each) pays for threads.
template <class Fn>
void for_each_key(const TileContext& c, int64_t nk, double work_per_key, const Fn& fn) {
  constexpr int64_t kKeysPerTask = 64;
  const int threads = worth_threads(double(nk) * work_per_key, c.d.n_q) ? num_threads() : 1;
  run_tasks((nk + kKeysPerTask - 1) / kKeysPerTask, threads, c.d.n_q, [&](int64_t task, int) {
    const int64_t j1 = std::min(nk, (task + 1) * kKeysPerTask);
    for (int64_t j = task * kKeysPerTask; j < j1; ++j) fn(j);
  });
}

}  // namespace

void prepare_keys(const TileContext& c, const TensorView& k, int64_t b, int64_t g, KeySet& ks,
                  const KeySet* same_batch) {
  const Dims& d = c.d;
  const int64_t nk = d.n_k, D = d.head_dim;
  if (same_batch) {  // positions depend on the batch entry only
    ks.pos = same_batch->pos;
    ks.block_min = same_batch->block_min;
    ks.block_max = same_batch->block_max;
    ks.block_consecutive = same_batch->block_consecutive;
  } else {
    ks.pos.resize(size_t(nk));
    for (int64_t j = 0; j < nk; ++j) ks.pos[size_t(j)] = k_position(c.spec, d, b, j);
    const int64_t nblocks = (nk + kBlockK - 1) / kBlockK;
    ks.block_min.assign(size_t(nblocks), 0);
    ks.block_max.assign(size_t(nblocks), 0);
    ks.block_consecutive.assign(size_t(nblocks), 0);
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t j0 = blk * kBlockK, j1 = std::min(nk, j0 + kBlockK);
      const auto [mn, mx] = std::minmax_element(ks.pos.begin() + j0, ks.pos.begin() + j1);
      ks.block_min[size_t(blk)] = *mn;
      ks.block_max[size_t(blk)] = *mx;
      bool consecutive = true;
      for (int64_t j = j0 + 1; j < j1 && consecutive; ++j)
        consecutive = ks.pos[size_t(j)] == ks.pos[size_t(j - 1)] + 1;
      ks.block_consecutive[size_t(blk)] = consecutive;
    }
  }
  // In place only when rows are a valid BLAS leading dimension apart (a broadcast
  // view may have a smaller or zero row stride).
  if (k.dtype == DType::F32 && !c.rope && k.stride[2] >= D) {
    ks.k = static_cast<const float*>(k.at(b, g, 0));
    ks.k_stride = k.stride[2];
  } else {
    ks.k_storage.resize(size_t(nk * D));
    float* dst = ks.k_storage.data();
    for_each_key(c, nk, double(D) * 8, [&](int64_t j) {
      load_row_f32(k, b, g, j, dst + j * D, D);
      if (c.rope) rotate(c, dst + j * D, ks.pos[size_t(j)]);
    });
    ks.k = dst;
    ks.k_stride = D;
  }
  const int R = c.goat_rank;
  if (c.need_goat_features) {
    ks.features.resize(size_t(nk * 2 * R));
    float* f = ks.features.data();
    for_each_key(c, nk, double(R) * 40, [&](int64_t j) {
      for (int r = 0; r < R; ++r)
        cos_sin(ks.pos[size_t(j)], c.goat_omega[size_t(r)], f[j * 2 * R + r], f[j * 2 * R + R + r]);
    });
  }
}

const float* value_block(const TensorView& v, int64_t b, int64_t g, int64_t j0, int64_t nk,
                         float* scratch, int64_t& ld) {
  if (v.dtype == DType::F32 && v.stride[2] >= v.shape[3]) {
    ld = v.stride[2];
    return static_cast<const float*>(v.at(b, g, j0));
  }
  const int64_t Dv = v.shape[3];
  for (int64_t j = 0; j < nk; ++j) load_row_f32(v, b, g, j0 + j, scratch + j * Dv, Dv);
  ld = Dv;
  return scratch;
}

void load_rows(const TileContext& c, const TensorView& q, RowBlock& rb) {
  const int64_t D = c.d.head_dim;
  const bool prescale = c.spec.softcap <= 0.f;
  const int R = c.goat_rank;
  rb.qpos_min = INT32_MAX;
  rb.qpos_max = INT32_MIN;
  for (int r = 0; r < rb.n; ++r) {
    const int32_t pos = q_position(c.spec, c.d, rb.b, rb.query[r]);
    rb.qpos[r] = pos;
    rb.qpos_min = std::min(rb.qpos_min, pos);
    rb.qpos_max = std::max(rb.qpos_max, pos);
    float* x = rb.q + r * D;
    load_row_f32(q, rb.b, rb.head[r], rb.query[r], x, D);
    if (c.rope) rotate(c, x, pos);
    if (prescale)
      for (int64_t e = 0; e < D; ++e) x[e] *= c.scale;
    if (c.need_goat_features) {
      const float* A = c.spec.goat.lambda_sym + rb.g * R;
      const float* B = c.spec.goat.lambda_asym + rb.g * R;
      float* f = rb.qf + r * 2 * R;
      for (int k = 0; k < R; ++k) {
        float cs, sn;
        cos_sin(pos, c.goat_omega[size_t(k)], cs, sn);
        f[k] = A[k] * cs + B[k] * sn;
        f[R + k] = A[k] * sn - B[k] * cs;
      }
    }
  }
}

TileMask classify_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks, int64_t j0,
                       int64_t nk) {
  const AttnSpec& s = c.spec;
  const int64_t blk = j0 / kBlockK;
  const int64_t kmin = ks.block_min[size_t(blk)], kmax = ks.block_max[size_t(blk)];
  const int64_t qmin = rb.qpos_min, qmax = rb.qpos_max;
  const bool any_sink = j0 < s.sink_keys, all_sink = j0 + nk <= s.sink_keys;
  if (s.causal && kmin > qmax) return TileMask::Hidden;
  if (s.window > 0 && !any_sink) {
    if (qmin - kmax >= s.window) return TileMask::Hidden;
    if (!s.causal && kmin - qmax >= s.window) return TileMask::Hidden;
  }
  const bool causal_ok = !s.causal || kmax <= qmin;
  const bool window_ok = s.window == 0 || all_sink ||
                         (qmax - kmin < s.window && (s.causal || kmax - qmin < s.window));
  return causal_ok && window_ok ? TileMask::Visible : TileMask::Partial;
}

// The one place a logit is computed (a kernel, long on purpose): scale, RoPE,
// softcap, priors and mask are applied in the order the math defines, each in
// its own vectorised pass over the tile.
void logits_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks, int64_t j0, int nk,
                 TileMask mask, float* s, int ld, float* pre_cap, const TensorView* values) {
  const AttnSpec& sp = c.spec;
  const int n = rb.n;
  const int D = int(c.d.head_dim);
  if (n <= kFewRows) {
    PrefetchRows next;
    if (values && values->dtype == DType::F32 && values->stride[2] >= values->shape[3]) {
      next.rows = static_cast<const float*>(values->at(rb.b, rb.g, j0));
      next.ld = values->stride[2];
      next.row_bytes = values->shape[3] * int64_t(sizeof(float));
    }
    rows_qk(rb.q, n, D, ks.k + j0 * ks.k_stride, ks.k_stride, nk, s, ld, next);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, D, 1.f, rb.q, D,
                ks.k + j0 * ks.k_stride, int(ks.k_stride), 0.f, s, ld);
  }
  if (sp.softcap > 0.f) {
    const float cap = sp.softcap, inv = 1.f / sp.softcap;
    for (int r = 0; r < n; ++r) {
      float* row = s + r * ld;
      for (int j = 0; j < nk; ++j) {
        const float x = row[j] * c.scale;
        if (pre_cap) pre_cap[r * ld + j] = x;
        row[j] = cap * std::tanh(x * inv);
      }
    }
  }
  const int R = c.goat_rank;
  const int32_t* kpos = ks.pos.data() + j0;
  if (c.use_rel_table()) {
    // kappa and ALiBi by lookup, fused with the key bias.
    const float* urow = nullptr;
    int64_t us = 0;
    if (c.key_bias) {
      const TensorView& u = sp.key_bias;
      urow = static_cast<const float*>(u.at(u.shape[0] == 1 ? 0 : rb.b, rb.g, j0));
      us = u.stride[2];
    }
    const bool consecutive = ks.block_consecutive[size_t(j0 / kBlockK)] && (!urow || us == 1);
    for (int r = 0; r < n; ++r) {
      float* row = s + r * ld;
      const float* t = c.rel_row(rb.b, rb.head[r]);
      const int64_t off = int64_t(rb.qpos[r]) - c.rel_min;  // t[off - kpos] = prior(qpos - kpos)
      if (consecutive) {
        // kpos[j] = kpos[0] + j: the table is read backwards from one point.
        const float* tr = t + (off - kpos[0]);
        if (urow)
          for (int j = 0; j < nk; ++j) row[j] += tr[-j] + urow[j];
        else
          for (int j = 0; j < nk; ++j) row[j] += tr[-j];
      } else if (urow)
        for (int j = 0; j < nk; ++j) row[j] += t[off - kpos[j]] + urow[j * us];
      else
        for (int j = 0; j < nk; ++j) row[j] += t[off - kpos[j]];
    }
  } else if (R > 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, 2 * R, 1.f, rb.qf, 2 * R,
                ks.features.data() + j0 * 2 * R, 2 * R, 1.f, s, ld);
  }
  if (c.key_bias && !c.use_rel_table()) {
    const TensorView& u = sp.key_bias;
    const float* urow = static_cast<const float*>(u.at(u.shape[0] == 1 ? 0 : rb.b, rb.g, j0));
    const int64_t us = u.stride[2];
    for (int r = 0; r < n; ++r) {
      float* row = s + r * ld;
      for (int j = 0; j < nk; ++j) row[j] += urow[j * us];
    }
  }
  if (c.alibi && !c.use_rel_table()) {
    for (int r = 0; r < n; ++r) {
      float* row = s + r * ld;
      const float slope = sp.alibi_slopes[rb.head[r]];
      const int32_t qp = rb.qpos[r];
      for (int j = 0; j < nk; ++j) row[j] -= slope * float(std::abs(int64_t(qp) - kpos[j]));
    }
  }
  if (mask == TileMask::Partial) {
    for (int r = 0; r < n; ++r) {
      float* row = s + r * ld;
      for (int j = 0; j < nk; ++j)
        if (!visible(sp, j0 + j, rb.qpos[r], kpos[j])) row[j] = kNegInf;
    }
  }
}

// t = sum e^(z-m) (z-m) re-expressed relative to a new max m_new (alpha = e^(m-m_new)).
inline float rebase_t(float t, float l, float m, float m_new, float alpha) {
  return m == kNegInf ? 0.f : alpha * (t + (m - m_new) * l);
}

void RowState::reset(int n, int64_t v_dim) {
  std::fill(m, m + n, kNegInf);
  std::fill(l, l + n, 0.f);
  std::fill(t, t + n, 0.f);
  std::fill(acc, acc + n * v_dim, 0.f);
}

void accumulate_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks,
                     const TensorView& v, int64_t j0, int nk, bool want_entropy, RowState& st,
                     float* s, float* vscratch) {
  const TileMask mask = classify_tile(c, rb, ks, j0, nk);
  if (mask == TileMask::Hidden) return;
  logits_tile(c, rb, ks, j0, nk, mask, s, kBlockK, nullptr, &v);
  const int64_t Dv = c.d.v_dim;
  bool any = false;
  for (int r = 0; r < rb.n; ++r) {
    float* row = s + r * kBlockK;
    float mx = kNegInf;
    for (int j = 0; j < nk; ++j) mx = std::max(mx, row[j]);
    const float m_new = std::max(st.m[r], mx);
    if (m_new == kNegInf) {  // nothing visible in this row yet
      std::fill(row, row + nk, 0.f);
      continue;
    }
    any = true;
    const float alpha = exp_nonpos(st.m[r] - m_new);
    float sum = 0.f, tz = 0.f;
    if (want_entropy) {
      for (int j = 0; j < nk; ++j) {
        const float x = row[j] - m_new;
        const float p = exp_nonpos(x);
        sum += p;
        tz += p > 0.f ? p * x : 0.f;
        row[j] = p;
      }
      st.t[r] = rebase_t(st.t[r], st.l[r], st.m[r], m_new, alpha) + tz;
    } else {
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < nk; ++j) {
        const float p = exp_nonpos(row[j] - m_new);
        sum += p;
        row[j] = p;
      }
    }
    st.l[r] = st.l[r] * alpha + sum;
    if (alpha != 1.f) {
      float* a = st.acc + r * Dv;
      for (int64_t e = 0; e < Dv; ++e) a[e] *= alpha;
    }
    st.m[r] = m_new;
  }
  if (!any) return;
  int64_t ldv = 0;
  const float* vb = value_block(v, rb.b, rb.g, j0, nk, vscratch, ldv);
  if (rb.n <= kFewRows) {
    // The next key block's rows, fetched during the P.V when it sums several
    // rows (GQA 8:2 decode ~17% faster); one row's P.V is too short to hide them
    // (~4% slower).
    PrefetchRows next_keys;
    const int64_t j_next = j0 + nk;
    const int next_rows = rb.n > 1 ? int(std::clamp<int64_t>(c.d.n_k - j_next, 0, kBlockK)) : 0;
    if (next_rows > 0) {
      next_keys.rows = ks.k + j_next * ks.k_stride;
      next_keys.ld = ks.k_stride;
      next_keys.row_bytes = c.d.head_dim * int64_t(sizeof(float));
    }
    rows_pv(s, kBlockK, rb.n, nk, vb, ldv, Dv, st.acc, next_keys, next_rows);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rb.n, int(Dv), nk, 1.f, s, kBlockK, vb,
                int(ldv), 1.f, st.acc, int(Dv));
  }
}

void merge_state(int n, int64_t v_dim, RowState& st, const RowState& o) {
  for (int r = 0; r < n; ++r) {
    const float m = std::max(st.m[r], o.m[r]);
    if (m == kNegInf) continue;
    const float a = exp_nonpos(st.m[r] - m), b = exp_nonpos(o.m[r] - m);
    st.t[r] = rebase_t(st.t[r], st.l[r], st.m[r], m, a) + rebase_t(o.t[r], o.l[r], o.m[r], m, b);
    st.l[r] = st.l[r] * a + o.l[r] * b;
    float* acc = st.acc + r * v_dim;
    const float* oacc = o.acc + r * v_dim;
    for (int64_t e = 0; e < v_dim; ++e) acc[e] = acc[e] * a + oacc[e] * b;
    st.m[r] = m;
  }
}

void finalize_rows(const TileContext& c, const RowBlock& rb, const RowState& st,
                   const TensorView& o, const TensorView& lse, const TensorView& entropy) {
  const int64_t Dv = c.d.v_dim;
  const float* sinks = c.spec.sink_logits;
  for (int r = 0; r < rb.n; ++r) {
    const int h = rb.head[r], i = rb.query[r];
    const double S = sinks ? double(sinks[h]) : -INFINITY;
    const double m = st.m[r];
    const double ms = std::max(m, S);
    double row_lse = -INFINITY, ent = 0.0, w = 0.0;
    if (ms != -INFINITY) {
      const double a = std::exp(m - ms), e_s = sinks ? std::exp(S - ms) : 0.0;
      const double l = double(st.l[r]) * a + e_s;
      row_lse = ms + std::log(l);
      w = a / l;
      const double t = m == -INFINITY ? 0.0 : a * (double(st.t[r]) + (m - ms) * double(st.l[r]));
      ent = std::log(l) - (t + (sinks ? (S - ms) * e_s : 0.0)) / l;
    }
    const float* acc = st.acc + r * Dv;
    void* dst = o.at(rb.b, h, i);
    if (o.dtype == DType::F32) {
      float* d = static_cast<float*>(dst);
      for (int64_t e = 0; e < Dv; ++e) d[e] = float(acc[e] * w);
    } else {
      bf16* d = static_cast<bf16*>(dst);
      for (int64_t e = 0; e < Dv; ++e) d[e] = f32_to_bf16(float(acc[e] * w));
    }
    if (!lse.empty()) *static_cast<float*>(lse.at(rb.b, h, i)) = float(row_lse);
    if (!entropy.empty()) *static_cast<float*>(entropy.at(rb.b, h, i)) = float(ent);
  }
}

}  // namespace sinklab::attn
