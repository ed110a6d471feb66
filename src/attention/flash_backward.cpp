// Tiled backward (FlashAttention-2 recomputation on the CPU). Logits are
// recomputed per tile from the forward's LSE, so nothing of size n_q x n_k is
// stored.
//
// Schedule: the query rows are prepared once (rotated q, GOAT features, dO in
// f32, D_i = dO_i . O_i). They are then processed in "slabs" of consecutive row
// blocks (bounded memory). Within a slab one task is a (batch, kv head, key
// block): it owns its dK / dV / d_key_bias rows and loops over the slab's row
// blocks of that kv head. dQ (and the per-row GOAT / ALiBi partial sums) go to
// per-thread buffers that are summed in thread order after the slab; tasks are
// handed out statically, so the result is deterministic for a fixed thread count.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "flash.h"
#include "tile.h"
#include "sinklab/vec_math.h"

namespace sinklab::attn {
using namespace sinklab::vec;  // the shared vector helpers
}  // namespace sinklab::attn

namespace sinklab::attn {

namespace {

// Rows are numbered in [batch, n_heads, n_q] order, so the rows of one
// (batch, kv head) are contiguous (head = g * group + hh).
struct QueryRows {
  std::vector<float> q;         // [rows, D]: as load_rows leaves them
  std::vector<float> qf;        // [rows, 2R]
  std::vector<float> d_o;       // [rows, Dv]
  std::vector<float> delta;     // [rows]: dO_i . O_i
  std::vector<float> lse;       // [rows]
  std::vector<double> d_sink;   // [rows]: -exp(S_h - lse_i) * delta_i
  std::vector<RowBlock> blocks;    // ordered by (batch, kv head)
  std::vector<int64_t> first_row;  // row number of each block's first row
};

// Row blocks of every (b, g): whole heads packed together when n_q is short,
// otherwise kBlockQ queries of one head (tight position bounds for skipping).
void make_blocks(const Dims& d, QueryRows& qr) {
  if (d.n_q == 0) return;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t g = 0; g < d.n_kv_heads; ++g) {
      const int64_t h0 = g * d.group, base = (b * d.n_heads + h0) * d.n_q;
      auto add = [&](int64_t first, int n, auto&& head_query) {
        RowBlock rb;
        rb.b = b;
        rb.g = g;
        rb.n = n;
        for (int r = 0; r < n; ++r) head_query(r, rb.head[r], rb.query[r]);
        qr.blocks.push_back(rb);
        qr.first_row.push_back(first);
      };
      if (d.n_q >= kBlockQ) {
        for (int64_t hh = 0; hh < d.group; ++hh)
          for (int64_t i0 = 0; i0 < d.n_q; i0 += kBlockQ)
            add(base + hh * d.n_q + i0, int(std::min<int64_t>(kBlockQ, d.n_q - i0)),
                [&](int r, int32_t& h, int32_t& i) {
                  h = int32_t(h0 + hh);
                  i = int32_t(i0 + r);
                });
      } else {
        const int64_t per_block = kBlockQ / d.n_q;
        for (int64_t hh0 = 0; hh0 < d.group; hh0 += per_block)
          add(base + hh0 * d.n_q, int(std::min(per_block, d.group - hh0) * d.n_q),
              [&](int r, int32_t& h, int32_t& i) {
                h = int32_t(h0 + hh0 + r / d.n_q);
                i = int32_t(r % d.n_q);
              });
      }
    }
}

void prepare_rows(const TileContext& c, const TensorView& q, const TensorView& o,
                  const TensorView& lse, const TensorView& d_o, QueryRows& qr) {
  const Dims& d = c.d;
  const int64_t rows = d.batch * d.n_heads * d.n_q, D = d.head_dim, Dv = d.v_dim;
  const int F = c.goat_features();
  make_blocks(d, qr);
  qr.q.resize(size_t(rows * D));
  qr.qf.resize(size_t(rows * F));
  qr.d_o.resize(size_t(rows * Dv));
  qr.delta.resize(size_t(rows));
  qr.lse.resize(size_t(rows));
  qr.d_sink.resize(size_t(rows));
  const float* sinks = c.spec.sink_logits;
  const int64_t nblocks = int64_t(qr.blocks.size());
#pragma omp parallel
  {
    std::vector<float> orow(static_cast<size_t>(Dv));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < nblocks; ++t) {
      RowBlock& rb = qr.blocks[size_t(t)];
      const int64_t first = qr.first_row[size_t(t)];
      rb.q = qr.q.data() + first * D;
      rb.qf = F > 0 ? qr.qf.data() + first * F : nullptr;
      load_rows(c, q, rb);
      for (int r = 0; r < rb.n; ++r) {
        const int64_t row = first + r, h = rb.head[r], i = rb.query[r];
        float* dor = qr.d_o.data() + row * Dv;
        to_f32(d_o.dtype, d_o.at(rb.b, h, i), dor, size_t(Dv));
        to_f32(o.dtype, o.at(rb.b, h, i), orow.data(), size_t(Dv));
        double dot = 0.0;
        for (int64_t e = 0; e < Dv; ++e) dot += double(dor[e]) * orow[size_t(e)];
        const float l = *static_cast<const float*>(lse.at(rb.b, h, i));
        qr.delta[size_t(row)] = float(dot);
        qr.lse[size_t(row)] = l;
        qr.d_sink[size_t(row)] =
            sinks && l != kNegInf ? -std::exp(double(sinks[h]) - double(l)) * dot : 0.0;
      }
    }
  }
}

