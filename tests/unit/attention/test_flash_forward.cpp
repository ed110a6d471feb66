// Flash forward (prefill and split-K decode) and its statistics against the
// float64 reference, on fresh random inputs for every AttnSpec field.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attn_problem.h"
#include "sinklab/attention.h"

using namespace sinklab;
using sinklab::test::base;
using sinklab::test::Case;
using sinklab::test::Problem;
using sinklab::test::rel_l2;

namespace {

void run_case(const Case& cs, uint32_t seed, double tol = 1e-5) {
  SCOPED_TRACE(cs.name + " seed " + std::to_string(seed));
  Problem p(cs, seed);
  const Case& c = p.c;
  const ReferenceForward ref = attention_reference(p.spec, p.qv, p.kv, p.vv, c.first_k);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> o(size_t(c.B * c.H * c.Nq * c.Dv), nan), lse(size_t(c.B * c.H * c.Nq), nan),
      mass(lse.size(), nan), ent(lse.size(), nan), cols(size_t(c.B * c.H * c.Nk), nan);
  AttnStats st;
  st.first_k = c.first_k;
  st.mass_first_k = TensorView(mass.data(), DType::F32, {c.B, c.H, c.Nq});
  st.entropy = TensorView(ent.data(), DType::F32, {c.B, c.H, c.Nq});
  st.column_sums = TensorView(cols.data(), DType::F32, {c.B, c.H, c.Nk});
  attention_forward(p.spec, p.qv, p.kv, p.vv, TensorView(o.data(), DType::F32, {c.B, c.H, c.Nq, c.Dv}),
                    TensorView(lse.data(), DType::F32, {c.B, c.H, c.Nq}), &st, AttnImpl::Flash);
  std::string why;
  EXPECT_LE(rel_l2(o, ref.o, &why), tol) << "o " << why;
  EXPECT_LE(rel_l2(lse, ref.lse, &why), tol) << "lse " << why;
  EXPECT_LE(rel_l2(mass, ref.mass_first_k, &why), tol) << "mass_first_k " << why;
  EXPECT_LE(rel_l2(ent, ref.entropy, &why), 10 * tol) << "entropy " << why;
  EXPECT_LE(rel_l2(cols, ref.column_sums, &why), tol) << "column_sums " << why;

  // Without stats or lse the output is the same.
  std::vector<float> o2(o.size(), nan);
  attention_forward(p.spec, p.qv, p.kv, p.vv,
                    TensorView(o2.data(), DType::F32, {c.B, c.H, c.Nq, c.Dv}), {}, nullptr,
                    AttnImpl::Flash);
  EXPECT_LE(rel_l2(o2, ref.o, &why), tol) << "o without stats " << why;
}


}  // namespace

TEST(FlashForward, LengthsAcrossTileBorders) {
  for (int64_t n : {1, 2, 7, 127, 128, 129, 300}) {
    Case c = base("causal n=" + std::to_string(n));
    c.Nq = c.Nk = n;
    run_case(c, uint32_t(n));
    c.causal = false;
    c.name = "noncausal n=" + std::to_string(n);
    run_case(c, uint32_t(n + 1000));
  }
}

TEST(FlashForward, QueriesShorterThanKeys) {
  Case c = base("chunked prefill");
  c.Nq = 37;
  c.Nk = 301;
  run_case(c, 1);
}

TEST(FlashForward, HeadDims) {
  for (int64_t d : {1, 8, 64, 80, 128, 256}) {
    Case c = base("D=" + std::to_string(d));
    c.D = d;
    c.Nq = c.Nk = 70;
    run_case(c, uint32_t(d));
  }
  Case c = base("D=72 Dv=40");
  c.D = 72;
  c.Dv = 40;
  c.Nq = c.Nk = 150;
  run_case(c, 9);
}

