// Inspection reports: every probe of sinklab/probe.h run on one token sequence,
// gathered into one JSON document and rendered as a self-contained HTML page
// (inline CSS, SVG and JS; nothing is fetched from the network).
//
// report.json keys (all always present):
//   format            "sinklab-inspect-report", version 1
//   verdict           SinkVerdict below: {sink, heads_above, heads_total, max_alpha0, eps,
//                     value_drain, value_drain_layer, massive_ratio, massive_ratio_layer,
//                     token0_is_sink_token, text, definitions, explanation}
//                     (non-finite numbers and absent layers are null)
//   model             path, format, arch, variant (config.json sinklab_variant or null),
//                     n_layers, n_heads, n_kv_heads, head_dim, dim, n_params, moe (bool), n_experts
//   text              source, n_tokens, ids (prepended tokens first), tokens (vocabulary entries), preview
//   options           eps, first_k, attention_map_size, value_norm_tokens, ablate (intervention specs)
//   sink_scores       probe JSON of SinkScores (alpha for keys 0..first_k-1)
//                     + top_heads [{layer, head, alpha0, mass_first_k}] (largest alpha0 first)
//   sink_logits       learned sink logits [n_layers][n_heads] of a sink-logit model, else null
//   attention_maps    [{layer, head, alpha0, size, probs}]: probs is size x size
//                     (the first `size` queries and keys of that head)
//   massive_activations  probe JSON of MassiveActivations + token0 [{layer, max_abs, ratio}]:
//                     max |h| of token 0 in that layer's residual stream and its ratio to the
//                     layer's median |h|
//   value_norms       probe JSON of ValueNorms
//   propagation       probe JSON of Propagation (without the attention matrices)
//   super_experts     {"moe": false, "reason": ...} for a dense model, else
//                     {"moe": true, ...probe JSON of SuperExperts}
//
// The verdict (sink_verdict) says in one line whether token 0 is an attention sink:
//   heads_above   number of (layer, head) pairs with alpha_0 > eps (alpha_0 = mean attention
//                 that the queries give to token 0; eps = InspectOptions::eps); heads_total =
//                 every measured (layer, head); sink = heads_above >= 1.
//   value_drain   over the layers with at least one head above eps (every layer when none),
//                 the smallest ||v_0|| / mean_{t>=1} ||v_t||, each norm averaged over kv heads,
//                 over the tokens of the value_norms probe (NaN with fewer than 2 tokens).
//   massive_ratio the largest, over layers, max |h| of token 0's residual stream entries
//                 (blk.L.resid_out) / that layer's median |h| over every token and dimension
//                 (the median of the massive_activations probe).
//   text          "sink on token 0: 11 of 12 heads with α0 > 0.3; value drain 0.08; massive ratio 240"
//                 or "no sink: max α0 = 0.05 ≤ ε = 0.3", plus what the attention variant adds
//                 (token 0 is a sink-token model's learned <|sink|> token; sink-logit models
//                 have learned sink logits).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/model.h"
#include "sinklab/probe.h"

namespace sinklab {

struct InspectOptions {
  double eps = 0.3;          // Sink_k^eps threshold
  int first_k = 4;           // alpha and Sink_k are reported for keys 0..first_k-1
  int top_heads = 4;         // attention maps of this many top sink heads
  int map_size = 64;         // attention maps show the first map_size queries and keys
  int value_norm_tokens = 16;
  std::string text_source;   // shown in the report (e.g. the text file's path)
  std::vector<std::string> ablate;  // interventions (sinklab/intervene.h); prepended tokens join the ids
};

struct InspectHead {
  int layer = 0, head = 0;
  double alpha0 = 0, mass_first_k = 0;
};

struct InspectAttentionMap {
  InspectHead head;
  int64_t size = 0;
  std::vector<float> probs;  // [size, size]
};

struct InspectReport {
  InspectOptions options;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;  // vocabulary entry of each id
  std::string variant;              // ModelConfig::variant ("" when the config does not say)
  bool token0_is_sink_token = false;  // sink-token model and ids[0] is its learned <|sink|> token
  std::vector<std::vector<float>> sink_logits;  // [layers][heads] learned sink logits; empty without
  SinkScores sinks;
  std::vector<InspectHead> top_heads;  // every (layer, head), largest alpha0 first
  std::vector<InspectAttentionMap> maps;
  MassiveActivations massive;
  std::vector<double> token0_max_abs;  // per massive.layers entry: max |h| of token 0 (NaN: not measured)
  ValueNorms value_norms;
  Propagation propagation;
  bool moe = false;
  SuperExperts super_experts;
};

// What the report says about attention sinks (definitions in the header comment).
struct SinkVerdict {
  bool sink = false;
  int64_t heads_above = 0, heads_total = 0;
  double max_alpha0 = 0, eps = 0;
  double value_drain = 0;       // NaN when it cannot be measured
  int value_drain_layer = -1;   // the layer where it occurs
  double massive_ratio = 0;     // NaN when it cannot be measured (infinity when a median is 0)
  int massive_ratio_layer = -1;
  bool token0_is_sink_token = false;
  std::string text;             // the one-line verdict
};

// The verdict of a report (throws Error when the report's arrays disagree in size).
SinkVerdict sink_verdict(const InspectReport& report);
// The definitions of the verdict's numbers, and a plain-English paragraph on what an
// attention sink is; both are written under "verdict" and shown in report.html.
const char* sink_verdict_definitions();
const char* attention_sink_explanation();
void to_json(nlohmann::json& j, const SinkVerdict& v);

// Called before each probe of run_inspect: its name, its index (0-based) and
// the number of probes.
using InspectProgress = std::function<void(const std::string& probe, int index, int count)>;

// Runs every probe on ids (throws Error for empty ids or bad options, and
// before any probe when the attention matrices would not fit in memory).
InspectReport run_inspect(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                          const InspectOptions& options = {}, const InspectProgress& progress = {});

// The report.json document described above.
nlohmann::json inspect_report_json(const Model& model, const InspectReport& report);

// A self-contained HTML page rendering a report.json document.
std::string inspect_report_html(const nlohmann::json& report);

// Short human-readable summary (a few lines) for the terminal; the first line is
// the verdict ("verdict:    sink on token 0: ...").
std::string inspect_summary(const nlohmann::json& report);

// Writes DIR/report.json and DIR/report.html (creating DIR); throws Error naming
// the file that could not be written.
void write_inspect_report(const std::string& dir, const nlohmann::json& report);

// A self-contained HTML page of a vision inspection (vision_inspection_json in
// sinklab/vision.h, with "image_png": a data: URI of the image the model saw,
// and optionally "after": a second inspection with a "label").
std::string vision_inspect_html(const nlohmann::json& report);

// A self-contained HTML page of a training run's probes.json (sinklab train
// --probe-every): emergence curves of the sink (attention on token 0 from free
// and rule queries, value drain, massive ratio) per layer over training steps.
std::string emergence_html(const nlohmann::json& probes);

}  // namespace sinklab
