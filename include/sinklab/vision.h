// Vision transformers: the encoders of Hugging Face `vit`, `dinov2` (with and
// without registers), `clip_vision_model` (CLIP's vision tower, also inside a
// `clip` checkpoint) and `siglip_vision_model` (also inside `siglip`), loaded
// from safetensors + config.json and run on the library's attention kernels.
//
// A forward turns an image tensor [channels, height, width] (already
// preprocessed: resized, cropped, normalised) into tokens
//   [CLS?] [registers...] [patches in row-major order] [test-time registers...]
// through pre-LN blocks, and fires the same named taps as the text runtime
// (token_embd, blk.L.attn_norm, blk.L.q/k/v, blk.L.attn_probs, blk.L.attn_ctx,
// blk.L.attn_out, blk.L.resid_mid, blk.L.ffn_norm, blk.L.ffn_act, blk.L.ffn_out,
// blk.L.resid_out, output_norm) plus `pre_norm` (CLIP's ln_pre output).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/model.h"  // Taps

namespace sinklab {

enum class VisionArch : uint8_t { Vit, Dinov2, Clip, Siglip };
const char* vision_arch_name(VisionArch a);  // "vit", "dinov2", "clip", "siglip"

enum class VisionActivation : uint8_t { Gelu, GeluTanh, QuickGelu };

struct VisionConfig {
  VisionArch arch = VisionArch::Vit;
  std::string model_type;  // as config.json names it
  int dim = 0, n_layers = 0, n_heads = 0, hidden = 0;
  int channels = 3, image_size = 0, patch_size = 0;
  int n_registers = 0;        // learned register tokens after CLS (DINOv2 with registers)
  bool cls_token = true;      // SigLIP has none
  bool layerscale = false;    // DINOv2: per-channel scales on each branch
  bool pre_norm = false;      // CLIP: LayerNorm on the embeddings before block 0
  float norm_eps = 1e-6f;
  VisionActivation act = VisionActivation::Gelu;
  int proj_dim = 0;           // CLIP visual projection (0 = none in the checkpoint)

