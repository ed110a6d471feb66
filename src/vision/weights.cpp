// Hugging Face tensor names of ViT, DINOv2, CLIP's and SigLIP's vision towers.
// A checkpoint of the bare vision model has the names below; one saved from a
// wrapper (ViTForImageClassification, CLIPModel, ...) puts a prefix before
// them, found by looking for the patch embedding under each known prefix.
#include "weights.h"

#include <functional>
#include <numeric>

namespace sinklab {

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  Binder(const TensorFile& file, std::string prefix, int64_t& n_params)
      : file_(file), prefix_(std::move(prefix)), n_params_(n_params) {}

  bool has(const std::string& name) const { return file_.contains(prefix_ + name); }

  // The tensor `name` (after the prefix, unless `absolute`) as floats; its
  // element count must equal the product of `shape` (a checkpoint may store a
  // [1, 1, D] token as [D]); an empty result when absent and optional.
  std::vector<float> floats(const std::string& name, const std::vector<int64_t>& shape, bool optional = false,
                            bool absolute = false) const {
    const std::string full = absolute ? name : prefix_ + name;
    if (!file_.contains(full)) {
      check(optional, [&] {
        return file_.path() + ": tensor '" + full + "' is missing (expected shape " + shape_text(shape) + ")";
      });
      return {};
    }
    const TensorEntry& t = file_.tensor(full);
    const int64_t want = std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<>());
    check(t.numel() == want, [&] {
      return file_.path() + ": tensor '" + full + "' has shape " + shape_text(t.shape) + ", expected " +
             shape_text(shape);
    });
    check(!tensor_type_is_quantized(t.type) && t.type != TensorType::U8, [&] {
      return file_.path() + ": tensor '" + full + "' is " + tensor_type_name(t.type) + " (expected F32, F16 or BF16)";
    });
    std::vector<float> out(static_cast<size_t>(want));
    dequantize(t, out.data());
    n_params_ += want;
    return out;
  }

  VisionLinear linear(const std::string& name, int64_t out, int64_t in, bool bias = true, bool optional = false) const {
    VisionLinear l;
    l.w = floats(name + ".weight", {out, in}, optional);
    if (l.w.empty()) return l;
    if (bias) l.b = floats(name + ".bias", {out});
    l.out = out, l.in = in;
    return l;
  }

  VisionNorm norm(const std::string& name, int64_t dim) const {
    return {floats(name + ".weight", {dim}), floats(name + ".bias", {dim})};
  }

  const std::string& prefix() const { return prefix_; }

 private:
  const TensorFile& file_;
  std::string prefix_;
  int64_t& n_params_;
};

// The prefix under which `probe` exists.
std::string find_prefix(const TensorFile& file, const std::vector<std::string>& prefixes, const std::string& probe) {
  for (const std::string& p : prefixes)
    if (file.contains(p + probe)) return p;
  std::string tried;
  for (const std::string& p : prefixes) tried += (tried.empty() ? "'" : ", '") + p + probe + "'";
  throw Error(file.path() + ": no patch embedding found (looked for " + tried + ")");
}

// ViT and DINOv2 share embeddings and attention names.
void bind_vit_family(const Binder& b, const VisionConfig& c, VisionWeights& w) {
  const int64_t D = c.dim, G = c.grid();
  w.patch = b.linear("embeddings.patch_embeddings.projection", D, int64_t(c.channels) * c.patch_size * c.patch_size);
  w.cls = b.floats("embeddings.cls_token", {1, 1, D});
  if (c.n_registers > 0) w.registers = b.floats("embeddings.register_tokens", {1, c.n_registers, D});
  w.pos = b.floats("embeddings.position_embeddings", {1, G * G + 1, D});
  w.pos_prefix = 1;
  const bool dino = c.arch == VisionArch::Dinov2;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    VisionLayer L;
    L.ln1 = b.norm(p + (dino ? "norm1" : "layernorm_before"), D);
    L.q = b.linear(p + "attention.attention.query", D, D);
    L.k = b.linear(p + "attention.attention.key", D, D);
    L.v = b.linear(p + "attention.attention.value", D, D);
    L.o = b.linear(p + "attention.output.dense", D, D);
    L.ln2 = b.norm(p + (dino ? "norm2" : "layernorm_after"), D);
    L.fc1 = b.linear(p + (dino ? "mlp.fc1" : "intermediate.dense"), c.hidden, D);
    L.fc2 = b.linear(p + (dino ? "mlp.fc2" : "output.dense"), D, c.hidden);
    if (dino) {
      L.ls1 = b.floats(p + "layer_scale1.lambda1", {D});
      L.ls2 = b.floats(p + "layer_scale2.lambda1", {D});
    }
    w.layers.push_back(std::move(L));
  }
  w.final = b.norm("layernorm", D);
  if (!dino) w.pooler = b.linear("pooler.dense", D, D, true, true);
}

