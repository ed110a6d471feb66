// sinklab attention: one spec, one entry point, every variant the
// attention-sink literature uses.
//
// Layout (as PyTorch's scaled_dot_product_attention):
//   q [batch, n_heads,    n_q, head_dim]      o   [batch, n_heads, n_q, v_dim]
//   k [batch, n_kv_heads, n_k, head_dim]      lse [batch, n_heads, n_q]   (float32)
//   v [batch, n_kv_heads, n_k, v_dim]
// n_kv_heads must divide n_heads (GQA / MQA). head_dim, v_dim <= 256.
//
// The logit of query i and key j of query head h (kv head g = h / (n_heads/n_kv_heads)):
//   s_ij = scale * <rope(q_i, qpos_i), rope(k_j, kpos_j)>
//   s_ij = softcap * tanh(s_ij / softcap)                       (if softcap > 0)
//   z_ij = s_ij + kappa_g(qpos_i - kpos_j) + u_g(j) - alibi_h * |qpos_i - kpos_j|
//   z_ij = -inf where the mask hides key j from query i
// and with a per-head sink logit S_h (natural-log units, not scaled):
//   p_ij = exp(z_ij) / (exp(S_h) + sum_k exp(z_ik)),  o_i = sum_j p_ij v_j,
//   lse_i = log(exp(S_h) + sum_k exp(z_ik)).
// A row with every key hidden gives o = 0 and lse = S_h (or -inf without a sink).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sinklab/core.h"

namespace sinklab {

enum class RopeStyle : uint8_t {
  None,
  RotateHalf,   // pairs (x[i], x[i + d/2]): Hugging Face / GPT-NeoX
  Interleaved,  // pairs (x[2i], x[2i+1]): llama2.c / GPT-J / GGUF llama
};
enum class RopeScaling : uint8_t {
  None,
  Linear,  // positions divided by factor
  NTK,     // static NTK-aware: base multiplied by factor^(d/(d-2))
  YaRN,    // per-frequency blend of interpolation and extrapolation + attention factor
  Llama3,  // Llama 3.1 wavelength-dependent scaling
};

struct RopeSpec {
  RopeStyle style = RopeStyle::None;
  float theta = 10000.f;
  int rotary_dim = 0;  // channels rotated, from the start of the head (0 = all); even
  RopeScaling scaling = RopeScaling::None;
  float factor = 1.f;
  int original_context = 0;  // YaRN / Llama3: original maximum position count
  float beta_fast = 32.f;    // YaRN
  float beta_slow = 1.f;     // YaRN
  bool yarn_truncate = true; // YaRN: round the correction range to whole dimensions (gpt-oss: false)
  float attn_factor = 0.f;   // YaRN: multiplies cos/sin; 0 = 0.1*ln(factor)+1
  float low_freq_factor = 1.f;   // Llama3
  float high_freq_factor = 4.f;  // Llama3
  // Per-frequency divisors applied after the scaling above (llama.cpp's
  // rope_freqs.weight, rotary_dim/2 entries); null = none.
  std::shared_ptr<const std::vector<float>> freq_factors;
};

// Inverse frequencies (rotary_dim/2 of them) after scaling, and the factor that
// multiplies cos and sin (1 except YaRN).
struct RopeTable {
  std::vector<double> inv_freq;
  float mscale = 1.f;
};
RopeTable rope_table(const RopeSpec& rope, int head_dim);
// Rotates one vector of head_dim floats in place to position pos (exposed for
// caches that store rotated keys and for tests).
void rope_rotate(const RopeSpec& rope, const RopeTable& table, float* x, int head_dim, double pos);
// cos and sin (times mscale) of one position's angles, one per frequency: a
// token's heads all turn by the same angles, so a model step computes them once
// per token rather than once per head and layer.
struct RopeAngles {
  std::vector<float> cos, sin;
};
RopeAngles rope_angles(const RopeTable& table, double pos);
// The same rotation as rope_rotate, with angles from rope_angles.
void rope_rotate(const RopeSpec& rope, const RopeAngles& angles, float* x);

// GOAT relative prior: kappa_g(d) = sum_r lambda_sym[g][r] cos(w_r d) + lambda_asym[g][r] sin(w_r d),
// w_r = base^(-r/(rank-1)) (w_0 = 1 when rank = 1).
struct GoatRelative {
  int rank = 0;                         // 0 = off
  float base = 1e4f;
  const float* lambda_sym = nullptr;   // [n_kv_heads, rank]
  const float* lambda_asym = nullptr;  // [n_kv_heads, rank]
};
std::vector<double> goat_frequencies(int rank, double base);
// The standard ALiBi slopes (Press et al.): 2^(-8h/n) for a power-of-two n,
// interleaved with the next power of two's odd slopes otherwise.
std::vector<float> alibi_slopes(int n_heads);

// How a row of logits becomes attention weights.
//   Softmax  p_ij = exp(z_ij) / (exp(S_h) + sum_k exp(z_ik))  (the sink logit S_h when given)
//   Relu     p_ij = max(z_ij, 0), unnormalised (Guo et al.'s control: a head can give
//            every key zero weight, so it needs no sink); lse is written as 0. Computed
//            by the float64 reference (materialised), in forward and backward.
enum class AttnNormalization : uint8_t { Softmax, Relu };

struct AttnSpec {
  float scale = 0.f;  // 0 = 1/sqrt(head_dim)
  AttnNormalization normalization = AttnNormalization::Softmax;

