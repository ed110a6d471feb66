// Training small ViTs on generated shape images: a DINOv2-style encoder
// (pre-LN blocks, GELU, optional register tokens, LayerScale fixed at 1) with
// a linear classifier on CLS, forward and backward written out per layer, the
// library's attention kernels (forward with lse, backward), AdamW. The
// checkpoint is a Hugging Face `dinov2` / `dinov2_with_registers` folder that
// VisionModel::load and `sinklab inspect --image` read.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <cblas.h>

#include <nlohmann/json.hpp>

#include "sinklab/attention.h"
#include "sinklab/formats.h"
#include "sinklab/vision.h"

namespace sinklab {

namespace {

struct Param {
  std::vector<int64_t> shape;
  std::vector<float> w, g, m, v;
  bool decay = false;
};

using Params = std::map<std::string, Param>;

std::string lname(int l, const char* what) { return "encoder.layer." + std::to_string(l) + "." + what; }

void add(Params& P, const std::string& name, std::vector<int64_t> shape, float scale, bool decay, std::mt19937_64& rng,
         float fill = 0.f) {
  Param p;
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  p.shape = std::move(shape);
  p.w.assign(size_t(n), fill);
  std::normal_distribution<float> nd(0.f, 1.f);
  if (scale > 0)
    for (float& x : p.w) x = nd(rng) * scale;
  p.g.assign(size_t(n), 0.f), p.m.assign(size_t(n), 0.f), p.v.assign(size_t(n), 0.f);
  p.decay = decay;
  P[name] = std::move(p);
}

Params init_params(const VitTrainConfig& c) {
  std::mt19937_64 rng(c.seed);
  Params P;
  const int64_t D = c.dim, G = c.image_size / c.patch_size, K = 3 * c.patch_size * c.patch_size;
  add(P, "embeddings.patch_embeddings.projection.weight", {D, 3, c.patch_size, c.patch_size}, 1.f / std::sqrt(float(K)), true, rng);
  add(P, "embeddings.patch_embeddings.projection.bias", {D}, 0, false, rng);
  add(P, "embeddings.cls_token", {1, 1, D}, 0.02f, false, rng);
  add(P, "embeddings.mask_token", {1, D}, 0, false, rng);
  add(P, "embeddings.position_embeddings", {1, G * G + 1, D}, 0.02f, false, rng);
  if (c.registers > 0) add(P, "embeddings.register_tokens", {1, c.registers, D}, 0.02f, false, rng);
  for (int l = 0; l < c.layers; ++l) {
    for (const char* n : {"norm1", "norm2"}) {
      add(P, lname(l, n) + ".weight", {D}, 0, false, rng, 1.f);
      add(P, lname(l, n) + ".bias", {D}, 0, false, rng);
    }
    for (const char* n : {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                          "attention.output.dense"}) {
      add(P, lname(l, n) + ".weight", {D, D}, 1.f / std::sqrt(float(D)), true, rng);
      add(P, lname(l, n) + ".bias", {D}, 0, false, rng);
    }
    add(P, lname(l, "mlp.fc1") + ".weight", {c.hidden, D}, 1.f / std::sqrt(float(D)), true, rng);
    add(P, lname(l, "mlp.fc1") + ".bias", {c.hidden}, 0, false, rng);
    add(P, lname(l, "mlp.fc2") + ".weight", {D, c.hidden}, 1.f / std::sqrt(float(c.hidden)) / std::sqrt(2.f * c.layers), true, rng);
    add(P, lname(l, "mlp.fc2") + ".bias", {D}, 0, false, rng);
  }
  add(P, "layernorm.weight", {D}, 0, false, rng, 1.f);
  add(P, "layernorm.bias", {D}, 0, false, rng);
  add(P, "classifier.weight", {c.classes, D}, 1.f / std::sqrt(float(D)), true, rng);
  add(P, "classifier.bias", {c.classes}, 0, false, rng);
  return P;
}

// ------------------------------------------------------------- layer math ----
void lin_fwd(const Param& W, const Param& b, const float* x, int64_t n, float* y) {
  const int64_t O = W.shape[0], I = int64_t(W.w.size()) / O;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(O), int(I), 1.f, x, int(I), W.w.data(), int(I), 0.f,
              y, int(O));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < O; ++o) y[i * O + o] += b.w[size_t(o)];
}

