// `sinklab inspect -m VISION_MODEL --image FILE`: decodes and preprocesses the
// image as the model's processor does, runs one forward with the vision
// inspection's taps, prints a per-layer summary and writes OUT/report.json and
// OUT/report.html (the attention maps drawn over the image).
#include "inspect_image.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "bench_harness.h"
#include "input_files.h"
#include "model_args.h"
#include "sinklab/json_text.h"
#include "sinklab/report.h"
#include "sinklab/vision.h"

namespace sinklab::cli {

namespace {

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b = uint32_t(bytes[i]) << 16 | (i + 1 < bytes.size() ? uint32_t(bytes[i + 1]) << 8 : 0) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += abc[(b >> 18) & 63];
    out += abc[(b >> 12) & 63];
    out += i + 1 < bytes.size() ? abc[(b >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? abc[b & 63] : '=';
  }
  return out;
}

// Whether `path` is a report.json of a vision inspection (the default folder's
// own earlier report may be replaced without --force).
bool is_vision_report(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > (int64_t(1) << 30))
    return false;
  std::ifstream in(path, std::ios::binary);
  try {
    const nlohmann::json j = parse_json_text(
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), path.string());
    return j.is_object() && j.value("format", std::string()) == "sinklab-vision-inspect";
  } catch (const Error&) {
    return false;
  }
}

std::string token_name(const VisionInspection& r, bool cls, int t) {
  const int patches = r.grid_h * r.grid_w;
  if (cls && t == 0) return "cls";
  if (t < r.n_prefix) return std::string("reg") + std::to_string(t - (cls ? 1 : 0));
  if (t < r.n_prefix + patches) {
    const int p = t - r.n_prefix;
    return std::string("(") + std::to_string(p / r.grid_w) + "," + std::to_string(p % r.grid_w) + ")";
  }
  return std::string("ttr") + std::to_string(t - r.n_prefix - patches);
}

std::string summary(const VisionModel& model, const VisionInspection& r, const std::string& image) {
  const VisionConfig& c = model.config();
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "model:      %s (%s, %d layers, dim %d, %d registers)\nimage:      %s -> %dx%d patches\n",
                model.path().c_str(), c.model_type.c_str(), c.n_layers, c.dim, c.n_registers, image.c_str(), r.grid_h,
                r.grid_w);
  out += line;
  for (int l = 0; l < r.n_layers; ++l) {
    const float* n = r.norms.data() + int64_t(l) * r.tokens;
    std::string tokens;
    for (size_t i = 0; i < r.high_norm[size_t(l)].size() && i < 8; ++i) {
      tokens += ' ';
      tokens += token_name(r, c.cls_token, r.high_norm[size_t(l)][i]);
    }
    if (r.high_norm[size_t(l)].size() > 8) tokens += " ...";
    std::snprintf(line, sizeof line, "  layer %2d: median patch norm %8.2f, max %8.2f, high-norm %zu%s\n", l,
                  r.median[size_t(l)], *std::max_element(n, n + r.tokens), r.high_norm[size_t(l)].size(),
                  tokens.c_str());
    out += line;
  }
  return out;
}

}  // namespace

void add_image_inspect_flags(CLI::App& sub, ImageInspectArgs& a) {
  sub.add_option("--image", a.image,
                 "Inspect a vision model (HF vit, dinov2, clip, siglip) on this image (PNG, JPEG, BMP, GIF, ...): "
                 "per-layer token norms, high-norm tokens and CLS -> patch attention drawn over the image");
  sub.add_option("--norm-threshold", a.norm_threshold,
                 "--image: a token is high-norm when ||blk.L.resid_out|| exceeds this (default: --norm-factor times "
                 "the layer's median patch norm)")
      ->check(CLI::Range(0.0, 1e30));
  sub.add_option("--norm-factor", a.norm_factor,
                 "--image: without --norm-threshold, high-norm means above this multiple of the layer's median "
                 "patch norm (default 3)")
      ->check(CLI::Range(1e-6, 1e6));
  sub.add_flag("--test-time-register", a.test_time_register,
               "--image: find the register neurons on the image (the outlier tokens at --detection-layer, the top-k "
               "neurons by mean |activation| over them in layers 0..--highest-layer), then inspect again with one "
               "appended test-time register holding their activations; both runs are in the report");
  sub.add_option("--register-neurons", a.register_neurons,
                 "--image: use these register neurons (\"LAYER:NEURON,...\") instead of finding them; implies "
                 "--test-time-register");
  sub.add_option("--detection-layer", a.detection_layer, "Register-neuron finder: detection layer (default: the last)")
      ->check(CLI::Range(-1, 4095));
  sub.add_option("--highest-layer", a.highest_layer,
                 "Register-neuron finder: highest layer searched (default: the detection layer)")
      ->check(CLI::Range(-1, 4095));
  sub.add_option("--top-k", a.top_k, "Register neurons kept (finder), or the neuron x head pairs listed for a CLIP ResNet (default 10)")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--outlier-threshold", a.outlier_threshold,
                 "Register-neuron finder: outlier tokens have a norm above this at the detection layer (default: "
                 "--norm-factor times the median patch norm)")
      ->check(CLI::Range(0.0, 1e30));
  sub.add_flag("--quant", a.quant,
               "--image: simulated activation quantization (W8A8 and W4A8, per tensor and per token) without and "
               "with a RegCache prefix: the error of the pooled embedding and of each layer's output");
  sub.add_option("--regcache-layer", a.regcache_layer,
                 "--quant: first layer that sees the RegCache prefix; the tokens that are high-norm before it are "
                 "deleted (default: the layer after the first one with high-norm tokens, else the middle layer)")
      ->check(CLI::Range(-1, 4095));
  sub.add_option("--regcache-tokens", a.regcache_tokens,
                 "--quant: register tokens in the prefix: the highest-norm tokens of a blank (mean-colour) image "
                 "(default 4)")
      ->check(CLI::Range(1, 1024));
}

