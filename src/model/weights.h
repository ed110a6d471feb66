// The weights of a decoder, resolved from a TensorFile into per-layer roles.
// Matrices are zero-copy views into the mapped file when their dtype is f32 or
// bf16 and they are aligned; anything else is converted once at load time.
#pragma once

#include <memory>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab {

// A row-major [rows, cols] matrix (rows = output features); y = W x. Rows are
// f32 or bf16 (dtype), or stay in the block type they were stored in
// (stored: F16 or a ggml block type with kernels in quant_kernels.h; dtype
// is then unused) and are computed without dequantising the whole matrix.
struct WeightMatrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  TensorType stored = TensorType::F32;  // F32 = plain dtype rows
  int64_t rows = 0, cols = 0;
  bool empty() const { return data == nullptr; }
  bool quantized() const { return stored != TensorType::F32; }
  int64_t row_bytes() const {
    return quantized() ? cols / tensor_type_block_size(stored) * int64_t(tensor_type_block_bytes(stored))
                       : cols * int64_t(dtype_size(dtype));
  }
  int64_t bytes() const { return rows * row_bytes(); }
  const char* type_name() const { return quantized() ? tensor_type_name(stored) : dtype_name(dtype); }
};

struct ExpertWeights {
  WeightMatrix gate, up, down;
  std::vector<float> gate_bias, up_bias, down_bias;  // empty when absent (gpt-oss has them)
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> post_attn_norm, post_ffn_norm;  // Gemma: norms of the attention and FFN outputs
  WeightMatrix wq, wk, wv, wo;
  std::vector<float> bq, bk, bv, bo;   // empty when absent
  std::vector<float> q_norm, k_norm;   // [head_dim] or, for qk_norm_full, the whole projection
  std::vector<float> sinks;            // [n_heads] learned sink logits
  // GOAT prior (PriorConfig): lambda [n_kv_heads, rank]; u's MLP; first-token logit.
  std::vector<float> prior_sym, prior_asym, prior_key_w1, prior_key_b1, prior_key_w2, prior_first;
  ExpertWeights ffn;                   // dense FFN
  WeightMatrix router;                 // [n_experts, dim]
  std::vector<float> router_bias;      // [n_experts] (gpt-oss)
  std::vector<ExpertWeights> experts;
  ExpertWeights shared;
  std::vector<float> shared_gate;      // [dim]
};

// Process memory for copied and converted weights: 64-byte aligned pieces cut
// from blocks of at least 32 MiB on huge_page_alloc. A decode step
// streams every weight once; a standalone loop of a decode step's products read
// them 7-9% faster from huge pages, and vector loads that split cache lines read
// ~10% slower (docs/results/model-bench.md).
class WeightArena {
 public:
  uint8_t* allocate(size_t bytes);
  bool empty() const { return blocks_.empty(); }

 private:
  std::vector<AlignedPtr<uint8_t>> blocks_;
  uint8_t* next_ = nullptr;
  size_t left_ = 0;
};

struct ModelWeights {
  WeightMatrix embed;   // [vocab, dim]
  WeightMatrix output;  // [vocab, dim] (the embedding when tied)
  std::vector<float> out_norm;
  std::vector<LayerWeights> layers;

  std::unique_ptr<TensorFile> file;               // keeps zero-copy views alive
  WeightArena owned;  // copied and converted tensors
  int64_t n_params = 0;
  int64_t bytes = 0;
};

// Resolves every tensor the config needs (throws Error naming a missing or
// mis-shaped tensor) and converts what cannot be used in place.
// copy_matrices: copy even f32/bf16 matrices out of the mapped file into
// process memory (LoadOptions::mmap false).
// keep_stored: matrices stored in F16 or a ggml block type stay in it (views
// of the mapped file, or copies with copy_matrices); false converts them to
// matrix_dtype.
std::unique_ptr<ModelWeights> bind_weights(std::unique_ptr<TensorFile> file, const ModelConfig& c,
                                           DType matrix_dtype, bool copy_matrices = false, bool keep_stored = false);

}  // namespace sinklab
