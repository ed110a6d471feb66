// Hugging Face image processors (ViT, CLIP, Bit for DINOv2, Siglip) from
// preprocessor_config.json, and their pipeline: resize (PIL, resample.cpp),
// center crop with zero padding, rescale and normalise in the same float
// precisions as transformers' numpy code.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sinklab/json_text.h"
#include "sinklab/vision.h"

namespace sinklab {

namespace {

using nlohmann::json;

constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
constexpr float kImagenetMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kImagenetStd[3] = {0.229f, 0.224f, 0.225f};

void set3(float* dst, const float* src) { std::copy(src, src + 3, dst); }

// The class defaults of the processor `type` names.
ImagePreprocess class_defaults(const std::string& type) {
  ImagePreprocess p;
  if (type.rfind("CLIP", 0) == 0 || type.rfind("Bit", 0) == 0) {
    p.shortest_edge = 224;
    p.center_crop = true;
    set3(p.mean, kClipMean);
    set3(p.std, kClipStd);
  } else if (type.rfind("ViT", 0) == 0) {
    p.resample = Resample::Bilinear;
  }
  return p;
}

int positive(const json& v, const std::string& what, const std::string& source) {
  check(v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() <= kMaxImageSide,
        [&] { return source + ": " + what + " should be an integer in 1.." + std::to_string(kMaxImageSide); });
  return int(v.get<int64_t>());
}

void read_size(const json& v, ImagePreprocess& p, bool square_int, const std::string& source) {
  if (v.is_number()) {
    if (square_int) p.height = p.width = positive(v, "size", source), p.shortest_edge = 0;
    else p.shortest_edge = positive(v, "size", source);
    return;
  }
  check(v.is_object(), source + ": size should be an integer or an object");
  if (v.contains("shortest_edge")) {
    check(!v.contains("longest_edge"), source + ": size with longest_edge is not supported");
    p.shortest_edge = positive(v["shortest_edge"], "size.shortest_edge", source);
    return;
  }
  check(v.contains("height") && v.contains("width"),
        source + ": size should have shortest_edge, or height and width");
  p.height = positive(v["height"], "size.height", source);
  p.width = positive(v["width"], "size.width", source);
  p.shortest_edge = 0;
}

void read_triple(const json& j, const char* key, float* out, const std::string& source) {
  if (!j.contains(key)) return;
  const json& v = j[key];
  if (v.is_number()) {
    out[0] = out[1] = out[2] = v.get<float>();
    return;
  }
  check(v.is_array() && v.size() == 3, source + ": " + key + " should be a number or a list of 3 numbers");
  for (size_t i = 0; i < 3; ++i) {
    check(v[i].is_number(), source + ": " + key + " should hold numbers");
    out[i] = v[i].get<float>();
  }
}

bool flag(const json& j, const char* key, bool fallback, const std::string& source) {
  if (!j.contains(key)) return fallback;
  check(j[key].is_boolean(), source + ": " + key + " should be true or false");
  return j[key].get<bool>();
}

}  // namespace

ImagePreprocess parse_preprocessor_config(const nlohmann::json& j, const std::string& source) {
  check(j.is_object(), source + ": preprocessor config should be a JSON object");
  std::string type;
  for (const char* key : {"image_processor_type", "feature_extractor_type"})
    if (type.empty() && j.contains(key) && j[key].is_string()) type = j[key].get<std::string>();
  ImagePreprocess p = class_defaults(type);
  const bool shortest_by_default = p.shortest_edge > 0;
  p.resize = flag(j, "do_resize", p.resize, source);
  if (j.contains("size")) read_size(j["size"], p, !shortest_by_default, source);
  if (j.contains("resample")) {
    check(j["resample"].is_number_integer(), source + ": resample should be an integer");
    const int64_t r = j["resample"].get<int64_t>();
    check(r >= 1 && r <= 5, [&] {
      return source + ": resample " + std::to_string(r) +
             " is not supported (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)";
    });
    p.resample = Resample(int(r));
  }
  p.center_crop = flag(j, "do_center_crop", p.center_crop, source);
  if (j.contains("crop_size")) {
    const json& c = j["crop_size"];
    if (c.is_number()) {
      p.crop_height = p.crop_width = positive(c, "crop_size", source);
    } else {
      check(c.is_object() && c.contains("height") && c.contains("width"),
            source + ": crop_size should be an integer or have height and width");
      p.crop_height = positive(c["height"], "crop_size.height", source);
      p.crop_width = positive(c["width"], "crop_size.width", source);
    }
  }
  p.rescale = flag(j, "do_rescale", p.rescale, source);
  if (j.contains("rescale_factor")) {
    check(j["rescale_factor"].is_number() && j["rescale_factor"].get<double>() > 0,
          source + ": rescale_factor should be a positive number");
    p.rescale_factor = j["rescale_factor"].get<double>();
  }
  p.normalize = flag(j, "do_normalize", p.normalize, source);
  read_triple(j, "image_mean", p.mean, source);
  read_triple(j, "image_std", p.std, source);
  for (float s : p.std) check(s != 0.f && std::isfinite(s), source + ": image_std should be finite and non-zero");
  return p;
}

ImagePreprocess default_preprocess(const VisionConfig& c) {
  ImagePreprocess p;
  p.height = p.width = c.image_size;
  if (c.arch == VisionArch::Vit) p.resample = Resample::Bilinear;
  if (c.arch == VisionArch::Clip) {
    p.shortest_edge = c.image_size;
    p.center_crop = true;
    p.crop_height = p.crop_width = c.image_size;
    set3(p.mean, kClipMean);
    set3(p.std, kClipStd);
  }
  if (c.arch == VisionArch::Dinov2) {
    set3(p.mean, kImagenetMean);
    set3(p.std, kImagenetStd);
  }
  return p;
}

ImagePreprocess load_preprocess(const std::string& model_path, const VisionConfig& config) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
  const fs::path file = dir / "preprocessor_config.json";
  if (!fs::exists(file)) return default_preprocess(config);
  check_regular_file(file.string(), "preprocessor config");
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_preprocessor_config(parse_json_text(text, file.string()), file.string());
}

