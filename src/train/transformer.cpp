// TrainModel: the decoder's parameters and its forward/backward over a batch.
// Activations every backward step needs are kept per layer in the Workspace.
#include <algorithm>
#include <cmath>
#include <random>

#include "layers.h"
#include "sinklab/attention.h"
#include "sinklab/formats.h"
#include "sinklab/train.h"

namespace sinklab {

namespace L = train_layers;

namespace {
std::string layer_name(int64_t l, const char* what) {
  return "model.layers." + std::to_string(l) + "." + what;
}
}  // namespace

struct TrainModel::Workspace {
  struct Layer {
    std::vector<float> h1, rstd1, q, k, v, att, lse, h2, rstd2, g, u, a;
    std::vector<float> prior_u, prior_pre;  // GOAT: u [Hkv, T], pre-activations [T, Hu]
  };
  std::vector<std::vector<float>> resid;  // n_layers + 1 residual streams (input of each layer, output)
  std::vector<std::vector<float>> mid;    // residual after attention, per layer
  std::vector<Layer> layers;
  std::vector<float> hN, rstdN, logits;
  std::vector<float> phi;  // GOAT position features [T, P]
  // Backward scratch.
  std::vector<float> dx, dh, datt, dq, dk, dv, dg, du, da, dkb, dprior;
  std::vector<float> alibi;
};

int64_t TrainModelConfig::ffn_hidden() const {
  if (hidden > 0) return hidden;
  const int64_t h = (8 * dim + 2) / 3;
  return (h + 31) / 32 * 32;
}

ModelConfig TrainModelConfig::runtime_config() const {
  ModelConfig c;
  const bool plain = variant == AttnVariant::Vanilla || variant == AttnVariant::SinkToken;
  c.arch = plain ? "llama" : "sinklab";
  c.vocab = vocab;
  c.dim = dim;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim();
  c.hidden = ffn_hidden();
  c.max_seq = seq_len;
  c.norm_eps = norm_eps;
  if (rope && variant != AttnVariant::Goat && variant != AttnVariant::Alibi) {
    c.rope.style = RopeStyle::RotateHalf;
    c.rope.theta = rope_theta;
  }
  c.tied_embeddings = tied_embeddings;
  c.sink_logits = variant == AttnVariant::SinkLogit || variant == AttnVariant::OffByOne;
  c.relu_attention = variant == AttnVariant::ReluAttention;
  c.layer_window.assign(size_t(n_layers), 0);
  if (variant == AttnVariant::Alibi) c.prior.kind = PriorKind::Alibi;
  if (variant == AttnVariant::Goat) {
    c.prior.kind = PriorKind::Goat;
    c.prior.goat_rank = goat_rank;
    c.prior.goat_base = goat_base;
    c.prior.goat_abs_rank = goat_abs_rank;
    c.prior.goat_u_hidden = goat_u_hidden;
    c.prior.train_length = seq_len;
  }
  return c;
}

void TrainModel::add_param(const std::string& name, std::vector<int64_t> shape, bool decay) {
  Param p;
  p.name = name;
  p.shape = std::move(shape);
  p.size = 1;
  for (int64_t s : p.shape) p.size *= s;
  p.offset = params_.empty() ? 0 : params_.back().offset + params_.back().size;
  p.decay = decay;
  params_.push_back(std::move(p));
}

const TrainModel::Param& TrainModel::param(const std::string& name) const {
  for (const Param& p : params_)
    if (p.name == name) return p;
  throw Error("TrainModel: no parameter named '" + name + "'");
}

float* TrainModel::value(const std::string& name) { return values_.data() + param(name).offset; }

TrainModel::TrainModel(const TrainModelConfig& cfg, uint64_t seed) : config_(cfg), ws_(std::make_unique<Workspace>()) {
  const TrainModelConfig& c = config_;
  check(c.vocab > 0 && c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.seq_len > 0,
        "train config: vocab, dim, n_layers, n_heads, n_kv_heads and seq_len must be > 0");
  check(c.dim % c.n_heads == 0, "train config: dim " + std::to_string(c.dim) + " is not a multiple of n_heads " +
                                    std::to_string(c.n_heads));
  check(c.n_heads % c.n_kv_heads == 0, "train config: n_kv_heads must divide n_heads");
  check(c.head_dim() <= 256, "train config: head_dim (dim / n_heads) must be <= 256");
  check(!c.rope || c.head_dim() % 2 == 0, "train config: RoPE needs an even head_dim");
  const int64_t D = c.dim, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd, F = c.ffn_hidden();
  add_param("model.embed_tokens.weight", {c.vocab, D}, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    add_param(layer_name(l, "input_layernorm.weight"), {D}, false);
    add_param(layer_name(l, "self_attn.q_proj.weight"), {qd, D}, true);
    add_param(layer_name(l, "self_attn.k_proj.weight"), {kvd, D}, true);
    add_param(layer_name(l, "self_attn.v_proj.weight"), {kvd, D}, true);
    add_param(layer_name(l, "self_attn.o_proj.weight"), {D, qd}, true);
    // Softmax-off-by-one keeps its sink logits at 0: they get no gradient.
    if (c.variant == AttnVariant::SinkLogit || c.variant == AttnVariant::OffByOne)
      add_param(layer_name(l, "self_attn.sinks"), {c.n_heads}, false);
    if (c.variant == AttnVariant::Goat) {
      const int64_t P = 2 * c.goat_abs_rank + 2;
      add_param(layer_name(l, "self_attn.prior.lambda_sym"), {c.n_kv_heads, c.goat_rank}, false);
      add_param(layer_name(l, "self_attn.prior.lambda_asym"), {c.n_kv_heads, c.goat_rank}, false);
      add_param(layer_name(l, "self_attn.prior.key_mlp.in.weight"), {c.goat_u_hidden, P}, false);
      add_param(layer_name(l, "self_attn.prior.key_mlp.in.bias"), {c.goat_u_hidden}, false);
      add_param(layer_name(l, "self_attn.prior.key_mlp.out.weight"), {c.n_kv_heads, c.goat_u_hidden}, false);
      add_param(layer_name(l, "self_attn.prior.first_logit"), {c.n_kv_heads}, false);
    }
    add_param(layer_name(l, "post_attention_layernorm.weight"), {D}, false);
    add_param(layer_name(l, "mlp.gate_proj.weight"), {F, D}, true);
    add_param(layer_name(l, "mlp.up_proj.weight"), {F, D}, true);
    add_param(layer_name(l, "mlp.down_proj.weight"), {D, F}, true);
  }
  add_param("model.norm.weight", {D}, false);
  if (!c.tied_embeddings) add_param("lm_head.weight", {c.vocab, D}, true);
  const int64_t total = params_.back().offset + params_.back().size;
  values_.assign(size_t(total), 0.f);
  grads_.assign(size_t(total), 0.f);

  // Init (GPT-2 style): N(0, std) for matrices, residual projections scaled by
  // 1/sqrt(2 L); norms 1; priors and sink logits 0 except u's MLP input.
  std::mt19937_64 rng(seed);
  const float resid_std = c.init_std / std::sqrt(2.f * float(c.n_layers));
  for (const Param& p : params_) {
    float* w = values_.data() + p.offset;
    const std::string& n = p.name;
    auto ends_with = [&](const char* s) {
      const std::string t(s);
      return n.size() >= t.size() && n.compare(n.size() - t.size(), t.size(), t) == 0;
    };
    float std_dev = 0.f, fill = 0.f;
    if (ends_with("layernorm.weight") || n == "model.norm.weight") fill = 1.f;
    else if (ends_with("o_proj.weight") || ends_with("down_proj.weight")) std_dev = resid_std;
    else if (ends_with("key_mlp.in.weight") || ends_with("key_mlp.out.weight")) std_dev = 0.1f;
    else if (p.decay) std_dev = c.init_std;
    std::normal_distribution<float> normal(0.f, std::max(std_dev, 1e-30f));
    for (int64_t i = 0; i < p.size; ++i) w[i] = std_dev > 0 ? normal(rng) : fill;
  }
}

TrainModel::~TrainModel() = default;

int64_t TrainModel::n_matmul_params() const {
  int64_t n = 0;
  for (const Param& p : params_)
    if (p.shape.size() == 2 && p.name != "model.embed_tokens.weight") n += p.size;
  if (config_.tied_embeddings) n += config_.vocab * config_.dim;  // the classifier
  return n;
}

void TrainModel::zero_grad() { std::fill(grads_.begin(), grads_.end(), 0.f); }

std::vector<TensorEntry> TrainModel::tensor_entries() const {
  std::vector<TensorEntry> out;
  for (const Param& p : params_) {
    TensorEntry e;
    e.name = p.name;
    e.type = TensorType::F32;
    e.shape = p.shape;
    e.data = reinterpret_cast<const uint8_t*>(values_.data() + p.offset);
    e.nbytes = size_t(p.size) * 4;
    out.push_back(std::move(e));
  }
  return out;
}

void TrainModel::load_values(const std::string& path) {
  const TensorFile f = load_safetensors(path);
  for (const Param& p : params_) {
    check(f.contains(p.name), path + ": checkpoint lacks tensor '" + p.name + "'");
    const TensorEntry& e = f.tensor(p.name);
    check(e.shape == p.shape && e.type == TensorType::F32,
          path + ": tensor '" + p.name + "' does not have the shape/dtype (F32) this config expects");
    dequantize(e, values_.data() + p.offset);
  }
}

double TrainModel::forward_backward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                                    float grad_scale, int64_t* n_scored) {
  return run(inputs, targets, B, T, grad_scale, n_scored, true, PassExtras{});
}

