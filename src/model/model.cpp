// Model loading: format detection, config, weights and tokenizer.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "arch/registry.h"
#include "sinklab/json_text.h"
#include "weights.h"

namespace sinklab {

namespace fs = std::filesystem;

Model::Model(ModelConfig config, std::unique_ptr<ModelWeights> weights, std::unique_ptr<Tokenizer> tok,
             std::string format, std::string path)
    : config_(std::move(config)), weights_(std::move(weights)), tokenizer_(std::move(tok)),
      format_(std::move(format)), path_(std::move(path)) {}

Model::~Model() = default;

int64_t Model::n_params() const { return weights_->n_params; }
int64_t Model::weight_bytes() const { return weights_->bytes; }

std::span<const float> Model::sink_logits(int64_t layer) const {
  check(layer >= 0 && layer < int64_t(weights_->layers.size()),
        "sink_logits: layer " + std::to_string(layer) + " is out of range (the model has " +
            std::to_string(weights_->layers.size()) + " layers)");
  return weights_->layers[size_t(layer)].sinks;
}

namespace {

std::unique_ptr<Tokenizer> load_tokenizer_file(const std::string& path, int64_t vocab) {
  if (fs::path(path).extension() == ".json") return load_tokenizer_json(path);
  return load_llama2c_tokenizer(path, int32_t(vocab));
}

// The tokenizer beside the model, if any: tokenizer.json, or for llama2.c
// checkpoints tokenizer.bin / tok<vocab>.bin.
std::unique_ptr<Tokenizer> find_tokenizer(const std::string& model_path, FileFormat fmt, int64_t vocab) {
  const fs::path p(model_path);
  const fs::path dir = fs::is_directory(p) ? p : p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const fs::path json = dir / "tokenizer.json";
  if (fs::exists(json)) return load_tokenizer_json(json.string());
  if (fmt == FileFormat::Llama2c) {
    for (const fs::path& cand : {dir / "tokenizer.bin", dir / ("tok" + std::to_string(vocab) + ".bin")})
      if (fs::exists(cand)) return load_llama2c_tokenizer(cand.string(), int32_t(vocab));
  }
  return nullptr;
}

// The chat template: tokenizer_config.json's "chat_template" beside the model
// (a string, or a list of named templates whose "default" is taken), else GGUF's
// tokenizer.chat_template. A config that is not JSON is ignored here: the
// template only picks a default chat format.
std::string find_chat_template(const std::string& model_path, const TensorFile& file) {
  const fs::path p(model_path);
  const fs::path dir = fs::is_directory(p) ? p : p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const fs::path config = dir / "tokenizer_config.json";
  std::error_code ec;
  if (fs::is_regular_file(config, ec) && fs::file_size(config, ec) < (64u << 20)) {
    std::ifstream in(config, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json j;
    try {
      j = parse_json_text(text, config.string());
    } catch (const Error&) {
    }
    if (j.is_object() && j.contains("chat_template")) {
      const nlohmann::json& t = j["chat_template"];
      if (t.is_string()) return t.get<std::string>();
      if (t.is_array())
        for (const nlohmann::json& named : t)
          if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
              named["template"].is_string())
            return named["template"].get<std::string>();
    }
  }
  if (file.format() == FileFormat::Gguf && file.metadata().contains("tokenizer.chat_template") &&
      file.metadata().at("tokenizer.chat_template").type() == MetaValue::Type::String)
    return file.metadata().get_string("tokenizer.chat_template");
  return {};
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& opts) {
  return from_tensor_file(std::make_unique<TensorFile>(load_tensor_file(path)), path, opts);
}

std::shared_ptr<const Model> Model::from_tensor_file(std::unique_ptr<TensorFile> file, const std::string& path,
                                                     const LoadOptions& opts) {
  check(file != nullptr, "Model::from_tensor_file: no tensors");
  ModelConfig cfg;
  switch (file->format()) {
    case FileFormat::Safetensors:
      check(file->has_config(), path + ": config.json not found beside the safetensors file");
      cfg = arch::config_from_hf(file->config(), path + " (config.json)");
      break;
    case FileFormat::Gguf:
      cfg = arch::config_from_gguf(file->metadata(), path);
      if (file->contains("token_embd.weight")) {
        const auto& e = file->tensor("token_embd.weight");
        if (e.shape.size() == 2) cfg.vocab = e.shape[0];
      }
      arch::rope_freqs_from_gguf(*file, cfg);
      arch::validate_config(cfg, path);
      break;
    case FileFormat::Llama2c:
      cfg = arch::config_from_llama2c(file->metadata());
      break;
  }
  const std::string fmt = file_format_name(file->format());
  const FileFormat ff = file->format();
  // Precedence: --tokenizer, then a tokenizer file beside the model, then the
  // tokenizer embedded in GGUF metadata.
  std::unique_ptr<Tokenizer> tok = opts.tokenizer_path.empty() ? find_tokenizer(path, ff, cfg.vocab)
                                                                : load_tokenizer_file(opts.tokenizer_path, cfg.vocab);
  if (!tok && ff == FileFormat::Gguf) tok = tokenizer_from_gguf(file->metadata(), path);
  cfg.chat_template = find_chat_template(path, *file);
  auto weights = bind_weights(std::move(file), cfg, opts.weight_dtype, !opts.mmap, opts.keep_quantized);
  if (tok) {
    check(tok->vocab_size() <= cfg.vocab, path + ": tokenizer has " + std::to_string(tok->vocab_size()) +
                                              " tokens but the model only " + std::to_string(cfg.vocab));
    if (cfg.bos_id < 0) cfg.bos_id = tok->bos_id();
    if (cfg.eos_id < 0) cfg.eos_id = tok->eos_id();
  }
  return std::make_shared<Model>(std::move(cfg), std::move(weights), std::move(tok), fmt, path);
}

namespace {

std::string shape_of(const WeightMatrix& m) {
  std::ostringstream os;
  os << "[" << m.rows << ", " << m.cols << "] " << m.type_name();
  return os.str();
}

std::string human_bytes(double bytes) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  if (bytes < double(1 << 20))
    os << bytes / 1024.0 << " KiB";
  else if (bytes < double(1 << 30))
    os << bytes / double(1 << 20) << " MiB";
  else
    os << bytes / double(1 << 30) << " GiB";
  return os.str();
}

// "f32" when every matrix has one type, else counts such as "q4_K x84, f32 x1".
std::string matrix_dtypes(const ModelWeights& w) {
  std::map<std::string, int64_t> counts;
  auto add = [&](const WeightMatrix& m) {
    if (!m.empty()) ++counts[m.type_name()];
  };
  add(w.embed);
  if (w.output.data != w.embed.data) add(w.output);
  for (const LayerWeights& L : w.layers) {
    for (const WeightMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn.gate, &L.ffn.up, &L.ffn.down, &L.router,
                                  &L.shared.gate, &L.shared.up, &L.shared.down})
      add(*m);
    for (const ExpertWeights& e : L.experts)
      for (const WeightMatrix* m : {&e.gate, &e.up, &e.down}) add(*m);
  }
  std::string out;
  for (const auto& [name, count] : counts) {
    if (!out.empty()) out += ", ";
    out += name;
    if (counts.size() > 1) out += " x" + std::to_string(count);
  }
  return out;
}

// The tensor shapes and types of `describe()`: embedding, output, one layer.
void describe_tensors(std::ostringstream& os, const ModelConfig& c, const ModelWeights& w) {
  os << "tensors:\n"
     << "  embedding   " << shape_of(w.embed) << "\n"
     << "  output      " << (w.output.data == w.embed.data ? "tied to the embedding" : shape_of(w.output)) << "\n";
  if (!w.layers.empty()) {
    const LayerWeights& L = w.layers.front();
    os << "  per layer (x" << c.n_layers << "):\n"
       << "    attn q    " << shape_of(L.wq) << "\n"
       << "    attn k    " << shape_of(L.wk) << "\n"
       << "    attn v    " << shape_of(L.wv) << "\n"
       << "    attn out  " << shape_of(L.wo) << "\n";
    if (c.moe.n_experts == 0) {
      os << "    ffn gate  " << shape_of(L.ffn.gate) << "\n"
         << "    ffn up    " << shape_of(L.ffn.up) << "\n"
         << "    ffn down  " << shape_of(L.ffn.down) << "\n";
    } else if (!L.experts.empty()) {
      os << "    router    " << shape_of(L.router) << "\n"
         << "    expert    gate " << shape_of(L.experts[0].gate) << ", up " << shape_of(L.experts[0].up)
         << ", down " << shape_of(L.experts[0].down) << " (x" << c.moe.n_experts << ")\n";
    }
    os << "    norms     [" << c.dim << "] f32 x2\n";
  }
}

}  // namespace

