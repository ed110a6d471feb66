// Inspection reports: every probe of sinklab/probe.h run on one token sequence,
// gathered into one JSON document and rendered as a self-contained HTML page
// (inline CSS, SVG and JS; nothing is fetched from the network).
//
// report.json keys (all always present):
//   format            "sinklab-inspect-report", version 1
//   model             path, format, arch, n_layers, n_heads, n_kv_heads, head_dim, dim,
//                     n_params, moe (bool), n_experts
//   text              source, n_tokens, ids (prepended tokens first), tokens (vocabulary entries), preview
//   options           eps, first_k, attention_map_size, value_norm_tokens, ablate (intervention specs)
//   sink_scores       probe JSON of SinkScores (alpha for keys 0..first_k-1)
//                     + top_heads [{layer, head, alpha0, mass_first_k}] (largest alpha0 first)
//   attention_maps    [{layer, head, alpha0, size, probs}]: probs is size x size
//                     (the first `size` queries and keys of that head)
//   massive_activations  probe JSON of MassiveActivations
//   value_norms       probe JSON of ValueNorms
//   propagation       probe JSON of Propagation (without the attention matrices)
//   super_experts     {"moe": false, "reason": ...} for a dense model, else
//                     {"moe": true, ...probe JSON of SuperExperts}
#pragma once

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
  SinkScores sinks;
  std::vector<InspectHead> top_heads;  // every (layer, head), largest alpha0 first
  std::vector<InspectAttentionMap> maps;
  MassiveActivations massive;
  ValueNorms value_norms;
  Propagation propagation;
  bool moe = false;
  SuperExperts super_experts;
};

// Runs every probe on ids (throws Error for empty ids or bad options).
InspectReport run_inspect(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                          const InspectOptions& options = {});

// The report.json document described above.
nlohmann::json inspect_report_json(const Model& model, const InspectReport& report);

// A self-contained HTML page rendering a report.json document.
std::string inspect_report_html(const nlohmann::json& report);

// Short human-readable summary (a few lines) for the terminal.
std::string inspect_summary(const nlohmann::json& report);

// Writes DIR/report.json and DIR/report.html (creating DIR); throws Error naming
// the file that could not be written.
void write_inspect_report(const std::string& dir, const nlohmann::json& report);

}  // namespace sinklab
