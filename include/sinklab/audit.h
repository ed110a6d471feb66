// Sink-backdoor audit ("Forgetting to Forget", REFERENCES.md §5): what a
// trigger planted at the sink positions leaves behind, measured with the same
// probes as `sinklab inspect` (sink_scores, value_norms of sinklab/probe.h on
// the same token sequence), plus a behavioural check.
//
//   sink mass       per (layer, head): mean over queries of the attention on
//                   positions 0..first_k-1 (SinkScores::mass_first_k), and alpha_k
//                   for each of those keys
//   value norms     ||v_t|| of the shallow tokens t < value_norm_tokens per
//                   (layer, kv head), and with a reference model (the model before
//                   a suspected fine-tune) its norms on the same ids and the ratio
//   recovery        for each candidate prefix (a token sequence that may be a
//                   trigger) and a probe set (contexts starting with BOS, each with
//                   its answer token): accuracy (argmax of the next-token logits) and
//                   mean log-probability of the answer with no prefix, with the prefix
//                   right after BOS (the sink positions), and with it at the probe's
//                   `elsewhere` position; recovery = accuracy with the prefix minus
//                   accuracy without it. A trigger that works only at the sink
//                   positions is the signature of the attack.
//
// audit.json keys: format "sinklab-audit" (version 1), model {path, arch, variant,
// n_layers, n_heads, n_kv_heads}, reference (path or null), text {source, n_tokens, ids},
// options {first_k, eps, value_norm_tokens}, sink_scores (probe JSON of SinkScores),
// sink_mass {layers, n_heads, first_k, mass [layers][heads], max, max_layer, max_head},
// value_norms (probe JSON of ValueNorms), reference_value_norms (same, or null),
// value_norm_ratio ([layers][kv heads][tokens] model / reference, or null),
// recovery {probes, source, candidates: [{name, ids, acc_none, acc_sink,
// acc_elsewhere, logp_none, logp_sink, logp_elsewhere, recovery_sink,
// recovery_elsewhere}]} or null.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/model.h"
#include "sinklab/probe.h"

namespace sinklab {

struct AuditOptions {
  int first_k = 8;              // the sink region: positions 0..first_k-1
  double eps = 0.3;             // Sink_k^eps threshold of the sink scores
  int value_norm_tokens = 8;    // shallow tokens whose value norms are compared
  std::string text_source;      // shown in the report
};

// One behavioural probe: context (BOS first) and the token that should follow it.
struct AuditProbe {
  std::vector<int32_t> context;
  int32_t answer = 0;
  int64_t elsewhere = 0;  // where a candidate goes when not at the sink positions (1..context size)
};

struct AuditCandidate {
  std::string name;
  std::vector<int32_t> ids;
};

struct AuditRecovery {
  AuditCandidate candidate;
  double acc_none = 0, acc_sink = 0, acc_elsewhere = 0;
  double logp_none = 0, logp_sink = 0, logp_elsewhere = 0;
};

struct AuditReport {
  AuditOptions options;
  std::vector<int32_t> ids;
  SinkScores sinks;
  ValueNorms value_norms, reference_value_norms;
  bool has_reference = false;
  std::string reference_path;
  std::vector<AuditRecovery> recovery;
  int64_t n_probes = 0;
  std::string probe_source;
};

// Runs the audit. `reference` may be null; probes and candidates may be empty
// (no recovery section). Throws Error for empty ids, bad options, a reference
// of another shape, or a probe/candidate id outside the vocabulary.
AuditReport run_audit(const std::shared_ptr<const Model>& model, const std::shared_ptr<const Model>& reference,
                      std::span<const int32_t> ids, const std::vector<AuditProbe>& probes,
                      const std::vector<AuditCandidate>& candidates, const AuditOptions& options = {});

// The same prefill with `prefix` at the sink positions (after ids[0]) or at `at`.
std::vector<int32_t> with_prefix(std::span<const int32_t> context, std::span<const int32_t> prefix, int64_t at);

nlohmann::json audit_report_json(const Model& model, const AuditReport& report);
std::string audit_report_html(const nlohmann::json& report);
// A few lines for the terminal.
std::string audit_summary(const nlohmann::json& report);

}  // namespace sinklab