namespace {

std::vector<RegisterNeuron> parse_neurons(const std::string& spec) {
  std::vector<RegisterNeuron> out;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t end = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, end - at);
    const size_t colon = item.find(':');
    RegisterNeuron r;
    try {
      check(colon != std::string::npos, "");
      size_t used = 0;
      r.layer = std::stoi(item.substr(0, colon), &used);
      check(used == colon, "");
      const std::string n = item.substr(colon + 1);
      r.neuron = std::stoi(n, &used);
      check(used == n.size() && !n.empty(), "");
    } catch (const std::exception&) {
      throw Error(std::string("--register-neurons: '") + item + "' is not LAYER:NEURON (e.g. 5:1021,5:77)");
    }
    out.push_back(r);
    at = end + 1;
  }
  return out;
}

nlohmann::json neurons_json(const std::vector<RegisterNeuron>& neurons) {
  nlohmann::json a = nlohmann::json::array();
  for (const RegisterNeuron& r : neurons) a.push_back({{"layer", r.layer}, {"neuron", r.neuron}, {"score", r.score}});
  return a;
}

// The finder (or the given neurons) and the second inspection with one test-time register.
void add_test_time_register_run(const VisionModel& model, const PreprocessedImage& img, const ImageInspectArgs& a,
                                const VisionInspectOptions& base, nlohmann::json& j, std::string& text) {
  std::vector<RegisterNeuron> neurons;
  nlohmann::json info;
  if (!a.register_neurons.empty()) {
    neurons = parse_neurons(a.register_neurons);
    info["given"] = a.register_neurons;
  } else {
    RegisterNeuronOptions o;
    o.detection_layer = a.detection_layer, o.highest_layer = a.highest_layer, o.top_k = a.top_k;
    o.outlier_threshold = a.outlier_threshold, o.norm_factor = a.norm_factor;
    const RegisterNeuronResult r = find_register_neurons(model, {{img.pixels.data(), img.height, img.width}}, o);
    neurons = r.neurons;
    info = {{"detection_layer", o.detection_layer < 0 ? model.config().n_layers - 1 : o.detection_layer},
            {"highest_layer", o.highest_layer}, {"top_k", o.top_k}, {"outlier_tokens", r.outlier_tokens},
            {"outlier_threshold", r.outlier_thresholds.empty() ? 0.0 : r.outlier_thresholds[0]}};
    if (o.highest_layer < 0) info["highest_layer"] = info["detection_layer"];
  }
  info["neurons"] = neurons_json(neurons);
  j["register_neurons"] = info;
  char line[160];
  std::snprintf(line, sizeof line, "register neurons (%zu):", neurons.size());
  text += line;
  for (const RegisterNeuron& r : neurons) {
    std::snprintf(line, sizeof line, " %d:%d (%.3g)", r.layer, r.neuron, r.score);
    text += line;
  }
  text += neurons.empty() ? " none (no outlier tokens at the detection layer)\n" : "\n";
  Taps taps;
  add_test_time_register_taps(taps, model.config(), neurons, 1);
  VisionInspectOptions opts = base;
  opts.forward.taps = &taps;
  opts.forward.test_time_registers = 1;
  const VisionInspection after = inspect_vision(model, img.pixels.data(), img.height, img.width, opts);
  nlohmann::json aj = vision_inspection_json(model, after, j["image"].get<std::string>());
  aj["label"] = std::string("with one test-time register (") + std::to_string(neurons.size()) + " register neurons moved to it)";
  j["after"] = std::move(aj);
  text += std::string("with a test-time register:\n");
  text += summary(model, after, j["image"].get<std::string>());
}