TEST(FlashForward, GqaAndMqa) {
  Case c = base("GQA 8:2");
  c.H = 8;
  c.Hkv = 2;
  c.Nq = c.Nk = 140;
  run_case(c, 1);
  c = base("MQA 4:1 batch 2");
  c.H = 4;
  c.Hkv = 1;
  c.B = 2;
  run_case(c, 2);
}

TEST(FlashForward, WindowAndSinkKeys) {
  for (int w : {1, 5, 64, 200}) {
    for (int s : {0, 1, 4}) {
      Case c = base("window " + std::to_string(w) + " sinks " + std::to_string(s));
      c.Nq = c.Nk = 300;
      c.window = w;
      c.sink_keys = s;
      c.first_k = 4;
      run_case(c, uint32_t(w * 10 + s));
    }
  }
  Case c = base("noncausal window");
  c.causal = false;
  c.window = 9;
  c.sink_keys = 2;
  c.Nq = c.Nk = 200;
  run_case(c, 3);
}

TEST(FlashForward, SinkLogitsFullRange) {
  for (auto [lo, hi] : {std::pair{-10.f, -9.f}, {-1.f, 1.f}, {9.f, 10.f}, {-10.f, 10.f}}) {
    Case c = base("sink logits in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    c.sinks = true;
    c.sink_lo = lo;
    c.sink_hi = hi;
    c.Nq = c.Nk = 150;
    run_case(c, uint32_t(lo + 100));
  }
}

TEST(FlashForward, NonContiguousPositionsAndFullyMaskedRows) {
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
  c.name = "gappy positions + window + sink keys";
  run_case(c, 3);
  c = base("per-batch positions");
  c.gappy_positions = c.per_batch_positions = true;
  c.B = 3;
  c.Nq = 20;
  c.Nk = 150;
  c.rope = RopeStyle::RotateHalf;
  run_case(c, 4);
}

TEST(FlashForward, Rope) {
  for (RopeStyle style : {RopeStyle::RotateHalf, RopeStyle::Interleaved}) {
    for (RopeScaling sc : {RopeScaling::None, RopeScaling::Linear, RopeScaling::NTK,
                           RopeScaling::YaRN, RopeScaling::Llama3}) {
      Case c = base("rope " + std::to_string(int(style)) + " scaling " + std::to_string(int(sc)));
      c.rope = style;
      c.scaling = sc;
      c.D = 64;
      c.Nq = c.Nk = 140;
      run_case(c, uint32_t(int(style) * 10 + int(sc)));
    }
  }
  Case c = base("partial rotary");
  c.rope = RopeStyle::RotateHalf;
  c.D = 80;
  c.rotary_dim = 32;
  c.gappy_positions = true;
  c.Nq = 30;
  c.Nk = 200;
  run_case(c, 5);
}

TEST(FlashForward, PriorsAndSoftcap) {
  for (int r : {1, 4, 16}) {
    Case c = base("goat rank " + std::to_string(r));
    c.goat_rank = r;
    c.H = 4;
    c.Hkv = 2;
    c.Nq = c.Nk = 200;
    run_case(c, uint32_t(r));
  }
  Case c = base("key bias with -inf");
  c.key_bias = c.key_bias_neg_inf = true;
  c.Nq = c.Nk = 140;
  run_case(c, 1);
  c = base("alibi");
  c.alibi = true;
  c.Nq = c.Nk = 140;
  run_case(c, 2);
  c = base("softcap");
  c.softcap = 5.f;
  c.q_scale = 4.f;
  c.Nq = c.Nk = 140;
  run_case(c, 3);
  c = base("everything at once");
  c.goat_rank = 3;
  c.key_bias = c.alibi = c.sinks = true;
  c.softcap = 20.f;
  c.window = 50;
  c.sink_keys = 2;
  c.rope = RopeStyle::Interleaved;
  c.gappy_positions = true;
  c.H = 6;
  c.Hkv = 3;
  c.Nq = 60;
  c.Nk = 290;
  run_case(c, 4);
}

TEST(FlashForward, PriorsOnSparsePositions) {
  // Positions 1000 apart: the relative priors take the rank-2R product path.
  Case c = base("sparse positions, goat + alibi + key bias");
  c.gappy_positions = true;
  c.position_scale = 1000;
  c.goat_rank = 5;
  c.alibi = c.key_bias = c.sinks = true;
  c.H = 4;
  c.Hkv = 2;
  c.Nq = 30;
  c.Nk = 260;
  run_case(c, 1);
  c.Nq = 1;
  c.Nk = 1200;
  c.name += " decode";
  run_case(c, 2);
}

TEST(FlashForward, LogitsNearOverflow) {
  // A constant +85 on every logit (cancels in softmax) and a sink logit near it.
  Case c = base("shifted logits");
  c.key_bias = true;
  c.key_bias_offset = 85.f;
  c.Nq = c.Nk = 140;
  run_case(c, 1);
  // Huge content logits (|z| up to ~1e3): nearly one-hot rows.
  c = base("huge logits");
  c.q_scale = 60.f;
  c.Nq = c.Nk = 140;
  run_case(c, 2);
}

TEST(FlashForward, Bf16Inputs) {
  Case c = base("bf16");
  c.bf16 = true;
  c.H = 4;
  c.Hkv = 2;
  c.rope = RopeStyle::RotateHalf;
  c.Nq = c.Nk = 150;
  run_case(c, 1);
}

TEST(FlashForward, StridedQuery) {
  Case c = base("strided q");
  c.strided_q = true;
  c.Nq = c.Nk = 140;
  c.B = 2;
  run_case(c, 1);
}

TEST(FlashForward, DecodeSplitK) {
  for (int64_t nq : {1, 3}) {
    Case c = base("decode nq=" + std::to_string(nq));
    c.Nq = nq;
    c.Nk = 2000;
    c.H = 8;
    c.Hkv = 2;
    c.D = 64;
    c.first_k = 4;
    run_case(c, uint32_t(nq));
    c.sinks = true;
    c.window = 500;
    c.sink_keys = 4;
    c.rope = RopeStyle::RotateHalf;
    c.name += " streaming (sinks, window, rope, sink logits)";
    run_case(c, uint32_t(nq + 10));
    c.gappy_positions = true;
    c.goat_rank = 4;
    c.alibi = true;
    c.name += " gappy + priors";
    run_case(c, uint32_t(nq + 20));
  }
}

// Up to eight query rows per kv head (decode: one or two queries of MHA, one
// query of GQA groups of three to eight, groups above four in two passes) take
// the few-row tile kernels, which fetch the values alongside the keys: keys 8
// (one row) or 4 (a group) at a time plus a tail; head dims with and without a multiple of 8, with a
// multiple of 16 but not of 64 (group logits, one-row P.V), and of 64 in one
// or two pieces (group logits and P.V); the whole spec (window, sink keys and
// logits, RoPE, priors, softcap).
TEST(FlashForward, FewQueryRowsAcrossKeyCounts) {
  struct Heads {
    int64_t h, hkv, nq;
  };
  for (const Heads hd : {Heads{3, 3, 1}, Heads{3, 3, 2}, Heads{6, 2, 1}, Heads{8, 2, 1}, Heads{10, 2, 1},
                         Heads{16, 2, 1}})
    for (int64_t nk : {7, 8, 9, 17, 64, 131, 300})
      for (int64_t d : {64, 36, 48, 128}) {
        const int64_t nq = hd.nq;
        Case c = base("few rows h=" + std::to_string(hd.h) + "/" + std::to_string(hd.hkv) + " nq=" +
                      std::to_string(nq) + " nk=" + std::to_string(nk) + " d=" + std::to_string(d));
        c.Nq = nq;
        c.Nk = nk;
        c.D = d;
        c.H = hd.h;
        c.Hkv = hd.hkv;
        run_case(c, uint32_t(hd.h * 100000 + nq * 1000 + nk * 10 + d));
        c.sinks = true;
        c.window = 50;
        c.sink_keys = 3;
        c.rope = RopeStyle::RotateHalf;
        c.goat_rank = 2;
        c.softcap = 20;
        c.name += " + streaming spec";
        run_case(c, uint32_t(nq * 1000 + nk * 10 + d + 7));
      }
}

// The RoPE angles a thread keeps across calls (TileContext::rope_cs): calls in
// a row on one thread whose rotations differ (styles, partial rotary dims,
// scalings that change the frequencies or the magnitude), whose positions move
// past the kept range, go below it, are negative, or too sparse for a table,
// each against float64. Reusing angles of another rotation or range fails here.
TEST(FlashForward, RopeAnglesKeptAcrossCallsMatchFloat64) {
  struct Step {
    RopeStyle style;
    RopeScaling scaling;
    int rotary_dim;
    int64_t nq, nk;
    bool gappy;
    int position_scale;
  };
  const Step steps[] = {
      {RopeStyle::RotateHalf, RopeScaling::None, 0, 1, 300, false, 1},   // builds the table
      {RopeStyle::RotateHalf, RopeScaling::None, 0, 1, 301, false, 1},   // one position more
      {RopeStyle::RotateHalf, RopeScaling::None, 0, 1, 900, false, 1},   // past the kept range
      {RopeStyle::RotateHalf, RopeScaling::YaRN, 0, 4, 300, false, 1},   // other frequencies, mscale
      {RopeStyle::RotateHalf, RopeScaling::Linear, 0, 4, 300, false, 1}, // other frequencies
      {RopeStyle::Interleaved, RopeScaling::None, 16, 3, 200, true, 1},  // other pairs, negative positions
      {RopeStyle::RotateHalf, RopeScaling::None, 0, 3, 200, true, 1000}, // too sparse: no table
      {RopeStyle::RotateHalf, RopeScaling::None, 0, 1, 300, false, 1},   // back to the first
  };
  int i = 0;
  for (const Step& st : steps) {
    Case c = base("rope call " + std::to_string(i));
    c.rope = st.style;
    c.scaling = st.scaling;
    c.rotary_dim = st.rotary_dim;
    c.Nq = st.nq;
    c.Nk = st.nk;
    c.gappy_positions = st.gappy;
    c.position_scale = st.position_scale;
    c.per_batch_positions = st.gappy;
    c.B = st.gappy ? 2 : 1;
    run_case(c, uint32_t(100 + i++));
  }
}

// The KeySets of a call (keys, positions, block bounds) are kept by the thread
// for the next one, and positions built once per batch entry are copied to its
// other kv heads. Calls in a row whose batch, kv heads, key counts, positions
// (shared, per batch, gappy) and key copies (RoPE, bf16; one above the size at
// which a copy is given back) differ, each against float64: a stale block
// bound, a position shared across batch entries that differ, or a copy kept
// from a longer call fails here.
TEST(FlashForward, KeySetsKeptAcrossCallsMatchFloat64) {
  struct Step {
    int64_t B, H, Hkv, Nq, Nk, D;
    bool per_batch, rope, bf16;
  };
  const Step steps[] = {
      {3, 4, 2, 9, 300, 32, true, true, false},  {1, 6, 3, 1, 40, 32, false, false, false},
      {2, 4, 4, 2, 700, 32, true, false, true},  {1, 4, 2, 1, 2100, 128, false, true, false},
      {2, 4, 2, 5, 130, 128, true, true, false}, {4, 2, 1, 1, 5, 32, false, false, false},
      {2, 8, 2, 1, 600, 32, true, true, false},
  };
  int i = 0;
  for (const Step& st : steps) {
    Case c = base("kept key sets, call " + std::to_string(i));
    c.B = st.B, c.H = st.H, c.Hkv = st.Hkv, c.Nq = st.Nq, c.Nk = st.Nk, c.D = st.D;
    c.gappy_positions = c.per_batch_positions = st.per_batch;
    c.rope = st.rope ? RopeStyle::RotateHalf : RopeStyle::None;
    c.bf16 = st.bf16;
    run_case(c, uint32_t(200 + i++));
  }
}

// Keys hidden by a -inf key bias get probability 0 and add nothing, even when
// their values are not finite (as in the float64 reference, which skips them):
// decode tiles of one row, of two queries of one head, and of GQA groups of
// two, four and seven rows (split-K, over 600 keys); hidden keys spread out and in a run
// longer than a key group, their values set to NaN and Inf.
TEST(FlashForward, HiddenKeysWithNonFiniteValuesAddNothing) {
  struct Shape {
    int64_t h, hkv, nq, nk;
  };
  for (const Shape sh : {Shape{4, 4, 1, 131}, Shape{4, 4, 2, 131}, Shape{4, 2, 1, 600}, Shape{8, 2, 1, 600},
                         Shape{7, 1, 1, 600}})
    for (int64_t d : {64, 128}) {
      Case c = base("hidden non-finite values h=" + std::to_string(sh.h) + "/" + std::to_string(sh.hkv) +
                    " nq=" + std::to_string(sh.nq) + " nk=" + std::to_string(sh.nk) + " d=" + std::to_string(d));
      SCOPED_TRACE(c.name);
      c.H = sh.h, c.Hkv = sh.hkv, c.Nq = sh.nq, c.Nk = sh.nk, c.D = d, c.key_bias = true;
      Problem p(c, uint32_t(sh.h * 10 + sh.hkv + sh.nq * 100 + d));
      for (int64_t g = 0; g < c.Hkv; ++g)
        for (int64_t j = 0; j < c.Nk; ++j) {
          if (j % 3 != 1 && !(j >= 40 && j < 52)) continue;
          p.u[size_t(g * c.Nk + j)] = -test::kInf;
          for (int64_t e = 0; e < c.D; ++e)
            p.v[size_t((g * c.Nk + j) * c.D + e)] = e % 2 ? std::numeric_limits<float>::quiet_NaN() : test::kInf;
        }
      const ReferenceForward ref = attention_reference(p.spec, p.qv, p.kv, p.vv);
      std::vector<float> o(size_t(c.H * c.Nq * c.D), std::numeric_limits<float>::quiet_NaN());
      attention_forward(p.spec, p.qv, p.kv, p.vv, TensorView(o.data(), DType::F32, {1, c.H, c.Nq, c.D}), {},
                        nullptr, AttnImpl::Flash);
      for (float x : o) ASSERT_TRUE(std::isfinite(x));
      std::string why;
      EXPECT_LE(rel_l2(o, ref.o, &why), 1e-5) << why;
    }
}

TEST(FlashForward, Bf16Output) {
  Problem p(base("bf16 out"), 7);
  const Case& c = p.c;
  const ReferenceForward ref = attention_reference(p.spec, p.qv, p.kv, p.vv);
  std::vector<uint16_t> o(size_t(c.B * c.H * c.Nq * c.Dv), 0x7fc0);
  attention_forward(p.spec, p.qv, p.kv, p.vv,
                    TensorView(o.data(), DType::BF16, {c.B, c.H, c.Nq, c.Dv}), {}, nullptr,
                    AttnImpl::Flash);
  for (size_t i = 0; i < o.size(); ++i)
    ASSERT_NEAR(bf16_to_f32(bf16{o[i]}), ref.o[i], 1e-2 * (1 + std::fabs(ref.o[i]))) << i;
}

TEST(FlashForward, Deterministic) {
  Case c = base("determinism");
  c.Nq = 1;
  c.Nk = 3000;
  c.H = 8;
  c.Hkv = 8;
  Problem p(c, 3);
  std::vector<float> o1(size_t(8 * 32)), o2(o1.size());
  attention_forward(p.spec, p.qv, p.kv, p.vv, TensorView(o1.data(), DType::F32, {1, 8, 1, 32}));
  attention_forward(p.spec, p.qv, p.kv, p.vv, TensorView(o2.data(), DType::F32, {1, 8, 1, 32}));
  EXPECT_EQ(o1, o2);
}