  int grid() const { return image_size / patch_size; }  // patches per side at the native size
  int n_prefix() const { return (cls_token ? 1 : 0) + n_registers; }
};

// Reads config.json (a parsed document): the vision_config of a `clip` or
// `siglip` config, or a vision model's own config, with Hugging Face's
// defaults for keys it leaves out. Throws Error naming `source` and the key.
VisionConfig parse_vision_config(const nlohmann::json& config, const std::string& source);
// OpenCLIP's open_clip_config.json (model_cfg.vision_cfg of a ViT tower;
// quick_gelu from model_cfg, the projection size from model_cfg.embed_dim).
VisionConfig parse_openclip_config(const nlohmann::json& config, const std::string& source);

// RegCache: keys and values of register tokens computed once (on another
// image) and prefixed to every layer's attention from `first_layer` on. The
// prefix rows are keys only: they have no query and no residual stream.
struct VisionKvPrefix {
  int first_layer = 0;
  int64_t n = 0;                         // prefix tokens
  std::vector<std::vector<float>> k, v;  // per layer [n, dim] (empty below first_layer)
};

// Tokens removed from the residual stream before block `layer` runs: the
// listed indices (original token numbers) and, when norm_threshold > 0, every
// token whose residual norm exceeds it there. CLS is never removed.
struct VisionTokenDeletion {
  int layer = -1;  // -1: none
  std::vector<int> tokens;
  double norm_threshold = 0;
};

struct VisionForwardOptions {
  const Taps* taps = nullptr;      // read or overwrite intermediate tensors
  int test_time_registers = 0;     // zero tokens appended after the patches (no position embedding)
  const VisionKvPrefix* prefix = nullptr;
  VisionTokenDeletion deletion;
};

struct VisionOutput {
  int64_t tokens = 0, dim = 0;
  std::vector<int32_t> token_ids;  // original index of each output row (rows deleted on the way are gone)
  int grid_h = 0, grid_w = 0;      // patch grid of this image
  int n_prefix = 0;                // CLS + learned registers before the patches
  // As Hugging Face's last_hidden_state: after the final LayerNorm for vit,
  // dinov2 and siglip; the last block's output for clip (whose post_layernorm
  // applies to the pooled token only). [tokens, dim]
  std::vector<float> hidden;
  // pooler_output: vit's pooler (tanh dense of CLS) when the checkpoint has
  // one, else CLS; dinov2 CLS; clip post_layernorm(CLS); siglip the attention-
  // pooling head when present, else the token mean. [dim]
  std::vector<float> pooled;
  std::vector<float> embeds;       // clip: visual_projection(pooled) [proj_dim]; empty otherwise
};

// ------------------------------------------------------------------ images ----
// An 8-bit RGB image, rows top to bottom, [height, width, 3].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes PNG, JPEG, BMP, GIF (first frame), PPM/PGM, TGA, PSD or HDR with stb
// (grey and alpha converted to RGB as PIL's convert("RGB"): alpha dropped).
// Throws Error naming `name` for an empty, truncated, corrupt or unknown file
// and for images above kMaxImageSide pixels on a side or kMaxImagePixels in all.
constexpr int kMaxImageSide = 1 << 15;
constexpr int64_t kMaxImagePixels = int64_t(1) << 27;
Image decode_image(const uint8_t* data, size_t size, const std::string& name);
Image load_image(const std::string& path);

// PIL's resampling filters (the `resample` numbers of preprocessor configs).
enum class Resample : int { Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };
// PIL's Image.resize (8-bit, two passes with 22-bit fixed-point weights,
// horizontal first, each pass rounded to 8 bits), byte for byte.
Image resize_image(const Image& in, int width, int height, Resample filter);

// What a Hugging Face image processor does to an image, from
// preprocessor_config.json: convert to RGB, resize (to a fixed size or so the
// shortest edge has a length, the other edge truncated), center crop, rescale
// (float32 of x * factor in double) and normalise ((x - mean) / std in float32).
struct ImagePreprocess {
  bool resize = true;
  int height = 224, width = 224;  // fixed size (shortest_edge == 0)
  int shortest_edge = 0;          // > 0: resize so the shorter side has this length
  Resample resample = Resample::Bicubic;
  bool center_crop = false;
  int crop_height = 224, crop_width = 224;
  bool rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool normalize = true;
  float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
};

// Parses a preprocessor_config.json document (defaults of the processor class
// it names: ViT, CLIP, Bit (DINOv2), Siglip). Throws Error naming `source`.
ImagePreprocess parse_preprocessor_config(const nlohmann::json& config, const std::string& source);
// What a model's own processor would do when its folder has no
// preprocessor_config.json: resize to image_size square (bicubic) and the
// normalisation of its family.
ImagePreprocess default_preprocess(const VisionConfig& config);
// preprocessor_config.json in `model_dir` (or beside a .safetensors file) when
// present, else default_preprocess.
ImagePreprocess load_preprocess(const std::string& model_path, const VisionConfig& config);

struct PreprocessedImage {
  int height = 0, width = 0;
  std::vector<float> pixels;  // [3, height, width]
  Image shown;                // the 8-bit image after resize and crop (what the pixels encode)
};
PreprocessedImage preprocess_image(const Image& image, const ImagePreprocess& p);
// PNG bytes of an image (stb_image_write), for reports.
std::vector<uint8_t> encode_png(const Image& image);

struct VisionWeights;  // src/vision/weights.h

class VisionModel {
 public:
  // A safetensors file or folder with config.json (Hugging Face names) or
  // open_clip_config.json (OpenCLIP's visual.* names) beside it.
  static std::shared_ptr<const VisionModel> load(const std::string& path);
  ~VisionModel();

  const VisionConfig& config() const { return config_; }
  const VisionWeights& weights() const { return *weights_; }
  const std::string& path() const { return path_; }
  int64_t n_params() const;

