#include "weights.h"

#include <cstring>

#include "arch/registry.h"
#include "quant_kernels.h"

namespace sinklab {

uint8_t* WeightArena::allocate(size_t bytes) {
  constexpr size_t kMinBlock = size_t(32) << 20;
  bytes = round_up(std::max<size_t>(bytes, 1), 64);
  if (bytes > left_) {
    const size_t block = round_up(std::max(bytes, kMinBlock), kHugePageBytes);
    blocks_.push_back(huge_page_alloc(block));
    next_ = blocks_.back().get();
    left_ = block;
  }
  uint8_t* out = next_;
  next_ += bytes;
  left_ -= bytes;
  return out;
}

namespace {

enum class Role {
  Embed, Output, OutNorm, AttnNorm, FfnNorm, PostAttnNorm, PostFfnNorm, RouterBias, Wq, Wk, Wv, Wo, Bq, Bk, Bv, Bo, QNorm, KNorm, Sinks,
  Gate, Up, Down, Router, SharedGate, SharedUp, SharedDown, SharedGateInp,
  PriorSym, PriorAsym, PriorKeyW1, PriorKeyB1, PriorKeyW2, PriorFirst,
};

// Tensor names by role, for Hugging Face (and llama2.c, which the loader exposes
// with Hugging Face names) and for GGUF (llama.cpp names).
std::string hf_name(Role r, int l) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  switch (r) {
    case Role::Embed: return "model.embed_tokens.weight";
    case Role::Output: return "lm_head.weight";
    case Role::OutNorm: return "model.norm.weight";
    case Role::AttnNorm: return p + "input_layernorm.weight";
    case Role::FfnNorm: return p + "post_attention_layernorm.weight";
    case Role::PostAttnNorm: return p + "post_attention_layernorm.weight";  // Gemma
    case Role::PostFfnNorm: return p + "post_feedforward_layernorm.weight";
    case Role::RouterBias: return p + "mlp.router.bias";
    case Role::Wq: return p + "self_attn.q_proj.weight";
    case Role::Wk: return p + "self_attn.k_proj.weight";
    case Role::Wv: return p + "self_attn.v_proj.weight";
    case Role::Wo: return p + "self_attn.o_proj.weight";
    case Role::Bq: return p + "self_attn.q_proj.bias";
    case Role::Bk: return p + "self_attn.k_proj.bias";
    case Role::Bv: return p + "self_attn.v_proj.bias";
    case Role::Bo: return p + "self_attn.o_proj.bias";
    case Role::QNorm: return p + "self_attn.q_norm.weight";
    case Role::KNorm: return p + "self_attn.k_norm.weight";
    case Role::Sinks: return p + "self_attn.sinks";
    case Role::Gate: return p + "mlp.gate_proj.weight";
    case Role::Up: return p + "mlp.up_proj.weight";
    case Role::Down: return p + "mlp.down_proj.weight";
    case Role::Router: return p + "mlp.gate.weight";
    case Role::SharedGate: return p + "mlp.shared_expert.gate_proj.weight";
    case Role::SharedUp: return p + "mlp.shared_expert.up_proj.weight";
    case Role::SharedDown: return p + "mlp.shared_expert.down_proj.weight";
    case Role::SharedGateInp: return p + "mlp.shared_expert_gate.weight";
    case Role::PriorSym: return p + "self_attn.prior.lambda_sym";
    case Role::PriorAsym: return p + "self_attn.prior.lambda_asym";
    case Role::PriorKeyW1: return p + "self_attn.prior.key_mlp.in.weight";
    case Role::PriorKeyB1: return p + "self_attn.prior.key_mlp.in.bias";
    case Role::PriorKeyW2: return p + "self_attn.prior.key_mlp.out.weight";
    case Role::PriorFirst: return p + "self_attn.prior.first_logit";
  }
  return "";
}

std::string gguf_name(Role r, int l) {
  const std::string p = "blk." + std::to_string(l) + ".";
  switch (r) {
    case Role::Embed: return "token_embd.weight";
    case Role::Output: return "output.weight";
    case Role::OutNorm: return "output_norm.weight";
    case Role::AttnNorm: return p + "attn_norm.weight";
    case Role::FfnNorm: return p + "ffn_norm.weight";
    case Role::PostAttnNorm: return p + "post_attention_norm.weight";
    case Role::PostFfnNorm: return p + "post_ffw_norm.weight";
    case Role::RouterBias: return p + "ffn_gate_inp.bias";
    case Role::Wq: return p + "attn_q.weight";
    case Role::Wk: return p + "attn_k.weight";
    case Role::Wv: return p + "attn_v.weight";
    case Role::Wo: return p + "attn_output.weight";
    case Role::Bq: return p + "attn_q.bias";
    case Role::Bk: return p + "attn_k.bias";
    case Role::Bv: return p + "attn_v.bias";
    case Role::Bo: return p + "attn_output.bias";
    case Role::QNorm: return p + "attn_q_norm.weight";
    case Role::KNorm: return p + "attn_k_norm.weight";
    case Role::Sinks: return p + "attn_sinks.weight";
    case Role::Gate: return p + "ffn_gate.weight";
    case Role::Up: return p + "ffn_up.weight";
    case Role::Down: return p + "ffn_down.weight";
    case Role::Router: return p + "ffn_gate_inp.weight";
    case Role::SharedGate: return p + "ffn_gate_shexp.weight";
    case Role::SharedUp: return p + "ffn_up_shexp.weight";
    case Role::SharedDown: return p + "ffn_down_shexp.weight";
    case Role::SharedGateInp: return p + "ffn_gate_inp_shexp.weight";
    case Role::PriorSym: return p + "attn_prior_sym.weight";
    case Role::PriorAsym: return p + "attn_prior_asym.weight";
    case Role::PriorKeyW1: return p + "attn_prior_key_in.weight";
    case Role::PriorKeyB1: return p + "attn_prior_key_in.bias";
    case Role::PriorKeyW2: return p + "attn_prior_key_out.weight";
    case Role::PriorFirst: return p + "attn_prior_first.weight";
  }
  return "";
}

class Binder {
 public:
  Binder(ModelWeights& w, const ModelConfig& c, DType dtype, bool copy, bool keep_stored)
      : w_(w), c_(c), dtype_(dtype), copy_(copy), keep_stored_(keep_stored), gguf_(w.file->format() == FileFormat::Gguf),
        row_(arch::arch_by_name(c.arch)) {}

