// Tiled online-softmax forward (FlashAttention-2 schedule on the CPU):
// prefill tiles over (batch, head, query block); a split-K decode path for few
// queries against a long cache; statistics in a second pass from the LSE.
#include <algorithm>
#include <cmath>
#include <memory>

#include "flash.h"
#include "tile.h"
#include "sinklab/vec_math.h"

namespace sinklab::attn {
using namespace sinklab::vec;  // the shared vector helpers
}  // namespace sinklab::attn

namespace sinklab::attn {

namespace {

// Per-thread buffers for one row block.
struct Scratch {
  std::vector<float> q, qf, s, v, acc;
  Scratch(const Dims& d, int goat_features)
      : q(size_t(kBlockQ * d.head_dim)),
        qf(size_t(kBlockQ * std::max(goat_features, 1))),
        s(size_t(kBlockQ * kBlockK)),
        v(size_t(kBlockK * d.v_dim)),
        acc(size_t(kBlockQ * d.v_dim)) {}
  void bind(RowBlock& rb, RowState& st) {
    rb.q = q.data();
    rb.qf = qf.data();
    st.acc = acc.data();
  }
};

// Scratch and row state of one thread of run_tasks (indexed by its slot).
struct Slot {
  Scratch sc;
  RowBlock rb;
  RowState st;
  Slot(const Dims& d, int goat_features) : sc(d, goat_features) { sc.bind(rb, st); }
};
using Slots = std::vector<std::unique_ptr<Slot>>;
// Slots for `threads` threads, kept by the calling thread across calls: a
// decode step calls attention once per layer, and fresh buffers each time cost
// allocation, zero-filling and (as the heap is trimmed) page faults. A call uses
// its slots only until it returns, so the next call may reuse them.
const Slots& make_slots(const TileContext& c, int threads) {
  thread_local struct {
    int64_t head_dim = -1, v_dim = -1;
    int goat_features = -1;
    Slots slots;
  } cache;
  if (cache.head_dim != c.d.head_dim || cache.v_dim != c.d.v_dim ||
      cache.goat_features != c.goat_features()) {
    cache.slots.clear();
    cache.head_dim = c.d.head_dim;
    cache.v_dim = c.d.v_dim;
    cache.goat_features = c.goat_features();
  }
  while (int(cache.slots.size()) < threads)
    cache.slots.push_back(std::make_unique<Slot>(c.d, c.goat_features()));
  return cache.slots;
}

// Multiply-adds of a dense pass over every (query, key) pair.
double attention_work(const Dims& d) {
  return double(d.batch) * double(d.n_heads) * double(d.n_q) * double(d.n_k) *
         double(d.head_dim + d.v_dim);
}

// The KeySets of every (batch, kv head), kept by the calling thread across
// calls like the slots: a decode step's attention builds one per kv head and
// layer, and their fresh vectors cost more than the attention of a short
// cache. Valid until the thread's next call. Key positions depend on the batch
// entry only (and on nothing when all entries share them): built once, copied
// to the other kv heads.
std::vector<KeySet>& prepare_all_keys(const TileContext& c, const TensorView& k) {
  const int64_t Hkv = c.d.n_kv_heads;
  thread_local std::vector<KeySet> sets;
  sets.resize(size_t(c.d.batch * Hkv));
  const bool shared_positions = !c.spec.k_pos || c.spec.k_pos_batch_stride == 0;
  for (int64_t b = 0; b < c.d.batch; ++b)
    for (int64_t g = 0; g < Hkv; ++g) {
      const KeySet* same = g > 0 ? &sets[size_t(b * Hkv)] : (b > 0 && shared_positions ? &sets[0] : nullptr);
      prepare_keys(c, k, b, g, sets[size_t(b * Hkv + g)], same);
    }
  return sets;
}

// Kept KeySets give back buffers above 1 MiB (rotated-key copies, features,
// positions), so that one call over a long cache does not hold them for the
// rest of the thread's life.
struct ReleaseLargeKeyBuffers {
  std::vector<KeySet>& sets;
  template <class T>
  static void release_if_large(std::vector<T>& v) {
    if (v.capacity() * sizeof(T) > (size_t(1) << 20)) std::vector<T>().swap(v);
  }
  ~ReleaseLargeKeyBuffers() {
    for (KeySet& ks : sets) {
      release_if_large(ks.k_storage);
      release_if_large(ks.features);
      release_if_large(ks.pos);
    }
  }
};

// Few query rows per kv head and a long cache: split the keys instead of the
// queries. Also a GQA group's few rows against any cache: one task per kv head
// reads its keys and values once for the whole group (a step of a 12:4 model,
// ~66 keys per layer: attention 217-249 -> 160-216 us), where one task per
// query head would read them once per head.
bool use_decode_path(const Dims& d) {
  if (d.group > 1 && d.n_q * d.group <= kFewRows) return true;
  return d.n_q * d.group <= kBlockQ && d.n_k >= 4 * kBlockK && d.n_q <= 16;
}

void prefill(const TileContext& c, const TensorView& q, const TensorView& v,
             const std::vector<KeySet>& keys, const TensorView& o, const TensorView& lse,
             const TensorView& entropy) {
  const Dims& d = c.d;
  const int64_t qblocks = (d.n_q + kBlockQ - 1) / kBlockQ;
  const int64_t tasks = d.batch * d.n_heads * qblocks;
  const int64_t kblocks = (d.n_k + kBlockK - 1) / kBlockK;
  const bool want_entropy = !entropy.empty();
  const int threads = worth_threads(attention_work(d), d.n_q) ? num_threads() : 1;
  const Slots& slots = make_slots(c, threads);
  // Later query blocks see more keys under a causal mask: hand them out first.
  run_tasks(tasks, threads, d.n_q, [&](int64_t t, int si) {
    Slot& sl = *slots[size_t(si)];
    RowBlock& rb = sl.rb;
    const int64_t qb = qblocks - 1 - t % qblocks;
    const int64_t bh = t / qblocks, b = bh / d.n_heads, h = bh % d.n_heads;
    rb.b = b;
    rb.g = d.kv_head(h);
    const int64_t i0 = qb * kBlockQ;
    rb.n = int(std::min<int64_t>(kBlockQ, d.n_q - i0));
    for (int r = 0; r < rb.n; ++r) {
      rb.head[r] = int32_t(h);
      rb.query[r] = int32_t(i0 + r);
    }
    load_rows(c, q, rb);
    sl.st.reset(rb.n, d.v_dim);
    const KeySet& ks = keys[size_t(b * d.n_kv_heads + rb.g)];
    for (int64_t kb = 0; kb < kblocks; ++kb) {
      const int64_t j0 = kb * kBlockK;
      accumulate_tile(c, rb, ks, v, j0, int(std::min<int64_t>(kBlockK, d.n_k - j0)), want_entropy, sl.st,
                      sl.sc.s.data(), sl.sc.v.data());
    }
    finalize_rows(c, rb, sl.st, o, lse, entropy);
  });
}

void decode(const TileContext& c, const TensorView& q, const TensorView& v,
            const std::vector<KeySet>& keys, const TensorView& o, const TensorView& lse,
            const TensorView& entropy) {
  const Dims& d = c.d;
  const int64_t kblocks = (d.n_k + kBlockK - 1) / kBlockK;
  const int64_t heads = d.batch * d.n_kv_heads;
  const int threads = worth_threads(attention_work(d), d.n_q) ? num_threads() : 1;
  const int64_t chunks = std::clamp<int64_t>((2 * threads + heads - 1) / heads, 1, kblocks);
  const int64_t blocks_per_chunk = (kblocks + chunks - 1) / chunks;
  const int rows = int(d.n_q * d.group);
  const bool want_entropy = !entropy.empty();
  // Partial states of every (b, g, chunk).
  const int64_t tasks = heads * chunks;
  const size_t parts = chunks > 1 ? size_t(tasks * rows) : 0;
  std::vector<float> part_m(parts), part_l(parts), part_t(parts), part_acc(parts * size_t(d.v_dim));
  auto fill_rows = [&](RowBlock& rb, int64_t b, int64_t g) {
    rb.b = b;
    rb.g = g;
    rb.n = rows;
    for (int r = 0; r < rows; ++r) {
      rb.head[r] = int32_t(g * d.group + r / d.n_q);
      rb.query[r] = int32_t(r % d.n_q);
    }
  };
  const Slots& slots = make_slots(c, threads);
  run_tasks(tasks, threads, d.n_q, [&](int64_t t, int si) {
    RowBlock& rb = slots[size_t(si)]->rb;
    RowState& st = slots[size_t(si)]->st;
    Scratch& sc = slots[size_t(si)]->sc;
    const int64_t bg = t / chunks, chunk = t % chunks;
    fill_rows(rb, bg / d.n_kv_heads, bg % d.n_kv_heads);
    load_rows(c, q, rb);
    st.reset(rows, d.v_dim);
    const KeySet& ks = keys[size_t(bg)];
    const int64_t kb1 = std::min(kblocks, (chunk + 1) * blocks_per_chunk);
    for (int64_t kb = chunk * blocks_per_chunk; kb < kb1; ++kb) {
      const int64_t j0 = kb * kBlockK;
      accumulate_tile(c, rb, ks, v, j0, int(std::min<int64_t>(kBlockK, d.n_k - j0)), want_entropy, st,
                      sc.s.data(), sc.v.data());
    }
    if (chunks == 1) return finalize_rows(c, rb, st, o, lse, entropy);  // nothing to merge
    std::copy(st.m, st.m + rows, part_m.begin() + t * rows);
    std::copy(st.l, st.l + rows, part_l.begin() + t * rows);
    std::copy(st.t, st.t + rows, part_t.begin() + t * rows);
    std::copy(st.acc, st.acc + rows * d.v_dim, part_acc.begin() + t * rows * d.v_dim);
  });
  if (chunks == 1) return;
  // Merge the chunks of each (b, g) in order (deterministic), then finalize.
  run_tasks(heads, threads, d.n_q, [&](int64_t bg, int si) {
    RowBlock& rb = slots[size_t(si)]->rb;
    RowState& st = slots[size_t(si)]->st;
    fill_rows(rb, bg / d.n_kv_heads, bg % d.n_kv_heads);
    for (int r = 0; r < rows; ++r) rb.qpos[r] = q_position(c.spec, d, rb.b, rb.query[r]);
    st.reset(rows, d.v_dim);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t t = bg * chunks + chunk;
      RowState part;
      std::copy(part_m.begin() + t * rows, part_m.begin() + (t + 1) * rows, part.m);
      std::copy(part_l.begin() + t * rows, part_l.begin() + (t + 1) * rows, part.l);
      std::copy(part_t.begin() + t * rows, part_t.begin() + (t + 1) * rows, part.t);
      part.acc = part_acc.data() + t * rows * d.v_dim;
      merge_state(rows, d.v_dim, st, part);
    }
    finalize_rows(c, rb, st, o, lse, entropy);
  });
}

// Second pass: with the LSE known, p_ij = exp(z_ij - lse_i) is exact per tile.
void stats_pass(const TileContext& c, const TensorView& q, const std::vector<KeySet>& keys,
                const TensorView& lse, AttnStats& stats) {
  const Dims& d = c.d;
  const bool want_mass = !stats.mass_first_k.empty(), want_cols = !stats.column_sums.empty();
  if (!want_mass && !want_cols) return;
  const int64_t first_k = std::min<int64_t>(stats.first_k, d.n_k);
  const int64_t kblocks = want_cols ? (d.n_k + kBlockK - 1) / kBlockK
                                    : (first_k + kBlockK - 1) / kBlockK;
  const int64_t qblocks = (d.n_q + kBlockQ - 1) / kBlockQ;
  const int threads = worth_threads(attention_work(d), d.n_q) ? num_threads() : 1;
  const Slots& slots = make_slots(c, threads);
  run_tasks(d.batch * d.n_heads, threads, d.n_q, [&](int64_t bh, int si) {
    Scratch& sc = slots[size_t(si)]->sc;
    RowBlock& rb = slots[size_t(si)]->rb;
    std::vector<double> cols(size_t(want_cols ? d.n_k : 0));
    std::vector<double> mass(kBlockQ, 0.0);
    const int64_t b = bh / d.n_heads, h = bh % d.n_heads;
    const KeySet& ks = keys[size_t(b * d.n_kv_heads + d.kv_head(h))];
    for (int64_t qb = 0; qb < qblocks; ++qb) {
      rb.b = b;
      rb.g = d.kv_head(h);
      const int64_t i0 = qb * kBlockQ;
      rb.n = int(std::min<int64_t>(kBlockQ, d.n_q - i0));
      float row_lse[kBlockQ];
      for (int r = 0; r < rb.n; ++r) {
        rb.head[r] = int32_t(h);
        rb.query[r] = int32_t(i0 + r);
        row_lse[r] = *static_cast<const float*>(lse.at(b, h, i0 + r));
      }
      load_rows(c, q, rb);
      std::fill(mass.begin(), mass.end(), 0.0);
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        const int64_t j0 = kb * kBlockK;
        const int nk = int(std::min<int64_t>(kBlockK, d.n_k - j0));
        const TileMask mask = classify_tile(c, rb, ks, j0, nk);
        if (mask == TileMask::Hidden) continue;
        float* s = sc.s.data();
        logits_tile(c, rb, ks, j0, nk, mask, s, kBlockK);
        for (int r = 0; r < rb.n; ++r) {
          if (row_lse[r] == kNegInf) continue;
          const float* row = s + r * kBlockK;
          double msum = 0.0;
          for (int j = 0; j < nk; ++j) {
            const float p = exp_nonpos(row[j] - row_lse[r]);
            if (want_cols) cols[size_t(j0 + j)] += p;
            if (j0 + j < first_k) msum += p;
          }
          mass[size_t(r)] += msum;
        }
      }
      if (want_mass)
        for (int r = 0; r < rb.n; ++r)
          *static_cast<float*>(stats.mass_first_k.at(b, h, i0 + r)) = float(mass[size_t(r)]);
    }
    if (want_cols)
      for (int64_t j = 0; j < d.n_k; ++j)
        *static_cast<float*>(stats.column_sums.at(b, h, j)) = float(cols[size_t(j)]);
  });
}

}  // namespace

void flash_forward(const AttnSpec& spec, const Dims& d, const TensorView& q, const TensorView& k,
                   const TensorView& v, const TensorView& o, const TensorView& lse,
                   AttnStats* stats) {
  const TileContext c(spec, d);
  std::vector<KeySet>& kept = prepare_all_keys(c, k);
  const ReleaseLargeKeyBuffers release{kept};
  const std::vector<KeySet>& keys = kept;
  const bool second_pass = stats && (!stats->mass_first_k.empty() || !stats->column_sums.empty());
  std::vector<float> lse_tmp;
  TensorView row_lse = lse;
  if (second_pass && lse.empty()) {
    lse_tmp.resize(size_t(d.batch * d.n_heads * d.n_q));
    row_lse = TensorView(lse_tmp.data(), DType::F32, {d.batch, d.n_heads, d.n_q});
  }
  const TensorView entropy = stats ? stats->entropy : TensorView{};
  if (d.n_q == 0) return;
  if (use_decode_path(d))
    decode(c, q, v, keys, o, row_lse, entropy);
  else
    prefill(c, q, v, keys, o, row_lse, entropy);
  if (second_pass) stats_pass(c, q, keys, row_lse, *stats);
}

}  // namespace sinklab::attn