double TrainModel::forward_loss(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                                int64_t* n_scored) {
  return run(inputs, targets, B, T, 0.f, n_scored, false, PassExtras{});
}

double TrainModel::forward_backward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                                    float grad_scale, int64_t* n_scored, const PassExtras& extras) {
  return run(inputs, targets, B, T, grad_scale, n_scored, true, extras);
}

double TrainModel::forward_loss(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                                int64_t* n_scored, const PassExtras& extras) {
  return run(inputs, targets, B, T, 0.f, n_scored, false, extras);
}

std::span<const float> TrainModel::last_logits() const { return {ws_->logits.data(), ws_->logits.size()}; }

void TrainModel::set_value_norm_penalty(ValueNormPenalty penalty) {
  check(penalty.first_n >= 0 && penalty.weight >= 0 && std::isfinite(penalty.weight),
        "TrainModel: the value-norm penalty needs first_n >= 0 and a finite weight >= 0");
  penalty_ = std::move(penalty);
}

std::vector<float> TrainModel::shallow_value_norms(int64_t first_n) const {
  const int64_t B = last_B_, T = last_T_, Hkv = config_.n_kv_heads, hd = config_.head_dim();
  const int64_t n = std::min(first_n, T);
  check(B > 0 && n > 0, "TrainModel: shallow_value_norms needs a forward pass first and first_n > 0");
  std::vector<float> out;
  out.reserve(size_t(config_.n_layers * B * Hkv * n));
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const std::vector<float>& v = ws_->layers[size_t(l)].v;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < Hkv; ++g)
        for (int64_t t = 0; t < n; ++t) {
          const float* x = v.data() + (b * T + t) * Hkv * hd + g * hd;
          double ss = 0;
          for (int64_t i = 0; i < hd; ++i) ss += double(x[i]) * double(x[i]);
          out.push_back(float(std::sqrt(ss)));
        }
  }
  return out;
}