namespace {

// transformers' get_resize_output_image_size(default_to_square=False): the
// short side becomes `edge`, the long side int(edge * long / short).
void shortest_edge_size(int h, int w, int edge, int& out_h, int& out_w) {
  const int shorter = std::min(h, w), longer = std::max(h, w);
  const int new_long = int(double(int64_t(edge) * longer) / double(shorter));
  out_h = h <= w ? edge : new_long;
  out_w = h <= w ? new_long : edge;
}

int floor_div2(int x) { return x >= 0 ? x / 2 : -((-x + 1) / 2); }

// transformers' center_crop: the window at ((H - h) // 2, (W - w) // 2); where
// it reaches outside a smaller image, zeros (the image padded centred, the
// extra pixel after it).
Image center_crop(const Image& in, int ch, int cw) {
  const int top = floor_div2(in.height - ch), left = floor_div2(in.width - cw);
  Image out;
  out.height = ch, out.width = cw;
  out.rgb.assign(size_t(ch) * size_t(cw) * 3, 0);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x) {
      const int sy = top + y, sx = left + x;
      if (sy < 0 || sy >= in.height || sx < 0 || sx >= in.width) continue;
      std::copy_n(&in.rgb[(size_t(sy) * size_t(in.width) + size_t(sx)) * 3], 3,
                  &out.rgb[(size_t(y) * size_t(cw) + size_t(x)) * 3]);
    }
  return out;
}

}  // namespace

PreprocessedImage preprocess_image(const Image& image, const ImagePreprocess& p) {
  check(image.width > 0 && image.height > 0, "preprocess: the image is empty");
  Image img = image;
  if (p.resize) {
    int h = p.height, w = p.width;
    if (p.shortest_edge > 0) shortest_edge_size(img.height, img.width, p.shortest_edge, h, w);
    img = resize_image(img, w, h, p.resample);
  }
  if (p.center_crop) img = center_crop(img, p.crop_height, p.crop_width);
  PreprocessedImage out;
  out.height = img.height, out.width = img.width;
  out.shown = img;
  const size_t plane = size_t(img.height) * size_t(img.width);
  out.pixels.resize(plane * 3);
  for (size_t i = 0; i < plane; ++i)
    for (size_t c = 0; c < 3; ++c) {
      const uint8_t v = img.rgb[i * 3 + c];
      float x = p.rescale ? float(double(v) * p.rescale_factor) : float(v);
      if (p.normalize) x = (x - p.mean[c]) / p.std[c];
      out.pixels[c * plane + i] = x;
    }
  return out;
}

}  // namespace sinklab