// dx += dy W; dW += dy^T x; db += sum dy.
void lin_bwd(Param& W, Param& b, const float* x, const float* dy, int64_t n, float* dx) {
  const int64_t O = W.shape[0], I = int64_t(W.w.size()) / O;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < O; ++o) b.g[size_t(o)] += dy[i * O + o];
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(O), int(I), int(n), 1.f, dy, int(O), x, int(I), 1.f,
              W.g.data(), int(I));
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(I), int(O), 1.f, dy, int(O), W.w.data(), int(I),
                1.f, dx, int(I));
}

struct LnCache {
  std::vector<float> xhat, rstd;
};

void ln_fwd(const Param& w, const Param& b, const float* x, int64_t n, int64_t D, float* y, LnCache& c) {
  c.xhat.resize(size_t(n * D));
  c.rstd.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < D; ++j) m += x[i * D + j];
    m /= double(D);
    for (int64_t j = 0; j < D; ++j) v += (x[i * D + j] - m) * (x[i * D + j] - m);
    const double r = 1.0 / std::sqrt(v / double(D) + 1e-6);
    c.rstd[size_t(i)] = float(r);
    for (int64_t j = 0; j < D; ++j) {
      const float xh = float((x[i * D + j] - m) * r);
      c.xhat[size_t(i * D + j)] = xh;
      y[i * D + j] = xh * w.w[size_t(j)] + b.w[size_t(j)];
    }
  }
}

// dx += LN backward of dy.
void ln_bwd(Param& w, Param& b, const LnCache& c, const float* dy, int64_t n, int64_t D, float* dx) {
  for (int64_t i = 0; i < n; ++i) {
    double s1 = 0, s2 = 0;
    for (int64_t j = 0; j < D; ++j) {
      const float g = dy[i * D + j] * w.w[size_t(j)];
      s1 += g;
      s2 += g * c.xhat[size_t(i * D + j)];
      w.g[size_t(j)] += dy[i * D + j] * c.xhat[size_t(i * D + j)];
      b.g[size_t(j)] += dy[i * D + j];
    }
    for (int64_t j = 0; j < D; ++j) {
      const double g = dy[i * D + j] * w.w[size_t(j)];
      dx[i * D + j] += float(c.rstd[size_t(i)] * (g - s1 / double(D) - c.xhat[size_t(i * D + j)] * s2 / double(D)));
    }
  }
}

float gelu(float x) { return 0.5f * x * (1.f + std::erf(x * 0.70710678f)); }
float gelu_grad(float x) { return 0.5f * (1.f + std::erf(x * 0.70710678f)) + x * std::exp(-0.5f * x * x) * 0.39894228f; }

TensorView heads_view(float* p, int64_t T, int64_t D, int H) {
  return TensorView::strided(p, DType::F32, {1, H, T, D / H}, {T * D, D / H, D, 1});
}

struct LayerCache {
  std::vector<float> x_in, h1, q, k, v, ctx, lse, x_mid, h2, pre, act;
  LnCache ln1, ln2;
};

struct Forward {
  int64_t T = 0;
  std::vector<float> patches;  // im2col [N, 3 P P]
  std::vector<LayerCache> layers;
  std::vector<float> x_out, final_h, logits;
  LnCache lnf;
};

