// The C++ example of README.md, kept compiling and correct.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sinklab/attention.h"

TEST(ReadmeExample, SinkLogitsWindowAndStats) {
  // --- README example begins ---
  using namespace sinklab;
  const int64_t B = 1, H = 4, Hkv = 2, N = 256, D = 64;
  std::vector<float> q(B * H * N * D, 0.1f), k(B * Hkv * N * D, 0.2f), v(B * Hkv * N * D, 1.0f);
  std::vector<float> o(B * H * N * D), lse(B * H * N), mass(B * H * N);
  std::vector<float> sinks = {0.0f, 1.0f, -1.0f, 2.0f};  // one learned sink logit per head

  AttnSpec spec;              // causal by default
  spec.window = 64;           // Mistral-style sliding window ...
  spec.sink_keys = 4;         // ... that always keeps the first 4 keys (StreamingLLM)
  spec.sink_logits = sinks.data();
  spec.rope.style = RopeStyle::RotateHalf;  // RoPE applied inside the kernel

  AttnStats stats;            // attention mass on key 0, without materialising P
  stats.first_k = 1;
  stats.mass_first_k = TensorView(mass.data(), DType::F32, {B, H, N});
  attention_forward(spec, TensorView(q.data(), DType::F32, {B, H, N, D}),
                    TensorView(k.data(), DType::F32, {B, Hkv, N, D}),
                    TensorView(v.data(), DType::F32, {B, Hkv, N, D}),
                    TensorView(o.data(), DType::F32, {B, H, N, D}),
                    TensorView(lse.data(), DType::F32, {B, H, N}), &stats);
  // --- README example ends ---
  // All values are 1, so each output is 1 minus the sink logit's share.
  for (int64_t h = 0; h < H; ++h) {
    const int64_t i = N - 1;
    const double p_sink = std::exp(double(sinks[size_t(h)]) - double(lse[size_t(h * N + i)]));
    EXPECT_NEAR(o[size_t((h * N + i) * D)], 1.0 - p_sink, 1e-5);
    EXPECT_GT(mass[size_t(h * N + i)], 0.0f);
  }
}
