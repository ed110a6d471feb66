// Flash backward against the float64 reference backward on fresh random
// inputs for every AttnSpec field, and finite differences of the reference
// forward to check the reference backward itself.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attn_problem.h"
#include "attn_test_util.h"
#include "sinklab/attention.h"

using namespace sinklab;
using sinklab::test::poison;
using sinklab::test::random_normal;
using sinklab::test::rel_l2;
using sinklab::test::Case;
using sinklab::test::Problem;
using sinklab::test::kInf;
using sinklab::test::base;

namespace {

// Flash gradients, stored contiguously; every output requested unless told otherwise.
struct FlashGrads {
  std::vector<float> dq, dk, dv, sink, lam_s, lam_a, key_bias, alibi;
  AttnGrads g;
  FlashGrads(const Case& c, bool all = true) {
    dq.resize(size_t(c.B * c.H * c.Nq * c.D));
    dk.resize(size_t(c.B * c.Hkv * c.Nk * c.D));
    dv.resize(size_t(c.B * c.Hkv * c.Nk * c.Dv));
    sink.resize(size_t(c.H));
    lam_s.resize(size_t(c.Hkv * c.goat_rank));
    lam_a.resize(lam_s.size());
    key_bias.resize(size_t(c.B * c.Hkv * c.Nk));
    alibi.resize(size_t(c.H));
    for (auto* x : {&dq, &dk, &dv, &sink, &lam_s, &lam_a, &key_bias, &alibi}) poison(*x);
    if (!all) return;
    g.dq = TensorView(dq.data(), DType::F32, {c.B, c.H, c.Nq, c.D});
    g.dk = TensorView(dk.data(), DType::F32, {c.B, c.Hkv, c.Nk, c.D});
    g.dv = TensorView(dv.data(), DType::F32, {c.B, c.Hkv, c.Nk, c.Dv});
    g.d_sink_logits = sink.data();
    g.d_lambda_sym = lam_s.data();
    g.d_lambda_asym = lam_a.data();
    g.d_key_bias = TensorView(key_bias.data(), DType::F32, {c.B, c.Hkv, c.Nk});
    g.d_alibi_slopes = alibi.data();
  }
};

// o and lse as attention_forward writes them (f32).
struct Forward {
  std::vector<float> o, lse;
  TensorView ov, lsev;
  Forward(const Problem& p, AttnImpl impl) {
    const Case& c = p.c;
    o.resize(size_t(c.B * c.H * c.Nq * c.Dv));
    lse.resize(size_t(c.B * c.H * c.Nq));
    ov = TensorView(o.data(), DType::F32, {c.B, c.H, c.Nq, c.Dv});
    lsev = TensorView(lse.data(), DType::F32, {c.B, c.H, c.Nq});
    attention_forward(p.spec, p.qv, p.kv, p.vv, ov, lsev, nullptr, impl);
  }
};

double norm(const std::vector<double>& x) {
  double s = 0;
  for (double e : x) s += e * e;
  return std::sqrt(s);
}

double row_norm(const float* x, int64_t n) {
  double s = 0;
  for (int64_t e = 0; e < n; ++e) s += double(x[e]) * x[e];
  return std::sqrt(s);
}

// Where a gradient cancels to ~0 (e.g. a window of 1: P = 1 and dP = D exactly), a
// relative error is meaningless. Its f32 rounding error is bounded by eps times the
// magnitude of the cancelling terms: dZ_ij = P_ij (dP_ij - D_i) is off by about
// eps * m_ij, m_ij = P_ij |dO_i| (|V_j| + |O_i|), and dq, dk, d_key_bias sum m_ij
// weighted by scale |K_j|, scale |Q_i| and 1. These are those sums' norms.
struct Floors {
  double dq = 0, dk = 0, key_bias = 0;
};
Floors cancellation_floors(const Problem& p, const ReferenceForward& r) {
  const Case& c = p.c;
  const double scale = 1.0 / std::sqrt(double(c.D));
  const int64_t group = c.H / c.Hkv;
  std::vector<double> dk(size_t(c.B * c.Hkv * c.Nk), 0.0), kb(dk.size(), 0.0);
  Floors f;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Nq; ++i) {
        const int64_t row = (b * c.H + h) * c.Nq + i, g = h / group;
        double o = 0;
        for (int64_t e = 0; e < c.Dv; ++e) o += std::pow(r.o[size_t(row * c.Dv + e)], 2);
        o = std::sqrt(o);
        const double d_o = row_norm(&p.d_o[size_t(row * c.Dv)], c.Dv);
        const double qn = row_norm(&p.q[size_t(row * c.D)], c.D);
        double dq = 0;
        for (int64_t j = 0; j < c.Nk; ++j) {
          const int64_t key = (b * c.Hkv + g) * c.Nk + j;
          const double m = r.prob[size_t(row * c.Nk + j)] * d_o *
                           (row_norm(&p.v[size_t(key * c.Dv)], c.Dv) + o);
          dq += scale * m * row_norm(&p.k[size_t(key * c.D)], c.D);
          dk[size_t(key)] += scale * m * qn;
          kb[size_t(key)] += m;
        }
        f.dq += dq * dq;
      }
  f.dq = std::sqrt(f.dq);
  f.dk = norm(dk);
  f.key_bias = norm(kb);
  return f;
}