  // Mask. Key j is visible to query i when
  //   (!causal || kpos_j <= qpos_i) && (j < sink_keys || window == 0 || |qpos_i - kpos_j| < window).
  bool causal = true;
  int window = 0;     // Mistral / Hugging Face: query at p sees keys p-W+1 .. p
  int sink_keys = 0;  // the first sink_keys keys are exempt from the window

  // Positions (int32). Null: qpos_i = i + n_k - n_q, kpos_j = j. Shape [batch, n]
  // with the given batch stride (0 = shared by the whole batch).
  const int32_t* q_pos = nullptr;
  const int32_t* k_pos = nullptr;
  int64_t q_pos_batch_stride = 0;
  int64_t k_pos_batch_stride = 0;

  RopeSpec rope;  // applied inside the kernel to un-rotated q and k

  float softcap = 0.f;  // > 0: s = softcap * tanh(s / softcap)

  const float* sink_logits = nullptr;  // [n_heads]; null = no sink logit

  // Additive priors.
  GoatRelative goat;                     // relative Fourier prior per kv head
  TensorView key_bias;                   // u: [batch, n_kv_heads, n_k] f32; may hold -inf to hide keys
  const float* alibi_slopes = nullptr;   // [n_heads]

  bool check_finite = false;  // scan inputs for NaN/Inf and throw Error
};

// Optional statistics, computed without materialising the attention matrix.
// Each non-empty view is filled (f32):
//   mass_first_k [batch, n_heads, n_q]: sum over keys j < first_k of p_ij
//   entropy      [batch, n_heads, n_q]: -sum p log p over keys and the sink logit
//   column_sums  [batch, n_heads, n_k]: sum over queries of p_ij
struct AttnStats {
  int first_k = 1;
  TensorView mass_first_k;
  TensorView entropy;
  TensorView column_sums;
};

enum class AttnImpl : uint8_t { Auto, Reference, Flash };

// Forward. o: f32 or bf16; lse optional (f32). Inputs f32 or bf16 (reference: any dtype).
void attention_forward(const AttnSpec& spec, const TensorView& q, const TensorView& k,
                       const TensorView& v, const TensorView& o, const TensorView& lse = {},
                       AttnStats* stats = nullptr, AttnImpl impl = AttnImpl::Auto);

// Gradients; every non-null output is overwritten (f32).
struct AttnGrads {
  TensorView dq, dk, dv;               // shapes of q, k, v (un-rotated inputs)
  float* d_sink_logits = nullptr;      // [n_heads]
  float* d_lambda_sym = nullptr;       // [n_kv_heads, rank]
  float* d_lambda_asym = nullptr;      // [n_kv_heads, rank]
  TensorView d_key_bias;               // [batch, n_kv_heads, n_k]
  float* d_alibi_slopes = nullptr;     // [n_heads]
};

// Backward from the forward's o and lse (as attention_forward wrote them) and dO.
void attention_backward(const AttnSpec& spec, const TensorView& q, const TensorView& k,
                        const TensorView& v, const TensorView& o, const TensorView& lse,
                        const TensorView& d_o, AttnGrads& grads, AttnImpl impl = AttnImpl::Auto);

// ---- float64 oracle (materialised) ----
struct ReferenceForward {
  std::vector<double> o;     // [b, h, n_q, v_dim]
  std::vector<double> lse;   // [b, h, n_q]
  std::vector<double> prob;  // [b, h, n_q, n_k]
  std::vector<double> mass_first_k, entropy, column_sums;
};
ReferenceForward attention_reference(const AttnSpec& spec, const TensorView& q,
                                     const TensorView& k, const TensorView& v, int first_k = 1);

struct ReferenceGrads {
  std::vector<double> dq, dk, dv, d_sink_logits, d_lambda_sym, d_lambda_asym, d_key_bias,
      d_alibi_slopes;
};
ReferenceGrads attention_reference_backward(const AttnSpec& spec, const TensorView& q,
                                            const TensorView& k, const TensorView& v,
                                            const TensorView& d_o);

// ---- GOAT channel folding ----
// Builds q~ [b, n_heads, n_q, Dc+2R+1] and k~ [b, n_kv_heads, n_k, Dc+2R+1] (f32) so that plain
// attention with scale 1 and no prior computes <q_c,k_c>*content_scale + kappa(qpos-kpos) + u(j).
// content_scale 0 = 1/sqrt(Dc). key_bias (u) may be empty (= 0). Positions as in AttnSpec.
void goat_fold(const GoatRelative& goat, const TensorView& q, const TensorView& k,
               const TensorView& key_bias, const AttnSpec& positions, float content_scale,
               const TensorView& q_out, const TensorView& k_out);

}  // namespace sinklab