  // pixels: [channels, height, width] float32, row-major. height and width are
  // cut down to whole patches (as the strided patch convolution does); the
  // position embeddings are interpolated (bicubic, as Hugging Face) when the
  // grid differs from the checkpoint's.
  VisionOutput forward(const float* pixels, int height, int width, const VisionForwardOptions& opts = {}) const;

  VisionModel(VisionConfig config, std::unique_ptr<VisionWeights> weights, std::string path);

 private:
  VisionConfig config_;
  std::unique_ptr<VisionWeights> weights_;
  std::string path_;
};

// -------------------------------------------------------------- inspection ----
// Per-layer token norms, high-norm tokens and the CLS token's attention over
// the patches, measured through the taps of one forward.
//
// High-norm tokens (Darcet et al., "Vision Transformers Need Registers"): at
// each layer, a token whose block output norm ||blk.L.resid_out|| exceeds the
// threshold: `norm_threshold` when given, else `norm_factor` times the median
// norm of that layer's patch tokens.
struct VisionInspectOptions {
  double norm_threshold = 0;  // > 0: absolute threshold for every layer
  double norm_factor = 3.0;   // else: this multiple of the layer's median patch norm
  VisionForwardOptions forward;  // taps (installed before the probe's own) and test-time registers
};

struct VisionInspection {
  int n_layers = 0, n_heads = 0, grid_h = 0, grid_w = 0, n_prefix = 0, n_extra = 0;
  int64_t tokens = 0;
  std::vector<float> norms;             // [n_layers, tokens]
  std::vector<float> median, threshold;  // [n_layers]: median patch norm, threshold used
  std::vector<std::vector<int>> high_norm;  // per layer: token indices above the threshold
  // Head-mean attention of the CLS token (query 0) on each patch [n_layers, patches]
  // and on the other tokens (CLS, registers, test-time registers) [n_layers, prefix + extra];
  // empty for models without CLS (SigLIP).
  std::vector<float> cls_to_patches, cls_to_others;
  std::vector<float> pooled;
};

VisionInspection inspect_vision(const VisionModel& model, const float* pixels, int height, int width,
                                const VisionInspectOptions& opts = {});
// The inspection as JSON ("format": "sinklab-vision-inspect"), with the model's
// config and `source` (the image file) named.
nlohmann::json vision_inspection_json(const VisionModel& model, const VisionInspection& r, const std::string& source);

// ---------------------------------------------------------------- registers ----
// Register neurons and test-time registers (Jiang et al., "Vision Transformers
// Don't Need Trained Registers"; REFERENCES section 5). At the detection
// layer, outlier tokens are those whose ||blk.D.resid_out|| exceeds the
// threshold (absolute when > 0, else norm_factor times the median patch norm,
// as in inspect_vision); each MLP neuron of the layers 0..highest_layer is
// scored by the mean |blk.L.ffn_act| over the outlier tokens of all images;
// the top_k highest are the register neurons.
struct RegisterNeuron {
  int layer = 0, neuron = 0;
  double score = 0;  // mean |activation| over the outlier tokens
};

struct RegisterNeuronOptions {
  int detection_layer = -1;      // -1: the last layer
  double outlier_threshold = 0;  // > 0: absolute norm threshold
  double norm_factor = 3.0;      // else this multiple of the median patch norm
  int highest_layer = -1;        // -1: detection_layer
  int top_k = 10;
};

struct RegisterNeuronResult {
  std::vector<RegisterNeuron> neurons;  // highest score first
  int images = 0;
  int64_t outlier_tokens = 0;           // over all images
  std::vector<double> outlier_thresholds;  // per image, at the detection layer
};

// An image for the finder: pixels [channels, height, width].
struct PixelImage {
  const float* pixels = nullptr;
  int height = 0, width = 0;
};

RegisterNeuronResult find_register_neurons(const VisionModel& model, const std::vector<PixelImage>& images,
                                           const RegisterNeuronOptions& opts = {});

// Adds to `taps` the test-time register edit of `neurons` for a forward run
// with `n_registers` test-time registers (the last rows): in blk.L.ffn_act of
// each chosen (layer, neuron), every register row gets the maximum of that
// neuron over all tokens, every other row is set to zero except CLS (row 0 when
// the model has one), which is left as it is. Returns the tap ids.
std::vector<int> add_test_time_register_taps(Taps& taps, const VisionConfig& config,
                                             const std::vector<RegisterNeuron>& neurons, int n_registers = 1);

// ------------------------------------------------------ RegCache, fake quant ----
// Simulated quantization: symmetric round-to-nearest with an absmax scale,
// values in [-(2^(b-1) - 1), 2^(b-1) - 1] times the scale.
// Activations: one scale per tensor or per token (row), applied by taps to the
// inputs of every block's linear layers (blk.L.attn_norm, attn_ctx, ffn_norm,
// ffn_act). Weights: one scale per output channel, the blocks' q, k, v, o,
// fc1, fc2 (patch embedding, norms and heads stay float32).
void fake_quantize(float* x, int64_t rows, int64_t cols, int bits, bool per_token);
std::vector<int> add_activation_fake_quant_taps(Taps& taps, int bits, bool per_token);
std::shared_ptr<const VisionModel> quantize_vision_weights(const VisionModel& model, int bits);

// RegCache (REFERENCES section 5): the keys and values, at layers first_layer..,
// of `n_tokens` register tokens taken from a meaning-free calibration image
// (`pixels`; all zeros = the mean colour when null): the non-CLS tokens with
// the highest ||blk.(first_layer-1).resid_out|| (the embedding norm when
// first_layer is 0). `token_ids` receives the chosen tokens.
VisionKvPrefix build_regcache_prefix(const VisionModel& model, int height, int width, int first_layer, int n_tokens,
                                     const float* pixels = nullptr, std::vector<int>* token_ids = nullptr);

// The quantization error table: for each setting (weight bits, activation
// bits, per token or per tensor) the relative error of the pooled embedding
// and of each layer's blk.L.resid_out, against the float32 run of the same
// configuration, without and with a RegCache prefix (plus deletion of the
// input's tokens whose norm exceeds `delete_threshold` before first_layer).
struct QuantSetting {
  int weight_bits = 8, act_bits = 8;
  bool per_token = false;
  std::string name() const;  // "W8A8 per-tensor"
};
struct QuantErrors {
  QuantSetting setting;
  bool regcache = false;
  double pooled_error = 0;
  std::vector<double> layer_errors;  // [n_layers]
};
struct RegCacheOptions {
  int first_layer = -1;         // -1: n_layers / 2
  int n_tokens = 4;
  double delete_threshold = 0;  // 0: no deletion
};
struct QuantReport {
  RegCacheOptions regcache;
  std::vector<int> prefix_tokens;     // calibration tokens whose K/V form the prefix
  std::vector<int> deleted_tokens;    // input tokens removed before first_layer (float32 run)
  double regcache_pooled_change = 0;  // float32 with RegCache vs without: relative change of the embedding
  std::vector<QuantErrors> rows;
};
QuantReport vision_quant_report(const VisionModel& model, const float* pixels, int height, int width,
                                const std::vector<QuantSetting>& settings, const RegCacheOptions& regcache);
nlohmann::json quant_report_json(const QuantReport& r);

// -------------------------------------------------- CLIP ModifiedResNet ----
// OpenAI CLIP's ResNet image tower (OpenCLIP / OpenAI names, "visual." prefix
// optional): a three-convolution stem with average pooling, bottleneck stages
// with anti-aliasing average pools, and the attention pool (the mean token
// plus position embeddings queries all tokens; c_proj gives the embedding).
// config.json: {"model_type": "clip_resnet", "layers": [3, 4, 6, 3],
// "width": 64, "embed_dim": 1024, "image_size": 224, "heads": 32 (default
// width * 32 / 64)}.
struct ClipResNetConfig {
  std::vector<int> layers;
  int width = 64, embed_dim = 1024, image_size = 224, heads = 32;
  int feature_dim() const { return width * 32; }  // channels of the last stage
  int grid() const { return image_size / 32; }
};

struct ClipResNetWeights;  // src/vision/resnet.cpp

struct ClipResNetOutput {
  int grid_h = 0, grid_w = 0;
  std::vector<float> features;  // last stage [grid_h * grid_w, feature_dim] (token-major)
  std::vector<float> attn;      // attention pool weights [heads, 1 + grid_h * grid_w] (mean token first)
  std::vector<float> pooled;    // image embedding [embed_dim]
};

// The neuron x head decomposition of the pooled embedding: with a_hj the
// attention of head h on token j, x_j the tokens (mean feature, then the
// features) and C_h, W_h the head's slices of c_proj and v_proj,
//   pooled = sum_{n, h} C_h W_h[:, n] (sum_j a_hj f_jn)      (neuron n, head h)
//          + sum_h C_h W_h (sum_j a_hj pos_j) + sum_h C_h b_v,h + b_c.
// Each pair's contribution is a vector; `top` lists the largest by norm.
struct NeuronHeadPair {
  int neuron = 0, head = 0;
  double norm = 0;   // ||contribution||
  double share = 0;  // <contribution, pooled> / ||pooled||^2
};
struct AttnPoolDecomposition {
  std::vector<double> neuron_head_sum;  // sum over all pairs [embed_dim]
  std::vector<double> position_term, value_bias_term, output_bias;  // [embed_dim]
  std::vector<NeuronHeadPair> top;
  std::vector<double> head_neuron_inputs;  // [heads, feature_dim]: sum_j a_hj f_jn
};

class ClipResNet {
 public:
  static std::shared_ptr<const ClipResNet> load(const std::string& path);
  ~ClipResNet();
  const ClipResNetConfig& config() const { return config_; }
  // pixels [3, image_size, image_size].
  ClipResNetOutput forward(const float* pixels, int height, int width) const;
  AttnPoolDecomposition decompose(const ClipResNetOutput& out, int top_k = 20) const;
  // One pair's contribution vector [embed_dim].
  std::vector<double> pair_contribution(const AttnPoolDecomposition& d, int neuron, int head) const;

