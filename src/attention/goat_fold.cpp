// GOAT channel folding (GOAT, "You Need Better Attention Priors"): extra q/k channels that make plain
// attention with scale 1 compute content/sqrt(Dc) + kappa(qpos - kpos) + u(j).
#include <cmath>

#include "common.h"

namespace sinklab {

void goat_fold(const GoatRelative& goat, const TensorView& q, const TensorView& k,
               const TensorView& key_bias, const AttnSpec& positions, float content_scale,
               const TensorView& q_out, const TensorView& k_out) {
  const int R = goat.rank;
  check(R >= 1, "goat_fold: rank must be >= 1");
  check(goat.lambda_sym && goat.lambda_asym, "goat_fold: lambda_sym and lambda_asym are required");
  AttnSpec s = positions;
  s.goat = goat;
  s.key_bias = key_bias;
  // Reuse the attention validation for shapes, positions and key_bias (v = k here).
  const attn::Dims d = attn::validate(s, q, k, k);
  const int64_t Dc = d.head_dim, Dt = Dc + 2 * R + 1;
  check_view(q_out, "goat_fold: q_out", {d.batch, d.n_heads, d.n_q, Dt}, true);
  check_view(k_out, "goat_fold: k_out", {d.batch, d.n_kv_heads, d.n_k, Dt}, true);
  check(q_out.dtype == DType::F32 && k_out.dtype == DType::F32, "goat_fold: outputs must be f32");
  const double cs = content_scale > 0.f ? content_scale : 1.0 / std::sqrt(double(Dc));
  const std::vector<double> w = goat_frequencies(R, goat.base);

  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.n_heads; ++h) {
      const float* A = goat.lambda_sym + d.kv_head(h) * R;
      const float* B = goat.lambda_asym + d.kv_head(h) * R;
      for (int64_t i = 0; i < d.n_q; ++i) {
        float* dst = static_cast<float*>(q_out.at(b, h, i));
        to_f32(q.dtype, q.at(b, h, i), dst, size_t(Dc));
        for (int64_t e = 0; e < Dc; ++e) dst[e] = float(dst[e] * cs);
        const double t = attn::q_position(s, d, b, i);
        for (int r = 0; r < R; ++r) {
          const double c = std::cos(w[size_t(r)] * t), sn = std::sin(w[size_t(r)] * t);
          dst[Dc + r] = float(A[r] * c + B[r] * sn);
          dst[Dc + R + r] = float(A[r] * sn - B[r] * c);
        }
        dst[Dt - 1] = 1.f;
      }
    }
    for (int64_t g = 0; g < d.n_kv_heads; ++g)
      for (int64_t j = 0; j < d.n_k; ++j) {
        float* dst = static_cast<float*>(k_out.at(b, g, j));
        to_f32(k.dtype, k.at(b, g, j), dst, size_t(Dc));
        const double t = attn::k_position(s, d, b, j);
        for (int r = 0; r < R; ++r) {
          dst[Dc + r] = float(std::cos(w[size_t(r)] * t));
          dst[Dc + R + r] = float(std::sin(w[size_t(r)] * t));
        }
        dst[Dt - 1] = key_bias.empty() ? 0.f
                                       : attn::key_bias_at(s, key_bias.shape[0] == 1 ? 0 : b, g, j);
      }
  }
}

}  // namespace sinklab