  std::string name(Role r, int l) const {
    const char* ffn_norm = gguf_ ? row_.gguf_ffn_norm : row_.hf_ffn_norm;
    if (r == Role::FfnNorm && ffn_norm)
      return (gguf_ ? "blk." : "model.layers.") + std::to_string(l) + "." + ffn_norm + ".weight";
    return gguf_ ? gguf_name(r, l) : hf_name(r, l);
  }

  // A norm weight as the forward applies it: Gemma's config.json checkpoints store w of (1 + w).
  std::vector<float> norm(Role r, int l, int64_t n) {
    std::vector<float> v = vec(r, l, n);
    if (!gguf_ && row_.hf_norm_plus_one)
      for (float& x : v) x += 1.f;
    return v;
  }
  bool has(Role r, int l = 0) const { return w_.file->contains(name(r, l)); }

  const TensorEntry& entry(const std::string& n) const { return w_.file->tensor(n); }

  static void check_shape(const TensorEntry& e, std::initializer_list<int64_t> want,
                          const std::string& file) {
    std::vector<int64_t> w(want);
    // GGUF stores 1-row matrices and vectors without the unit dims.
    std::vector<int64_t> got = e.shape;
    if (got != w) {
      std::string a, b;
      for (auto x : got) a += (a.empty() ? "" : ", ") + std::to_string(x);
      for (auto x : w) b += (b.empty() ? "" : ", ") + std::to_string(x);
      throw Error(file + ": tensor '" + e.name + "' has shape [" + a + "], expected [" + b + "]");
    }
  }

