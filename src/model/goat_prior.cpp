// GOAT's key-only prior u(t): a small MLP of Fourier and normalised features
// of the key position (GOAT, "You Need Better Attention Priors"). The relative part kappa lives in the
// attention kernel (AttnSpec::goat); u reaches it as a key bias.
#include <cmath>

#include "sinklab/model.h"

namespace sinklab {

int goat_feature_count(const PriorConfig& p) { return 2 * p.goat_abs_rank + 2; }

void goat_position_features(const PriorConfig& p, double t, float* out) {
  const std::vector<double> w = goat_frequencies(p.goat_abs_rank, p.goat_base);
  const int A = p.goat_abs_rank;
  for (int a = 0; a < A; ++a) {
    out[a] = float(std::cos(w[size_t(a)] * t));
    out[A + a] = float(std::sin(w[size_t(a)] * t));
  }
  const double T = double(std::max<int64_t>(p.train_length, 1));
  out[2 * A] = float(t / T);
  out[2 * A + 1] = float(std::log1p(t) / std::log1p(T));
}

void goat_key_prior(const PriorConfig& p, int64_t n_kv_heads, const float* w1, const float* b1,
                    const float* w2, const float* first, std::span<const int32_t> positions,
                    float* out) {
  const int P = goat_feature_count(p), Hu = p.goat_u_hidden;
  const int64_t n = int64_t(positions.size());
  std::vector<float> phi(static_cast<size_t>(P)), act(static_cast<size_t>(Hu));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = positions[size_t(i)];
    goat_position_features(p, double(t), phi.data());
    for (int j = 0; j < Hu; ++j) {
      double z = b1[j];
      for (int q = 0; q < P; ++q) z += double(w1[j * P + q]) * phi[size_t(q)];
      act[size_t(j)] = float(z / (1.0 + std::exp(-z)));
    }
    for (int64_t g = 0; g < n_kv_heads; ++g) {
      double u = t == 0 ? first[g] : 0.0;
      for (int j = 0; j < Hu; ++j) u += double(w2[g * Hu + j]) * act[size_t(j)];
      out[g * n + i] = float(u);
    }
  }
}

}  // namespace sinklab