// Which gradients are wanted (and therefore computed).
struct Wanted {
  bool dq, dk, dv, key_bias, alibi, goat;
};

// Accumulators that outlive the slabs (rotated dK; dV; d_key_bias), per (b, g).
struct KeyGrads {
  std::vector<float> dk, dv;
  std::vector<double> key_bias;
};

// Per-thread buffers of one slab.
struct ThreadRows {
  std::vector<float> dq;       // [slab rows, D]
  std::vector<double> extra;   // [slab rows, X]: d(qf) (2R) then the ALiBi sum
};

struct TileScratch {
  std::vector<float> s, pre_cap, dz, v, dqf, colsum;
  TileScratch(const Dims& d, int features)
      : s(size_t(kBlockQ * kBlockK)),
        pre_cap(size_t(kBlockQ * kBlockK)),
        dz(size_t(kBlockQ * kBlockK)),
        v(size_t(kBlockK * d.v_dim)),
        dqf(size_t(kBlockQ * std::max(features, 1))),
        colsum(size_t(kBlockK)) {}
};

struct Backward {
  const TileContext& c;
  const TensorView& v;
  const std::vector<KeySet>& keys;
  const QueryRows& qr;
  const Wanted& want;
  KeyGrads& kg;
  int extra_width = 0;  // 2R with GOAT, +1 with ALiBi
  int alibi_col = 0;    // index of the ALiBi sum in a row of `extra`