  std::vector<float> vec(Role r, int l, int64_t n) {
    const TensorEntry& e = entry(name(r, l));
    check(e.numel() == n, w_.file->path() + ": tensor '" + e.name + "' has " + std::to_string(e.numel()) +
                              " elements, expected " + std::to_string(n));
    std::vector<float> out(static_cast<size_t>(n));
    dequantize(e, out.data());
    w_.n_params += n;
    w_.bytes += n * 4;
    return out;
  }
  std::vector<float> opt_vec(Role r, int l, int64_t n) { return has(r, l) ? vec(r, l, n) : std::vector<float>{}; }

  // A [rows, cols] matrix from entry e starting at element `offset` (for stacked experts).
  WeightMatrix matrix_from(const TensorEntry& e, int64_t rows, int64_t cols, int64_t offset) {
    WeightMatrix m;
    m.rows = rows;
    m.cols = cols;
    const int64_t n = rows * cols;
    w_.n_params += n;
    if (keep_stored_ && quant::has_kernels(e.type)) return stored_matrix(e, rows, cols, offset);
    const bool f32_ok = e.type == TensorType::F32 && dtype_ != DType::BF16;
    const bool bf16_ok = e.type == TensorType::BF16;
    const size_t esize = f32_ok ? 4 : 2;
    const uint8_t* src = e.data + size_t(offset) * esize;
    if ((f32_ok || bf16_ok) && reinterpret_cast<uintptr_t>(src) % esize == 0) {
      m.dtype = f32_ok ? DType::F32 : DType::BF16;
      m.data = src;
      if (copy_) {  // process memory: the page cache cannot drop it under memory pressure
        uint8_t* buf = w_.owned.allocate(size_t(n) * esize);
        std::memcpy(buf, src, size_t(n) * esize);
        m.data = buf;
      }
    } else {
      // Convert (dequantise) to the requested dtype.
      const int64_t block = tensor_type_block_size(e.type);
      check(offset % block == 0, w_.file->path() + ": expert slice of '" + e.name + "' splits a quantisation block");
      const size_t off_bytes = tensor_type_nbytes(e.type, offset, e.name);
      std::vector<float> tmp(static_cast<size_t>(n));
      dequantize_row(e.type, e.data + off_bytes, tmp.data(), n);
      m.dtype = dtype_;
      uint8_t* buf = w_.owned.allocate(size_t(n) * dtype_size(dtype_));
      from_f32(dtype_, tmp.data(), buf, size_t(n));
      m.data = buf;
    }
    w_.bytes += m.bytes();
    return m;
  }

  // Rows kept in their stored block type: a view of the file (or a copy).
  WeightMatrix stored_matrix(const TensorEntry& e, int64_t rows, int64_t cols, int64_t offset) {
    const int64_t block = tensor_type_block_size(e.type);
    check(cols % block == 0, w_.file->path() + ": rows of '" + e.name + "' are not whole " + tensor_type_name(e.type) +
                                 " blocks");
    WeightMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.stored = e.type;
    const size_t off_bytes = tensor_type_nbytes(e.type, offset, e.name);
    const size_t nbytes = size_t(m.bytes());
    m.data = e.data + off_bytes;
    if (copy_) {
      uint8_t* buf = w_.owned.allocate(nbytes);
      std::memcpy(buf, e.data + off_bytes, nbytes);
      m.data = buf;
    }
    w_.bytes += int64_t(nbytes);  // n_params was counted by matrix_from
    return m;
  }

  WeightMatrix matrix(const std::string& n, int64_t rows, int64_t cols) {
    const TensorEntry& e = entry(n);
    check_shape(e, {rows, cols}, w_.file->path());
    return matrix_from(e, rows, cols, 0);
  }
  WeightMatrix matrix(Role r, int l, int64_t rows, int64_t cols) { return matrix(name(r, l), rows, cols); }

