// AttnSpec validation, RoPE tables and GOAT frequencies.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "common.h"

namespace sinklab {

namespace attn {

namespace {
std::string dims_str(const TensorView& t) { return t.shape_str(); }

void check_input_dtype(const TensorView& t, const char* name) {
  check(t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16,
        [&] { return std::string("attention: ") + name + " has an unsupported dtype"; });
}
}  // namespace

Dims validate(const AttnSpec& s, const TensorView& q, const TensorView& k, const TensorView& v) {
  check_view(q, "attention: q", {-1, -1, -1, -1});
  check_view(k, "attention: k", {-1, -1, -1, -1});
  check_view(v, "attention: v", {-1, -1, -1, -1});
  check_input_dtype(q, "q");
  check_input_dtype(k, "k");
  check_input_dtype(v, "v");
  check(s.normalization == AttnNormalization::Softmax || !s.sink_logits,
        "attention: ReLU attention has no softmax denominator for sink_logits");
  Dims d;
  d.batch = q.shape[0];
  d.n_heads = q.shape[1];
  d.n_q = q.shape[2];
  d.head_dim = q.shape[3];
  d.n_kv_heads = k.shape[1];
  d.n_k = k.shape[2];
  d.v_dim = v.shape[3];
  check(k.shape[0] == d.batch && v.shape[0] == d.batch,
        [&] {
          return "attention: q, k and v must have the same batch size (q " + dims_str(q) + ", k " +
                 dims_str(k) + ", v " + dims_str(v) + ")";
        });
  check(k.shape[3] == d.head_dim, [&] {
    return "attention: k head_dim " + std::to_string(k.shape[3]) + " differs from q head_dim " +
           std::to_string(d.head_dim);
  });
  check(v.shape[1] == d.n_kv_heads && v.shape[2] == d.n_k,
        [&] {
          return "attention: v " + dims_str(v) + " must match k " + dims_str(k) + " in heads and keys";
        });
  check(d.n_heads > 0 && d.n_kv_heads > 0, "attention: head counts must be positive");
  check(d.n_heads % d.n_kv_heads == 0,
        [&] {
          return "attention: n_kv_heads (" + std::to_string(d.n_kv_heads) + ") must divide n_heads (" +
                 std::to_string(d.n_heads) + ")";
        });
  d.group = d.n_heads / d.n_kv_heads;
  check(d.head_dim >= 1 && d.head_dim <= 256,
        [&] { return "attention: head_dim must be in 1..256, got " + std::to_string(d.head_dim); });
  check(d.v_dim >= 1 && d.v_dim <= 256,
        [&] { return "attention: v head dim must be in 1..256, got " + std::to_string(d.v_dim); });
  check(d.n_q < (int64_t(1) << 31) && d.n_k < (int64_t(1) << 31),
        "attention: sequence lengths must be below 2^31");

  check(s.scale >= 0.f && std::isfinite(s.scale), "attention: scale must be finite and >= 0");
  check(s.window >= 0, "attention: window must be >= 0");
  check(s.sink_keys >= 0, "attention: sink_keys must be >= 0");
  check(s.softcap >= 0.f && std::isfinite(s.softcap), "attention: softcap must be finite and >= 0");
  if (s.rope.style != RopeStyle::None) {
    const int rd = s.rope.rotary_dim ? s.rope.rotary_dim : int(d.head_dim);
    check(rd > 0 && rd % 2 == 0 && rd <= d.head_dim,
          [&] {
            return "attention: rope rotary_dim must be even and <= head_dim, got " + std::to_string(rd);
          });
    check(s.rope.theta > 1.f, "attention: rope theta must be > 1");
    check(s.rope.factor > 0.f, "attention: rope scaling factor must be > 0");
    if (s.rope.scaling == RopeScaling::YaRN || s.rope.scaling == RopeScaling::Llama3)
      check(s.rope.original_context > 0,
            "attention: YaRN / Llama3 rope scaling needs original_context > 0");
  }
  if (s.goat.rank > 0) {
    check(s.goat.lambda_sym && s.goat.lambda_asym,
          "attention: GOAT prior with rank > 0 needs lambda_sym and lambda_asym");
    check(s.goat.base > 1.f, "attention: GOAT base must be > 1");
  }
  check(s.goat.rank >= 0 && s.goat.rank <= 256, "attention: GOAT rank must be in 0..256");
  if (!s.key_bias.empty()) {
    check_view(s.key_bias, "attention: key_bias", {-1, d.n_kv_heads, d.n_k});
    check(s.key_bias.dtype == DType::F32, "attention: key_bias must be f32");
    check(s.key_bias.shape[0] == d.batch || s.key_bias.shape[0] == 1,
          "attention: key_bias batch must be 1 or the batch size");
  }
  check(!(s.q_pos == nullptr && s.q_pos_batch_stride != 0) && s.q_pos_batch_stride >= 0 &&
            s.k_pos_batch_stride >= 0,
        "attention: invalid position batch strides");
  return d;
}

void validate_outputs(const Dims& d, const TensorView& o, const TensorView& lse,
                      const AttnStats* stats) {
  check_view(o, "attention: o", {d.batch, d.n_heads, d.n_q, d.v_dim}, true);
  check(o.dtype == DType::F32 || o.dtype == DType::BF16, "attention: o must be f32 or bf16");
  if (!lse.empty()) {
    check_view(lse, "attention: lse", {d.batch, d.n_heads, d.n_q}, true);
    check(lse.dtype == DType::F32, "attention: lse must be f32");
  }
  if (stats) {
    check(stats->first_k >= 0, "attention: stats.first_k must be >= 0");
    auto chk = [&](const TensorView& t, const char* name, int64_t last) {
      if (t.empty()) return;
      check_view(t, name, {d.batch, d.n_heads, last}, true);
      check(t.dtype == DType::F32, [&] { return std::string(name) + " must be f32"; });
    };
    chk(stats->mass_first_k, "attention: stats.mass_first_k", d.n_q);
    chk(stats->entropy, "attention: stats.entropy", d.n_q);
    chk(stats->column_sums, "attention: stats.column_sums", d.n_k);
  }
}

void check_inputs_finite(const AttnSpec& s, const Dims& d, const TensorView& q,
                         const TensorView& k, const TensorView& v) {
  if (!s.check_finite) return;
  auto scan = [](const TensorView& t, const char* name) {
    for (int64_t a = 0; a < t.shape[0]; ++a)
      for (int64_t b = 0; b < t.shape[1]; ++b)
        for (int64_t c = 0; c < t.shape[2]; ++c) {
          const void* row = t.at(a, b, c);
          for (int64_t e = 0; e < t.shape[3]; ++e)
            if (!std::isfinite(load_scalar(t.dtype, row, e)))
              throw Error(std::string("attention: ") + name + " holds a non-finite value at [" +
                          std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) +
                          ", " + std::to_string(e) + "]");
        }
  };
  scan(q, "q");
  scan(k, "k");
  scan(v, "v");
  if (s.sink_logits)
    for (int64_t h = 0; h < d.n_heads; ++h)
      check(std::isfinite(s.sink_logits[h]), "attention: sink_logits holds a non-finite value");
}

}  // namespace attn

