// GGUF export of a loaded Model: llama.cpp tensor names and metadata keys,
// q/k rows reordered when the GGUF architecture uses interleaved RoPE, and a
// check that the written metadata loads back to the same configuration.
#include "sinklab/export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <set>

#include "arch/registry.h"
#include "model/quant_kernels.h"
#include "weights.h"

namespace sinklab {

namespace {

using Type = MetaValue::Type;

// llama.cpp's general.file_type values (LLAMA_FTYPE_*); a file of K-quant
// matrices is its "mostly Q4_K / Q5_K" small variant (_S), one of MXFP4
// matrices its MXFP4_MOE.
uint32_t file_type_id(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;
    case TensorType::Q5_K: return 16;
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    case TensorType::MXFP4: return 38;
    default: break;
  }
  throw Error(std::string("GGUF export: unsupported tensor type ") + tensor_type_name(t));
}

std::string gguf_arch_for(const ModelConfig& c) {
  if (c.arch == "llama" || c.arch == "mixtral") return "llama";  // llama.cpp stores Mixtral as llama
  if (c.arch == "qwen2" || c.arch == "qwen3" || c.arch == "olmoe" || c.arch == "sinklab") return c.arch;
  if (c.arch == "qwen_moe") return c.qk_norm ? "qwen3moe" : "qwen2moe";
  if (c.arch == "gpt_oss") return "gpt-oss";
  if (c.arch == "gemma") return c.rope_local ? "gemma3" : "gemma2";
  throw Error("GGUF export: architecture '" + c.arch + "' has no GGUF mapping");
}

std::vector<float> matrix_f32(const WeightMatrix& m) {
  std::vector<float> out(size_t(m.rows * m.cols));
  if (m.quantized())
    quant::dequantize_rows(m.stored, static_cast<const uint8_t*>(m.data), m.rows, m.cols, out.data());
  else
    to_f32(m.dtype, m.data, out.data(), out.size());
  return out;
}

// Reorders the first `rot` rows of every head of a [n_heads * head_dim, cols]
// projection between Hugging Face's rotate-half pairs (j, j + rot/2) and
// llama.cpp's adjacent pairs (2j, 2j + 1), as convert_hf_to_gguf.py permutes them.
std::vector<float> reorder_rope_rows(const std::vector<float>& w, int64_t n_heads, int64_t head_dim, int64_t rot,
                                     int64_t cols, bool to_interleaved) {
  std::vector<float> out(w);
  const int64_t half = rot / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < half; ++j) {
      const int64_t split[2] = {h * head_dim + j, h * head_dim + j + half};
      const int64_t pair[2] = {h * head_dim + 2 * j, h * head_dim + 2 * j + 1};
      for (int s = 0; s < 2; ++s) {
        const int64_t from = to_interleaved ? split[s] : pair[s];
        const int64_t to = to_interleaved ? pair[s] : split[s];
        std::copy_n(w.data() + from * cols, cols, out.data() + to * cols);
      }
    }
  return out;
}

// The tensors of the file being written; owns their bytes.
class TensorSet {
 public:
  explicit TensorSet(TensorType matrix_type) : matrix_type_(matrix_type) {}

  void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& x) {
    add(name, std::move(shape), x, TensorType::F32);
  }
  // Weight matrices (and stacked experts): the requested type where its block
  // fits the rows, or `keep` (not F32) when the export is not to f32.
  void add_matrix(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& x,
                  TensorType keep = TensorType::F32) {
    TensorType t = keep != TensorType::F32 && matrix_type_ != TensorType::F32 ? keep : matrix_type_;
    if (shape.back() % tensor_type_block_size(t) != 0) t = TensorType::F32;
    add(name, std::move(shape), x, t);
  }

  const std::vector<TensorEntry>& entries() const { return entries_; }
  int64_t converted = 0, kept_f32 = 0;

 private:
  void add(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& x, TensorType t) {
    TensorEntry e;
    e.name = name;
    e.type = t;
    e.shape = std::move(shape);
    check(e.numel() == int64_t(x.size()), "GGUF export: tensor '" + name + "' has " + std::to_string(x.size()) +
                                              " values for its shape (" + std::to_string(e.numel()) + " expected)");
    e.nbytes = tensor_type_nbytes(t, e.numel(), name);
    std::vector<uint8_t>& bytes = storage_.emplace_back(e.nbytes);
    const int64_t cols = e.shape.empty() ? 1 : e.shape.back();
    if (cols > 0) quant::quantize_rows(t, x.data(), e.numel() / cols, cols, bytes.data());
    e.data = bytes.data();
    (t == TensorType::F32 && t != matrix_type_ ? kept_f32 : converted) += 1;
    entries_.push_back(std::move(e));
  }

  TensorType matrix_type_;
  std::deque<std::vector<uint8_t>> storage_;
  std::vector<TensorEntry> entries_;
};