  ExpertWeights expert(int l, int e) {
    const int64_t D = c_.dim, F = c_.moe.expert_hidden;
    ExpertWeights x;
    if (gguf_) {  // stacked [E, F, D] / [E, D, F]
      const std::string p = "blk." + std::to_string(l) + ".";
      auto stacked = [&](const char* n, int64_t rows, int64_t cols) {
        const TensorEntry& t = entry(p + n);
        check_shape(t, {c_.moe.n_experts, rows, cols}, w_.file->path());
        return matrix_from(t, rows, cols, int64_t(e) * rows * cols);
      };
      x.gate = stacked("ffn_gate_exps.weight", F, D);
      x.up = stacked("ffn_up_exps.weight", F, D);
      x.down = stacked("ffn_down_exps.weight", D, F);
      if (c_.moe.router_bias) {
        x.gate_bias = stacked_vec(p + "ffn_gate_exps.bias", e, F, 0, 1);
        x.up_bias = stacked_vec(p + "ffn_up_exps.bias", e, F, 0, 1);
        x.down_bias = stacked_vec(p + "ffn_down_exps.bias", e, D, 0, 1);
      }
      return x;
    }
    if (row_.fused_experts) return fused_expert(l, e);
    x.gate = matrix(row_.expert_name(l, e, arch::ExpertPart::Gate), F, D);
    x.up = matrix(row_.expert_name(l, e, arch::ExpertPart::Up), F, D);
    x.down = matrix(row_.expert_name(l, e, arch::ExpertPart::Down), D, F);
    return x;
  }

  // Row e of a stacked [E, n * step] f32/bf16/f16 vector tensor, every `step`-th
  // value from `first` (gpt-oss interleaves gate and up biases).
  std::vector<float> stacked_vec(const std::string& n, int e, int64_t count, int64_t first, int64_t step) {
    const TensorEntry& t = entry(n);
    check_shape(t, {c_.moe.n_experts, count * step}, w_.file->path());
    check(!tensor_type_is_quantized(t.type), w_.file->path() + ": '" + n + "' must be f32, f16 or bf16");
    std::vector<float> row(static_cast<size_t>(count * step));
    dequantize_row(t.type, t.data + tensor_type_nbytes(t.type, int64_t(e) * count * step, n), row.data(), count * step);
    std::vector<float> out(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) out[size_t(i)] = row[size_t(first + i * step)];
    w_.n_params += count;
    w_.bytes += count * 4;
    return out;
  }

  // gpt-oss's experts in config.json checkpoints: mlp.experts.gate_up_proj (gate
  // rows even, up rows odd) and down_proj, either as mxfp4 (*_blocks [E, rows,
  // cols/32, 16] + *_scales [E, rows, cols/32]) or as floats stored [E, in, out].
  ExpertWeights fused_expert(int l, int e) {
    const int64_t D = c_.dim, F = c_.moe.expert_hidden;
    const std::string p = "model.layers." + std::to_string(l) + ".mlp.experts.";
    ExpertWeights x;
    const bool mxfp4 = w_.file->contains(p + "gate_up_proj_blocks");
    x.gate = mxfp4 ? mxfp4_rows(p + "gate_up_proj", e, 2 * F, D, 0, 2) : transposed_rows(p + "gate_up_proj", e, D, 2 * F, 0, 2);
    x.up = mxfp4 ? mxfp4_rows(p + "gate_up_proj", e, 2 * F, D, 1, 2) : transposed_rows(p + "gate_up_proj", e, D, 2 * F, 1, 2);
    x.down = mxfp4 ? mxfp4_rows(p + "down_proj", e, D, F, 0, 1) : transposed_rows(p + "down_proj", e, F, D, 0, 1);
    x.gate_bias = stacked_vec(p + "gate_up_proj_bias", e, F, 0, 2);
    x.up_bias = stacked_vec(p + "gate_up_proj_bias", e, F, 1, 2);
    x.down_bias = stacked_vec(p + "down_proj_bias", e, D, 0, 1);
    return x;
  }