// One forward (and backward) over a [B, T] batch: the sizes, the attention
// spec shared by forward and backward, and each step in the order it runs.
struct TrainModel::Pass {
  TrainModel& m;
  const TrainModelConfig& c;
  Workspace& W;
  const int32_t* inputs;
  const int64_t B, T, N, D, V, H, Hkv, hd, qd, kvd, F, NL;
  const int64_t P, Hu;  // GOAT position features and key-MLP width
  const bool goat;
  const char* head;     // the LM head's parameter

  Pass(TrainModel& model, const int32_t* in, int64_t b, int64_t t)
      : m(model), c(model.config_), W(*model.ws_), inputs(in), B(b), T(t), N(b * t), D(c.dim), V(c.vocab),
        H(c.n_heads), Hkv(c.n_kv_heads), hd(c.head_dim()), qd(H * hd), kvd(Hkv * hd), F(c.ffn_hidden()),
        NL(c.n_layers), P(2 * c.goat_abs_rank + 2), Hu(c.goat_u_hidden), goat(c.variant == AttnVariant::Goat),
        head(c.tied_embeddings ? "model.embed_tokens.weight" : "lm_head.weight") {}

  float* value(const std::string& name) { return m.value(name); }
  float* value(int64_t l, const char* what) { return m.value(layer_name(l, what)); }
  float* grad(const std::string& name) { return m.grads_.data() + m.param(name).offset; }
  float* grad(int64_t l, const char* what) { return grad(layer_name(l, what)); }
  TensorView view(float* p, int64_t heads, int64_t width) const {
    return TensorView::strided(p, DType::F32, {B, heads, T, hd}, {T * width, hd, width, 1});
  }