// Loss of one image (cross-entropy) and, when `backward`, its gradients added into P.
float run_image(Params& P, const VitTrainConfig& c, const float* img, int label, bool backward, int* predicted) {
  const int64_t D = c.dim, G = c.image_size / c.patch_size, N = G * G, R = c.registers, T = 1 + R + N;
  const int H = c.heads, K = 3 * c.patch_size * c.patch_size;
  Forward f;
  f.T = T;
  f.patches.resize(size_t(N * K));
  for (int64_t p = 0; p < N; ++p)
    for (int ch = 0; ch < 3; ++ch)
      for (int i = 0; i < c.patch_size; ++i)
        for (int j = 0; j < c.patch_size; ++j)
          f.patches[size_t(p * K + (ch * c.patch_size + i) * c.patch_size + j)] =
              img[(ch * c.image_size + (p / G) * c.patch_size + i) * c.image_size + (p % G) * c.patch_size + j];
  std::vector<float> x(size_t(T * D), 0.f), emb(size_t(N * D));
  lin_fwd(P["embeddings.patch_embeddings.projection.weight"], P["embeddings.patch_embeddings.projection.bias"],
          f.patches.data(), N, emb.data());
  const std::vector<float>& pos = P["embeddings.position_embeddings"].w;
  for (int64_t d = 0; d < D; ++d) x[size_t(d)] = P["embeddings.cls_token"].w[size_t(d)] + pos[size_t(d)];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) x[size_t((1 + r) * D + d)] = P["embeddings.register_tokens"].w[size_t(r * D + d)];
  for (int64_t p = 0; p < N; ++p)
    for (int64_t d = 0; d < D; ++d) x[size_t((1 + R + p) * D + d)] = emb[size_t(p * D + d)] + pos[size_t((1 + p) * D + d)];
  AttnSpec spec;
  spec.causal = false;
  f.layers.resize(size_t(c.layers));
  for (int l = 0; l < c.layers; ++l) {
    LayerCache& L = f.layers[size_t(l)];
    L.x_in = x;
    L.h1.resize(x.size()), L.q.resize(x.size()), L.k.resize(x.size()), L.v.resize(x.size()), L.ctx.resize(x.size());
    L.lse.resize(size_t(H * T));
    ln_fwd(P[lname(l, "norm1.weight")], P[lname(l, "norm1.bias")], x.data(), T, D, L.h1.data(), L.ln1);
    lin_fwd(P[lname(l, "attention.attention.query.weight")], P[lname(l, "attention.attention.query.bias")], L.h1.data(), T, L.q.data());
    lin_fwd(P[lname(l, "attention.attention.key.weight")], P[lname(l, "attention.attention.key.bias")], L.h1.data(), T, L.k.data());
    lin_fwd(P[lname(l, "attention.attention.value.weight")], P[lname(l, "attention.attention.value.bias")], L.h1.data(), T, L.v.data());
    attention_forward(spec, heads_view(L.q.data(), T, D, H), heads_view(L.k.data(), T, D, H), heads_view(L.v.data(), T, D, H),
                      heads_view(L.ctx.data(), T, D, H), TensorView(L.lse.data(), DType::F32, {1, H, T}));
    std::vector<float> a(x.size());
    lin_fwd(P[lname(l, "attention.output.dense.weight")], P[lname(l, "attention.output.dense.bias")], L.ctx.data(), T, a.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
    L.x_mid = x;
    L.h2.resize(x.size()), L.pre.resize(size_t(T * c.hidden)), L.act.resize(size_t(T * c.hidden));
    ln_fwd(P[lname(l, "norm2.weight")], P[lname(l, "norm2.bias")], x.data(), T, D, L.h2.data(), L.ln2);
    lin_fwd(P[lname(l, "mlp.fc1.weight")], P[lname(l, "mlp.fc1.bias")], L.h2.data(), T, L.pre.data());
    for (size_t i = 0; i < L.pre.size(); ++i) L.act[i] = gelu(L.pre[i]);
    std::vector<float> o(x.size());
    lin_fwd(P[lname(l, "mlp.fc2.weight")], P[lname(l, "mlp.fc2.bias")], L.act.data(), T, o.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  }
  f.final_h.resize(size_t(D));
  ln_fwd(P["layernorm.weight"], P["layernorm.bias"], x.data(), 1, D, f.final_h.data(), f.lnf);  // CLS only
  f.logits.resize(size_t(c.classes));
  lin_fwd(P["classifier.weight"], P["classifier.bias"], f.final_h.data(), 1, f.logits.data());
  const float top = *std::max_element(f.logits.begin(), f.logits.end());
  double z = 0;
  for (float v : f.logits) z += std::exp(double(v - top));
  const float loss = float(std::log(z) + top - f.logits[size_t(label)]);
  if (predicted) *predicted = int(std::max_element(f.logits.begin(), f.logits.end()) - f.logits.begin());
  if (!backward) return loss;

  // ---- backward ----
  std::vector<float> dlogits(size_t(c.classes));
  for (int k = 0; k < c.classes; ++k) dlogits[size_t(k)] = float(std::exp(double(f.logits[size_t(k)] - top)) / z) - (k == label ? 1.f : 0.f);
  std::vector<float> dh(size_t(D), 0.f), dx(size_t(T * D), 0.f);
  lin_bwd(P["classifier.weight"], P["classifier.bias"], f.final_h.data(), dlogits.data(), 1, dh.data());
  ln_bwd(P["layernorm.weight"], P["layernorm.bias"], f.lnf, dh.data(), 1, D, dx.data());
  for (int l = c.layers - 1; l >= 0; --l) {
    LayerCache& L = f.layers[size_t(l)];
    // MLP branch: x = x_mid + fc2(gelu(fc1(ln2(x_mid)))).
    std::vector<float> dact(L.act.size(), 0.f), dh2(size_t(T * D), 0.f);
    lin_bwd(P[lname(l, "mlp.fc2.weight")], P[lname(l, "mlp.fc2.bias")], L.act.data(), dx.data(), T, dact.data());
    for (size_t i = 0; i < dact.size(); ++i) dact[i] *= gelu_grad(L.pre[i]);
    lin_bwd(P[lname(l, "mlp.fc1.weight")], P[lname(l, "mlp.fc1.bias")], L.h2.data(), dact.data(), T, dh2.data());
    ln_bwd(P[lname(l, "norm2.weight")], P[lname(l, "norm2.bias")], L.ln2, dh2.data(), T, D, dx.data());
    // Attention branch: x_mid = x_in + o(attn(q, k, v)(ln1(x_in))).
    std::vector<float> dctx(size_t(T * D), 0.f), dq(dctx.size()), dk(dctx.size()), dv(dctx.size()), dh1(dctx.size(), 0.f);
    lin_bwd(P[lname(l, "attention.output.dense.weight")], P[lname(l, "attention.output.dense.bias")], L.ctx.data(), dx.data(), T, dctx.data());
    AttnGrads grads;
    grads.dq = heads_view(dq.data(), T, D, H), grads.dk = heads_view(dk.data(), T, D, H), grads.dv = heads_view(dv.data(), T, D, H);
    attention_backward(spec, heads_view(L.q.data(), T, D, H), heads_view(L.k.data(), T, D, H), heads_view(L.v.data(), T, D, H),
                       heads_view(L.ctx.data(), T, D, H), TensorView(L.lse.data(), DType::F32, {1, H, T}),
                       heads_view(dctx.data(), T, D, H), grads);
    lin_bwd(P[lname(l, "attention.attention.query.weight")], P[lname(l, "attention.attention.query.bias")], L.h1.data(), dq.data(), T, dh1.data());
    lin_bwd(P[lname(l, "attention.attention.key.weight")], P[lname(l, "attention.attention.key.bias")], L.h1.data(), dk.data(), T, dh1.data());
    lin_bwd(P[lname(l, "attention.attention.value.weight")], P[lname(l, "attention.attention.value.bias")], L.h1.data(), dv.data(), T, dh1.data());
    ln_bwd(P[lname(l, "norm1.weight")], P[lname(l, "norm1.bias")], L.ln1, dh1.data(), T, D, dx.data());
  }
  // Embeddings.
  Param& gpos = P["embeddings.position_embeddings"];
  for (int64_t d = 0; d < D; ++d) P["embeddings.cls_token"].g[size_t(d)] += dx[size_t(d)], gpos.g[size_t(d)] += dx[size_t(d)];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) P["embeddings.register_tokens"].g[size_t(r * D + d)] += dx[size_t((1 + r) * D + d)];
  std::vector<float> demb(size_t(N * D));
  for (int64_t p = 0; p < N; ++p)
    for (int64_t d = 0; d < D; ++d) {
      demb[size_t(p * D + d)] = dx[size_t((1 + R + p) * D + d)];
      gpos.g[size_t((1 + p) * D + d)] += dx[size_t((1 + R + p) * D + d)];
    }
  lin_bwd(P["embeddings.patch_embeddings.projection.weight"], P["embeddings.patch_embeddings.projection.bias"],
          f.patches.data(), demb.data(), N, nullptr);
  return loss;
}

