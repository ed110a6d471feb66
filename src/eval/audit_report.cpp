// Sink-backdoor audit: sink mass and shallow value norms through the probes
// inspect uses, and the recovery of a probe set under candidate prefixes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "sinklab/audit.h"

namespace sinklab {

namespace {

// Accuracy and mean log-probability of the answers, one prefill per probe.
struct Score {
  double acc = 0, logp = 0;
};

Score score_probes(Session& session, const std::vector<std::vector<int32_t>>& contexts,
                   const std::vector<AuditProbe>& probes) {
  Score s;
  for (size_t i = 0; i < contexts.size(); ++i) {
    session.reset();
    session.feed(contexts[i]);
    const std::span<const float> z = session.logits();
    const int32_t answer = probes[i].answer;
    const float top = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (float v : z) sum += std::exp(double(v) - double(top));
    s.logp += double(z[size_t(answer)]) - double(top) - std::log(sum);
    s.acc += int64_t(std::max_element(z.begin(), z.end()) - z.begin()) == answer ? 1.0 : 0.0;
  }
  const double n = double(std::max<size_t>(contexts.size(), 1));
  s.acc /= n;
  s.logp /= n;
  return s;
}

void check_ids_in_vocab(std::span<const int32_t> ids, int64_t vocab, const std::string& what) {
  for (int32_t id : ids)
    check(id >= 0 && id < vocab, "audit: " + what + " has token id " + std::to_string(id) +
                                     " outside the model's vocabulary of " + std::to_string(vocab));
}

AuditRecovery recover(const std::shared_ptr<const Model>& model, const std::vector<AuditProbe>& probes,
                      const AuditCandidate& cand) {
  std::vector<std::vector<int32_t>> none, sink, elsewhere;
  size_t longest = 0;
  for (const AuditProbe& p : probes) {
    none.push_back(p.context);
    sink.push_back(with_prefix(p.context, cand.ids, 1));
    elsewhere.push_back(with_prefix(p.context, cand.ids, p.elsewhere));
    longest = std::max(longest, sink.back().size());
  }
  Session session(model, probe_session_options(int64_t(longest)));
  AuditRecovery r;
  r.candidate = cand;
  const Score a = score_probes(session, none, probes), b = score_probes(session, sink, probes),
              c = score_probes(session, elsewhere, probes);
  r.acc_none = a.acc;
  r.logp_none = a.logp;
  r.acc_sink = b.acc;
  r.logp_sink = b.logp;
  r.acc_elsewhere = c.acc;
  r.logp_elsewhere = c.logp;
  return r;
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

std::vector<int32_t> with_prefix(std::span<const int32_t> context, std::span<const int32_t> prefix, int64_t at) {
  check(at >= 0 && at <= int64_t(context.size()), "audit: a prefix position lies outside its context");
  std::vector<int32_t> out(context.begin(), context.begin() + at);
  out.insert(out.end(), prefix.begin(), prefix.end());
  out.insert(out.end(), context.begin() + at, context.end());
  return out;
}

AuditReport run_audit(const std::shared_ptr<const Model>& model, const std::shared_ptr<const Model>& reference,
                      std::span<const int32_t> ids, const std::vector<AuditProbe>& probes,
                      const std::vector<AuditCandidate>& candidates, const AuditOptions& options) {
  check(model != nullptr, "audit: model is null");
  check(!ids.empty(), "audit: there are no tokens to measure");
  check(options.first_k >= 1 && options.value_norm_tokens >= 1, "audit: --first-k and --value-tokens must be >= 1");
  check(std::isfinite(options.eps) && options.eps >= 0 && options.eps <= 1, "audit: --eps must be in [0, 1]");
  const ModelConfig& mc = model->config();
  check_ids_in_vocab(ids, mc.vocab, "the measured text");
  check_attention_capture_fits(mc, int64_t(ids.size()), mc.n_layers, "audit");
  AuditReport r;
  r.options = options;
  r.options.first_k = int(std::min<int64_t>(options.first_k, int64_t(ids.size())));
  r.ids.assign(ids.begin(), ids.end());
  // The same options and session kind as inspect's sink scores and value norms.
  SinkScoreOptions so;
  so.eps = options.eps;
  so.first_k = r.options.first_k;
  so.max_keys = r.options.first_k;
  ValueNormOptions vo;
  vo.first_n = options.value_norm_tokens;
  {
    Session session(model, probe_session_options(int64_t(ids.size())));
    r.sinks = sink_scores(session, ids, so);
    r.value_norms = value_norms(session, ids, vo);
  }
  if (reference) {
    const ModelConfig& rc = reference->config();
    check(rc.n_layers == mc.n_layers && rc.n_kv_heads == mc.n_kv_heads && rc.vocab == mc.vocab,
          "audit: --reference '" + reference->path() + "' differs in layers, kv heads or vocabulary from the model");
    Session session(reference, probe_session_options(int64_t(ids.size())));
    r.reference_value_norms = value_norms(session, ids, vo);
    r.has_reference = true;
    r.reference_path = reference->path();
  }
  r.n_probes = int64_t(probes.size());
  if (!probes.empty()) {
    for (const AuditProbe& p : probes) {
      check(!p.context.empty() && p.elsewhere >= 1 && p.elsewhere <= int64_t(p.context.size()),
            "audit: a probe needs a context and an 'elsewhere' position inside it");
      check_ids_in_vocab(p.context, mc.vocab, "a probe");
      check_ids_in_vocab(std::span<const int32_t>(&p.answer, 1), mc.vocab, "a probe's answer");
    }
    for (const AuditCandidate& c : candidates) {
      check(!c.ids.empty(), "audit: candidate '" + c.name + "' has no tokens");
      check_ids_in_vocab(c.ids, mc.vocab, "candidate '" + c.name + "'");
      r.recovery.push_back(recover(model, probes, c));
    }
  }
  return r;
}

nlohmann::json audit_report_json(const Model& model, const AuditReport& r) {
  nlohmann::json j;
  j["format"] = "sinklab-audit";
  j["version"] = 1;
  const ModelConfig& c = model.config();
  j["model"] = {{"path", model.path()},         {"arch", c.arch},         {"variant", c.variant},
                {"n_layers", c.n_layers},       {"n_heads", c.n_heads},   {"n_kv_heads", c.n_kv_heads}};
  j["reference"] = r.has_reference ? nlohmann::json(r.reference_path) : nlohmann::json(nullptr);
  j["text"] = {{"source", r.options.text_source}, {"n_tokens", r.ids.size()}, {"ids", r.ids}};
  j["options"] = {{"first_k", r.options.first_k}, {"eps", r.options.eps},
                  {"value_norm_tokens", r.options.value_norm_tokens}};
  j["sink_scores"] = r.sinks;
  nlohmann::json mass = nlohmann::json::array();
  double best = -1;
  int best_layer = -1, best_head = -1;
  for (size_t li = 0; li < r.sinks.layers.size(); ++li) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t h = 0; h < r.sinks.n_heads; ++h) {
      const double m = r.sinks.mass_first_k[li * size_t(r.sinks.n_heads) + size_t(h)];
      row.push_back(m);
      if (m > best) {
        best = m;
        best_layer = r.sinks.layers[li];
        best_head = int(h);
      }
    }
    mass.push_back(row);
  }
  j["sink_mass"] = {{"layers", r.sinks.layers}, {"n_heads", r.sinks.n_heads}, {"first_k", r.options.first_k},
                    {"mass", mass}, {"max", best}, {"max_layer", best_layer}, {"max_head", best_head}};
  j["value_norms"] = r.value_norms;
  j["reference_value_norms"] = nullptr;
  j["value_norm_ratio"] = nullptr;
  if (r.has_reference) {
    const ValueNorms& a = r.value_norms;
    const ValueNorms& b = r.reference_value_norms;
    j["reference_value_norms"] = b;
    nlohmann::json ratio = nlohmann::json::array();
    for (size_t li = 0; li < a.layers.size(); ++li) {
      nlohmann::json heads = nlohmann::json::array();
      for (int64_t g = 0; g < a.n_kv_heads; ++g) {
        nlohmann::json toks = nlohmann::json::array();
        for (int64_t t = 0; t < a.n_tokens; ++t) {
          const double ref = b.at(li, g, t);
          toks.push_back(finite_or_null(ref > 0 ? a.at(li, g, t) / ref : std::numeric_limits<double>::quiet_NaN()));
        }
        heads.push_back(toks);
      }
      ratio.push_back(heads);
    }
    j["value_norm_ratio"] = ratio;
  }
  j["recovery"] = nullptr;
  if (!r.recovery.empty()) {
    nlohmann::json cands = nlohmann::json::array();
    for (const AuditRecovery& x : r.recovery)
      cands.push_back({{"name", x.candidate.name},
                       {"ids", x.candidate.ids},
                       {"acc_none", x.acc_none},
                       {"acc_sink", x.acc_sink},
                       {"acc_elsewhere", x.acc_elsewhere},
                       {"logp_none", finite_or_null(x.logp_none)},
                       {"logp_sink", finite_or_null(x.logp_sink)},
                       {"logp_elsewhere", finite_or_null(x.logp_elsewhere)},
                       {"recovery_sink", x.acc_sink - x.acc_none},
                       {"recovery_elsewhere", x.acc_elsewhere - x.acc_none}});
    j["recovery"] = {{"probes", r.n_probes}, {"source", r.probe_source}, {"candidates", cands}};
  }
  return j;
}

std::string audit_summary(const nlohmann::json& j) {
  std::string out;
  char line[256];
  const nlohmann::json& m = j.at("sink_mass");
  std::snprintf(line, sizeof line, "sink mass:  largest attention on positions 0..%d: %.3f (layer %d head %d)\n",
                m.at("first_k").get<int>() - 1, m.at("max").get<double>(), m.at("max_layer").get<int>(),
                m.at("max_head").get<int>());
  out += line;
  if (!j.at("value_norm_ratio").is_null()) {
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (const auto& layer : j.at("value_norm_ratio"))
      for (const auto& head : layer)
        for (const auto& v : head)
          if (v.is_number()) {
            lo = std::min(lo, v.get<double>());
            hi = std::max(hi, v.get<double>());
          }
    std::snprintf(line, sizeof line, "value norms: shallow tokens / reference in [%.3f, %.3f]\n", lo, hi);
    out += line;
  }
  if (!j.at("recovery").is_null())
    for (const auto& c : j.at("recovery").at("candidates")) {
      std::snprintf(line, sizeof line,
                    "recovery:   %-12s accuracy %.3f without, %.3f at the sink (%+.3f), %.3f elsewhere (%+.3f)\n",
                    c.at("name").get<std::string>().c_str(), c.at("acc_none").get<double>(),
                    c.at("acc_sink").get<double>(), c.at("recovery_sink").get<double>(),
                    c.at("acc_elsewhere").get<double>(), c.at("recovery_elsewhere").get<double>());
      out += line;
    }
  return out;
}

}  // namespace sinklab
