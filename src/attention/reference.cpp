// The float64 oracle: materialises every logit and probability. Slow and
// simple on purpose; every other implementation is tested against it.
#include <algorithm>
#include <cmath>

#include "common.h"

namespace sinklab {

namespace {

using attn::Dims;

// Rotation of a double vector as RopeSpec defines it (positions may be negative
// to undo a rotation).
void rope_rotate_f64(const AttnSpec& s, const RopeTable& t, double* x, double pos) {
  if (s.rope.style == RopeStyle::None) return;
  const int half = int(t.inv_freq.size());
  for (int i = 0; i < half; ++i) {
    const double ang = pos * double(t.inv_freq[size_t(i)]);
    const double c = std::cos(ang) * t.mscale, sn = std::sin(ang) * t.mscale;
    const int a = s.rope.style == RopeStyle::RotateHalf ? i : 2 * i;
    const int b = s.rope.style == RopeStyle::RotateHalf ? i + half : 2 * i + 1;
    const double xa = x[a], xb = x[b];
    x[a] = xa * c - xb * sn;
    x[b] = xb * c + xa * sn;
  }
}

struct Problem {
  const AttnSpec& s;
  Dims d;
  RopeTable rope;
  std::vector<double> omega;
  double scale;
  // Rotated copies in double: qr [b,h,nq,D], kr [b,g,nk,D], v [b,g,nk,Dv].
  std::vector<double> qr, kr, vv;

  Problem(const AttnSpec& spec, const TensorView& q, const TensorView& k, const TensorView& v)
      : s(spec), d(attn::validate(spec, q, k, v)) {
    if (s.rope.style != RopeStyle::None) rope = rope_table(s.rope, int(d.head_dim));
    omega = goat_frequencies(s.goat.rank, s.goat.base);
    scale = attn::effective_scale(s, d);
    qr = load(q, d.n_heads, d.n_q, d.head_dim);
    kr = load(k, d.n_kv_heads, d.n_k, d.head_dim);
    vv = load(v, d.n_kv_heads, d.n_k, d.v_dim);
    if (s.rope.style != RopeStyle::None) {
      for (int64_t b = 0; b < d.batch; ++b) {
        for (int64_t h = 0; h < d.n_heads; ++h)
          for (int64_t i = 0; i < d.n_q; ++i)
            rope_rotate_f64(s, rope, &qr[size_t(((b * d.n_heads + h) * d.n_q + i) * d.head_dim)],
                            attn::q_position(s, d, b, i));
        for (int64_t g = 0; g < d.n_kv_heads; ++g)
          for (int64_t j = 0; j < d.n_k; ++j)
            rope_rotate_f64(s, rope, &kr[size_t(((b * d.n_kv_heads + g) * d.n_k + j) * d.head_dim)],
                            attn::k_position(s, d, b, j));
      }
    }
  }

  std::vector<double> load(const TensorView& t, int64_t heads, int64_t n, int64_t dim) const {
    std::vector<double> out(size_t(d.batch * heads * n * dim));
    size_t idx = 0;
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < n; ++i) {
          const void* row = t.at(b, h, i);
          for (int64_t e = 0; e < dim; ++e) out[idx++] = attn::load_scalar(t.dtype, row, e);
        }
    return out;
  }

  const double* q_row(int64_t b, int64_t h, int64_t i) const {
    return &qr[size_t(((b * d.n_heads + h) * d.n_q + i) * d.head_dim)];
  }
  const double* k_row(int64_t b, int64_t g, int64_t j) const {
    return &kr[size_t(((b * d.n_kv_heads + g) * d.n_k + j) * d.head_dim)];
  }
  const double* v_row(int64_t b, int64_t g, int64_t j) const {
    return &vv[size_t(((b * d.n_kv_heads + g) * d.n_k + j) * d.v_dim)];
  }

  // Content logit before softcap, and the softcap-ed logit.
  double content(int64_t b, int64_t h, int64_t i, int64_t j) const {
    const double* qi = q_row(b, h, i);
    const double* kj = k_row(b, d.kv_head(h), j);
    double dot = 0;
    for (int64_t e = 0; e < d.head_dim; ++e) dot += qi[e] * kj[e];
    return scale * dot;
  }
  double capped(double sc) const { return s.softcap > 0 ? s.softcap * std::tanh(sc / s.softcap) : sc; }

  double bias(int64_t b, int64_t h, int64_t j, double delta) const {
    const int64_t g = d.kv_head(h);
    double z = 0;
    for (int r = 0; r < s.goat.rank; ++r) {
      z += double(s.goat.lambda_sym[g * s.goat.rank + r]) * std::cos(omega[size_t(r)] * delta) +
           double(s.goat.lambda_asym[g * s.goat.rank + r]) * std::sin(omega[size_t(r)] * delta);
    }
    if (!s.key_bias.empty())
      z += attn::key_bias_at(s, s.key_bias.shape[0] == 1 ? 0 : b, g, j);
    if (s.alibi_slopes) z -= double(s.alibi_slopes[h]) * std::fabs(delta);
    return z;
  }