void adamw(Params& P, float lr, float wd, int step) {
  const float b1 = 0.9f, b2 = 0.999f;
  const float c1 = 1.f - std::pow(b1, float(step)), c2 = 1.f - std::pow(b2, float(step));
  for (auto& [name, p] : P)
    for (size_t i = 0; i < p.w.size(); ++i) {
      p.m[i] = b1 * p.m[i] + (1 - b1) * p.g[i];
      p.v[i] = b2 * p.v[i] + (1 - b2) * p.g[i] * p.g[i];
      p.w[i] -= lr * ((p.m[i] / c1) / (std::sqrt(p.v[i] / c2) + 1e-8f) + (p.decay ? wd * p.w[i] : 0.f));
      p.g[i] = 0.f;
    }
}

void zero_grads(Params& P) {
  for (auto& [name, p] : P) std::fill(p.g.begin(), p.g.end(), 0.f);
}

}  // namespace

// ------------------------------------------------------------------ data ----
ShapeImage make_shape_image(int size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  ShapeImage s;
  s.label = int(rng() % 4);
  s.pixels.assign(size_t(3) * size_t(size) * size_t(size), 0.f);
  float bg[3], fg[3];
  for (int c = 0; c < 3; ++c) bg[c] = u(rng) * 0.4f, fg[c] = 0.5f + u(rng) * 0.5f;
  const float r = float(size) * (0.15f + 0.2f * u(rng));
  const float cx = r + u(rng) * (float(size) - 2 * r), cy = r + u(rng) * (float(size) - 2 * r);
  auto inside = [&](float x, float y) {
    const float dx = x - cx, dy = y - cy;
    switch (s.label) {
      case 0: return dx * dx + dy * dy <= r * r;                                  // disk
      case 1: return std::abs(dx) <= r * 0.8f && std::abs(dy) <= r * 0.8f;        // square
      case 2: return dy <= r * 0.8f && dy >= -r + 2.f * std::abs(dx);             // triangle
      default: return std::abs(dx) <= r * 0.25f || std::abs(dy) <= r * 0.25f ?    // cross
                          std::abs(dx) <= r && std::abs(dy) <= r : false;
    }
  };
  const int clutter = int(rng() % 6);
  std::vector<std::array<float, 3>> dots;
  for (int i = 0; i < clutter; ++i) dots.push_back({u(rng) * float(size), u(rng) * float(size), u(rng)});
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const bool on = inside(float(x) + 0.5f, float(y) + 0.5f);
      bool dot = false;
      for (const auto& d : dots) dot = dot || (std::abs(float(x) - d[0]) < 1.f && std::abs(float(y) - d[1]) < 1.f);
      for (int c = 0; c < 3; ++c) {
        const float v = on ? fg[c] : dot ? 0.8f : bg[c] + 0.05f * u(rng);
        s.pixels[(size_t(c) * size_t(size) + size_t(y)) * size_t(size) + size_t(x)] = 2.f * v - 1.f;
      }
    }
  return s;
}