// Relative L2 error <= tol; for a gradient that cancels to ~0 (norm below 1e-3 of
// its floor) the absolute error must instead stay below 1e-6 * floor (about 16 f32
// epsilons of the cancelling terms).
void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& ref,
                  double tol, double floor = 0) {
  std::string why;
  const double err = rel_l2(got, ref, &why), ref_norm = norm(ref);
  if (floor > 0 && ref_norm < 1e-3 * floor) {
    const double abs_err = ref_norm > 0 ? err * ref_norm : err;
    EXPECT_LE(abs_err, 1e-6 * floor) << what << " (cancels to ~0, |ref| = " << ref_norm << ") "
                                     << why;
  } else {
    EXPECT_LE(err, tol) << what << " " << why;
  }
}

void run_case(const Case& cs, uint32_t seed, AttnImpl forward = AttnImpl::Reference) {
  SCOPED_TRACE(cs.name + " seed " + std::to_string(seed));
  const Problem p(cs, seed);
  const Case& c = p.c;
  const Forward f(p, forward);
  FlashGrads fg(c);
  attention_backward(p.spec, p.qv, p.kv, p.vv, f.ov, f.lsev, p.dov, fg.g, AttnImpl::Flash);
  const ReferenceGrads ref = attention_reference_backward(p.spec, p.qv, p.kv, p.vv, p.dov);
  const Floors floors = cancellation_floors(p, attention_reference(p.spec, p.qv, p.kv, p.vv));
  const double tol = 1e-5;
  expect_close("dq", fg.dq, ref.dq, tol, floors.dq);
  expect_close("dk", fg.dk, ref.dk, tol, floors.dk);
  expect_close("dv", fg.dv, ref.dv, tol);
  expect_close("d_sink_logits", fg.sink, ref.d_sink_logits, tol);
  expect_close("d_lambda_sym", fg.lam_s, ref.d_lambda_sym, tol);
  expect_close("d_lambda_asym", fg.lam_a, ref.d_lambda_asym, tol);
  expect_close("d_key_bias", fg.key_bias, ref.d_key_bias, tol, floors.key_bias);
  expect_close("d_alibi_slopes", fg.alibi, ref.d_alibi_slopes, tol);
}


}  // namespace

TEST(FlashBackward, LengthsAcrossTileBorders) {
  for (int64_t n : {1, 7, 128, 130, 300}) {
    for (bool causal : {true, false}) {
      Case c = base(std::string(causal ? "causal" : "full") + " n=" + std::to_string(n));
      c.causal = causal;
      c.Nq = c.Nk = n;
      run_case(c, uint32_t(n));
    }
  }
}

TEST(FlashBackward, QueriesShorterThanKeys) {
  for (auto [nq, nk] : {std::pair<int64_t, int64_t>{1, 300}, {7, 130}, {130, 300}, {300, 7}}) {
    Case c = base("nq=" + std::to_string(nq) + " nk=" + std::to_string(nk));
    c.Nq = nq;
    c.Nk = nk;
    c.sinks = true;  // rows that see no key still have the sink
    run_case(c, uint32_t(nq * 1000 + nk));
  }
}

