// Writing a loaded Model back out as a GGUF v3 file with llama.cpp tensor
// names and metadata keys, so that Model::load reads it back to the same model.
#pragma once

#include <cstdint>
#include <string>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace sinklab {

struct GgufExportOptions {
  // Element type of the weight matrices: F32, F16, BF16, Q8_0, Q6_K, Q5_K,
  // Q4_K, Q4_0 or MXFP4 (quantised as llama.cpp's reference quantisers do,
  // without an importance matrix). Norm weights, biases, sink logits and
  // routers stay F32; a matrix whose rows are not a multiple of the block size
  // (32 elements for Q8_0, Q4_0 and MXFP4, 256 for the K types) is written as F32.
  TensorType type = TensorType::F32;
};

struct GgufExportSummary {
  std::string gguf_arch;      // general.architecture written
  bool permuted_qk = false;   // q/k rows reordered for llama.cpp's interleaved RoPE
  int64_t n_tensors = 0;
  int64_t n_converted = 0;    // tensors written in the requested type
  int64_t n_kept_f32 = 0;     // tensors written as F32
};

// Throws Error naming the feature when the model has something the GGUF
// loader cannot express (the file is then not written).
GgufExportSummary export_gguf(const Model& model, const std::string& path, const GgufExportOptions& opts = {});

// "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "mxfp4" (case-insensitive)
// -> TensorType; throws Error otherwise.
TensorType gguf_export_type_from_name(const std::string& name);

}  // namespace sinklab