  void check_ids(const int32_t* targets) const {
    for (int64_t i = 0; i < N; ++i)
      check(inputs[i] >= 0 && inputs[i] < V,
            "TrainModel: input token id " + std::to_string(inputs[i]) + " is outside the vocabulary");
    for (int64_t i = 0; i < N; ++i)
      check(targets[i] < V, "TrainModel: target token id " + std::to_string(targets[i]) + " is outside the vocabulary");
  }

  // Buffers sized for this batch; the per-batch constants (GOAT features, ALiBi slopes).
  void prepare() {
    W.resid.resize(size_t(NL + 1));
    W.mid.resize(size_t(NL));
    W.layers.resize(size_t(NL));
    for (auto& r : W.resid) r.resize(size_t(N * D));
    for (auto& x : W.mid) x.resize(size_t(N * D));
    if (goat) {
      const PriorConfig prior = c.runtime_config().prior;
      W.phi.resize(size_t(T * P));
      for (int64_t t = 0; t < T; ++t) goat_position_features(prior, double(t), W.phi.data() + t * P);
    }
    if (c.variant == AttnVariant::Alibi) W.alibi = alibi_slopes(int(H));
  }

  AttnSpec spec(int64_t l, Workspace::Layer& A) {
    AttnSpec s;
    if (c.rope && c.variant != AttnVariant::Goat && c.variant != AttnVariant::Alibi) {
      s.rope.style = RopeStyle::RotateHalf;
      s.rope.theta = c.rope_theta;
    }
    if (c.variant == AttnVariant::SinkLogit || c.variant == AttnVariant::OffByOne) s.sink_logits = value(l, "self_attn.sinks");
    if (c.variant == AttnVariant::Alibi) s.alibi_slopes = W.alibi.data();
    if (c.variant == AttnVariant::ReluAttention) s.normalization = AttnNormalization::Relu;
    if (goat) {
      s.goat = GoatRelative{c.goat_rank, c.goat_base, value(l, "self_attn.prior.lambda_sym"),
                            value(l, "self_attn.prior.lambda_asym")};
      s.key_bias = TensorView::strided(A.prior_u.data(), DType::F32, {B, Hkv, T}, {0, T, 1});
    }
    return s;
  }