TEST(FlashBackward, HeadDims) {
  for (int64_t dim : {8, 64, 80, 128}) {
    Case c = base("D=" + std::to_string(dim));
    c.D = dim;
    c.Nq = c.Nk = 130;
    run_case(c, uint32_t(dim));
  }
  Case c = base("D=64 Dv=80");
  c.D = 64;
  c.Dv = 80;
  c.Nq = c.Nk = 130;
  run_case(c, 5);
}

TEST(FlashBackward, GqaAndMqa) {
  for (auto [h, hkv] : {std::pair<int64_t, int64_t>{8, 2}, {8, 1}}) {
    for (int64_t n : {7, 300}) {
      Case c = base("H=" + std::to_string(h) + " Hkv=" + std::to_string(hkv) + " n=" +
                    std::to_string(n));
      c.H = h;
      c.Hkv = hkv;
      c.Nq = c.Nk = n;
      c.B = 2;
      c.sinks = true;
      c.alibi = true;
      c.goat_rank = 2;
      run_case(c, uint32_t(h * 10 + hkv + n));
    }
  }
}

TEST(FlashBackward, WindowAndSinkKeys) {
  for (bool causal : {true, false}) {
    for (auto [w, sk] : {std::pair{1, 0}, {17, 0}, {17, 4}, {100, 130}}) {
      Case c = base(std::string(causal ? "causal" : "full") + " window " + std::to_string(w) +
                    " sink_keys " + std::to_string(sk));
      c.causal = causal;
      c.window = w;
      c.sink_keys = sk;
      c.Nq = c.Nk = 300;
      c.H = c.Hkv = 2;
      run_case(c, uint32_t(w * 7 + sk));
    }
  }
}

