// config.json of the vision architectures, with Hugging Face's class defaults
// for the keys a saved config leaves out (save_pretrained writes only the
// values that differ from them).
#include <cmath>

#include <nlohmann/json.hpp>

#include "sinklab/vision.h"

namespace sinklab {

const char* vision_arch_name(VisionArch a) {
  switch (a) {
    case VisionArch::Vit: return "vit";
    case VisionArch::Dinov2: return "dinov2";
    case VisionArch::Clip: return "clip";
    case VisionArch::Siglip: return "siglip";
  }
  return "?";
}

namespace {

using nlohmann::json;

struct Reader {
  const json& j;
  const std::string& source;

  int integer(const char* key, int fallback, int lo = 1, int hi = 1 << 20) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    const json& v = j[key];
    check(v.is_number_integer(), [&] { return source + ": config key '" + key + "' should be an integer"; });
    const int64_t x = v.get<int64_t>();
    check(x >= lo && x <= hi, [&] {
      return source + ": config key '" + key + "' is " + std::to_string(x) + " (expected " + std::to_string(lo) +
             ".." + std::to_string(hi) + ")";
    });
    return int(x);
  }
  double number(const char* key, double fallback) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    check(j[key].is_number(), [&] { return source + ": config key '" + key + "' should be a number"; });
    return j[key].get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    check(j[key].is_boolean(), [&] { return source + ": config key '" + key + "' should be true or false"; });
    return j[key].get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    check(j[key].is_string(), [&] { return source + ": config key '" + key + "' should be a string"; });
    return j[key].get<std::string>();
  }
};

VisionActivation activation(const std::string& name, const std::string& source) {
  if (name == "gelu") return VisionActivation::Gelu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast") return VisionActivation::GeluTanh;
  if (name == "quick_gelu") return VisionActivation::QuickGelu;
  throw Error(source + ": hidden_act '" + name + "' is not supported (gelu, gelu_pytorch_tanh, quick_gelu)");
}

// Defaults of ViTConfig, Dinov2Config, CLIPVisionConfig, SiglipVisionConfig.
struct Defaults {
  int dim, layers, heads, hidden, image, patch;
  const char* act;
  double eps;
};

Defaults defaults_of(VisionArch a) {
  switch (a) {
    case VisionArch::Vit: return {768, 12, 12, 3072, 224, 16, "gelu", 1e-12};
    case VisionArch::Dinov2: return {768, 12, 12, 3072, 224, 14, "gelu", 1e-6};
    case VisionArch::Clip: return {768, 12, 12, 3072, 224, 32, "quick_gelu", 1e-5};
    case VisionArch::Siglip: return {768, 12, 12, 3072, 224, 16, "gelu_pytorch_tanh", 1e-6};
  }
  return {};
}

// The vision part of the document and its architecture.
const json& vision_part(const json& config, const std::string& source, VisionArch& arch, std::string& type) {
  check(config.is_object(), source + ": config.json should be a JSON object");
  check(config.contains("model_type") && config["model_type"].is_string(),
        source + ": config.json has no model_type (expected vit, dinov2, dinov2_with_registers, "
                 "clip_vision_model, clip, siglip_vision_model or siglip)");
  type = config["model_type"].get<std::string>();
  if (type == "vit") arch = VisionArch::Vit;
  else if (type == "dinov2" || type == "dinov2_with_registers") arch = VisionArch::Dinov2;
  else if (type == "clip_vision_model" || type == "clip") arch = VisionArch::Clip;
  else if (type == "siglip_vision_model" || type == "siglip") arch = VisionArch::Siglip;
  else
    throw Error(source + ": model_type '" + type + "' is not a vision architecture (vit, dinov2, " +
                "dinov2_with_registers, clip_vision_model, clip, siglip_vision_model, siglip)");
  if (type != "clip" && type != "siglip") return config;
  check(config.contains("vision_config") && config["vision_config"].is_object(),
        source + ": a '" + type + "' config.json needs a vision_config object");
  return config["vision_config"];
}

}  // namespace

