// The vision transformer forward: patch embedding, CLS / register tokens,
// position embeddings (interpolated to the image's grid), pre-LN blocks on the
// library's attention kernel (non-causal), the final norm and each
// architecture's pooling.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "ops.h"
#include "sinklab/attention.h"
#include "sinklab/json_text.h"
#include "weights.h"

namespace sinklab {

VisionModel::VisionModel(VisionConfig config, std::unique_ptr<VisionWeights> weights, std::string path)
    : config_(std::move(config)), weights_(std::move(weights)), path_(std::move(path)) {}

VisionModel::~VisionModel() = default;

int64_t VisionModel::n_params() const { return weights_->n_params; }

std::shared_ptr<const VisionModel> VisionModel::load(const std::string& path) {
  auto file = std::make_unique<TensorFile>(load_safetensors(path));
  const std::filesystem::path dir =
      std::filesystem::is_directory(path) ? std::filesystem::path(path) : std::filesystem::path(path).parent_path();
  const std::filesystem::path openclip = dir / "open_clip_config.json";
  VisionConfig config;
  if (file->has_config()) {
    config = parse_vision_config(file->config(), path + "/config.json");
  } else {
    check(std::filesystem::exists(openclip),
          path + ": no config.json or open_clip_config.json beside the safetensors file (a vision model needs one)");
    check_regular_file(openclip.string(), "OpenCLIP config");
    std::ifstream in(openclip);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config = parse_openclip_config(parse_json_text(text, openclip.string()), openclip.string());
  }
  auto weights = std::make_unique<VisionWeights>(bind_vision_weights(*file, config));
  return std::make_shared<const VisionModel>(std::move(config), std::move(weights), path);
}

namespace {

using namespace vision_ops;

// One forward's state: the residual stream and the tap plumbing.
struct Pass {
  const VisionConfig& c;
  const VisionWeights& w;
  const Taps* taps;
  const VisionKvPrefix* prefix;
  int64_t T;                      // tokens
  std::vector<int32_t> token_ids;  // 0..T-1, the rows' positions for taps
  std::vector<float> x;           // residual [T, dim]