std::string Model::describe() const {
  const ModelConfig& c = config_;
  const ModelWeights& w = *weights_;
  std::ostringstream os;
  os << "model:        " << path_ << " (" << format_ << ")\n"
     << "architecture: " << c.arch << "\n"
     << "layers:       " << c.n_layers << "\n"
     << "dim:          " << c.dim << "\n"
     << "heads:        " << c.n_heads << " (kv " << c.n_kv_heads << ", head dim " << c.head_dim << ")\n";
  if (c.moe.n_experts > 0)
    os << "experts:      " << c.moe.n_experts << " (top " << c.moe.n_used << ", hidden " << c.moe.expert_hidden
       << (c.moe.shared_hidden ? ", shared hidden " + std::to_string(c.moe.shared_hidden) : std::string()) << ")\n";
  else
    os << "ffn hidden:   " << c.hidden << "\n";
  os << "vocab:        " << c.vocab << "\n"
     << "context:      " << c.max_seq << " (training)\n";
  static const char* rope_names[] = {"none", "rotate-half", "interleaved"};
  os << "positions:    rope " << rope_names[int(c.rope.style)];
  if (c.rope.style != RopeStyle::None) os << ", theta " << c.rope.theta;
  static const char* scaling_names[] = {"none", "linear", "ntk", "yarn", "llama3"};
  if (c.rope.scaling != RopeScaling::None)
    os << ", scaling " << scaling_names[int(c.rope.scaling)] << " x" << c.rope.factor;
  if (c.rope.freq_factors) os << ", per-frequency factors (rope_freqs)";
  os << "\n";
  int sliding = 0;
  int32_t wmax = 0;
  for (int32_t wdw : c.layer_window) {
    sliding += wdw > 0;
    wmax = std::max(wmax, wdw);
  }
  if (sliding)
    os << "sliding:      " << sliding << " of " << c.n_layers << " layers (window " << wmax << ")"
       << (c.rope_local ? ", their own RoPE theta " + std::to_string(int64_t(c.rope_local->theta)) : std::string())
       << "\n";
  if (const char* what = attention_variant_description(c.variant))
    os << "attention:    " << c.variant << " (" << what << ")\n";
  if (c.sink_logits) os << "sink logits:  learned, per head\n";
  if (c.relu_attention) os << "attention:    ReLU weights (unnormalised)\n";
  if (c.prior.kind == PriorKind::Alibi) os << "prior:        ALiBi\n";
  if (c.prior.kind == PriorKind::Goat)
    os << "prior:        GOAT (relative rank " << c.prior.goat_rank << ", key MLP " << c.prior.goat_abs_rank
       << " frequencies x " << c.prior.goat_u_hidden << " units, train length " << c.prior.train_length << ")\n";
  os << "norm eps:     " << c.norm_eps << "\n";
  std::string features = std::string(c.qkv_bias ? " qkv-bias" : "") + (c.o_bias ? " o-bias" : "") +
                         (c.qk_norm ? " qk-norm" : "") + (c.qk_norm_full ? " qk-norm(full)" : "") +
                         (c.tied_embeddings ? " tied-embeddings" : "") + (c.post_norms ? " post-norms" : "") +
                         (c.embed_scale != 1.f ? " scaled-embeddings" : "") +
                         (c.ffn_act == FfnActivation::GeluTanh ? " geglu"
                          : c.ffn_act == FfnActivation::ClampedSwiGLU ? " clamped-swiglu"
                                                                      : "") +
                         (c.attn_softcap > 0 ? " attn-softcap(" + std::to_string(int(c.attn_softcap)) + ")" : "") +
                         (c.final_softcap > 0 ? " final-softcap(" + std::to_string(int(c.final_softcap)) + ")" : "") +
                         (c.moe.router_bias ? " expert-biases" : "");
  os << "features:    " << (features.empty() ? " none" : features) << "\n";
  os << "special ids:  bos " << c.bos_id << ", eos " << c.eos_id << "\n";

  describe_tensors(os, c, w);

  // Sliding layers keep their own cache of the window (plus one forward's 256
  // tokens) when the model also has full layers (SessionOptions::local_layer_cache).
  const bool split = sliding > 0 && sliding < c.n_layers;
  const double kv_layer_token = 2.0 * double(c.n_kv_heads * c.head_dim) * 4.0;
  const double kv_per_token = kv_layer_token * double(split ? c.n_layers - sliding : c.n_layers);
  const int64_t ctx = c.max_seq > 0 ? c.max_seq : 4096;
  os << "parameters:   " << n_params() << " (" << double(n_params()) / 1e6 << " M)\n"
     << "weights:      matrices " << matrix_dtypes(w) << ", vectors f32; " << human_bytes(double(weight_bytes()))
     << " in memory\n"
     << "kv cache:     f32, " << human_bytes(kv_per_token) << " per token, " << human_bytes(kv_per_token * double(ctx))
     << " at context " << ctx
     << (split ? " (full layers) + " + human_bytes(kv_layer_token * double(sliding) * double(wmax + 255)) +
                     " for the sliding layers at any context"
               : std::string())
     << "\n"
     << "tokenizer:    " << (tokenizer_ ? std::to_string(tokenizer_->vocab_size()) + " tokens" : "none found") << "\n";
  return os.str();
}

}  // namespace sinklab
