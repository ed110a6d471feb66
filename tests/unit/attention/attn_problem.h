// A random attention problem for the kernel tests: one Case describes which
// AttnSpec fields are on; Problem draws fresh inputs for it from a seed.
#pragma once

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attn_test_util.h"
#include "sinklab/attention.h"

namespace sinklab::test {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  std::string name;
  int64_t B = 1, H = 4, Hkv = 4, Nq = 16, Nk = 16, D = 32, Dv = 0;
  bool bf16 = false;
  bool causal = true;
  int window = 0, sink_keys = 0;
  bool sinks = false;
  float sink_lo = -3, sink_hi = 3;
  bool gappy_positions = false;  // increasing positions with gaps, some rows fully hidden
  int position_scale = 1;        // multiplies gappy positions (large spans skip the prior table)
  bool per_batch_positions = false;
  RopeStyle rope = RopeStyle::None;
  RopeScaling scaling = RopeScaling::None;
  int rotary_dim = 0;
  int goat_rank = 0;
  bool key_bias = false, key_bias_neg_inf = false, alibi = false;
  float softcap = 0;
  float q_scale = 1;
  float key_bias_offset = 0;  // added to every key bias (a constant that cancels in softmax)
  bool strided_q = false;     // q stored [B, N, H, D+5] and viewed as [B, H, N, D]
  int first_k = 1;            // for statistics
};

// Inputs and spec of one case. Values are f32; with bf16 they are rounded to
// bf16 first so the reference sees exactly what the kernel sees.
struct Problem {
  Case c;
  std::mt19937 rng;
  std::vector<float> q, k, v, d_o, u, sink, lam_s, lam_a, slopes;
  std::vector<uint16_t> q16, k16, v16, d_o16;
  std::vector<int32_t> qpos, kpos;
  AttnSpec spec;
  TensorView qv, kv, vv, dov;

  Problem(const Case& cs, uint32_t seed) : c(cs), rng(seed) {
    if (c.Dv == 0) c.Dv = c.D;
    const int64_t qrow = c.strided_q ? c.D + 5 : c.D;
    q = random_normal(rng, size_t(c.B * c.H * c.Nq * qrow), c.q_scale);
    k = random_normal(rng, size_t(c.B * c.Hkv * c.Nk * c.D));
    v = random_normal(rng, size_t(c.B * c.Hkv * c.Nk * c.Dv));
    d_o = random_normal(rng, size_t(c.B * c.H * c.Nq * c.Dv));
    qv = c.strided_q ? TensorView::strided(q.data(), DType::F32, {c.B, c.H, c.Nq, c.D},
                                           {c.Nq * c.H * qrow, qrow, c.H * qrow, 1})
                     : TensorView(q.data(), DType::F32, {c.B, c.H, c.Nq, c.D});
    kv = TensorView(k.data(), DType::F32, {c.B, c.Hkv, c.Nk, c.D});
    vv = TensorView(v.data(), DType::F32, {c.B, c.Hkv, c.Nk, c.Dv});
    dov = TensorView(d_o.data(), DType::F32, {c.B, c.H, c.Nq, c.Dv});
    if (c.bf16) {
      q16 = test::to_bf16_bits(q);
      k16 = test::to_bf16_bits(k);
      v16 = test::to_bf16_bits(v);
      d_o16 = test::to_bf16_bits(d_o);
      qv.data = q16.data();
      kv.data = k16.data();
      vv.data = v16.data();
      dov.data = d_o16.data();
      qv.dtype = kv.dtype = vv.dtype = dov.dtype = DType::BF16;
    }
    spec.causal = c.causal;
    spec.window = c.window;
    spec.sink_keys = c.sink_keys;
    if (c.gappy_positions) {
      const int64_t nb = c.per_batch_positions ? c.B : 1;
      std::uniform_int_distribution<int> gap(0, 3);
      for (int64_t b = 0; b < nb; ++b) {
        int32_t p = int32_t(b * 5);
        for (int64_t j = 0; j < c.Nk; ++j) kpos.push_back(p += 1 + gap(rng));
        for (int64_t i = 0; i < c.Nq; ++i) {
          int32_t qp = kpos[size_t(b * c.Nk + std::max<int64_t>(0, c.Nk - c.Nq + i))];
          if (i % 5 == 1) qp = kpos[size_t(b * c.Nk)] - 1 - gap(rng);  // before every key
          qpos.push_back(qp);
        }
      }
      for (auto& p : qpos) p *= c.position_scale;
      for (auto& p : kpos) p *= c.position_scale;
      spec.q_pos = qpos.data();
      spec.k_pos = kpos.data();
      if (c.per_batch_positions) {
        spec.q_pos_batch_stride = c.Nq;
        spec.k_pos_batch_stride = c.Nk;
      }
    }
    if (c.sinks) {
      std::uniform_real_distribution<float> us(c.sink_lo, c.sink_hi);
      for (int64_t h = 0; h < c.H; ++h) sink.push_back(us(rng));
      spec.sink_logits = sink.data();
    }
    spec.rope.style = c.rope;
    spec.rope.rotary_dim = c.rotary_dim;
    spec.rope.scaling = c.scaling;
    if (c.scaling != RopeScaling::None) {
      spec.rope.factor = 4.f;
      spec.rope.original_context = 64;
    }
    if (c.goat_rank > 0) {
      lam_s = random_normal(rng, size_t(c.Hkv * c.goat_rank), 0.5f);
      lam_a = random_normal(rng, size_t(c.Hkv * c.goat_rank), 0.5f);
      spec.goat = {c.goat_rank, 1e4f, lam_s.data(), lam_a.data()};
    }
    if (c.key_bias) {
      u = random_normal(rng, size_t(c.B * c.Hkv * c.Nk));
      for (auto& x : u) x += c.key_bias_offset;
      if (c.key_bias_neg_inf) u[1] = -kInf;
      spec.key_bias = TensorView(u.data(), DType::F32, {c.B, c.Hkv, c.Nk});
    }
    if (c.alibi) {
      for (int64_t h = 0; h < c.H; ++h) slopes.push_back(std::pow(2.f, -float(h % 8 + 1)));
      spec.alibi_slopes = slopes.data();
    }
    spec.softcap = c.softcap;
  }
};


inline Case base(std::string name) {
  Case c;
  c.name = std::move(name);
  return c;
}

}  // namespace sinklab::test
