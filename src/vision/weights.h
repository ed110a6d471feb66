// The weights of a vision transformer in float32, bound from checkpoint tensor
// names (weights.cpp) and read by the forward (forward.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/vision.h"

namespace sinklab {

struct VisionLinear {
  std::vector<float> w, b;  // w [out, in] row-major; b [out] or empty
  int64_t out = 0, in = 0;
  bool present() const { return out > 0; }
};

struct VisionNorm {
  std::vector<float> w, b;  // LayerNorm scale and shift [dim]
};

struct VisionLayer {
  VisionNorm ln1, ln2;
  VisionLinear q, k, v, o, fc1, fc2;
  std::vector<float> ls1, ls2;  // LayerScale [dim] (DINOv2), empty otherwise
};

// SigLIP's multihead attention pooling: one learned probe attends over the
// tokens, then a residual MLP.
struct VisionMapHead {
  std::vector<float> probe;  // [dim]
  VisionLinear q, k, v, o, fc1, fc2;
  VisionNorm ln;
  bool present() const { return !probe.empty(); }
};

struct VisionWeights {
  VisionLinear patch;              // [dim, channels * patch * patch]
  std::vector<float> cls;          // [dim] or empty
  std::vector<float> registers;    // [n_registers, dim]
  std::vector<float> pos;          // [pos_prefix + grid * grid, dim]
  int pos_prefix = 0;              // 1 when the table has a CLS row
  VisionNorm pre, final;           // CLIP ln_pre; the last LayerNorm (CLIP: post_layernorm)
  std::vector<VisionLayer> layers;
  VisionLinear pooler;             // ViT pooler dense (tanh), optional
  VisionLinear proj;               // CLIP visual_projection, optional
  VisionMapHead head;              // SigLIP pooling head, optional
  int64_t n_params = 0;
};

// Binds the tensors of `file` for `config`; throws Error naming the tensor
// (and the expected shape) when one is missing or has another shape.
VisionWeights bind_vision_weights(const TensorFile& file, const VisionConfig& config);

}  // namespace sinklab