  ClipResNet(ClipResNetConfig config, std::unique_ptr<ClipResNetWeights> weights);

 private:
  ClipResNetConfig config_;
  std::unique_ptr<ClipResNetWeights> weights_;
};

// ---------------------------------------------------------- training ViTs ----
// Generated images of one shape (0 disk, 1 square, 2 triangle, 3 cross) at a
// random place, size and colour on a noisy background with a few clutter
// dots; pixels [3, size, size] in [-1, 1].
struct ShapeImage {
  int label = 0;
  std::vector<float> pixels;
};
ShapeImage make_shape_image(int size, uint64_t seed);

// A small DINOv2-style ViT (pre-LN, GELU, optional register tokens) with a
// linear classifier on CLS, trained with AdamW on make_shape_image batches.
struct VitTrainConfig {
  int image_size = 32, patch_size = 4, dim = 64, layers = 4, heads = 4, hidden = 256, registers = 0, classes = 4;
  int batch = 32;
  float lr = 1e-3f, weight_decay = 0.05f;
  uint64_t seed = 1;
};
struct VitStepResult {
  float loss = 0, accuracy = 0;  // over the step's batch
};
class VitTrainer {
 public:
  explicit VitTrainer(const VitTrainConfig& config);
  ~VitTrainer();
  VitStepResult step(int step_index);  // one AdamW step on batch `step_index`
  // One image's loss; with_gradients: the gradients of it replace the stored ones.
  float loss(const float* pixels, int label, bool with_gradients);
  std::vector<std::string> parameter_names() const;
  std::vector<float>& values(const std::string& name);
  const std::vector<float>& gradients(const std::string& name) const;
  // A Hugging Face dinov2 (dinov2_with_registers) folder: model.safetensors
  // (LayerScale written as 1, plus classifier.*), config.json, preprocessor_config.json.
  void save(const std::string& dir) const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace sinklab