// --------------------------------------------------------------- trainer ----
struct VitTrainer::State {
  VitTrainConfig config;
  Params params;
};

VitTrainer::VitTrainer(const VitTrainConfig& c) : s_(std::make_unique<State>()) {
  check(c.image_size % c.patch_size == 0 && c.dim % c.heads == 0 && c.classes == 4 && c.layers >= 1 && c.registers >= 0,
        "vit training: image_size must be a multiple of patch_size, dim of heads; 4 classes (disk, square, triangle, cross)");
  s_->config = c;
  s_->params = init_params(c);
}
VitTrainer::~VitTrainer() = default;

VitStepResult VitTrainer::step(int step_index) {
  const VitTrainConfig& c = s_->config;
  VitStepResult r;
  zero_grads(s_->params);
  for (int b = 0; b < c.batch; ++b) {
    const ShapeImage img = make_shape_image(c.image_size, c.seed * 1000003ull + uint64_t(step_index) * 4096ull + uint64_t(b));
    int pred = -1;
    r.loss += run_image(s_->params, c, img.pixels.data(), img.label, true, &pred) / float(c.batch);
    r.accuracy += (pred == img.label ? 1.f : 0.f) / float(c.batch);
  }
  for (auto& [name, p] : s_->params)
    for (float& g : p.g) g /= float(c.batch);
  adamw(s_->params, c.lr, c.weight_decay, step_index + 1);
  return r;
}