  // mid = x + o_proj(attn(q, k, v)), q/k/v = proj(norm(x)).
  void attention_forward_layer(int64_t l, Workspace::Layer& A) {
    for (auto* buf : {&A.h1, &A.h2}) buf->resize(size_t(N * D));
    for (auto* buf : {&A.rstd1, &A.rstd2}) buf->resize(size_t(N));
    for (auto* buf : {&A.q, &A.att}) buf->resize(size_t(N * qd));
    for (auto* buf : {&A.k, &A.v}) buf->resize(size_t(N * kvd));
    A.lse.resize(size_t(B * H * T));
    const float* x = W.resid[size_t(l)].data();
    L::rmsnorm_forward(A.h1.data(), A.rstd1.data(), x, value(l, "input_layernorm.weight"), N, D, c.norm_eps);
    L::linear_forward(A.q.data(), A.h1.data(), value(l, "self_attn.q_proj.weight"), N, D, qd);
    L::linear_forward(A.k.data(), A.h1.data(), value(l, "self_attn.k_proj.weight"), N, D, kvd);
    L::linear_forward(A.v.data(), A.h1.data(), value(l, "self_attn.v_proj.weight"), N, D, kvd);
    if (goat) {
      A.prior_u.resize(size_t(Hkv * T));
      A.prior_pre.resize(size_t(T * Hu));
      L::goat_key_forward(A.prior_u.data(), A.prior_pre.data(), W.phi.data(),
                          value(l, "self_attn.prior.key_mlp.in.weight"), value(l, "self_attn.prior.key_mlp.in.bias"),
                          value(l, "self_attn.prior.key_mlp.out.weight"), value(l, "self_attn.prior.first_logit"), T,
                          P, Hu, Hkv);
    }
    attention_forward(spec(l, A), view(A.q.data(), H, qd), view(A.k.data(), Hkv, kvd), view(A.v.data(), Hkv, kvd),
                      view(A.att.data(), H, qd), TensorView(A.lse.data(), DType::F32, {B, H, T}));
    float* mid = W.mid[size_t(l)].data();
    L::linear_forward(mid, A.att.data(), value(l, "self_attn.o_proj.weight"), N, qd, D);
    for (int64_t i = 0; i < N * D; ++i) mid[i] += x[i];
  }

  // out = mid + down(swiglu(gate h2, up h2)), h2 = norm(mid).
  void ffn_forward_layer(int64_t l, Workspace::Layer& A) {
    for (auto* buf : {&A.g, &A.u, &A.a}) buf->resize(size_t(N * F));
    const float* mid = W.mid[size_t(l)].data();
    L::rmsnorm_forward(A.h2.data(), A.rstd2.data(), mid, value(l, "post_attention_layernorm.weight"), N, D,
                       c.norm_eps);
    L::linear_forward(A.g.data(), A.h2.data(), value(l, "mlp.gate_proj.weight"), N, D, F);
    L::linear_forward(A.u.data(), A.h2.data(), value(l, "mlp.up_proj.weight"), N, D, F);
    L::swiglu_forward(A.a.data(), A.g.data(), A.u.data(), N * F);
    float* out = W.resid[size_t(l + 1)].data();
    L::linear_forward(out, A.a.data(), value(l, "mlp.down_proj.weight"), N, F, D);
    for (int64_t i = 0; i < N * D; ++i) out[i] += mid[i];
  }

  double head_forward(const int32_t* targets, float grad_scale, bool backward, int64_t* n_scored,
                      const PassExtras& extras) {
    W.hN.resize(size_t(N * D));
    W.rstdN.resize(size_t(N));
    W.logits.resize(size_t(N * V));
    L::rmsnorm_forward(W.hN.data(), W.rstdN.data(), W.resid[size_t(NL)].data(), value("model.norm.weight"), N, D,
                       c.norm_eps);
    L::linear_forward(W.logits.data(), W.hN.data(), value(head), N, D, V);
    if (extras.position_loss) extras.position_loss->assign(size_t(N), 0.0);
    return L::cross_entropy(W.logits.data(), targets, N, V, grad_scale, backward, n_scored, extras.position_scale,
                            extras.position_loss ? extras.position_loss->data() : nullptr);
  }