  // Fills z (n_k logits, -inf where hidden) for row (b, h, i).
  void logits(int64_t b, int64_t h, int64_t i, std::vector<double>& z) const {
    const int64_t qp = attn::q_position(s, d, b, i);
    for (int64_t j = 0; j < d.n_k; ++j) {
      const int64_t kp = attn::k_position(s, d, b, j);
      if (!attn::visible(s, j, qp, kp)) {
        z[size_t(j)] = -INFINITY;
        continue;
      }
      z[size_t(j)] = capped(content(b, h, i, j)) + bias(b, h, j, double(qp - kp));
    }
  }

  // Attention weights of one row (AttnNormalization); returns lse (0 for ReLU).
  double normalize(int64_t h, const std::vector<double>& z, std::vector<double>& p) const {
    if (s.normalization == AttnNormalization::Relu) {
      for (size_t j = 0; j < z.size(); ++j) p[j] = z[j] > 0 ? z[j] : 0.0;
      return 0.0;
    }
    return softmax(h, z, p);
  }
  // Softmax with the sink logit; returns lse and fills p.
  double softmax(int64_t h, const std::vector<double>& z, std::vector<double>& p) const {
    double m = -INFINITY;
    for (double x : z) m = std::max(m, x);
    if (s.sink_logits) m = std::max(m, double(s.sink_logits[h]));
    if (m == -INFINITY) {
      // Every logit hidden gives a zero row; every visible logit NaN (a NaN in q) gives NaN.
      const bool nan = std::any_of(z.begin(), z.end(), [](double x) { return std::isnan(x); });
      std::fill(p.begin(), p.end(), nan ? NAN : 0.0);
      return nan ? NAN : -INFINITY;
    }
    double l = s.sink_logits ? std::exp(double(s.sink_logits[h]) - m) : 0.0;
    for (double x : z) l += std::exp(x - m);
    const double lse = m + std::log(l);
    for (size_t j = 0; j < z.size(); ++j) p[j] = std::exp(z[j] - lse);
    return lse;
  }
};

}  // namespace

ReferenceForward attention_reference(const AttnSpec& spec, const TensorView& q,
                                     const TensorView& k, const TensorView& v, int first_k) {
  Problem P(spec, q, k, v);
  const Dims& d = P.d;
  ReferenceForward out;
  const size_t rows = size_t(d.batch * d.n_heads * d.n_q);
  out.o.assign(rows * size_t(d.v_dim), 0.0);
  out.lse.assign(rows, 0.0);
  out.prob.assign(rows * size_t(d.n_k), 0.0);
  out.mass_first_k.assign(rows, 0.0);
  out.entropy.assign(rows, 0.0);
  out.column_sums.assign(size_t(d.batch * d.n_heads * d.n_k), 0.0);
  std::vector<double> z(size_t(d.n_k)), p(size_t(d.n_k));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.n_heads; ++h)
      for (int64_t i = 0; i < d.n_q; ++i) {
        const size_t row = size_t((b * d.n_heads + h) * d.n_q + i);
        P.logits(b, h, i, z);
        const double lse = P.normalize(h, z, p);
        out.lse[row] = lse;
        const bool relu = spec.normalization == AttnNormalization::Relu;
        double total = 0;  // ReLU: the row's weight, for the entropy of its shares
        if (relu)
          for (double x : p) total += x;
        double* o = &out.o[row * size_t(d.v_dim)];
        double mass = 0, ent = 0;
        for (int64_t j = 0; j < d.n_k; ++j) {
          const double pj = p[size_t(j)];
          out.prob[row * size_t(d.n_k) + size_t(j)] = pj;
          if (pj == 0) continue;
          const double* vj = P.v_row(b, d.kv_head(h), j);
          for (int64_t e = 0; e < d.v_dim; ++e) o[e] += pj * vj[e];
          if (j < first_k) mass += pj;
          ent -= relu ? pj / total * std::log(pj / total) : pj * (z[size_t(j)] - lse);
          out.column_sums[size_t((b * d.n_heads + h) * d.n_k + j)] += pj;
        }
        if (spec.sink_logits && lse != -INFINITY) {
          const double ps = std::exp(double(spec.sink_logits[h]) - lse);
          if (ps > 0) ent -= ps * (double(spec.sink_logits[h]) - lse);
        }
        out.mass_first_k[row] = mass;
        out.entropy[row] = ent;
      }
  return out;
}