// The quantization error table (RegCache after the first high-norm layer by default).
void add_quant_table(const VisionModel& model, const PreprocessedImage& img, const ImageInspectArgs& a,
                     const VisionInspection& r, nlohmann::json& j, std::string& text) {
  const int L = model.config().n_layers;
  RegCacheOptions rc;
  rc.n_tokens = a.regcache_tokens;
  rc.first_layer = a.regcache_layer;
  for (int l = 0; l < L && rc.first_layer < 0; ++l)
    if (!r.high_norm[size_t(l)].empty()) rc.first_layer = std::min(l + 1, L - 1);
  if (rc.first_layer < 0) rc.first_layer = L / 2;
  check(rc.first_layer < L, [&] { return "--regcache-layer: layer " + std::to_string(rc.first_layer) + " is out of range (the model has layers 0.." + std::to_string(L - 1) + ")"; });
  if (rc.first_layer > 0) rc.delete_threshold = r.threshold[size_t(rc.first_layer - 1)];
  const std::vector<QuantSetting> settings = {{8, 8, false}, {8, 8, true}, {4, 8, false}, {4, 8, true}};
  const QuantReport q = vision_quant_report(model, img.pixels.data(), img.height, img.width, settings, rc);
  j["quant"] = quant_report_json(q);
  char line[200];
  std::snprintf(line, sizeof line, "quantization (RegCache from layer %d: %zu prefix tokens, %zu tokens deleted; "
                "float32 embedding change %.3g):\n", q.regcache.first_layer, q.prefix_tokens.size(),
                q.deleted_tokens.size(), q.regcache_pooled_change);
  text += line;
  for (size_t i = 0; i + 1 < q.rows.size(); i += 2) {
    const QuantErrors& plain = q.rows[i];
    const QuantErrors& cached = q.rows[i + 1];
    std::snprintf(line, sizeof line, "  %-18s embedding error %.4f -> %.4f with RegCache; last layer %.4f -> %.4f\n",
                  plain.setting.name().c_str(), plain.pooled_error, cached.pooled_error,
                  plain.layer_errors.back(), cached.layer_errors.back());
    text += line;
  }
}

}  // namespace

std::string png_data_uri(const Image& image) { return "data:image/png;base64," + base64(encode_png(image)); }

void write_vision_report(const ImageInspectRun& run, const nlohmann::json& j, const std::string& image_uri,
                         const std::string& text) {
  nlohmann::json page = j;
  page["image_png"] = image_uri;
  std::filesystem::create_directories(run.out);
  const std::filesystem::path dir(run.out);
  const std::string doc = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_output_text((dir / "report.json").string(), doc, "--out");
  write_output_text((dir / "report.html").string(), vision_inspect_html(page), "--out");
  if (!run.json.empty()) write_output_text(run.json, doc, "--json");
  if (run.json != kStdoutPath) {
    std::fputs(text.c_str(), stdout);
    std::printf("wrote:      %s, %s\n", (dir / "report.json").string().c_str(), (dir / "report.html").string().c_str());
  }
}

bool is_clip_resnet(const std::string& model_path) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
  const fs::path cfg = dir / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(cfg, ec) || fs::file_size(cfg, ec) > (uintmax_t(1) << 24)) return false;
  std::ifstream in(cfg, std::ios::binary);
  try {
    const nlohmann::json j = parse_json_text(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), cfg.string());
    return j.is_object() && j.value("model_type", std::string()) == "clip_resnet";
  } catch (const Error&) {
    return false;  // the loader reports a broken config.json
  }
}

int run_image_inspect(const ImageInspectArgs& a, const ImageInspectRun& run) {
  check_input_path(a.image, "--image");
  const std::string model_path = resolve_model_path(run.model_path);
  for (const std::string& in : {model_path, a.image}) run.guard->input(in);
  if (!run.out_given && is_vision_report(std::filesystem::path(run.out) / "report.json")) run.guard->set_force(true);
  run.guard->check_folder_files(run.out, {"report.json", "report.html"}, "--out");
  if (!run.json.empty()) run.guard->check_file(run.json, "--json");
  bench::set_threads(run.threads);
  if (is_clip_resnet(model_path)) return run_resnet_inspect(a, run, model_path);
  const auto model = VisionModel::load(model_path);
  const ImagePreprocess prep = load_preprocess(model_path, model->config());
  const PreprocessedImage img = preprocess_image(load_image(a.image), prep);
  VisionInspectOptions opts;
  opts.norm_threshold = a.norm_threshold;
  opts.norm_factor = a.norm_factor;
  const VisionInspection r = inspect_vision(*model, img.pixels.data(), img.height, img.width, opts);
  nlohmann::json j = vision_inspection_json(*model, r, a.image);
  std::string text = summary(*model, r, a.image);
  if (a.test_time_register || !a.register_neurons.empty()) add_test_time_register_run(*model, img, a, opts, j, text);
  if (a.quant) add_quant_table(*model, img, a, r, j, text);
  char rule[200];
  if (a.norm_threshold > 0) std::snprintf(rule, sizeof rule, "High-norm tokens: ||blk.L.resid_out|| > %g.", a.norm_threshold);
  else std::snprintf(rule, sizeof rule, "High-norm tokens: ||blk.L.resid_out|| > %g x the layer's median patch norm.", a.norm_factor);
  j["threshold_rule"] = rule;
  write_vision_report(run, j, png_data_uri(img.shown), text);
  return 0;
}

}  // namespace sinklab::cli