  // Rows first, first + step, ... of expert e's [rows, cols] mxfp4 matrix,
  // repacked into ggml's block layout ({e8m0 scale, 16 bytes: element j in the
  // low nibble of byte j, element j + 16 in its high nibble}); the checkpoint
  // puts element 2j in the low nibble of byte j and element 2j + 1 in its high one.
  WeightMatrix mxfp4_rows(const std::string& n, int e, int64_t rows, int64_t cols, int64_t first, int64_t step) {
    const TensorEntry& blocks = entry(n + "_blocks");
    const TensorEntry& scales = entry(n + "_scales");
    check(cols % 32 == 0, w_.file->path() + ": '" + blocks.name + "': row length is not a multiple of 32");
    const int64_t nb = cols / 32, E = c_.moe.n_experts;
    check(blocks.type == TensorType::U8 && scales.type == TensorType::U8,
          w_.file->path() + ": mxfp4 tensors '" + blocks.name + "' and '" + scales.name + "' must be U8");
    check_shape(blocks, {E, rows, nb, 16}, w_.file->path());
    check_shape(scales, {E, rows, nb}, w_.file->path());
    const int64_t out_rows = rows / step;
    TensorEntry packed;
    packed.name = blocks.name;
    packed.type = TensorType::MXFP4;
    packed.shape = {out_rows, cols};
    packed.nbytes = size_t(out_rows * nb * 17);
    uint8_t* dst = w_.owned.allocate(packed.nbytes);
    for (int64_t r = 0; r < out_rows; ++r) {
      const int64_t src_row = int64_t(e) * rows + first + r * step;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* q = blocks.data + (src_row * nb + b) * 16;
        uint8_t* o = dst + (r * nb + b) * 17;
        o[0] = scales.data[src_row * nb + b];
        uint8_t v[32];
        for (int j = 0; j < 16; ++j) {
          v[2 * j] = q[j] & 0x0f;
          v[2 * j + 1] = q[j] >> 4;
        }
        for (int j = 0; j < 16; ++j) o[1 + j] = uint8_t(v[j] | (v[j + 16] << 4));
      }
    }
    packed.data = dst;
    return matrix_from(packed, out_rows, cols, 0);
  }

  // Rows first, first + step, ... of W^T for expert e's [in, out] float matrix
  // (applied as x @ W), as a [out / step, in] matrix.
  WeightMatrix transposed_rows(const std::string& n, int e, int64_t in, int64_t out, int64_t first, int64_t step) {
    const TensorEntry& t = entry(n);
    check_shape(t, {c_.moe.n_experts, in, out}, w_.file->path());
    check(!tensor_type_is_quantized(t.type), w_.file->path() + ": '" + n + "' must be f32, f16 or bf16");
    const int64_t rows = out / step;
    std::vector<float> src(static_cast<size_t>(in * out));
    const size_t esize = tensor_type_block_bytes(t.type);
    dequantize_row(t.type, t.data + size_t(int64_t(e) * in * out) * esize, src.data(), in * out);
    TensorEntry tr;
    tr.name = n;
    tr.type = TensorType::F32;
    tr.shape = {rows, in};
    tr.nbytes = size_t(rows * in * 4);
    auto* dst = reinterpret_cast<float*>(w_.owned.allocate(tr.nbytes));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < in; ++i) dst[r * in + i] = src[size_t(i * out + first + r * step)];
    tr.data = reinterpret_cast<const uint8_t*>(dst);
    return matrix_from(tr, rows, in, 0);
  }

  std::vector<float> router_bias(int l) {
    if (gguf_) return vec(Role::RouterBias, l, c_.moe.n_experts);
    std::string n = row_.router_name(l);
    n.replace(n.size() - 6, 6, "bias");  // ".weight" -> ".bias"
    const TensorEntry& t = entry(n);
    check(t.numel() == c_.moe.n_experts, w_.file->path() + ": tensor '" + n + "' must hold one bias per expert");
    std::vector<float> out(static_cast<size_t>(c_.moe.n_experts));
    dequantize(t, out.data());
    return out;
  }

  WeightMatrix router(int l) {
    if (gguf_ || !row_.router_name) return matrix(Role::Router, l, c_.moe.n_experts, c_.dim);
    return matrix(row_.router_name(l), c_.moe.n_experts, c_.dim);
  }

 private:
  ModelWeights& w_;
  const ModelConfig& c_;
  DType dtype_;
  bool copy_;
  bool keep_stored_;
  bool gguf_;
  const arch::ArchRow& row_;
};

}  // namespace