  // A kernel step, long on purpose: recompute P for the tile, then dV, dP, dS,
  // dQ and dK in one pass so the tile stays in cache between the products.
  // One row block against key block [j0, j0+nk) of its (b, g). `row0` is the
  // slab's first row (offset into the thread buffers).
  void tile(const RowBlock& rb, int64_t first, const KeySet& ks, int64_t j0, int nk,
            const float* vb, int64_t ldv, float* dk_rows, float* dv_rows, double* dkb,
            ThreadRows& tr, int64_t row0, TileScratch& sc) const {
    const TileMask mask = classify_tile(c, rb, ks, j0, nk);
    if (mask == TileMask::Hidden) return;
    const Dims& d = c.d;
    const int n = rb.n, D = int(d.head_dim), Dv = int(d.v_dim), R = c.goat_rank;
    const float softcap = c.spec.softcap;
    float* s = sc.s.data();
    float* dz = sc.dz.data();
    logits_tile(c, rb, ks, j0, nk, mask, s, kBlockK, softcap > 0.f ? sc.pre_cap.data() : nullptr);
    // P = exp(z - lse); a row without any visible key or sink (lse = -inf) has none.
    bool any = false;
    for (int r = 0; r < n; ++r) {
      float* row = s + r * kBlockK;
      const float l = qr.lse[size_t(first + r)];
      if (l == kNegInf) {
        std::fill(row, row + nk, 0.f);
        continue;
      }
      any = true;
      for (int j = 0; j < nk; ++j) row[j] = exp_nonpos(row[j] - l);
    }
    if (!any) return;
    const float* dO = qr.d_o.data() + first * Dv;
    if (want.dv)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, Dv, n, 1.f, s, kBlockK, dO, Dv,
                  1.f, dv_rows, Dv);
    // dZ = P (dO V^T - D_i).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, Dv, 1.f, dO, Dv, vb, int(ldv),
                0.f, dz, kBlockK);
    for (int r = 0; r < n; ++r) {
      const float di = qr.delta[size_t(first + r)];
      const float* p = s + r * kBlockK;
      float* row = dz + r * kBlockK;
      for (int j = 0; j < nk; ++j) row[j] = p[j] * (row[j] - di);
    }
    if (want.key_bias) {
      float* col = sc.colsum.data();
      std::fill(col, col + nk, 0.f);
      for (int r = 0; r < n; ++r) {
        const float* row = dz + r * kBlockK;
        for (int j = 0; j < nk; ++j) col[j] += row[j];
      }
      for (int j = 0; j < nk; ++j) dkb[j] += col[j];
    }
    double* extra = tr.extra.data() + (first - row0) * extra_width;
    if (want.alibi) {
      const int32_t* kpos = ks.pos.data() + j0;
      for (int r = 0; r < n; ++r) {
        const float* row = dz + r * kBlockK;
        const int64_t qp = rb.qpos[r];
        float acc = 0.f;
        for (int j = 0; j < nk; ++j) acc += row[j] * float(std::abs(qp - kpos[j]));
        extra[r * extra_width + alibi_col] += acc;
      }
    }
    if (want.goat) {
      // The prior tile is qf . kf^T, so d(qf) = dZ . kf.
      float* g = sc.dqf.data();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, 2 * R, nk, 1.f, dz, kBlockK,
                  ks.features.data() + j0 * 2 * R, 2 * R, 0.f, g, 2 * R);
      for (int r = 0; r < n; ++r)
        for (int f = 0; f < 2 * R; ++f) extra[r * extra_width + f] += g[r * 2 * R + f];
    }
    if (softcap > 0.f) {
      const float inv = 1.f / softcap;
      for (int r = 0; r < n; ++r) {
        float* row = dz + r * kBlockK;
        const float* x = sc.pre_cap.data() + r * kBlockK;
        for (int j = 0; j < nk; ++j) {
          const float t = std::tanh(x[j] * inv);
          row[j] *= 1.f - t * t;
        }
      }
    }
    // rb.q holds scale * q_rot unless softcap is on (load_rows' convention).
    if (want.dk)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, n, softcap > 0.f ? c.scale : 1.f,
                  dz, kBlockK, rb.q, D, 1.f, dk_rows, D);
    if (want.dq)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, nk, c.scale, dz, kBlockK,
                  ks.k + j0 * ks.k_stride, int(ks.k_stride), 1.f,
                  tr.dq.data() + (first - row0) * D, D);
  }

  // Task: key block kb of (b, g) against the row blocks [blk0, blk1) of the slab.
  void task(int64_t bg, int64_t kb, int64_t blk0, int64_t blk1, ThreadRows& tr, int64_t row0,
            TileScratch& sc) const {
    const Dims& d = c.d;
    const int64_t b = bg / d.n_kv_heads, g = bg % d.n_kv_heads;
    const int64_t j0 = kb * kBlockK;
    const int nk = int(std::min<int64_t>(kBlockK, d.n_k - j0));
    const KeySet& ks = keys[size_t(bg)];
    int64_t ldv = 0;
    const float* vb = value_block(v, b, g, j0, nk, sc.v.data(), ldv);
    const int64_t key0 = bg * d.n_k + j0;
    float* dk_rows = want.dk ? kg.dk.data() + key0 * d.head_dim : nullptr;
    float* dv_rows = want.dv ? kg.dv.data() + key0 * d.v_dim : nullptr;
    double* dkb = want.key_bias ? kg.key_bias.data() + key0 : nullptr;
    for (int64_t blk = blk0; blk < blk1; ++blk)
      tile(qr.blocks[size_t(blk)], qr.first_row[size_t(blk)], ks, j0, nk, vb, ldv, dk_rows,
           dv_rows, dkb, tr, row0, sc);
  }
};

// Writes dim floats to row (b, h, i) of a 4-d f32 view (unit inner stride).
void write_rows(const TensorView& t, int64_t b, int64_t h, int64_t i, const float* src,
                int64_t dim) {
  float* dst = static_cast<float*>(t.at(b, h, i));
  std::copy(src, src + dim, dst);
}

}  // namespace