  void tap(const std::string& name, float* data, int64_t rows, int64_t cols, int layer) const {
    if (!taps || taps->empty()) return;
    taps->fire(TapEvent{name, data, rows, cols, layer, std::span<const int32_t>(token_ids.data(), size_t(std::min<int64_t>(rows, int64_t(token_ids.size())))), {}});
  }
  bool wants(const std::string& name) const { return taps && !taps->empty() && taps->wants(name); }
};

std::vector<float> zeros(int64_t n) { return std::vector<float>(static_cast<size_t>(n), 0.f); }

std::string blk(int l, const char* what) { return "blk." + std::to_string(l) + "." + what; }

// Position rows of the patches for a gh x gw grid: the checkpoint's table,
// bicubically resized when the grid differs (as Hugging Face's
// interpolate_pos_encoding).
std::vector<float> patch_positions(const VisionConfig& c, const VisionWeights& w, int gh, int gw) {
  const int G = c.grid();
  const float* table = w.pos.data() + int64_t(w.pos_prefix) * c.dim;
  if (gh == G && gw == G) return std::vector<float>(table, table + int64_t(G) * G * c.dim);
  return bicubic_resize(table, G, G, c.dim, gh, gw);
}

void embed(Pass& p, const float* pixels, int height, int width, int gh, int gw) {
  const VisionConfig& c = p.c;
  const int64_t D = c.dim, np = int64_t(gh) * gw, first = c.n_prefix();
  const std::vector<float> cols = im2col(pixels, c.channels, height, width, c.patch_size);
  linear(p.w.patch, cols.data(), np, p.x.data() + first * D);
  const std::vector<float> pos = patch_positions(c, p.w, gh, gw);
  for (int64_t i = 0; i < np * D; ++i) p.x[size_t(first * D + i)] += pos[size_t(i)];
  if (c.cls_token)
    for (int64_t j = 0; j < D; ++j) p.x[size_t(j)] = p.w.cls[size_t(j)] + (p.w.pos_prefix ? p.w.pos[size_t(j)] : 0.f);
  // Registers follow CLS without a position embedding (DINOv2 with registers).
  std::copy(p.w.registers.begin(), p.w.registers.end(), p.x.begin() + (c.cls_token ? D : 0));
  p.tap("token_embd", p.x.data(), p.T, D, -1);
  if (c.pre_norm) {
    layernorm(p.w.pre, p.x.data(), p.T, D, c.norm_eps, p.x.data());
    p.tap("pre_norm", p.x.data(), p.T, D, -1);
  }
}

// Non-causal multi-head attention of rows q [nq, D] over k, v [nk, D]; writes
// ctx [nq, D] and, when probs is given, the float64 oracle's probabilities
// [heads * nq, nk].
void attend(int heads, int64_t nq, int64_t nk, int64_t D, float* q, float* k, float* v, float* ctx,
            std::vector<float>* probs) {
  const int64_t hd = D / heads;
  AttnSpec spec;
  spec.causal = false;
  const TensorView qv = TensorView::strided(q, DType::F32, {1, heads, nq, hd}, {nq * D, hd, D, 1});
  const TensorView kv = TensorView::strided(k, DType::F32, {1, heads, nk, hd}, {nk * D, hd, D, 1});
  const TensorView vv = TensorView::strided(v, DType::F32, {1, heads, nk, hd}, {nk * D, hd, D, 1});
  const TensorView ov = TensorView::strided(ctx, DType::F32, {1, heads, nq, hd}, {nq * D, hd, D, 1});
  attention_forward(spec, qv, kv, vv, ov);
  if (!probs) return;
  const ReferenceForward ref = attention_reference(spec, qv, kv, vv);
  probs->assign(ref.prob.begin(), ref.prob.end());
}

void scale_rows(std::vector<float>& a, const std::vector<float>& s, int64_t rows) {
  if (s.empty()) return;
  const int64_t d = int64_t(s.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < d; ++j) a[size_t(i * d + j)] *= s[size_t(j)];
}

void add_into(std::vector<float>& x, const std::vector<float>& a) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
}

// Removes the rows of `del` (by original token number) and, above the norm
// threshold, the high-norm rows from the stream; CLS stays.
void delete_tokens(Pass& p, const VisionTokenDeletion& del) {
  const int64_t D = p.c.dim;
  std::vector<float> x;
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < p.T; ++t) {
    const int32_t id = p.token_ids[size_t(t)];
    const float* row = p.x.data() + t * D;
    double norm = 0;
    for (int64_t j = 0; j < D; ++j) norm += double(row[j]) * row[j];
    const bool listed = std::find(del.tokens.begin(), del.tokens.end(), id) != del.tokens.end();
    const bool high = del.norm_threshold > 0 && std::sqrt(norm) > del.norm_threshold;
    if ((listed || high) && !(p.c.cls_token && id == 0)) continue;
    x.insert(x.end(), row, row + D);
    ids.push_back(id);
  }
  p.x = std::move(x);
  p.token_ids = std::move(ids);
  p.T = int64_t(p.token_ids.size());
}