RopeTable rope_table(const RopeSpec& r, int head_dim) {
  RopeTable t;
  const int rd = r.rotary_dim ? r.rotary_dim : head_dim;
  const int half = rd / 2;
  double base = r.theta;
  if (r.scaling == RopeScaling::NTK && r.factor != 1.f && rd > 2)
    base *= std::pow(double(r.factor), double(rd) / double(rd - 2));
  t.inv_freq.resize(size_t(half));
  if (r.freq_factors)
    check(int64_t(r.freq_factors->size()) == half,
          "RoPE: " + std::to_string(r.freq_factors->size()) + " frequency factors for " + std::to_string(half) +
              " rotated pairs");
  for (int i = 0; i < half; ++i) {
    double f = std::pow(base, -2.0 * i / double(rd));
    switch (r.scaling) {
      case RopeScaling::Linear:
        f /= r.factor;
        break;
      case RopeScaling::YaRN: {
        // Dimension index at which a frequency completes `rot` turns over the original context.
        auto corr_dim = [&](double rot) {
          return rd * std::log(r.original_context / (rot * 2 * std::numbers::pi)) /
                 (2 * std::log(double(r.theta)));
        };
        double lo = corr_dim(r.beta_fast), hi = corr_dim(r.beta_slow);
        if (r.yarn_truncate) {
          lo = std::floor(lo);
          hi = std::ceil(hi);
        }
        lo = std::max(lo, 0.0);
        hi = std::min(hi, double(rd - 1));  // as Hugging Face clamps it
        if (hi == lo) hi += 0.001;
        const double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
        const double extrap_w = 1.0 - ramp;  // high frequencies keep their value
        f = (f / r.factor) * (1.0 - extrap_w) + f * extrap_w;
        break;
      }
      case RopeScaling::Llama3: {
        const double low_wavelen = r.original_context / r.low_freq_factor;
        const double high_wavelen = r.original_context / r.high_freq_factor;
        const double wavelen = 2 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
          f /= r.factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (r.original_context / wavelen - r.low_freq_factor) /
                                (r.high_freq_factor - r.low_freq_factor);
          f = (1 - smooth) * f / r.factor + smooth * f;
        }
        break;
      }
      default:
        break;
    }
    if (r.freq_factors) f /= double((*r.freq_factors)[size_t(i)]);
    t.inv_freq[size_t(i)] = f;
  }
  if (r.scaling == RopeScaling::YaRN)
    t.mscale = r.attn_factor > 0.f ? r.attn_factor
                                   : float(r.factor <= 1.f ? 1.0 : 0.1 * std::log(r.factor) + 1.0);
  return t;
}