TEST(FlashBackward, SinkLogitsFullRange) {
  for (auto [lo, hi] : {std::pair{-10.f, -9.f}, {-1.f, 1.f}, {9.f, 10.f}, {-10.f, 10.f}}) {
    Case c = base("sink logits in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    c.sinks = true;
    c.sink_lo = lo;
    c.sink_hi = hi;
    c.Nq = c.Nk = 150;
    run_case(c, uint32_t(lo + 100));
  }
}

TEST(FlashBackward, NonContiguousPositionsAndFullyMaskedRows) {
  Case c = base("gappy positions, causal");
  c.gappy_positions = true;
  c.Nq = 40;
  c.Nk = 260;
  run_case(c, 1);
  c.sinks = true;
  c.name = "gappy positions + sink logits";
  run_case(c, 2);
  c.window = 30;
  c.sink_keys = 3;
  c.alibi = true;
  c.goat_rank = 3;
  c.name = "gappy positions + window + sink keys + priors";
  run_case(c, 3);
  c.position_scale = 50;  // spans past the table limit; ALiBi slopes stay moderate at this scale
  c.window = 1500;
  c.name = "sparse positions + window + sink keys + priors";
  run_case(c, 4);
  c = base("per-batch positions, rope");
  c.gappy_positions = c.per_batch_positions = true;
  c.B = 3;
  c.Nq = 20;
  c.Nk = 150;
  c.rope = RopeStyle::RotateHalf;
  c.sinks = true;
  run_case(c, 4);
}

TEST(FlashBackward, Rope) {
  for (RopeStyle style : {RopeStyle::RotateHalf, RopeStyle::Interleaved}) {
    for (RopeScaling sc : {RopeScaling::None, RopeScaling::Linear, RopeScaling::NTK,
                           RopeScaling::YaRN, RopeScaling::Llama3}) {
      Case c = base("rope " + std::to_string(int(style)) + " scaling " + std::to_string(int(sc)));
      c.rope = style;
      c.scaling = sc;
      c.D = 64;
      c.Nq = c.Nk = 130;
      c.H = c.Hkv = 2;
      run_case(c, uint32_t(int(style) * 10 + int(sc)));
      c.rotary_dim = 32;
      c.name += " rotary_dim 32";
      run_case(c, uint32_t(int(style) * 10 + int(sc) + 100));
    }
  }
}

TEST(FlashBackward, GoatRanks) {
  for (int rank = 1; rank <= 8; ++rank) {
    Case c = base("GOAT rank " + std::to_string(rank));
    c.goat_rank = rank;
    c.H = 4;
    c.Hkv = 2;
    c.Nq = c.Nk = 130;
    c.causal = rank % 2 == 0;
    run_case(c, uint32_t(rank));
  }
}

TEST(FlashBackward, PriorsAndSoftcap) {
  Case c = base("key bias with -inf");
  c.key_bias = c.key_bias_neg_inf = true;
  c.Nq = c.Nk = 130;
  run_case(c, 1);
  c = base("alibi, non-causal");
  c.alibi = true;
  c.causal = false;
  c.H = c.Hkv = 8;
  c.Nq = c.Nk = 130;
  run_case(c, 2);
  c = base("softcap");
  c.softcap = 5.f;
  c.q_scale = 4.f;  // logits large enough for the cap to bend them
  c.Nq = c.Nk = 130;
  run_case(c, 3);
  c = base("everything");
  c.sinks = true;
  c.goat_rank = 4;
  c.key_bias = c.key_bias_neg_inf = true;
  c.alibi = true;
  c.softcap = 20.f;
  c.q_scale = 3.f;
  c.rope = RopeStyle::Interleaved;
  c.scaling = RopeScaling::YaRN;
  c.rotary_dim = 16;
  c.window = 50;
  c.sink_keys = 2;
  c.B = 2;
  c.H = 8;
  c.Hkv = 2;
  c.D = 80;
  c.Nq = 130;
  c.Nk = 300;
  run_case(c, 4);
  c.causal = false;
  c.gappy_positions = true;
  c.name = "everything, non-causal, gappy positions";
  run_case(c, 5);
}

TEST(FlashBackward, ManyRowsSplitIntoSlabs) {
  // 64 heads x 300 queries at D = 256 exceed one slab of query rows (2^22 / D), and
  // the slab border falls inside a kv head's rows.
  Case c = base("many rows");
  c.H = 64;
  c.Hkv = 8;
  c.Nq = 300;
  c.Nk = 40;
  c.D = 256;
  c.Dv = 16;
  c.causal = false;
  c.window = 20;
  c.sinks = true;
  c.goat_rank = 2;
  c.alibi = true;
  c.key_bias = true;
  run_case(c, 31);
}

TEST(FlashBackward, Bf16Inputs) {
  Case c = base("bf16");
  c.bf16 = true;
  c.Nq = c.Nk = 130;
  c.H = 4;
  c.Hkv = 2;
  c.rope = RopeStyle::RotateHalf;
  c.sinks = true;
  run_case(c, 1);
}

TEST(FlashBackward, Bf16OutputReadsAsItsF32Value) {
  Case c = base("bf16 o");
  c.Nq = c.Nk = 130;
  c.sinks = true;
  const Problem p(c, 9);
  Forward f(p, AttnImpl::Reference);
  test::round_to_bf16(f.o);
  std::vector<uint16_t> o16 = test::to_bf16_bits(f.o);
  const TensorView o_bf16(o16.data(), DType::BF16, {c.B, c.H, c.Nq, c.D});
  FlashGrads a(c), b(c);
  attention_backward(p.spec, p.qv, p.kv, p.vv, f.ov, f.lsev, p.dov, a.g, AttnImpl::Flash);
  attention_backward(p.spec, p.qv, p.kv, p.vv, o_bf16, f.lsev, p.dov, b.g, AttnImpl::Flash);
  EXPECT_EQ(a.dq, b.dq);
  EXPECT_EQ(a.dk, b.dk);
  EXPECT_EQ(a.dv, b.dv);
  EXPECT_EQ(a.sink, b.sink);
}

TEST(FlashBackward, FromFlashForward) {
  Case c = base("flash forward then flash backward");
  c.Nq = c.Nk = 300;
  c.H = 4;
  c.Hkv = 2;
  c.sinks = true;
  c.goat_rank = 2;
  c.alibi = true;
  run_case(c, 11, AttnImpl::Flash);
}

TEST(FlashBackward, AbsentOutputsAndDeterminism) {
  Case c = base("partial outputs");
  c.Nq = c.Nk = 300;
  c.H = 8;
  c.Hkv = 2;
  c.sinks = true;
  c.goat_rank = 3;
  c.alibi = true;
  c.key_bias = true;
  const Problem p(c, 21);
  const Forward f(p, AttnImpl::Reference);
  FlashGrads all(c), again(c), some(c, false);
  attention_backward(p.spec, p.qv, p.kv, p.vv, f.ov, f.lsev, p.dov, all.g, AttnImpl::Flash);
  attention_backward(p.spec, p.qv, p.kv, p.vv, f.ov, f.lsev, p.dov, again.g, AttnImpl::Flash);
  EXPECT_EQ(all.dq, again.dq);  // bitwise: deterministic for a fixed thread count
  EXPECT_EQ(all.dk, again.dk);
  EXPECT_EQ(all.dv, again.dv);
  EXPECT_EQ(all.lam_s, again.lam_s);
  EXPECT_EQ(all.alibi, again.alibi);
  EXPECT_EQ(all.key_bias, again.key_bias);
  // Only dv, d_sink_logits and d_lambda_asym.
  some.g.dv = TensorView(some.dv.data(), DType::F32, {c.B, c.Hkv, c.Nk, c.Dv});
  some.g.d_sink_logits = some.sink.data();
  some.g.d_lambda_asym = some.lam_a.data();
  attention_backward(p.spec, p.qv, p.kv, p.vv, f.ov, f.lsev, p.dov, some.g, AttnImpl::Flash);
  EXPECT_EQ(some.dv, all.dv);
  EXPECT_EQ(some.sink, all.sink);
  EXPECT_EQ(some.lam_a, all.lam_a);
  EXPECT_TRUE(std::isnan(some.dq[0]) && std::isnan(some.dk[0]) && std::isnan(some.lam_s[0]));
}

// ---- finite differences of the float64 reference ----

namespace {

// Rounds to a multiple of 2^-16 so that +-2^-14 perturbations are exact in f32.
void snap(std::vector<float>& x) {
  for (auto& e : x) e = std::ldexp(std::nearbyint(std::ldexp(e, 16)), -16);
}

double loss(const Problem& p, const std::vector<float>& w) {
  const ReferenceForward r = attention_reference(p.spec, p.qv, p.kv, p.vv);
  double l = 0;
  for (size_t i = 0; i < w.size(); ++i) l += r.o[i] * double(w[i]);
  return l;
}

// Central difference in parameter x[idx] (h exact in f32), against the analytic value.
struct FdCheck {
  std::vector<double> fd, analytic;
  void add(Problem& p, const std::vector<float>& w, float& x, double analytic_value) {
    const float h = std::ldexp(1.f, -14), x0 = x;
    x = x0 + h;
    const double lp = loss(p, w);
    x = x0 - h;
    const double lm = loss(p, w);
    x = x0;
    fd.push_back((lp - lm) / (2.0 * double(h)));
    analytic.push_back(analytic_value);
  }
  double rel() const {
    double num = 0, den = 0;
    for (size_t i = 0; i < fd.size(); ++i) {
      num += (fd[i] - analytic[i]) * (fd[i] - analytic[i]);
      den += analytic[i] * analytic[i];
    }
    return std::sqrt(num / den);
  }
};

void finite_difference_case(const Case& cs, uint32_t seed) {
  SCOPED_TRACE(cs.name);
  Problem p(cs, seed);
  const Case& c = p.c;
  for (auto* x : {&p.q, &p.k, &p.v, &p.d_o, &p.sink, &p.lam_s, &p.lam_a, &p.u, &p.slopes})
    snap(*x);
  const ReferenceGrads g = attention_reference_backward(p.spec, p.qv, p.kv, p.vv, p.dov);
  std::mt19937 pick(seed);
  auto some = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(pick); };
  FdCheck q, k, v, sink, lam, u, alibi;
  for (int t = 0; t < 6; ++t) {
    const size_t iq = some(p.q.size()), ik = some(p.k.size()), iv = some(p.v.size());
    q.add(p, p.d_o, p.q[iq], g.dq[iq]);
    k.add(p, p.d_o, p.k[ik], g.dk[ik]);
    v.add(p, p.d_o, p.v[iv], g.dv[iv]);
  }
  for (size_t h = 0; h < p.sink.size(); ++h) sink.add(p, p.d_o, p.sink[h], g.d_sink_logits[h]);
  for (size_t r = 0; r < p.lam_s.size(); ++r) {
    lam.add(p, p.d_o, p.lam_s[r], g.d_lambda_sym[r]);
    lam.add(p, p.d_o, p.lam_a[r], g.d_lambda_asym[r]);
  }
  if (!p.u.empty())
    for (size_t j : {size_t(0), size_t(3), p.u.size() - 1})
      u.add(p, p.d_o, p.u[j], g.d_key_bias[j]);
  for (size_t h = 0; h < p.slopes.size(); ++h)
    alibi.add(p, p.d_o, p.slopes[h], g.d_alibi_slopes[h]);
  const double tol = 1e-6;
  EXPECT_LE(q.rel(), tol) << "dq";
  EXPECT_LE(k.rel(), tol) << "dk";
  EXPECT_LE(v.rel(), tol) << "dv";
  if (c.sinks) {
    EXPECT_LE(sink.rel(), tol) << "d_sink_logits";
  }
  if (c.goat_rank) {
    EXPECT_LE(lam.rel(), tol) << "d_lambda";
  }
  if (c.key_bias) {
    EXPECT_LE(u.rel(), tol) << "d_key_bias";
  }
  if (c.alibi) {
    EXPECT_LE(alibi.rel(), tol) << "d_alibi_slopes";
  }
}

}  // namespace

