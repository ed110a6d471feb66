// The pieces of `sinklab audit` shared by its two modes (one model; the backdoor
// experiment's models): the inputs of a kv-facts model's audit, one audit
// written to a folder, and the experiment itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "output_guard.h"
#include "sinklab/audit.h"
#include "sinklab/tasks.h"

namespace sinklab::cli {

struct AuditInputs {
  std::vector<int32_t> ids;  // what sink mass and value norms are measured on
  std::string text_source;
  std::vector<AuditProbe> probes;
  std::string probe_source;
  std::vector<AuditCandidate> candidates;
};

// A task model: the ids inspect measures (the task's probe sequence 0, cut to
// `tokens`); for kv-facts also `n_probes` facts (a context of key-value pairs
// ending at a key, its value the answer; `elsewhere` at the middle pair
// boundary; keys drawn from `keys`, every key when empty) and its spare tokens as candidates.
AuditInputs task_audit_inputs(const Model& model, const SyntheticTask& task, int64_t tokens, int64_t n_probes,
                              const std::vector<int32_t>& keys = {});

// Runs the audit and writes DIR/audit.json and DIR/audit.html; returns the JSON.
nlohmann::json audit_model(const std::shared_ptr<const Model>& model, const std::shared_ptr<const Model>& reference,
                           const AuditInputs& in, const AuditOptions& opts, const std::string& dir);

// `sinklab audit --experiment CONFIG --out DIR`.
int run_backdoor_experiment_command(const std::string& config, const std::string& out, int threads,
                                    const OutputGuard& guard);

}  // namespace sinklab::cli