  // The value-norm penalty of layer l (see ValueNormPenalty); with add_grad its
  // gradient joins W.dv, which the v_proj backward then carries to the weights.
  double value_norm_penalty(int64_t l, const Workspace::Layer& A, bool add_grad) {
    const ValueNormPenalty& p = m.penalty_;
    const int64_t n = std::min(p.first_n, T);
    const size_t per_layer = size_t(B * Hkv * n);
    check(p.target.size() == size_t(NL) * per_layer,
          "TrainModel: the value-norm penalty's target does not match this batch shape");
    const double w = double(p.weight) / double(NL * per_layer);
    double total = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < Hkv; ++g)
        for (int64_t t = 0; t < n; ++t) {
          const int64_t off = (b * T + t) * kvd + g * hd;
          const float* x = A.v.data() + off;
          double ss = 0;
          for (int64_t i = 0; i < hd; ++i) ss += double(x[i]) * double(x[i]);
          const double norm = std::sqrt(ss);
          const double diff = norm - double(p.target[size_t(l) * per_layer + size_t((b * Hkv + g) * n + t)]);
          total += w * diff * diff;
          if (add_grad && norm > 0)
            for (int64_t i = 0; i < hd; ++i) W.dv[size_t(off + i)] += float(2 * w * diff * double(x[i]) / norm);
        }
    return total;
  }

  // Leaves the gradient of the last residual stream in W.dx.
  void head_backward() {
    W.dx.assign(size_t(N * D), 0.f);
    W.dh.assign(size_t(N * D), 0.f);
    L::linear_backward(W.dh.data(), grad(head), W.logits.data(), W.hN.data(), value(head), N, D, V, false);
    L::rmsnorm_backward(W.dx.data(), grad("model.norm.weight"), W.dh.data(), W.resid[size_t(NL)].data(),
                        value("model.norm.weight"), W.rstdN.data(), N, D);
    for (auto* buf : {&W.datt, &W.dq}) buf->resize(size_t(N * qd));
    for (auto* buf : {&W.dk, &W.dv}) buf->resize(size_t(N * kvd));
    for (auto* buf : {&W.dg, &W.du, &W.da}) buf->resize(size_t(N * F));
  }

  // W.dx: gradient of the layer's output in, of its mid residual out.
  void ffn_backward_layer(int64_t l, Workspace::Layer& A) {
    L::linear_backward(W.da.data(), grad(l, "mlp.down_proj.weight"), W.dx.data(), A.a.data(),
                       value(l, "mlp.down_proj.weight"), N, F, D, false);
    L::swiglu_backward(W.dg.data(), W.du.data(), W.da.data(), A.g.data(), A.u.data(), N * F);
    L::linear_backward(W.dh.data(), grad(l, "mlp.gate_proj.weight"), W.dg.data(), A.h2.data(),
                       value(l, "mlp.gate_proj.weight"), N, D, F, false);
    L::linear_backward(W.dh.data(), grad(l, "mlp.up_proj.weight"), W.du.data(), A.h2.data(),
                       value(l, "mlp.up_proj.weight"), N, D, F, true);
    L::rmsnorm_backward(W.dx.data(), grad(l, "post_attention_layernorm.weight"), W.dh.data(), W.mid[size_t(l)].data(),
                        value(l, "post_attention_layernorm.weight"), A.rstd2.data(), N, D);
  }

  // W.dx: gradient of the mid residual in, of the layer's input out.
  void attention_backward_layer(int64_t l, Workspace::Layer& A) {
    L::linear_backward(W.datt.data(), grad(l, "self_attn.o_proj.weight"), W.dx.data(), A.att.data(),
                       value(l, "self_attn.o_proj.weight"), N, qd, D, false);
    AttnGrads ag;
    ag.dq = view(W.dq.data(), H, qd);
    ag.dk = view(W.dk.data(), Hkv, kvd);
    ag.dv = view(W.dv.data(), Hkv, kvd);
    if (c.variant == AttnVariant::SinkLogit) {
      W.dprior.assign(size_t(H), 0.f);
      ag.d_sink_logits = W.dprior.data();
    }
    if (goat) {
      W.dprior.assign(size_t(2 * Hkv * c.goat_rank), 0.f);
      ag.d_lambda_sym = W.dprior.data();
      ag.d_lambda_asym = W.dprior.data() + Hkv * c.goat_rank;
      W.dkb.assign(size_t(B * Hkv * T), 0.f);
      ag.d_key_bias = TensorView(W.dkb.data(), DType::F32, {B, Hkv, T});
    }
    attention_backward(spec(l, A), view(A.q.data(), H, qd), view(A.k.data(), Hkv, kvd), view(A.v.data(), Hkv, kvd),
                       view(A.att.data(), H, qd), TensorView(A.lse.data(), DType::F32, {B, H, T}),
                       view(W.datt.data(), H, qd), ag);
    if (m.penalty_.first_n > 0 && m.penalty_.weight > 0) m.last_penalty_ += value_norm_penalty(l, A, true);
    if (c.variant == AttnVariant::SinkLogit) {
      float* gs = grad(l, "self_attn.sinks");
      for (int64_t h = 0; h < H; ++h) gs[h] += W.dprior[size_t(h)];
    }
    if (goat) prior_backward(l, A);
    L::linear_backward(W.dh.data(), grad(l, "self_attn.q_proj.weight"), W.dq.data(), A.h1.data(),
                       value(l, "self_attn.q_proj.weight"), N, D, qd, false);
    L::linear_backward(W.dh.data(), grad(l, "self_attn.k_proj.weight"), W.dk.data(), A.h1.data(),
                       value(l, "self_attn.k_proj.weight"), N, D, kvd, true);
    L::linear_backward(W.dh.data(), grad(l, "self_attn.v_proj.weight"), W.dv.data(), A.h1.data(),
                       value(l, "self_attn.v_proj.weight"), N, D, kvd, true);
    // dx already holds the residual path's gradient; the norm adds its own.
    L::rmsnorm_backward(W.dx.data(), grad(l, "input_layernorm.weight"), W.dh.data(), W.resid[size_t(l)].data(),
                        value(l, "input_layernorm.weight"), A.rstd1.data(), N, D);
  }

  // GOAT: the relative prior's lambdas and the key MLP behind the key bias.
  void prior_backward(int64_t l, Workspace::Layer& A) {
    const int64_t R = c.goat_rank;
    float* gsym = grad(l, "self_attn.prior.lambda_sym");
    float* gasym = grad(l, "self_attn.prior.lambda_asym");
    for (int64_t i = 0; i < Hkv * R; ++i) {
      gsym[i] += W.dprior[size_t(i)];
      gasym[i] += W.dprior[size_t(Hkv * R + i)];
    }
    // The key bias is shared by the batch: sum its gradient over rows.
    std::vector<float> du_sum(static_cast<size_t>(Hkv * T), 0.f);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Hkv * T; ++i) du_sum[size_t(i)] += W.dkb[size_t(b * Hkv * T + i)];
    L::goat_key_backward(grad(l, "self_attn.prior.key_mlp.in.weight"), grad(l, "self_attn.prior.key_mlp.in.bias"),
                         grad(l, "self_attn.prior.key_mlp.out.weight"), grad(l, "self_attn.prior.first_logit"),
                         du_sum.data(), A.prior_pre.data(), W.phi.data(), value(l, "self_attn.prior.key_mlp.out.weight"),
                         T, P, Hu, Hkv);
  }
};