TEST(ReferenceBackward, MatchesFiniteDifferences) {
  Case c = base("all priors, softcap, rope rotate-half partial + YaRN");
  c.H = 4;
  c.Hkv = 2;
  c.Nq = 6;
  c.Nk = 9;
  c.D = 8;
  c.Dv = 6;
  c.sinks = true;
  c.goat_rank = 3;
  c.key_bias = true;
  c.alibi = true;
  c.softcap = 2.f;
  c.q_scale = 2.f;
  c.rope = RopeStyle::RotateHalf;
  c.rotary_dim = 6;
  c.scaling = RopeScaling::YaRN;
  c.window = 5;
  c.sink_keys = 1;
  finite_difference_case(c, 1);
  c.name = "non-causal, interleaved rope, gappy positions";
  c.causal = false;
  c.rope = RopeStyle::Interleaved;
  c.scaling = RopeScaling::None;
  c.rotary_dim = 0;
  c.softcap = 0;
  c.gappy_positions = true;
  c.B = 2;
  c.per_batch_positions = true;
  finite_difference_case(c, 2);
}

// Timing of forward vs backward on one problem; run with --gtest_also_run_disabled_tests.
TEST(FlashBackward, DISABLED_TimingVsForward) {
  Case c = base("timing");
  c.H = c.Hkv = 8;
  c.D = 128;
  c.Nq = c.Nk = 2048;
  c.Dv = c.D;
  const Problem p(c, 1);
  std::vector<float> o(size_t(c.B * c.H * c.Nq * c.Dv)), lse(size_t(c.B * c.H * c.Nq));
  const TensorView ov(o.data(), DType::F32, {c.B, c.H, c.Nq, c.Dv});
  const TensorView lsev(lse.data(), DType::F32, {c.B, c.H, c.Nq});
  FlashGrads fg(c);
  fg.g.d_key_bias = {};
  // Best of 5 in wall time and in process CPU time (the latter is steadier on a busy machine).
  auto best = [](auto&& f) {
    double wall = 1e30, cpu = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      f();
      cpu = std::min(cpu, double(std::clock() - c0) / CLOCKS_PER_SEC);
      const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
      wall = std::min(wall, dt.count());
    }
    return std::pair{wall, cpu};
  };
  const auto [fw, fc] = best([&] {
    attention_forward(p.spec, p.qv, p.kv, p.vv, ov, lsev, nullptr, AttnImpl::Flash);
  });
  const auto [bw, bc] = best([&] {
    attention_backward(p.spec, p.qv, p.kv, p.vv, ov, lsev, p.dov, fg.g, AttnImpl::Flash);
  });
  std::printf("causal B=1 H=8 D=128 N=2048: forward %.1f ms, backward %.1f ms, ratio %.2f "
              "(CPU time: %.1f / %.1f ms, ratio %.2f)\n",
              fw * 1e3, bw * 1e3, bw / fw, fc * 1e3, bc * 1e3, bc / fc);
}