MetaValue u32(int64_t v) { return MetaValue::unsigned_integer(Type::U32, uint64_t(v)); }

void write_rope(Metadata& m, const std::string& p, const ModelConfig& c) {
  const RopeSpec& r = c.rope;
  if (r.style == RopeStyle::None)
    throw Error("GGUF export: models without positional encoding cannot be expressed in GGUF");
  double theta = r.theta;
  const int rot = r.rotary_dim ? r.rotary_dim : int(c.head_dim);
  m.set(p + "rope.dimension_count", u32(rot));
  switch (r.scaling) {
    case RopeScaling::None: break;
    case RopeScaling::Linear:
      m.set(p + "rope.scaling.type", "linear");
      m.set(p + "rope.scaling.factor", r.factor);
      break;
    case RopeScaling::NTK:  // static NTK scaling is a larger base
      if (r.factor != 1.f && rot > 2) theta *= std::pow(double(r.factor), double(rot) / double(rot - 2));
      break;
    case RopeScaling::YaRN:
      if (r.beta_fast != 32.f || r.beta_slow != 1.f || r.attn_factor != 0.f)
        throw Error("GGUF export: YaRN with non-default beta_fast / beta_slow / attention_factor is not supported");
      m.set(p + "rope.scaling.type", "yarn");
      m.set(p + "rope.scaling.factor", r.factor);
      m.set(p + "rope.scaling.original_context_length", u32(r.original_context));
      break;
    case RopeScaling::Llama3:
      // llama.cpp reads the scaling from the rope_freqs tensor; sinklab from these keys.
      m.set(p + "rope.scaling.original_context_length", u32(r.original_context));
      m.set(p + "rope.scaling.llama3.factor", r.factor);
      m.set(p + "rope.scaling.llama3.low_freq_factor", r.low_freq_factor);
      m.set(p + "rope.scaling.llama3.high_freq_factor", r.high_freq_factor);
      break;
  }
  m.set(p + "rope.freq_base", float(theta));
}

// llama.cpp's rope_freqs.weight: per frequency, the divisor that turns the
// unscaled frequency into the scaled one (Llama 3.1 scaling).
std::vector<float> rope_freq_factors(const ModelConfig& c) {
  RopeSpec plain = c.rope;
  plain.scaling = RopeScaling::None;
  const RopeTable scaled = rope_table(c.rope, int(c.head_dim)), base = rope_table(plain, int(c.head_dim));
  std::vector<float> factors(scaled.inv_freq.size());
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = float(base.inv_freq[i] / scaled.inv_freq[i]);
  return factors;
}

void write_windows(Metadata& m, const std::string& p, const ModelConfig& c) {
  std::set<int32_t> sizes;
  for (int32_t w : c.layer_window)
    if (w > 0) sizes.insert(w);
  if (sizes.empty()) return;
  check(sizes.size() == 1, "GGUF export: layers with different sliding window sizes cannot be expressed in GGUF");
  m.set(p + "attention.sliding_window", u32(*sizes.begin()));
  if (std::count(c.layer_window.begin(), c.layer_window.end(), 0) == 0) return;
  MetaValue::Array pattern;
  for (int32_t w : c.layer_window) pattern.push_back(MetaValue::integer(Type::I32, w > 0 ? 1 : 0));
  m.set(p + "attention.sliding_window_pattern", MetaValue::array(Type::I32, std::move(pattern)));
}

