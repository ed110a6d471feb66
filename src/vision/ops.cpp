#include "ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace sinklab::vision_ops {

void linear(const VisionLinear& l, const float* x, int64_t n, float* y) {
  if (n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(l.out), int(l.in), 1.f, x, int(l.in),
              l.w.data(), int(l.in), 0.f, y, int(l.out));
  if (l.b.empty()) return;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < l.out; ++j) y[i * l.out + j] += l.b[size_t(j)];
}

void layernorm(const VisionNorm& norm, const float* x, int64_t rows, int64_t d, float eps, float* y) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * d;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < d; ++j) mean += xi[j];
    mean /= double(d);
    for (int64_t j = 0; j < d; ++j) var += (xi[j] - mean) * (xi[j] - mean);
    const double inv = 1.0 / std::sqrt(var / double(d) + double(eps));
    float* yi = y + i * d;
    for (int64_t j = 0; j < d; ++j)
      yi[j] = float((xi[j] - mean) * inv) * norm.w[size_t(j)] + norm.b[size_t(j)];
  }
}

void activate(VisionActivation act, float* x, int64_t n) {
  switch (act) {
    case VisionActivation::Gelu:
      for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678118654752f));
      break;
    case VisionActivation::GeluTanh:
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
      }
      break;
    case VisionActivation::QuickGelu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.f + std::exp(-1.702f * x[i]));
      break;
  }
}

std::vector<float> im2col(const float* pixels, int channels, int height, int width, int p) {
  const int gh = height / p, gw = width / p;
  const int64_t cols = int64_t(channels) * p * p;
  std::vector<float> out(size_t(int64_t(gh) * gw * cols));
  for (int py = 0; py < gh; ++py)
    for (int px = 0; px < gw; ++px) {
      float* row = out.data() + (int64_t(py) * gw + px) * cols;
      for (int c = 0; c < channels; ++c)
        for (int i = 0; i < p; ++i) {
          const float* src = pixels + (int64_t(c) * height + int64_t(py) * p + i) * width + int64_t(px) * p;
          std::copy(src, src + p, row + (int64_t(c) * p + i) * p);
        }
    }
  return out;
}

namespace {

// Keys's cubic convolution with A = -0.75 (PyTorch's upsample_bicubic2d).
void cubic_weights(double t, double w[4]) {
  const double A = -0.75;
  auto near = [A](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto far = [A](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  w[0] = far(t + 1), w[1] = near(t), w[2] = near(1 - t), w[3] = far(2 - t);
}

// Source taps of one output coordinate: four clamped indices and weights.
struct Taps4 {
  int idx[4];
  double w[4];
};

std::vector<Taps4> axis_taps(int src, int dst) {
  std::vector<Taps4> taps(static_cast<size_t>(dst));
  const double scale = double(src) / double(dst);
  for (int o = 0; o < dst; ++o) {
    const double real = scale * (o + 0.5) - 0.5;  // not clamped: bicubic reads clamped neighbours
    const double fl = std::floor(real);
    cubic_weights(real - fl, taps[size_t(o)].w);
    for (int k = 0; k < 4; ++k) taps[size_t(o)].idx[k] = std::clamp(int(fl) - 1 + k, 0, src - 1);
  }
  return taps;
}

}  // namespace

std::vector<float> bicubic_resize(const float* src, int src_h, int src_w, int d, int dst_h, int dst_w) {
  const std::vector<Taps4> ty = axis_taps(src_h, dst_h), tx = axis_taps(src_w, dst_w);
  std::vector<float> out(size_t(int64_t(dst_h) * dst_w * d));
  std::vector<double> acc(static_cast<size_t>(d));
  for (int y = 0; y < dst_h; ++y)
    for (int x = 0; x < dst_w; ++x) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const double w = ty[size_t(y)].w[a] * tx[size_t(x)].w[b];
          const float* s = src + (int64_t(ty[size_t(y)].idx[a]) * src_w + tx[size_t(x)].idx[b]) * d;
          for (int j = 0; j < d; ++j) acc[size_t(j)] += w * s[j];
        }
      float* o = out.data() + (int64_t(y) * dst_w + x) * d;
      for (int j = 0; j < d; ++j) o[j] = float(acc[size_t(j)]);
    }
  return out;
}

}  // namespace sinklab::vision_ops