double TrainModel::run(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale,
                       int64_t* n_scored, bool backward, const PassExtras& extras) {
  check(B > 0 && T > 0, "TrainModel: empty batch");
  last_B_ = B;
  last_T_ = T;
  last_penalty_ = 0;
  Pass pass(*this, inputs, B, T);
  pass.check_ids(targets);
  pass.prepare();
  L::embedding_forward(ws_->resid[0].data(), inputs, value("model.embed_tokens.weight"), pass.N, pass.D);
  for (int64_t l = 0; l < pass.NL; ++l) {
    pass.attention_forward_layer(l, ws_->layers[size_t(l)]);
    pass.ffn_forward_layer(l, ws_->layers[size_t(l)]);
  }
  const double loss = pass.head_forward(targets, grad_scale, backward, n_scored, extras);
  if (!backward) return loss;
  pass.head_backward();
  for (int64_t l = pass.NL - 1; l >= 0; --l) {
    pass.ffn_backward_layer(l, ws_->layers[size_t(l)]);
    pass.attention_backward_layer(l, ws_->layers[size_t(l)]);
  }
  L::embedding_backward(grads_.data() + param("model.embed_tokens.weight").offset, ws_->dx.data(), inputs, pass.N, pass.D);
  return loss;
}

}  // namespace sinklab