Metadata build_metadata(const Model& model, const std::string& arch, TensorType type) {
  const ModelConfig& c = model.config();
  const std::string p = arch + ".";
  Metadata m;
  m.set("general.architecture", arch);
  m.set("general.name", std::filesystem::path(model.path()).stem().string());
  m.set("general.file_type", u32(file_type_id(type)));
  m.set(p + "vocab_size", u32(c.vocab));
  m.set(p + "context_length", u32(c.max_seq));
  m.set(p + "embedding_length", u32(c.dim));
  m.set(p + "block_count", u32(c.n_layers));
  if (c.hidden > 0) m.set(p + "feed_forward_length", u32(c.hidden));
  m.set(p + "attention.head_count", u32(c.n_heads));
  m.set(p + "attention.head_count_kv", u32(c.n_kv_heads));
  m.set(p + "attention.key_length", u32(c.head_dim));
  m.set(p + "attention.value_length", u32(c.head_dim));
  m.set(p + "attention.layer_norm_rms_epsilon", c.norm_eps);
  write_rope(m, p, c);
  write_windows(m, p, c);
  if (c.sink_logits) m.set(p + "attention.sinks", true);
  if (c.qk_norm && arch == "sinklab") m.set(p + "attention.qk_norm", true);
  if (c.attn_scale > 0) m.set(p + "attention.scale", c.attn_scale);
  if (c.attn_softcap > 0) m.set(p + "attn_logit_softcapping", c.attn_softcap);
  if (c.final_softcap > 0) m.set(p + "final_logit_softcapping", c.final_softcap);
  if (c.rope_local) m.set(p + "rope.freq_base_swa", c.rope_local->theta);
  if (c.ffn_act == FfnActivation::ClampedSwiGLU && c.swiglu_limit != 7.f) m.set(p + "swiglu_limit", c.swiglu_limit);
  if (c.moe.n_experts > 0) {
    m.set(p + "expert_count", u32(c.moe.n_experts));
    m.set(p + "expert_used_count", u32(c.moe.n_used));
    m.set(p + "expert_feed_forward_length", u32(c.moe.expert_hidden));
    if (c.moe.shared_hidden > 0) m.set(p + "expert_shared_feed_forward_length", u32(c.moe.shared_hidden));
    m.set(p + "expert_weights_norm", c.moe.norm_topk);
  }
  if (c.bos_id >= 0) m.set("tokenizer.ggml.bos_token_id", u32(c.bos_id));
  if (c.eos_id >= 0) m.set("tokenizer.ggml.eos_token_id", u32(c.eos_id));
  if (model.tokenizer()) write_gguf_tokenizer(*model.tokenizer(), m);
  return m;
}

// Loads the metadata back the way Model::load will and names the first field
// that would come back different.
void check_round_trip(const ModelConfig& c, const Metadata& m, const std::string& path) {
  ModelConfig r = arch::config_from_gguf(m, path);
  auto same = [&](bool ok, const char* what) {
    if (!ok) throw Error("GGUF export: " + std::string(what) + " of architecture '" + c.arch +
                         "' cannot be expressed in GGUF metadata (" + path + " not written)");
  };
  same(r.arch == c.arch, "the architecture");
  same(r.vocab == c.vocab && r.dim == c.dim && r.n_layers == c.n_layers && r.hidden == c.hidden, "the sizes");
  same(r.n_heads == c.n_heads && r.n_kv_heads == c.n_kv_heads && r.head_dim == c.head_dim, "the head layout");
  same(r.max_seq == c.max_seq && r.norm_eps == c.norm_eps, "the context or norm epsilon");
  same(r.qkv_bias == c.qkv_bias && r.o_bias == c.o_bias, "the attention biases");
  same(r.qk_norm == c.qk_norm && r.qk_norm_full == c.qk_norm_full, "the q/k norm");
  same(r.sink_logits == c.sink_logits, "the sink logits");
  same(r.post_norms == c.post_norms && r.ffn_act == c.ffn_act && r.embed_scale == c.embed_scale &&
           r.attn_scale == c.attn_scale && r.attn_softcap == c.attn_softcap && r.final_softcap == c.final_softcap &&
           r.swiglu_limit == c.swiglu_limit && r.moe.router_bias == c.moe.router_bias,
       "the norms, activation, scales or soft-caps");
  same(r.rope_local.has_value() == c.rope_local.has_value() &&
           (!c.rope_local || (r.rope_local->theta == c.rope_local->theta &&
                              r.rope_local->scaling == c.rope_local->scaling)),
       "the sliding layers' RoPE");
  same(r.layer_window == c.layer_window, "the sliding windows");
  same(r.rope.yarn_truncate == c.rope.yarn_truncate, "YaRN's truncation");
  same(r.moe.n_experts == c.moe.n_experts && r.moe.n_used == c.moe.n_used &&
           r.moe.expert_hidden == c.moe.expert_hidden && r.moe.norm_topk == c.moe.norm_topk &&
           r.moe.shared_hidden == c.moe.shared_hidden && r.moe.shared_gate == c.moe.shared_gate,
       "the expert layout");
  const RopeSpec &a = r.rope, &b = c.rope;
  const bool ntk = b.scaling == RopeScaling::NTK;
  same((a.rotary_dim ? a.rotary_dim : r.head_dim) == (b.rotary_dim ? b.rotary_dim : c.head_dim) &&
           (ntk ? a.scaling == RopeScaling::None : a.scaling == b.scaling) &&
           (ntk || (a.theta == b.theta && a.factor == b.factor)),
       "the RoPE settings");
  if (b.scaling == RopeScaling::Llama3 || b.scaling == RopeScaling::YaRN)
    same(a.original_context == b.original_context && a.low_freq_factor == b.low_freq_factor &&
             a.high_freq_factor == b.high_freq_factor,
         "the RoPE scaling");
}

