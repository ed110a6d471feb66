// `sinklab inspect --image FILE`: the vision path of inspect (a ViT, DINOv2,
// CLIP or SigLIP vision model on one image).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "output_guard.h"
#include "sinklab/vision.h"

namespace sinklab::cli {

struct ImageInspectArgs {
  std::string image;
  double norm_threshold = 0;
  double norm_factor = 3.0;
  // Test-time registers: the finder's options, or the neurons given as "L:N,L:N".
  bool test_time_register = false;
  std::string register_neurons;
  int detection_layer = -1, highest_layer = -1, top_k = 10;
  double outlier_threshold = 0;
  // RegCache and fake quantization error table.
  bool quant = false;
  int regcache_layer = -1, regcache_tokens = 4;
};

// --image, --norm-threshold, --norm-factor and the test-time register flags.
void add_image_inspect_flags(CLI::App& sub, ImageInspectArgs& args);

struct ImageInspectRun {
  std::string model_path;  // as given to -m
  std::string out;         // report folder
  bool out_given = false;
  std::string json;        // "" or a file or "-"
  int threads = 0;
  OutputGuard* guard = nullptr;
};

int run_image_inspect(const ImageInspectArgs& args, const ImageInspectRun& run);

// Shared by the two vision paths (inspect_image.cpp, inspect_resnet.cpp).
std::string png_data_uri(const sinklab::Image& image);
void write_vision_report(const ImageInspectRun& run, const nlohmann::json& report, const std::string& image_uri,
                         const std::string& summary);
// CLIP ModifiedResNet models (config.json model_type "clip_resnet"): the
// attention pool's maps and the neuron x head decomposition of the embedding.
bool is_clip_resnet(const std::string& model_path);
int run_resnet_inspect(const ImageInspectArgs& args, const ImageInspectRun& run, const std::string& model_path);

}  // namespace sinklab::cli