VisionConfig parse_vision_config(const nlohmann::json& config, const std::string& source) {
  VisionConfig c;
  const json& vj = vision_part(config, source, c.arch, c.model_type);
  const Reader r{vj, source};
  const Defaults d = defaults_of(c.arch);
  c.dim = r.integer("hidden_size", d.dim);
  c.n_layers = r.integer("num_hidden_layers", d.layers, 1, 4096);
  c.n_heads = r.integer("num_attention_heads", d.heads, 1, 4096);
  c.channels = r.integer("num_channels", 3, 1, 64);
  c.image_size = r.integer("image_size", d.image);
  c.patch_size = r.integer("patch_size", d.patch, 1, 4096);
  c.norm_eps = float(r.number("layer_norm_eps", d.eps));
  c.act = activation(r.text("hidden_act", d.act), source);
  if (c.arch == VisionArch::Dinov2) {
    const double ratio = r.number("mlp_ratio", 4.0);
    check(ratio > 0 && ratio < 64, source + ": mlp_ratio should be in (0, 64)");
    c.hidden = int(double(c.dim) * ratio);
    c.layerscale = true;
    c.n_registers = c.model_type == "dinov2_with_registers" ? r.integer("num_register_tokens", 4, 0, 4096) : 0;
    check(!r.boolean("use_swiglu_ffn", false), source + ": DINOv2 with use_swiglu_ffn is not supported");
  } else {
    c.hidden = r.integer("intermediate_size", d.hidden);
  }
  c.cls_token = c.arch != VisionArch::Siglip;
  c.pre_norm = c.arch == VisionArch::Clip;
  if (c.arch == VisionArch::Clip) c.proj_dim = r.integer("projection_dim", 512);
  if (c.model_type == "clip" && config.contains("projection_dim"))
    c.proj_dim = Reader{config, source}.integer("projection_dim", c.proj_dim);
  check(c.dim % c.n_heads == 0, [&] {
    return source + ": hidden_size " + std::to_string(c.dim) + " is not a multiple of num_attention_heads " +
           std::to_string(c.n_heads);
  });
  check(c.dim / c.n_heads <= 256, source + ": head size above 256 is not supported");
  check(c.image_size >= c.patch_size, [&] {
    return source + ": image_size " + std::to_string(c.image_size) + " is smaller than patch_size " +
           std::to_string(c.patch_size);
  });
  return c;
}

VisionConfig parse_openclip_config(const nlohmann::json& j, const std::string& source) {
  check(j.is_object() && j.contains("model_cfg") && j["model_cfg"].is_object(),
        source + ": open_clip_config.json should hold a model_cfg object");
  const json& m = j["model_cfg"];
  check(m.contains("vision_cfg") && m["vision_cfg"].is_object(), source + ": model_cfg has no vision_cfg object");
  const json& v = m["vision_cfg"];
  check(!(v.contains("layers") && v["layers"].is_array()),
        source + ": a ResNet image tower (vision_cfg.layers is a list): write a clip_resnet config.json instead");
  const Reader r{v, source}, top{m, source};
  VisionConfig c;
  c.arch = VisionArch::Clip;
  c.model_type = "open_clip";
  c.dim = r.integer("width", 768);
  c.n_layers = r.integer("layers", 12, 1, 4096);
  const int head_width = r.integer("head_width", 64, 1, 4096);
  check(c.dim % head_width == 0, source + ": vision_cfg.width should be a multiple of head_width");
  c.n_heads = c.dim / head_width;
  const double ratio = r.number("mlp_ratio", 4.0);
  check(ratio > 0 && ratio < 64, source + ": vision_cfg.mlp_ratio should be in (0, 64)");
  c.hidden = int(std::lround(double(c.dim) * ratio));
  c.patch_size = r.integer("patch_size", 16, 1, 4096);
  c.image_size = r.integer("image_size", 224);
  c.act = top.boolean("quick_gelu", false) ? VisionActivation::QuickGelu : VisionActivation::Gelu;
  c.norm_eps = 1e-5f;
  c.pre_norm = true;
  c.proj_dim = top.integer("embed_dim", 512);
  check(c.image_size >= c.patch_size, source + ": vision_cfg.image_size is smaller than patch_size");
  check(c.dim / c.n_heads <= 256, source + ": head size above 256 is not supported");
  return c;
}

}  // namespace sinklab