// llama.cpp's name of the FFN's input norm: ffn_norm, or the row's (gpt-oss: post_attention_norm).
const char* ffn_norm_name(const ModelConfig& c) {
  const char* name = arch::arch_by_name(c.arch).gguf_ffn_norm;
  return name ? name : "ffn_norm";
}

void add_layer(TensorSet& ts, const ModelConfig& c, const LayerWeights& L, int l, bool reorder, bool to_interleaved) {
  const std::string p = "blk." + std::to_string(l) + ".";
  const int64_t D = c.dim, hd = c.head_dim, qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t rot = c.rope.rotary_dim ? c.rope.rotary_dim : hd;
  auto qk_rows = [&](std::vector<float> w, int64_t heads, int64_t cols) {
    return reorder ? reorder_rope_rows(w, heads, hd, rot, cols, to_interleaved) : w;
  };
  ts.add_f32(p + "attn_norm.weight", {D}, L.attn_norm);
  ts.add_matrix(p + "attn_q.weight", {qd, D}, qk_rows(matrix_f32(L.wq), c.n_heads, D));
  ts.add_matrix(p + "attn_k.weight", {kvd, D}, qk_rows(matrix_f32(L.wk), c.n_kv_heads, D));
  ts.add_matrix(p + "attn_v.weight", {kvd, D}, matrix_f32(L.wv));
  ts.add_matrix(p + "attn_output.weight", {D, qd}, matrix_f32(L.wo));
  if (!L.bq.empty()) ts.add_f32(p + "attn_q.bias", {qd}, qk_rows(L.bq, c.n_heads, 1));
  if (!L.bk.empty()) ts.add_f32(p + "attn_k.bias", {kvd}, qk_rows(L.bk, c.n_kv_heads, 1));
  if (!L.bv.empty()) ts.add_f32(p + "attn_v.bias", {kvd}, L.bv);
  if (!L.bo.empty()) ts.add_f32(p + "attn_output.bias", {D}, L.bo);
  if (!L.q_norm.empty()) {
    check(!reorder, "GGUF export: q/k norms combined with a RoPE layout change are not supported");
    ts.add_f32(p + "attn_q_norm.weight", {int64_t(L.q_norm.size())}, L.q_norm);
    ts.add_f32(p + "attn_k_norm.weight", {int64_t(L.k_norm.size())}, L.k_norm);
  }
  if (!L.sinks.empty()) ts.add_f32(p + "attn_sinks.weight", {c.n_heads}, L.sinks);
  ts.add_f32(p + ffn_norm_name(c) + ".weight", {D}, L.ffn_norm);
  if (!L.post_attn_norm.empty()) ts.add_f32(p + "post_attention_norm.weight", {D}, L.post_attn_norm);
  if (!L.post_ffn_norm.empty()) ts.add_f32(p + "post_ffw_norm.weight", {D}, L.post_ffn_norm);
  if (c.moe.n_experts == 0) {
    ts.add_matrix(p + "ffn_gate.weight", {c.hidden, D}, matrix_f32(L.ffn.gate));
    ts.add_matrix(p + "ffn_up.weight", {c.hidden, D}, matrix_f32(L.ffn.up));
    ts.add_matrix(p + "ffn_down.weight", {D, c.hidden}, matrix_f32(L.ffn.down));
    return;
  }
  const int64_t E = c.moe.n_experts, F = c.moe.expert_hidden;
  ts.add_f32(p + "ffn_gate_inp.weight", {E, D}, matrix_f32(L.router));
  if (!L.router_bias.empty()) ts.add_f32(p + "ffn_gate_inp.bias", {E}, L.router_bias);
  auto stacked = [&](WeightMatrix ExpertWeights::*part) {
    std::vector<float> all;
    for (const ExpertWeights& e : L.experts) {
      const std::vector<float> m = matrix_f32(e.*part);
      all.insert(all.end(), m.begin(), m.end());
    }
    return all;
  };
  // Experts stored as mxfp4 (gpt-oss) stay mxfp4, as llama.cpp's converter keeps them.
  const TensorType keep =
      L.experts.front().gate.stored == TensorType::MXFP4 ? TensorType::MXFP4 : TensorType::F32;
  ts.add_matrix(p + "ffn_gate_exps.weight", {E, F, D}, stacked(&ExpertWeights::gate), keep);
  ts.add_matrix(p + "ffn_up_exps.weight", {E, F, D}, stacked(&ExpertWeights::up), keep);
  ts.add_matrix(p + "ffn_down_exps.weight", {E, D, F}, stacked(&ExpertWeights::down), keep);
  if (c.moe.router_bias) {
    auto stacked_bias = [&](std::vector<float> ExpertWeights::*part) {
      std::vector<float> all;
      for (const ExpertWeights& e : L.experts) all.insert(all.end(), (e.*part).begin(), (e.*part).end());
      return all;
    };
    ts.add_f32(p + "ffn_gate_exps.bias", {E, F}, stacked_bias(&ExpertWeights::gate_bias));
    ts.add_f32(p + "ffn_up_exps.bias", {E, F}, stacked_bias(&ExpertWeights::up_bias));
    ts.add_f32(p + "ffn_down_exps.bias", {E, D}, stacked_bias(&ExpertWeights::down_bias));
  }
  if (c.moe.shared_hidden > 0) {
    const int64_t S = c.moe.shared_hidden;
    ts.add_matrix(p + "ffn_gate_shexp.weight", {S, D}, matrix_f32(L.shared.gate));
    ts.add_matrix(p + "ffn_up_shexp.weight", {S, D}, matrix_f32(L.shared.up));
    ts.add_matrix(p + "ffn_down_shexp.weight", {D, S}, matrix_f32(L.shared.down));
    if (!L.shared_gate.empty()) ts.add_f32(p + "ffn_gate_inp_shexp.weight", {D}, L.shared_gate);
  }
}

}  // namespace

