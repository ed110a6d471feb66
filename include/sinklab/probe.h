// Probes: measurements of attention sinks and their companions (massive
// activations, value norms, super experts, propagation) driven only by named
// taps, so they work on every architecture the model runtime loads.
//
// Every probe that takes a Session resets it, feeds `ids` as one prefill and
// removes its taps before returning; the overloads taking a Model make a fresh
// Session whose context fits the ids. Token positions in results are indices
// into `ids`. Results are plain structs; to_json() writes each as a JSON object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/model.h"

namespace sinklab {

// ------------------------------------------------------------- capture ----
// A copy of one tapped tensor, row-major [rows, cols].
struct CapturedTensor {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  std::vector<int32_t> row_ids;  // expert outputs: the token rows they came from
  const float* row(int64_t r) const { return data.data() + r * cols; }
};

// Throws Error when materialising the attention probabilities of `layers`
// layers over n_tokens tokens (heads x n^2 floats each) would not fit in this
// machine's memory; capture_taps checks it for every blk.L.attn_probs asked for.
void check_attention_capture_fits(const ModelConfig& config, int64_t n_tokens, int64_t layers, const char* what);

// Resets the session, feeds ids and returns a copy of every named tensor (exact
// names, no '*'). Throws Error when ids is empty or a name never fired (an
// unknown tap name, or a layer the model does not have).
std::map<std::string, CapturedTensor> capture_taps(Session& session, std::span<const int32_t> ids,
                                                   const std::vector<std::string>& names);

// ---------------------------------------------------------- sink scores ----
// Options of a dense session whose every forward covers `n_tokens` tokens at
// once (a model's sliding layers included): what probes that read a whole
// sequence's attention through taps need.
SessionOptions probe_session_options(int64_t n_tokens);

struct SinkScoreOptions {
  double eps = 0.3;           // a (layer, head) counts as a sink of key k when alpha_k > eps
  int max_keys = 0;           // alpha is reported for keys 0..max_keys-1; 0 = every key
  int first_k = 4;            // width of the sink region for mass_first_k (StreamingLLM keeps 4)
  std::vector<int> layers;    // empty = every layer
};

// Gu et al.: alpha_k^{l,h} = mean over queries i >= k of A^{l,h}_{i,k};
// Sink_k^eps = percentage of the measured (layer, head) pairs with alpha_k > eps.
struct SinkScores {
  double eps = 0.3;
  int first_k = 1;
  int64_t n_heads = 0, n_tokens = 0, n_keys = 0;
  std::vector<int> layers;            // the measured layers, in order
  std::vector<double> alpha;          // [layers.size(), n_heads, n_keys]
  std::vector<double> sink_percent;   // [n_keys]: Sink_k^eps in percent
  std::vector<double> mass_first_k;   // [layers.size(), n_heads]: mean over queries of sum_{j<first_k} A_ij
  // [layers.size(), n_heads]: mean over queries of the attention the learned sink
  // logit takes, 1 - sum_j A_ij (about 0 for a model without sink logits). Next to
  // alpha_0 it says whether a head parks its spare attention on the logit or on token 0.
  std::vector<double> sink_logit_mass;

