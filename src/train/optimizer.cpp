// AdamW and SGD with momentum, the learning-rate schedule and gradient clipping.
#include <cmath>
#include <numbers>

#include "sinklab/train.h"

namespace sinklab {

Optimizer::Optimizer(const TrainModel& model, const TrainOptions& opts)
    : opts_(opts), decay_(size_t(model.n_params()), 0), m_(size_t(model.n_params()), 0.f),
      v_(size_t(model.n_params()), 0.f) {
  for (const auto& p : model.params())
    if (p.decay) std::fill_n(decay_.begin() + p.offset, p.size, uint8_t(1));
}

void Optimizer::step(TrainModel& model, float lr) {
  ++t_;
  std::span<float> w = model.values();
  std::span<float> g = model.grads();
  if (opts_.optimizer == "sgd") {
    // Heavy-ball momentum; weight decay as an L2 term of the gradient.
    const float mu = opts_.momentum, wd = opts_.weight_decay;
    const int64_t n = int64_t(w.size());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      float gi = g[size_t(i)];
      if (decay_[size_t(i)]) gi += wd * w[size_t(i)];
      float& m = m_[size_t(i)];
      m = mu * m + gi;
      w[size_t(i)] -= lr * m;
    }
    return;
  }
  const double b1 = opts_.beta1, b2 = opts_.beta2;
  const float c1 = float(1.0 / (1.0 - std::pow(b1, double(t_))));
  const float c2 = float(1.0 / (1.0 - std::pow(b2, double(t_))));
  const float wd = opts_.weight_decay, eps = opts_.adam_eps;
  const int64_t n = int64_t(w.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[size_t(i)];
    float& m = m_[size_t(i)];
    float& v = v_[size_t(i)];
    m = float(b1) * m + float(1 - b1) * gi;
    v = float(b2) * v + float(1 - b2) * gi * gi;
    float& wi = w[size_t(i)];
    if (decay_[size_t(i)]) wi -= lr * wd * wi;
    wi -= lr * (m * c1) / (std::sqrt(v * c2) + eps);
  }
}

float learning_rate(const TrainOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step < o.warmup_steps) return o.lr * float(step + 1) / float(o.warmup_steps);
  if (o.lr_schedule == "constant") return o.lr;
  const double span = double(std::max<int64_t>(o.steps - o.warmup_steps, 1));
  const double progress = std::min(1.0, double(step - o.warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return float(o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosine));
}

double clip_grad_norm(std::span<float> grads, double max_norm) {
  double ss = 0;
  for (float g : grads) ss += double(g) * g;
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float s = float(max_norm / (norm + 1e-6));
    for (float& g : grads) g *= s;
  }
  return norm;
}

}  // namespace sinklab