namespace {
// cos and sin (times mscale) of frequency i at position pos.
inline void rope_cos_sin(const RopeTable& t, int i, double pos, float& c, float& s) {
  const double ang = pos * double(t.inv_freq[size_t(i)]);
  c = float(std::cos(ang)) * t.mscale;
  s = float(std::sin(ang)) * t.mscale;
}
// Turns the pair of frequency i (of `half`) by (c, s), paired as the style pairs them.
inline void rope_turn(RopeStyle style, int half, int i, float c, float s, float* x) {
  const int a = style == RopeStyle::RotateHalf ? i : 2 * i;
  const int b = style == RopeStyle::RotateHalf ? i + half : 2 * i + 1;
  const float xa = x[a], xb = x[b];
  x[a] = xa * c - xb * s;
  x[b] = xb * c + xa * s;
}
}  // namespace

void rope_rotate(const RopeSpec& r, const RopeTable& t, float* x, int head_dim, double pos) {
  if (r.style == RopeStyle::None) return;
  const int half = int(t.inv_freq.size());
  for (int i = 0; i < half; ++i) {
    float c, s;
    rope_cos_sin(t, i, pos, c, s);
    rope_turn(r.style, half, i, c, s, x);
  }
  (void)head_dim;
}

RopeAngles rope_angles(const RopeTable& t, double pos) {
  const int half = int(t.inv_freq.size());
  RopeAngles a{std::vector<float>(size_t(half)), std::vector<float>(size_t(half))};
  for (int i = 0; i < half; ++i) rope_cos_sin(t, i, pos, a.cos[size_t(i)], a.sin[size_t(i)]);
  return a;
}

void rope_rotate(const RopeSpec& r, const RopeAngles& a, float* x) {
  if (r.style == RopeStyle::None) return;
  const int half = int(a.cos.size());
  for (int i = 0; i < half; ++i) rope_turn(r.style, half, i, a.cos[size_t(i)], a.sin[size_t(i)], x);
}

std::vector<double> goat_frequencies(int rank, double base) {
  std::vector<double> w(size_t(std::max(rank, 0)));
  for (int r = 0; r < rank; ++r) w[size_t(r)] = rank == 1 ? 1.0 : std::pow(base, -double(r) / (rank - 1));
  return w;
}

std::vector<float> alibi_slopes(int n_heads) {
  check(n_heads > 0, "alibi_slopes: n_heads must be > 0");
  auto pow2_slopes = [](int n) {
    std::vector<float> s(static_cast<size_t>(n));
    for (int h = 0; h < n; ++h) s[size_t(h)] = float(std::pow(2.0, -8.0 * (h + 1) / n));
    return s;
  };
  int p = 1;
  while (p * 2 <= n_heads) p *= 2;
  std::vector<float> s = pow2_slopes(p);
  if (p < n_heads) {
    const std::vector<float> extra = pow2_slopes(2 * p);
    for (int i = 0; int(s.size()) < n_heads; i += 2) s.push_back(extra[size_t(i)]);
  }
  return s;
}

}  // namespace sinklab