TensorType gguf_export_type_from_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  if (n == "f32") return TensorType::F32;
  if (n == "f16") return TensorType::F16;
  if (n == "bf16") return TensorType::BF16;
  if (n == "q8_0") return TensorType::Q8_0;
  if (n == "q4_0") return TensorType::Q4_0;
  if (n == "q4_k") return TensorType::Q4_K;
  if (n == "q5_k") return TensorType::Q5_K;
  if (n == "q6_k") return TensorType::Q6_K;
  if (n == "mxfp4") return TensorType::MXFP4;
  throw Error("GGUF export: unknown type '" + name +
              "' (expected f32, f16, bf16, q8_0, q6_k, q5_k, q4_k, q4_0 or mxfp4)");
}

GgufExportSummary export_gguf(const Model& model, const std::string& path, const GgufExportOptions& opts) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  check(c.prior.kind == PriorKind::None,
        "GGUF export: models with an attention prior (GOAT, ALiBi) have no GGUF form; keep them as safetensors");
  GgufExportSummary summary;
  summary.gguf_arch = gguf_arch_for(c);
  const Metadata meta = build_metadata(model, summary.gguf_arch, opts.type);
  check_round_trip(c, meta, path);

  // llama.cpp's interleaved-RoPE architectures expect q/k rows in adjacent pairs.
  const RopeStyle target = arch::arch_for_gguf(summary.gguf_arch).gguf_rope;
  const bool reorder = c.rope.style != target;
  summary.permuted_qk = reorder && target == RopeStyle::Interleaved;

  TensorSet ts(opts.type);
  ts.add_matrix("token_embd.weight", {c.vocab, c.dim}, matrix_f32(w.embed));
  for (int l = 0; l < int(c.n_layers); ++l)
    add_layer(ts, c, w.layers[size_t(l)], l, reorder, target == RopeStyle::Interleaved);
  ts.add_f32("output_norm.weight", {c.dim}, w.out_norm);
  if (c.rope.scaling == RopeScaling::Llama3 || c.rope.freq_factors) {
    // Factors read from a llama.cpp file go back as they came, beside the metadata's scaling.
    const std::vector<float> factors = c.rope.freq_factors ? *c.rope.freq_factors : rope_freq_factors(c);
    ts.add_f32("rope_freqs.weight", {int64_t(factors.size())}, factors);
  }
  if (w.output.data != w.embed.data) ts.add_matrix("output.weight", {c.vocab, c.dim}, matrix_f32(w.output));
  write_gguf(path, meta, ts.entries(), 3);
  summary.n_tensors = int64_t(ts.entries().size());
  summary.n_converted = ts.converted;
  summary.n_kept_f32 = ts.kept_f32;
  return summary;
}

}  // namespace sinklab
