// JSON forms of the probe results (non-finite numbers become null).
#include <cmath>

#include <nlohmann/json.hpp>

#include "sinklab/probe.h"

namespace sinklab {

namespace {
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

void to_json(nlohmann::json& j, const SinkScores& s) {
  j = {{"eps", s.eps},           {"first_k", s.first_k},           {"n_heads", s.n_heads},
       {"n_tokens", s.n_tokens}, {"n_keys", s.n_keys},             {"layers", s.layers},
       {"alpha", s.alpha},       {"sink_percent", s.sink_percent}, {"mass_first_k", s.mass_first_k},
       {"sink_logit_mass", s.sink_logit_mass}};
}

void to_json(nlohmann::json& j, const ActivationEntry& a) {
  j = {{"dim", a.dim},
       {"token", a.token},
       {"token_id", a.token_id},
       {"value", a.value},
       {"ratio", number(a.ratio)},
       {"above_abs", a.above_abs},
       {"above_ratio", a.above_ratio},
       {"massive", a.massive()}};
}

void to_json(nlohmann::json& j, const MassiveLayer& m) {
  j = {{"layer", m.layer},     {"median_abs", m.median_abs}, {"max_abs", m.max_abs},
       {"max_ratio", number(m.max_ratio)}, {"top", m.top},   {"flagged", m.flagged},
       {"n_flagged", m.n_flagged}};
}

void to_json(nlohmann::json& j, const MassiveActivations& m) {
  j = {{"abs_threshold", m.abs_threshold}, {"ratio_threshold", m.ratio_threshold}, {"layers", m.layers}};
}

void to_json(nlohmann::json& j, const ValueNorms& v) {
  j = {{"n_kv_heads", v.n_kv_heads}, {"n_tokens", v.n_tokens}, {"layers", v.layers}, {"norms", v.norms}};
}

void to_json(nlohmann::json& j, const PropagationLayer& p) {
  j = {{"layer", p.layer},
       {"centered_ratio", p.centered_ratio},
       {"effective_rank", p.effective_rank},
       {"dirichlet_energy", p.dirichlet_energy},
       {"dirichlet_energy_normalized", p.dirichlet_energy_normalized},
       {"singular_values", p.singular_values}};
}

void to_json(nlohmann::json& j, const Propagation& p) {
  j = {{"n_tokens", p.n_tokens}, {"influence_on_last", p.influence_on_last}, {"layers", p.layers}};
  if (!p.attention.empty()) j["attention"] = p.attention;
}

void to_json(nlohmann::json& j, const ExpertStat& e) {
  j = {{"layer", e.layer},           {"expert", e.expert}, {"max_out", e.max_out},
       {"argmax_dim", e.argmax_dim}, {"routed", e.routed}, {"super", e.super}};
}

void to_json(nlohmann::json& j, const SuperExperts& s) {
  j = {{"n_layers", s.n_layers},           {"n_experts", s.n_experts},     {"percentile_value", s.percentile_value},
       {"overall_max", s.overall_max},     {"experts", s.experts},         {"supers", s.supers}};
}

}  // namespace sinklab