  double alpha_at(size_t layer_index, int64_t head, int64_t key) const {
    return alpha[(layer_index * size_t(n_heads) + size_t(head)) * size_t(n_keys) + size_t(key)];
  }
};
SinkScores sink_scores(Session& session, std::span<const int32_t> ids, const SinkScoreOptions& opts = {});
SinkScores sink_scores(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                       const SinkScoreOptions& opts = {});
// The same statistics from materialised probabilities [n_heads, n, n] of one layer
// (exposed so that other attention sources can be scored identically).
void add_sink_layer(SinkScores& scores, int layer, const float* probs);

// -------------------------------------------------- massive activations ----
struct MassiveActivationOptions {
  double abs_threshold = 100;     // |h| must exceed this ...
  double ratio_threshold = 1000;  // ... and be this many times the layer's median |h|
  int top_n = 5;                  // entries reported per layer, largest |h| first
  size_t max_flagged = 1000;      // at most this many flagged entries are listed per layer
  std::vector<int> layers;        // empty = every layer
};

struct ActivationEntry {
  int64_t dim = 0, token = 0;  // token = position in ids
  int32_t token_id = 0;
  float value = 0;
  double ratio = 0;            // |value| / median |h| (infinity when the median is 0)
  bool above_abs = false, above_ratio = false;
  bool massive() const { return above_abs && above_ratio; }
};

// Residual stream after each block (blk.L.resid_out); the median is taken over
// every entry of that layer's hidden states [tokens, dim].
struct MassiveLayer {
  int layer = 0;
  double median_abs = 0, max_abs = 0, max_ratio = 0;
  std::vector<ActivationEntry> top;      // top_n by |h|
  std::vector<ActivationEntry> flagged;  // every massive entry (up to max_flagged), largest first
  int64_t n_flagged = 0;
};

struct MassiveActivations {
  double abs_threshold = 0, ratio_threshold = 0;
  std::vector<MassiveLayer> layers;
};
MassiveActivations massive_activations(Session& session, std::span<const int32_t> ids,
                                       const MassiveActivationOptions& opts = {});
MassiveActivations massive_activations(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                                       const MassiveActivationOptions& opts = {});

// ---------------------------------------------------------- value norms ----
struct ValueNormOptions {
  int first_n = 8;          // tokens 0..first_n-1 (clamped to the ids); 0 = every token
  std::vector<int> layers;  // empty = every layer
};

// ||v_t|| per layer and kv head from blk.L.v.
struct ValueNorms {
  int64_t n_kv_heads = 0, n_tokens = 0;
  std::vector<int> layers;
  std::vector<double> norms;  // [layers.size(), n_kv_heads, n_tokens]
  double at(size_t layer_index, int64_t head, int64_t token) const {
    return norms[(layer_index * size_t(n_kv_heads) + size_t(head)) * size_t(n_tokens) + size_t(token)];
  }
};
ValueNorms value_norms(Session& session, std::span<const int32_t> ids, const ValueNormOptions& opts = {});
ValueNorms value_norms(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                       const ValueNormOptions& opts = {});

// ---------------------------------------------------------- propagation ----
struct PropagationOptions {
  bool keep_attention = false;  // also return the head-averaged attention of every layer
};

// Per layer l, with A_l the head-averaged attention and X_l = blk.l.resid_out [n, dim]:
//   centered_ratio   = ||X - 1 xbar^T||_F / ||X||_F
//   effective_rank   = exp(H(sigma / ||sigma||_1)) over the singular values of X
//   dirichlet_energy = sum_ij A_ij ||x_i - x_j||^2 (normalized: divided by ||X||_F^2)
struct PropagationLayer {
  int layer = 0;
  double centered_ratio = 0, effective_rank = 0, dirichlet_energy = 0, dirichlet_energy_normalized = 0;
  std::vector<double> singular_values;  // descending
};

// Rollout P = prod_l (A_l/2 + I/2) = M_{L-1} ... M_0; influence_on_last = last row of P
// (how much the last token can be influenced by each position; sums to 1 when the
// attention rows do).
struct Propagation {
  int64_t n_tokens = 0;
  std::vector<double> influence_on_last;  // [n_tokens]
  std::vector<PropagationLayer> layers;
  std::vector<double> attention;          // [layers, n, n] when keep_attention
};
Propagation propagation(Session& session, std::span<const int32_t> ids, const PropagationOptions& opts = {});
Propagation propagation(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                        const PropagationOptions& opts = {});

// Rank-collapse measures of one matrix X [rows, cols] (row-major).
struct RankMeasures {
  double centered_ratio = 0, effective_rank = 0;
  std::vector<double> singular_values;  // descending, min(rows, cols) of them
};
RankMeasures rank_measures(const float* x, int64_t rows, int64_t cols);

// -------------------------------------------------------- super experts ----
struct SuperExpertOptions {
  double percentile = 99.5;       // max_out must exceed this percentile of all experts' max_out ...
  double max_fraction = 0.1;      // ... and this fraction of the largest max_out
  double layer_fraction = 0.75;   // only layers < layer_fraction * n_layers qualify
};

struct ExpertStat {
  int layer = 0, expert = 0;
  double max_out = 0;        // max |down_proj output| over every routed token of every batch
  int64_t argmax_dim = -1;   // the output channel where it occurs
  int64_t routed = 0;        // token rows routed to the expert
  bool super = false;
};

struct SuperExperts {
  int n_layers = 0, n_experts = 0;
  double percentile_value = 0, overall_max = 0;  // over all experts of all layers
  std::vector<ExpertStat> experts;               // [n_layers * n_experts], layer-major
  std::vector<ExpertStat> supers;                // the flagged ones, largest max_out first
};
// Each batch is fed to a fresh prefill. Throws Error for a dense model or empty batches.
SuperExperts super_experts(const std::shared_ptr<const Model>& model,
                           const std::vector<std::vector<int32_t>>& batches, const SuperExpertOptions& opts = {});
SuperExperts super_experts(Session& session, const std::vector<std::vector<int32_t>>& batches,
                           const SuperExpertOptions& opts = {});
// numpy-style linear-interpolation percentile (q in [0, 100]) of values.
double percentile(std::vector<double> values, double q);

// ------------------------------------------------------- sink emergence ----
// What a training run watches to see a sink form (and what inspect reports on
// a model trained on a synthetic task), over a set of sequences that each
// start at the token under watch (BOS, or the learned sink token):
//   alpha_rule / alpha_free  mean attention on token 0 per (layer, head), over
//                            the queries t >= 1 of each kind (rule: the next
//                            token is a copy or recall; free: nothing to look up)
//   value_drain              ||v_0|| / mean_{t >= 1} ||v_t|| per (layer, kv head)
//   sink_logit_free / _rule  mean attention the queries of each kind give to no key
//                            (1 - sum_j p_ij: the share a sink logit takes; 0 without one)
//   resid_norm_ratio         ||h_0|| / median_t ||h_t|| of the residual stream
//                            after each layer (blk.L.resid_out)
// Each sequence is a fresh prefill; means weight every query (or token) alike.
// Under ReLU attention (unnormalised weights) alpha is token 0's share of a row's weight.
struct SinkEmergence {
  int64_t n_layers = 0, n_heads = 0, n_kv_heads = 0;
  int64_t sequences = 0, rule_queries = 0, free_queries = 0;
  std::vector<double> alpha_rule, alpha_free;  // [n_layers, n_heads]; NaN when no query of that kind
  std::vector<double> sink_logit_free, sink_logit_rule;  // [n_layers, n_heads]; NaN when no query of that kind
  std::vector<double> value_drain;             // [n_layers, n_kv_heads]
  std::vector<double> resid_norm_ratio;        // [n_layers]
  double alpha_free_at(int64_t l, int64_t h) const { return alpha_free[size_t(l * n_heads + h)]; }
  double alpha_rule_at(int64_t l, int64_t h) const { return alpha_rule[size_t(l * n_heads + h)]; }
};
// kinds[s][t] != 0 marks query t of sequence s as a rule query; kinds may be
// empty (every query free). Throws Error on empty or mismatched input.
SinkEmergence sink_emergence(Session& session, const std::vector<std::vector<int32_t>>& sequences,
                             const std::vector<std::vector<uint8_t>>& kinds);
SinkEmergence sink_emergence(const std::shared_ptr<const Model>& model,
                             const std::vector<std::vector<int32_t>>& sequences,
                             const std::vector<std::vector<uint8_t>>& kinds);

// --------------------------------------------------------------- JSON ----
void to_json(nlohmann::json& j, const SinkScores& s);
void to_json(nlohmann::json& j, const ActivationEntry& a);
void to_json(nlohmann::json& j, const MassiveLayer& m);
void to_json(nlohmann::json& j, const MassiveActivations& m);
void to_json(nlohmann::json& j, const ValueNorms& v);
void to_json(nlohmann::json& j, const PropagationLayer& p);
void to_json(nlohmann::json& j, const Propagation& p);
void to_json(nlohmann::json& j, const ExpertStat& e);
void to_json(nlohmann::json& j, const SuperExperts& s);
void to_json(nlohmann::json& j, const SinkEmergence& s);

}  // namespace sinklab