float VitTrainer::loss(const float* pixels, int label, bool with_gradients) {
  if (with_gradients) zero_grads(s_->params);
  return run_image(s_->params, s_->config, pixels, label, with_gradients, nullptr);
}

std::vector<std::string> VitTrainer::parameter_names() const {
  std::vector<std::string> out;
  for (const auto& [name, p] : s_->params) out.push_back(name);
  return out;
}
std::vector<float>& VitTrainer::values(const std::string& name) { return s_->params.at(name).w; }
const std::vector<float>& VitTrainer::gradients(const std::string& name) const { return s_->params.at(name).g; }

void VitTrainer::save(const std::string& dir) const {
  const VitTrainConfig& c = s_->config;
  std::filesystem::create_directories(dir);
  std::vector<TensorEntry> entries;
  std::vector<std::vector<float>> scales;  // LayerScale of 1 (the trained blocks have none)
  for (int l = 0; l < c.layers; ++l)
    for (const char* n : {"layer_scale1.lambda1", "layer_scale2.lambda1"}) {
      scales.emplace_back(size_t(c.dim), 1.f);
      TensorEntry e;
      e.name = lname(l, n), e.type = TensorType::F32, e.shape = {c.dim};
      e.data = reinterpret_cast<const uint8_t*>(scales.back().data()), e.nbytes = size_t(c.dim) * 4;
      entries.push_back(e);
    }
  for (const auto& [name, p] : s_->params) {
    TensorEntry e;
    e.name = name, e.type = TensorType::F32, e.shape = p.shape;
    e.data = reinterpret_cast<const uint8_t*>(p.w.data()), e.nbytes = p.w.size() * 4;
    entries.push_back(e);
  }
  write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), entries);
  nlohmann::json cfg = {{"model_type", c.registers > 0 ? "dinov2_with_registers" : "dinov2"},
                        {"hidden_size", c.dim}, {"num_hidden_layers", c.layers}, {"num_attention_heads", c.heads},
                        {"mlp_ratio", double(c.hidden) / c.dim}, {"image_size", c.image_size},
                        {"patch_size", c.patch_size}, {"layer_norm_eps", 1e-6}, {"hidden_act", "gelu"},
                        {"num_register_tokens", c.registers}, {"num_labels", c.classes}};
  std::ofstream((std::filesystem::path(dir) / "config.json").string()) << cfg.dump(2) << "\n";
  // Pixels are already in [-1, 1]: the processor only rescales and shifts.
  nlohmann::json prep = {{"do_resize", true}, {"size", {{"height", c.image_size}, {"width", c.image_size}}},
                         {"resample", 2}, {"do_rescale", true}, {"rescale_factor", 1.0 / 255.0}, {"do_normalize", true},
                         {"image_mean", {0.5, 0.5, 0.5}}, {"image_std", {0.5, 0.5, 0.5}}};
  std::ofstream((std::filesystem::path(dir) / "preprocessor_config.json").string()) << prep.dump(2) << "\n";
}

}  // namespace sinklab