// The float64 oracle's backward, long on purpose: every gradient (q, k, v,
// sink logits, priors) is written out in one place, next to the forward it
// differentiates, so a reader checks it against the math line by line.
ReferenceGrads attention_reference_backward(const AttnSpec& spec, const TensorView& q,
                                            const TensorView& k, const TensorView& v,
                                            const TensorView& d_o) {
  Problem P(spec, q, k, v);
  const Dims& d = P.d;
  check_view(d_o, "attention backward: d_o", {d.batch, d.n_heads, d.n_q, d.v_dim});
  ReferenceGrads g;
  g.dq.assign(P.qr.size(), 0.0);
  g.dk.assign(P.kr.size(), 0.0);
  g.dv.assign(P.vv.size(), 0.0);
  g.d_sink_logits.assign(size_t(d.n_heads), 0.0);
  const size_t nlam = size_t(d.n_kv_heads * spec.goat.rank);
  g.d_lambda_sym.assign(nlam, 0.0);
  g.d_lambda_asym.assign(nlam, 0.0);
  g.d_key_bias.assign(size_t(d.batch * d.n_kv_heads * d.n_k), 0.0);
  g.d_alibi_slopes.assign(size_t(d.n_heads), 0.0);

  std::vector<double> z(size_t(d.n_k)), p(size_t(d.n_k)), dz(size_t(d.n_k)), o(size_t(d.v_dim)),
      dout(size_t(d.v_dim));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.n_heads; ++h) {
      const int64_t gh = d.kv_head(h);
      for (int64_t i = 0; i < d.n_q; ++i) {
        P.logits(b, h, i, z);
        const double lse = P.normalize(h, z, p);
        const bool relu = spec.normalization == AttnNormalization::Relu;
        const void* dorow = d_o.at(b, h, i);
        for (int64_t e = 0; e < d.v_dim; ++e) dout[size_t(e)] = attn::load_scalar(d_o.dtype, dorow, e);
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j = 0; j < d.n_k; ++j) {
          if (p[size_t(j)] == 0) continue;
          const double* vj = P.v_row(b, gh, j);
          for (int64_t e = 0; e < d.v_dim; ++e) o[size_t(e)] += p[size_t(j)] * vj[e];
        }
        double D = 0;  // dO . O
        for (int64_t e = 0; e < d.v_dim; ++e) D += dout[size_t(e)] * o[size_t(e)];
        if (spec.sink_logits && lse != -INFINITY)
          g.d_sink_logits[size_t(h)] -= std::exp(double(spec.sink_logits[h]) - lse) * D;
        const int64_t qp = attn::q_position(spec, d, b, i);
        const double* qi = P.q_row(b, h, i);
        double* dqi = &g.dq[size_t(((b * d.n_heads + h) * d.n_q + i) * d.head_dim)];
        for (int64_t j = 0; j < d.n_k; ++j) {
          const double pj = p[size_t(j)];
          if (pj == 0) continue;
          const double* vj = P.v_row(b, gh, j);
          double* dvj = &g.dv[size_t(((b * d.n_kv_heads + gh) * d.n_k + j) * d.v_dim)];
          double dp = 0;
          for (int64_t e = 0; e < d.v_dim; ++e) {
            dp += dout[size_t(e)] * vj[e];
            dvj[e] += pj * dout[size_t(e)];
          }
          // ReLU: p = z where z > 0 (and pj > 0 only there); softmax: p (dp - dO.O).
          const double dzj = relu ? dp : pj * (dp - D);
          const double delta = double(qp - attn::k_position(spec, d, b, j));
          for (int r = 0; r < spec.goat.rank; ++r) {
            g.d_lambda_sym[size_t(gh * spec.goat.rank + r)] += dzj * std::cos(P.omega[size_t(r)] * delta);
            g.d_lambda_asym[size_t(gh * spec.goat.rank + r)] += dzj * std::sin(P.omega[size_t(r)] * delta);
          }
          g.d_key_bias[size_t((b * d.n_kv_heads + gh) * d.n_k + j)] += dzj;
          if (spec.alibi_slopes) g.d_alibi_slopes[size_t(h)] -= dzj * std::fabs(delta);
          double ds = dzj;
          if (spec.softcap > 0) {
            const double t = std::tanh(P.content(b, h, i, j) / spec.softcap);
            ds *= 1 - t * t;
          }
          const double* kj = P.k_row(b, gh, j);
          double* dkj = &g.dk[size_t(((b * d.n_kv_heads + gh) * d.n_k + j) * d.head_dim)];
          for (int64_t e = 0; e < d.head_dim; ++e) {
            dqi[e] += P.scale * ds * kj[e];
            dkj[e] += P.scale * ds * qi[e];
          }
        }
      }
    }
  // Gradients so far are with respect to the rotated q and k; rotate back.
  if (spec.rope.style != RopeStyle::None) {
    for (int64_t b = 0; b < d.batch; ++b) {
      for (int64_t h = 0; h < d.n_heads; ++h)
        for (int64_t i = 0; i < d.n_q; ++i)
          rope_rotate_f64(spec, P.rope, &g.dq[size_t(((b * d.n_heads + h) * d.n_q + i) * d.head_dim)],
                          -double(attn::q_position(spec, d, b, i)));
      for (int64_t gh = 0; gh < d.n_kv_heads; ++gh)
        for (int64_t j = 0; j < d.n_k; ++j)
          rope_rotate_f64(spec, P.rope, &g.dk[size_t(((b * d.n_kv_heads + gh) * d.n_k + j) * d.head_dim)],
                          -double(attn::k_position(spec, d, b, j)));
    }
  }
  return g;
}

}  // namespace sinklab