// CLIP and SigLIP vision towers share the encoder names.
void bind_clip_family(const Binder& b, const VisionConfig& c, VisionWeights& w) {
  const int64_t D = c.dim, G = c.grid();
  const bool clip = c.arch == VisionArch::Clip;
  w.patch = b.linear("embeddings.patch_embedding", D, int64_t(c.channels) * c.patch_size * c.patch_size, !clip);
  if (clip) w.cls = b.floats("embeddings.class_embedding", {D});
  w.pos_prefix = clip ? 1 : 0;
  w.pos = b.floats("embeddings.position_embedding.weight", {G * G + w.pos_prefix, D});
  if (clip) w.pre = b.norm("pre_layrnorm", D);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "encoder.layers." + std::to_string(l) + ".";
    VisionLayer L;
    L.ln1 = b.norm(p + "layer_norm1", D);
    L.q = b.linear(p + "self_attn.q_proj", D, D);
    L.k = b.linear(p + "self_attn.k_proj", D, D);
    L.v = b.linear(p + "self_attn.v_proj", D, D);
    L.o = b.linear(p + "self_attn.out_proj", D, D);
    L.ln2 = b.norm(p + "layer_norm2", D);
    L.fc1 = b.linear(p + "mlp.fc1", c.hidden, D);
    L.fc2 = b.linear(p + "mlp.fc2", D, c.hidden);
    w.layers.push_back(std::move(L));
  }
  w.final = b.norm("post_layernorm", D);
  if (clip && c.proj_dim > 0) {
    w.proj.w = b.floats("visual_projection.weight", {c.proj_dim, D}, true, true);
    if (!w.proj.w.empty()) w.proj.out = c.proj_dim, w.proj.in = D;
  }
  if (!clip && b.has("head.probe")) {
    VisionMapHead& h = w.head;
    h.probe = b.floats("head.probe", {1, 1, D});
    const std::vector<float> in_w = b.floats("head.attention.in_proj_weight", {3 * D, D});
    const std::vector<float> in_b = b.floats("head.attention.in_proj_bias", {3 * D});
    VisionLinear* parts[3] = {&h.q, &h.k, &h.v};
    for (int i = 0; i < 3; ++i) {
      parts[i]->w.assign(in_w.begin() + i * D * D, in_w.begin() + (i + 1) * D * D);
      parts[i]->b.assign(in_b.begin() + i * D, in_b.begin() + (i + 1) * D);
      parts[i]->out = D, parts[i]->in = D;
    }
    h.o = b.linear("head.attention.out_proj", D, D);
    h.ln = b.norm("head.layernorm", D);
    h.fc1 = b.linear("head.mlp.fc1", c.hidden, D);
    h.fc2 = b.linear("head.mlp.fc2", D, c.hidden);
  }
}

// OpenCLIP's VisionTransformer: q, k and v fused in in_proj, the projection
// stored as [dim, proj] (x @ proj).
void bind_openclip(const Binder& b, const VisionConfig& c, VisionWeights& w) {
  const int64_t D = c.dim, G = c.grid();
  w.patch = b.linear("visual.conv1", D, int64_t(c.channels) * c.patch_size * c.patch_size, false);
  w.cls = b.floats("visual.class_embedding", {D});
  w.pos_prefix = 1;
  w.pos = b.floats("visual.positional_embedding", {G * G + 1, D});
  w.pre = b.norm("visual.ln_pre", D);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "visual.transformer.resblocks." + std::to_string(l) + ".";
    VisionLayer L;
    L.ln1 = b.norm(p + "ln_1", D);
    const std::vector<float> in_w = b.floats(p + "attn.in_proj_weight", {3 * D, D});
    const std::vector<float> in_b = b.floats(p + "attn.in_proj_bias", {3 * D});
    VisionLinear* parts[3] = {&L.q, &L.k, &L.v};
    for (int i = 0; i < 3; ++i) {
      parts[i]->w.assign(in_w.begin() + i * D * D, in_w.begin() + (i + 1) * D * D);
      parts[i]->b.assign(in_b.begin() + i * D, in_b.begin() + (i + 1) * D);
      parts[i]->out = D, parts[i]->in = D;
    }
    L.o = b.linear(p + "attn.out_proj", D, D);
    L.ln2 = b.norm(p + "ln_2", D);
    L.fc1 = b.linear(p + "mlp.c_fc", c.hidden, D);
    L.fc2 = b.linear(p + "mlp.c_proj", D, c.hidden);
    w.layers.push_back(std::move(L));
  }
  w.final = b.norm("visual.ln_post", D);
  const std::vector<float> proj = b.floats("visual.proj", {D, c.proj_dim}, true);
  if (!proj.empty()) {
    w.proj.out = c.proj_dim, w.proj.in = D;
    w.proj.w.resize(proj.size());
    for (int64_t i = 0; i < D; ++i)
      for (int64_t o = 0; o < c.proj_dim; ++o) w.proj.w[size_t(o * D + i)] = proj[size_t(i * c.proj_dim + o)];
  }
}

}  // namespace

VisionWeights bind_vision_weights(const TensorFile& file, const VisionConfig& c) {
  VisionWeights w;
  if (c.arch == VisionArch::Vit || c.arch == VisionArch::Dinov2) {
    const std::string prefix = find_prefix(file, {"", "vit.", "dinov2.", "model."},
                                           "embeddings.patch_embeddings.projection.weight");
    bind_vit_family(Binder(file, prefix, w.n_params), c, w);
  } else if (c.arch == VisionArch::Clip && file.contains("visual.transformer.resblocks.0.ln_1.weight")) {
    bind_openclip(Binder(file, "", w.n_params), c, w);
  } else {
    const std::string prefix = find_prefix(file, {"vision_model.", "", "model.vision_model."},
                                           "embeddings.patch_embedding.weight");
    bind_clip_family(Binder(file, prefix, w.n_params), c, w);
  }
  return w;
}

}  // namespace sinklab