void attention_block(Pass& p, int l) {
  const VisionConfig& c = p.c;
  const VisionLayer& L = p.w.layers[size_t(l)];
  const int64_t T = p.T, D = c.dim;
  std::vector<float> h = zeros(T * D), q = zeros(T * D), k = zeros(T * D), v = zeros(T * D), ctx = zeros(T * D),
                     a = zeros(T * D);
  layernorm(L.ln1, p.x.data(), T, D, c.norm_eps, h.data());
  p.tap(blk(l, "attn_norm"), h.data(), T, D, l);
  linear(L.q, h.data(), T, q.data());
  linear(L.k, h.data(), T, k.data());
  linear(L.v, h.data(), T, v.data());
  p.tap(blk(l, "q"), q.data(), T, D, l);
  p.tap(blk(l, "k"), k.data(), T, D, l);
  p.tap(blk(l, "v"), v.data(), T, D, l);  // the prefix (when any) is added after the taps
  const std::string probs_name = blk(l, "attn_probs");
  std::vector<float> probs;
  const bool want_probs = p.wants(probs_name);
  // A RegCache prefix: its keys and values come first.
  const bool prefixed = p.prefix && l >= p.prefix->first_layer && p.prefix->n > 0;
  const int64_t P = prefixed ? p.prefix->n : 0;
  if (prefixed) {
    k.insert(k.begin(), p.prefix->k[size_t(l)].begin(), p.prefix->k[size_t(l)].end());
    v.insert(v.begin(), p.prefix->v[size_t(l)].begin(), p.prefix->v[size_t(l)].end());
  }
  attend(c.n_heads, T, T + P, D, q.data(), k.data(), v.data(), ctx.data(), want_probs ? &probs : nullptr);
  if (want_probs) p.tap(probs_name, probs.data(), c.n_heads * T, T + P, l);
  p.tap(blk(l, "attn_ctx"), ctx.data(), T, D, l);
  linear(L.o, ctx.data(), T, a.data());
  scale_rows(a, L.ls1, T);
  p.tap(blk(l, "attn_out"), a.data(), T, D, l);
  add_into(p.x, a);
  p.tap(blk(l, "resid_mid"), p.x.data(), T, D, l);
}

void ffn_block(Pass& p, int l) {
  const VisionConfig& c = p.c;
  const VisionLayer& L = p.w.layers[size_t(l)];
  const int64_t T = p.T, D = c.dim;
  std::vector<float> h = zeros(T * D), f = zeros(T * c.hidden), o = zeros(T * D);
  layernorm(L.ln2, p.x.data(), T, D, c.norm_eps, h.data());
  p.tap(blk(l, "ffn_norm"), h.data(), T, D, l);
  linear(L.fc1, h.data(), T, f.data());
  activate(c.act, f.data(), int64_t(f.size()));
  p.tap(blk(l, "ffn_act"), f.data(), T, c.hidden, l);
  linear(L.fc2, f.data(), T, o.data());
  scale_rows(o, L.ls2, T);
  p.tap(blk(l, "ffn_out"), o.data(), T, D, l);
  add_into(p.x, o);
  p.tap(blk(l, "resid_out"), p.x.data(), T, D, l);
}

// SigLIP's attention pooling: probe attends over the tokens, then x + MLP(LN(x)).
std::vector<float> map_head(const VisionConfig& c, const VisionMapHead& h, const std::vector<float>& hidden,
                            int64_t T) {
  const int64_t D = c.dim;
  std::vector<float> q = zeros(D), k = zeros(T * D), v = zeros(T * D), ctx = zeros(D), x = zeros(D), n = zeros(D);
  std::vector<float> f = zeros(c.hidden), o = zeros(D);
  linear(h.q, h.probe.data(), 1, q.data());
  linear(h.k, hidden.data(), T, k.data());
  linear(h.v, hidden.data(), T, v.data());
  attend(c.n_heads, 1, T, D, q.data(), k.data(), v.data(), ctx.data(), nullptr);
  linear(h.o, ctx.data(), 1, x.data());
  layernorm(h.ln, x.data(), 1, D, c.norm_eps, n.data());
  linear(h.fc1, n.data(), 1, f.data());
  activate(c.act, f.data(), c.hidden);
  linear(h.fc2, f.data(), 1, o.data());
  add_into(x, o);
  return x;
}