// Kept as one function on purpose (a kernel): the split of work over threads,
// the per-thread accumulators and the reduction of dK/dV and the parameter
// gradients read top to bottom in the order they run, as FlashAttention-2's
// backward does; pieces of it would only pass the same dozen buffers around.
void flash_backward(const AttnSpec& spec, const Dims& d, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& o, const TensorView& lse,
                    const TensorView& d_o, AttnGrads& grads) {
  for (const TensorView* t : {&grads.dq, &grads.dk, &grads.dv})
    check(t->empty() || t->dtype == DType::F32, "attention backward: gradients must be f32");
  const TileContext c(spec, d, /*for_backward=*/true);
  const int R = c.goat_rank, F = c.goat_features();
  Wanted want;
  want.dq = !grads.dq.empty();
  want.dk = !grads.dk.empty();
  want.dv = !grads.dv.empty();
  want.key_bias = !grads.d_key_bias.empty();
  want.alibi = c.alibi && grads.d_alibi_slopes;
  want.goat = R > 0 && (grads.d_lambda_sym || grads.d_lambda_asym);

  std::vector<KeySet> keys(size_t(d.batch * d.n_kv_heads));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t g = 0; g < d.n_kv_heads; ++g)
      prepare_keys(c, k, b, g, keys[size_t(b * d.n_kv_heads + g)],
                   g > 0 ? &keys[size_t(b * d.n_kv_heads)] : nullptr);
  QueryRows qr;
  prepare_rows(c, q, o, lse, d_o, qr);

  const int64_t key_rows = d.batch * d.n_kv_heads * d.n_k;
  KeyGrads kg;
  if (want.dk) kg.dk.assign(size_t(key_rows * d.head_dim), 0.f);
  if (want.dv) kg.dv.assign(size_t(key_rows * d.v_dim), 0.f);
  if (want.key_bias) kg.key_bias.assign(size_t(key_rows), 0.0);
  const int extra_width = (want.goat ? F : 0) + (want.alibi ? 1 : 0);
  const int alibi_col = want.goat ? F : 0;
  Backward bw{c, v, keys, qr, want, kg, extra_width, alibi_col};
  std::vector<double> lam_sym(size_t(d.n_kv_heads * R), 0.0), lam_asym(lam_sym.size(), 0.0);
  std::vector<double> alibi(size_t(d.n_heads), 0.0);

  // Slabs: consecutive row blocks with at most ~16 MiB of dQ per thread.
  const int64_t slab_budget = std::max<int64_t>(kBlockQ, (int64_t(1) << 22) / d.head_dim);
  const int64_t nblocks = int64_t(qr.blocks.size());
  const int64_t kblocks = (d.n_k + kBlockK - 1) / kBlockK;
  const int nthreads = omp_get_max_threads();
  std::vector<ThreadRows> per_thread(static_cast<size_t>(nthreads));
  const bool thread_rows = want.dq || extra_width > 0;
  const std::vector<double> omega = goat_frequencies(R, spec.goat.base);

  for (int64_t s0 = 0; s0 < nblocks;) {
    int64_t s1 = s0 + 1;
    const int64_t row0 = qr.first_row[size_t(s0)];
    while (s1 < nblocks && qr.first_row[size_t(s1)] + qr.blocks[size_t(s1)].n - row0 <= slab_budget)
      ++s1;
    const int64_t nrows = qr.first_row[size_t(s1 - 1)] + qr.blocks[size_t(s1 - 1)].n - row0;
    // Runs of blocks sharing one (b, g): each run times each key block is a task.
    std::vector<int64_t> run_start;
    for (int64_t blk = s0; blk < s1; ++blk) {
      const RowBlock& rb = qr.blocks[size_t(blk)];
      if (blk == s0 || rb.b != qr.blocks[size_t(blk - 1)].b || rb.g != qr.blocks[size_t(blk - 1)].g)
        run_start.push_back(blk);
    }
    run_start.push_back(s1);
    const int64_t runs = int64_t(run_start.size()) - 1;
    const int64_t tasks = runs * kblocks;
#pragma omp parallel num_threads(nthreads)
    {
      const int tid = omp_get_thread_num(), team = omp_get_num_threads();
      ThreadRows& tr = per_thread[size_t(tid)];
      if (thread_rows) {
        if (want.dq) tr.dq.assign(size_t(nrows * d.head_dim), 0.f);
        tr.extra.assign(size_t(nrows * extra_width), 0.0);
      }
      TileScratch sc(d, F);
#pragma omp for schedule(static, 1)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t run = t / kblocks, kb = t % kblocks;
        const int64_t blk0 = run_start[size_t(run)], blk1 = run_start[size_t(run + 1)];
        const RowBlock& rb = qr.blocks[size_t(blk0)];
        bw.task(rb.b * d.n_kv_heads + rb.g, kb, blk0, blk1, tr, row0, sc);
      }
      // Sum the thread buffers row by row (in thread order) and finish each row.
      if (thread_rows) {
        std::vector<float> dq_row(size_t(d.head_dim));
#pragma omp for schedule(static)
        for (int64_t lr = 0; lr < nrows; ++lr) {
          const int64_t row = row0 + lr;
          const int64_t b = row / (d.n_heads * d.n_q), h = (row / d.n_q) % d.n_heads,
                        i = row % d.n_q;
          const int32_t qp = q_position(spec, d, b, i);
          if (want.dq) {
            std::copy_n(per_thread[0].dq.data() + lr * d.head_dim, d.head_dim, dq_row.data());
            for (int t = 1; t < team; ++t) {
              const float* src = per_thread[size_t(t)].dq.data() + lr * d.head_dim;
              for (int64_t e = 0; e < d.head_dim; ++e) dq_row[size_t(e)] += src[e];
            }
            if (c.rope) rotate_back(c, dq_row.data(), qp);
            write_rows(grads.dq, b, h, i, dq_row.data(), d.head_dim);
          }
          if (extra_width > 0) {
            double* ex = per_thread[0].extra.data() + lr * extra_width;
            for (int t = 1; t < team; ++t) {
              const double* src = per_thread[size_t(t)].extra.data() + lr * extra_width;
              for (int f = 0; f < extra_width; ++f) ex[f] += src[f];
            }
            if (want.goat) {
              // d(lambda) from d(qf): qf = [A cos + B sin | A sin - B cos].
              for (int r = 0; r < R; ++r) {
                const double a = std::fmod(double(qp) * omega[size_t(r)], 2 * std::numbers::pi);
                const double cs = std::cos(a), sn = std::sin(a);
                const double g0 = ex[r], g1 = ex[R + r];
                ex[r] = g0 * cs + g1 * sn;
                ex[R + r] = g0 * sn - g1 * cs;
              }
            }
          }
        }
      }
    }
    // Per-head sums over the slab's rows, in row order.
    if (extra_width > 0) {
      for (int64_t lr = 0; lr < nrows; ++lr) {
        const int64_t h = ((row0 + lr) / d.n_q) % d.n_heads, g = d.kv_head(h);
        const double* ex = per_thread[0].extra.data() + lr * extra_width;
        if (want.goat)
          for (int r = 0; r < R; ++r) {
            lam_sym[size_t(g * R + r)] += ex[r];
            lam_asym[size_t(g * R + r)] += ex[R + r];
          }
        if (want.alibi) alibi[size_t(h)] -= ex[alibi_col];
      }
    }
    s0 = s1;
  }

  if (want.dk || want.dv) {
#pragma omp parallel
    {
      std::vector<float> row(size_t(d.head_dim));
#pragma omp for schedule(static)
      for (int64_t kr = 0; kr < key_rows; ++kr) {
        const int64_t bg = kr / std::max<int64_t>(d.n_k, 1), j = kr % std::max<int64_t>(d.n_k, 1);
        const int64_t b = bg / d.n_kv_heads, g = bg % d.n_kv_heads;
        if (want.dk) {
          std::copy_n(kg.dk.data() + kr * d.head_dim, d.head_dim, row.data());
          if (c.rope) rotate_back(c, row.data(), keys[size_t(bg)].pos[size_t(j)]);
          write_rows(grads.dk, b, g, j, row.data(), d.head_dim);
        }
        if (want.dv) write_rows(grads.dv, b, g, j, kg.dv.data() + kr * d.v_dim, d.v_dim);
      }
    }
  }
  if (want.key_bias)
    for (int64_t kr = 0; kr < key_rows; ++kr) {
      const int64_t bg = kr / d.n_k, j = kr % d.n_k;
      *static_cast<float*>(grads.d_key_bias.at(bg / d.n_kv_heads, bg % d.n_kv_heads, j)) =
          float(kg.key_bias[size_t(kr)]);
    }
  if (grads.d_sink_logits) {
    std::vector<double> sink(size_t(d.n_heads), 0.0);
    for (int64_t row = 0; row < int64_t(qr.d_sink.size()); ++row)
      sink[size_t((row / std::max<int64_t>(d.n_q, 1)) % d.n_heads)] += qr.d_sink[size_t(row)];
    for (int64_t h = 0; h < d.n_heads; ++h) grads.d_sink_logits[h] = float(sink[size_t(h)]);
  }
  for (int64_t i = 0; i < d.n_kv_heads * R; ++i) {
    if (grads.d_lambda_sym) grads.d_lambda_sym[i] = float(lam_sym[size_t(i)]);
    if (grads.d_lambda_asym) grads.d_lambda_asym[i] = float(lam_asym[size_t(i)]);
  }
  if (grads.d_alibi_slopes)
    for (int64_t h = 0; h < d.n_heads; ++h) grads.d_alibi_slopes[h] = float(alibi[size_t(h)]);
}

}  // namespace sinklab::attn