std::unique_ptr<ModelWeights> bind_weights(std::unique_ptr<TensorFile> file, const ModelConfig& c,
                                           DType matrix_dtype, bool copy_matrices, bool keep_stored) {
  check(matrix_dtype == DType::F32 || matrix_dtype == DType::BF16, "weights: dtype must be f32 or bf16");
  auto w = std::make_unique<ModelWeights>();
  w->file = std::move(file);
  Binder b(*w, c, matrix_dtype, copy_matrices, keep_stored);
  const int64_t D = c.dim, hd = c.head_dim, qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  w->embed = b.matrix(Role::Embed, 0, c.vocab, D);
  w->out_norm = b.norm(Role::OutNorm, 0, D);
  if (b.has(Role::Output)) {
    w->output = b.matrix(Role::Output, 0, c.vocab, D);
  } else {
    check(c.tied_embeddings || w->file->format() != FileFormat::Safetensors,
          w->file->path() + ": no lm_head.weight and tie_word_embeddings is false");
    w->output = w->embed;
  }
  w->layers.resize(size_t(c.n_layers));
  for (int l = 0; l < int(c.n_layers); ++l) {
    LayerWeights& L = w->layers[size_t(l)];
    L.attn_norm = b.norm(Role::AttnNorm, l, D);
    L.ffn_norm = b.norm(Role::FfnNorm, l, D);
    if (c.post_norms) {
      L.post_attn_norm = b.norm(Role::PostAttnNorm, l, D);
      L.post_ffn_norm = b.norm(Role::PostFfnNorm, l, D);
    }
    L.wq = b.matrix(Role::Wq, l, qd, D);
    L.wk = b.matrix(Role::Wk, l, kvd, D);
    L.wv = b.matrix(Role::Wv, l, kvd, D);
    L.wo = b.matrix(Role::Wo, l, D, qd);
    if (c.qkv_bias) {
      L.bq = b.vec(Role::Bq, l, qd);
      L.bk = b.vec(Role::Bk, l, kvd);
      L.bv = b.vec(Role::Bv, l, kvd);
    }
    if (c.o_bias) L.bo = b.opt_vec(Role::Bo, l, D);
    if (c.qk_norm) {
      L.q_norm = b.norm(Role::QNorm, l, hd);
      L.k_norm = b.norm(Role::KNorm, l, hd);
    }
    if (c.qk_norm_full) {
      L.q_norm = b.vec(Role::QNorm, l, qd);
      L.k_norm = b.vec(Role::KNorm, l, kvd);
    }
    if (c.sink_logits) L.sinks = b.vec(Role::Sinks, l, c.n_heads);
    if (c.prior.kind == PriorKind::Goat) {
      const int64_t R = c.prior.goat_rank, Hu = c.prior.goat_u_hidden;
      L.prior_sym = b.vec(Role::PriorSym, l, c.n_kv_heads * R);
      L.prior_asym = b.vec(Role::PriorAsym, l, c.n_kv_heads * R);
      L.prior_key_w1 = b.vec(Role::PriorKeyW1, l, Hu * goat_feature_count(c.prior));
      L.prior_key_b1 = b.vec(Role::PriorKeyB1, l, Hu);
      L.prior_key_w2 = b.vec(Role::PriorKeyW2, l, c.n_kv_heads * Hu);
      L.prior_first = b.vec(Role::PriorFirst, l, c.n_kv_heads);
    }
    if (c.moe.n_experts == 0) {
      L.ffn.gate = b.matrix(Role::Gate, l, c.hidden, D);
      L.ffn.up = b.matrix(Role::Up, l, c.hidden, D);
      L.ffn.down = b.matrix(Role::Down, l, D, c.hidden);
      continue;
    }
    L.router = b.router(l);
    if (c.moe.router_bias) L.router_bias = b.router_bias(l);
    for (int e = 0; e < c.moe.n_experts; ++e) L.experts.push_back(b.expert(l, e));
    if (c.moe.shared_hidden > 0) {
      const int64_t F = c.moe.shared_hidden;
      L.shared.gate = b.matrix(Role::SharedGate, l, F, D);
      L.shared.up = b.matrix(Role::SharedUp, l, F, D);
      L.shared.down = b.matrix(Role::SharedDown, l, D, F);
      if (c.moe.shared_gate) L.shared_gate = b.vec(Role::SharedGateInp, l, D);
    }
  }
  return w;
}

}  // namespace sinklab
