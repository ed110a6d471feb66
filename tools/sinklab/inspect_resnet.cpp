// `sinklab inspect -m CLIP_RESNET --image FILE`: CLIP's ModifiedResNet on one
// image (CLIP's preprocessing), the attention pool's maps per head over the
// image and the neuron x head decomposition of the embedding, with its top
// pairs in the summary, report.json and report.html.
#include <cmath>
#include <cstdio>
#include <numeric>

#include <nlohmann/json.hpp>

#include "inspect_image.h"

namespace sinklab::cli {

int run_resnet_inspect(const ImageInspectArgs& a, const ImageInspectRun& run, const std::string& model_path) {
  const auto model = ClipResNet::load(model_path);
  const ClipResNetConfig& c = model->config();
  VisionConfig as_clip;  // CLIP's processor for the preprocessing defaults
  as_clip.arch = VisionArch::Clip;
  as_clip.image_size = c.image_size;
  const PreprocessedImage img = preprocess_image(load_image(a.image), load_preprocess(model_path, as_clip));
  const ClipResNetOutput out = model->forward(img.pixels.data(), img.height, img.width);
  const AttnPoolDecomposition d = model->decompose(out, a.top_k);
  double err = 0, scale = 0;
  for (size_t e = 0; e < out.pooled.size(); ++e) {
    const double total = d.neuron_head_sum[e] + d.position_term[e] + d.value_bias_term[e] + d.output_bias[e];
    err = std::max(err, std::abs(total - double(out.pooled[e])));
    scale = std::max(scale, std::abs(double(out.pooled[e])));
  }
  nlohmann::json j;
  j["format"] = "sinklab-vision-inspect";
  j["model"] = {{"path", model_path}, {"arch", "clip_resnet"}, {"model_type", "clip_resnet"}, {"blocks", c.layers},
                {"width", c.width}, {"heads", c.heads}, {"embed_dim", c.embed_dim}, {"image_size", c.image_size}};
  j["image"] = a.image;
  j["grid"] = {out.grid_h, out.grid_w};
  j["tokens"] = 1 + out.grid_h * out.grid_w;
  j["n_prefix"] = 1;  // the mean token
  j["layers"] = nlohmann::json::array();
  j["threshold_rule"] = "Attention pool: the mean feature plus position embeddings queries every position.";
  nlohmann::json heads = nlohmann::json::array();
  const size_t T = size_t(1 + out.grid_h * out.grid_w);
  for (int h = 0; h < c.heads; ++h)
    heads.push_back(std::vector<float>(out.attn.begin() + std::ptrdiff_t(h * T), out.attn.begin() + std::ptrdiff_t((h + 1) * T)));
  nlohmann::json top = nlohmann::json::array();
  for (const NeuronHeadPair& p : d.top)
    top.push_back({{"neuron", p.neuron}, {"head", p.head}, {"norm", p.norm}, {"share", p.share}});
  j["decomposition"] = {{"head_attention", heads}, {"top", top}, {"sum_error", scale > 0 ? err / scale : 0.0},
                        {"position_term_norm", std::sqrt(std::inner_product(d.position_term.begin(), d.position_term.end(), d.position_term.begin(), 0.0))}};
  std::string text;
  char line[200];
  std::snprintf(line, sizeof line, "model:      %s (CLIP ModifiedResNet, width %d, %d heads, embedding %d)\n",
                model_path.c_str(), c.width, c.heads, c.embed_dim);
  text += line;
  std::snprintf(line, sizeof line, "decomposition: terms sum to the embedding within %.2e (relative); top pairs:\n",
                scale > 0 ? err / scale : 0.0);
  text += line;
  for (const NeuronHeadPair& p : d.top) {
    std::snprintf(line, sizeof line, "  neuron %5d head %3d  ||term|| %.4g  share %+.4f\n", p.neuron, p.head, p.norm, p.share);
    text += line;
  }
  write_vision_report(run, j, png_data_uri(img.shown), text);
  return 0;
}

}  // namespace sinklab::cli