void pool(const Pass& p, const std::vector<float>& normed, VisionOutput& out) {
  const VisionConfig& c = p.c;
  const int64_t D = c.dim;
  switch (c.arch) {
    case VisionArch::Vit:
      out.pooled.assign(out.hidden.begin(), out.hidden.begin() + D);
      if (p.w.pooler.present()) {
        std::vector<float> y = zeros(D);
        linear(p.w.pooler, out.pooled.data(), 1, y.data());
        for (int64_t j = 0; j < D; ++j) out.pooled[size_t(j)] = std::tanh(y[size_t(j)]);
      }
      break;
    case VisionArch::Dinov2:
      out.pooled.assign(out.hidden.begin(), out.hidden.begin() + D);
      break;
    case VisionArch::Clip:
      out.pooled.assign(normed.begin(), normed.begin() + D);
      if (p.w.proj.present()) {
        out.embeds.resize(size_t(p.w.proj.out));
        linear(p.w.proj, out.pooled.data(), 1, out.embeds.data());
      }
      break;
    case VisionArch::Siglip:
      if (p.w.head.present()) {
        out.pooled = map_head(c, p.w.head, out.hidden, p.T);
      } else {
        out.pooled.assign(size_t(D), 0.f);
        for (int64_t i = 0; i < p.T; ++i)
          for (int64_t j = 0; j < D; ++j) out.pooled[size_t(j)] += out.hidden[size_t(i * D + j)] / float(p.T);
      }
      break;
  }
}

void check_prefix(const VisionConfig& c, const VisionKvPrefix* prefix) {
  if (!prefix) return;
  check(prefix->first_layer >= 0 && prefix->first_layer < c.n_layers && prefix->n >= 0 &&
            prefix->k.size() == size_t(c.n_layers) && prefix->v.size() == size_t(c.n_layers),
        "vision forward: the KV prefix should have one K and V entry per layer and a first layer in range");
  for (int l = prefix->first_layer; l < c.n_layers; ++l)
    check(prefix->k[size_t(l)].size() == size_t(prefix->n * c.dim) && prefix->v[size_t(l)].size() == size_t(prefix->n * c.dim),
          "vision forward: KV prefix layer " + std::to_string(l) + " should hold n x dim keys and values");
}

}  // namespace

VisionOutput VisionModel::forward(const float* pixels, int height, int width, const VisionForwardOptions& opts) const {
  const VisionConfig& c = config_;
  check(pixels != nullptr, "vision forward: no pixels given");
  check(height >= c.patch_size && width >= c.patch_size, [&] {
    return path_ + ": the image is " + std::to_string(height) + "x" + std::to_string(width) +
           " pixels, smaller than one " + std::to_string(c.patch_size) + "-pixel patch";
  });
  check(opts.test_time_registers >= 0 && opts.test_time_registers <= 1024,
        "vision forward: test_time_registers should be in 0..1024");
  const int gh = height / c.patch_size, gw = width / c.patch_size;
  check(int64_t(gh) * gw <= (1 << 20), path_ + ": the image has more than 2^20 patches");
  check_prefix(c, opts.prefix);
  Pass p{c, *weights_, opts.taps, opts.prefix, int64_t(c.n_prefix()) + int64_t(gh) * gw + opts.test_time_registers, {}, {}};
  p.token_ids.resize(size_t(p.T));
  std::iota(p.token_ids.begin(), p.token_ids.end(), 0);
  p.x.assign(size_t(p.T * c.dim), 0.f);
  embed(p, pixels, height, width, gh, gw);
  for (int l = 0; l < c.n_layers; ++l) {
    if (l == opts.deletion.layer) delete_tokens(p, opts.deletion);
    attention_block(p, l);
    ffn_block(p, l);
  }
  VisionOutput out;
  out.token_ids = p.token_ids;
  out.tokens = p.T, out.dim = c.dim, out.grid_h = gh, out.grid_w = gw, out.n_prefix = c.n_prefix();
  std::vector<float> normed(p.x.size());
  layernorm(weights_->final, p.x.data(), p.T, c.dim, c.norm_eps, normed.data());
  p.tap("output_norm", normed.data(), p.T, c.dim, -1);
  out.hidden = c.arch == VisionArch::Clip ? p.x : normed;
  pool(p, normed, out);
  return out;
}

}  // namespace sinklab
