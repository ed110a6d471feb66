// Inspection report: runs the probes on one token sequence and gathers their
// results (and the sink verdict, sink_verdict.cpp) into one JSON document;
// writes report.json and report.html.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sinklab/intervene.h"
#include "sinklab/report.h"

namespace sinklab {

namespace {

std::vector<InspectHead> rank_heads(const SinkScores& s) {
  std::vector<InspectHead> heads;
  for (size_t li = 0; li < s.layers.size(); ++li)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      InspectHead x;
      x.layer = s.layers[li];
      x.head = int(h);
      x.alpha0 = s.alpha_at(li, h, 0);
      x.mass_first_k = s.mass_first_k[li * size_t(s.n_heads) + size_t(h)];
      heads.push_back(x);
    }
  std::stable_sort(heads.begin(), heads.end(),
                   [](const InspectHead& a, const InspectHead& b) { return a.alpha0 > b.alpha0; });
  return heads;
}

std::vector<InspectAttentionMap> attention_maps(Session& session, std::span<const int32_t> ids,
                                                const std::vector<InspectHead>& heads, int count, int map_size) {
  std::vector<InspectAttentionMap> maps;
  const size_t k = std::min(heads.size(), size_t(std::max(count, 0)));
  if (k == 0) return maps;
  std::vector<std::string> names;
  for (size_t i = 0; i < k; ++i) {
    const std::string name = "blk." + std::to_string(heads[i].layer) + ".attn_probs";
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  const auto captured = capture_taps(session, ids, names);
  const int64_t n = int64_t(ids.size());
  const int64_t m = std::min<int64_t>(n, map_size);
  for (size_t i = 0; i < k; ++i) {
    const CapturedTensor& t = captured.at("blk." + std::to_string(heads[i].layer) + ".attn_probs");
    check(t.cols == n && t.rows >= (heads[i].head + 1) * n,
          "inspect: attention probabilities of layer " + std::to_string(heads[i].layer) + " have shape [" +
              std::to_string(t.rows) + ", " + std::to_string(t.cols) + "], expected [heads * tokens, tokens]");
    InspectAttentionMap map;
    map.head = heads[i];
    map.size = m;
    map.probs.reserve(size_t(m * m));
    for (int64_t q = 0; q < m; ++q) {
      const float* row = t.row(heads[i].head * n + q);
      map.probs.insert(map.probs.end(), row, row + m);
    }
    maps.push_back(std::move(map));
  }
  return maps;
}

// Runs massive_activations and, from the same forward, max |h| of token 0 in each
// measured layer's residual stream (blk.L.resid_out), aligned with the probe's layers.
MassiveActivations massive_with_token0(Session& session, std::span<const int32_t> ids,
                                       std::vector<double>& token0_max_abs) {
  const int64_t n_layers = session.model().config().n_layers;
  std::vector<double> by_layer(size_t(n_layers), std::numeric_limits<double>::quiet_NaN());
  std::vector<int> tap_ids;
  for (int64_t l = 0; l < n_layers; ++l)
    tap_ids.push_back(session.taps().add("blk." + std::to_string(l) + ".resid_out", [&by_layer](const TapEvent& e) {
      for (int64_t r = 0; r < e.rows && r < int64_t(e.tokens.size()); ++r) {
        if (e.tokens[size_t(r)] != 0) continue;
        double top = 0;
        for (int64_t c = 0; c < e.cols; ++c) top = std::max(top, double(std::fabs(e.data[r * e.cols + c])));
        if (e.layer >= 0 && size_t(e.layer) < by_layer.size()) by_layer[size_t(e.layer)] = top;
      }
    }));
  struct Remove {
    Session& s;
    std::vector<int>& ids;
    ~Remove() {
      for (int id : ids) s.taps().remove(id);
    }
  } remove{session, tap_ids};
  // The probe resets the session and feeds ids once, so these taps see the same tensors.
  MassiveActivations m = massive_activations(session, ids);
  token0_max_abs.clear();
  for (const MassiveLayer& layer : m.layers)
    token0_max_abs.push_back(layer.layer >= 0 && layer.layer < n_layers ? by_layer[size_t(layer.layer)]
                                                                        : std::numeric_limits<double>::quiet_NaN());
  return m;
}

// Whether ids[0] is the learned <|sink|> token of a sink-token model (its BOS when
// the tokenizer does not name it).
bool token0_is_sink_token(const Model& model, std::span<const int32_t> ids) {
  if (model.config().variant != "sink-token" || ids.empty()) return false;
  const Tokenizer* tok = model.tokenizer();
  const int32_t sink = tok && tok->special_token_id("<|sink|>") >= 0 ? tok->special_token_id("<|sink|>")
                                                                     : model.config().bos_id;
  return sink >= 0 && ids[0] == sink;
}

nlohmann::json head_json(const InspectHead& h) {
  return {{"layer", h.layer}, {"head", h.head}, {"alpha0", h.alpha0}, {"mass_first_k", h.mass_first_k}};
}

std::string text_preview(const Model& model, std::span<const int32_t> ids) {
  const Tokenizer* tok = model.tokenizer();
  if (!tok) return "";
  std::string text = tok->decode(ids, true);
  if (text.size() > 600) text = text.substr(0, 600) + "...";
  return text;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(bool(out), "cannot write '" + tmp.string() + "'");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    check(bool(out), "cannot write '" + tmp.string() + "' (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  check(!ec, "cannot replace '" + path.string() + "': " + ec.message());
}

}  // namespace

InspectReport run_inspect(const std::shared_ptr<const Model>& model, std::span<const int32_t> text_ids,
                          const InspectOptions& options, const InspectProgress& progress) {
  check(model != nullptr, "inspect: model is null");
  check(!text_ids.empty(), "inspect: there are no tokens to inspect");
  const std::vector<Intervention> ablate = parse_interventions(options.ablate);
  std::vector<int32_t> fed = intervention_prefix(ablate, model->config());
  fed.insert(fed.end(), text_ids.begin(), text_ids.end());
  // The sink scores capture every layer's attention matrix at once: refuse
  // what cannot fit before any probe runs.
  check_attention_capture_fits(model->config(), int64_t(fed.size()), model->config().n_layers, "inspect");
  const std::span<const int32_t> ids = fed;
  check(options.first_k >= 1, "inspect: --first-k must be at least 1");
  check(std::isfinite(options.eps) && options.eps >= 0 && options.eps <= 1, "inspect: --eps must be in [0, 1]");
  InspectReport r;
  r.options = options;
  r.ids.assign(ids.begin(), ids.end());
  r.variant = model->config().variant;
  r.token0_is_sink_token = token0_is_sink_token(*model, ids);
  if (model->config().sink_logits)
    for (int64_t l = 0; l < model->config().n_layers; ++l) {
      const std::span<const float> s = model->sink_logits(l);
      r.sink_logits.emplace_back(s.begin(), s.end());
    }
  if (const Tokenizer* tok = model->tokenizer())
    for (int32_t id : ids) r.tokens.push_back(id >= 0 && id < tok->vocab_size() ? token_display_text(*tok, id) : "?");
  else
    for (int32_t id : ids) r.tokens.push_back(std::to_string(id));

  SinkScoreOptions so;
  so.eps = options.eps;
  so.first_k = options.first_k;
  so.max_keys = options.first_k;
  // One session for every probe, with the interventions installed before the probes' taps.
  Session session(model, probe_session_options(int64_t(ids.size())));
  const AttachedInterventions attached(session, ablate);
  r.moe = model->config().moe.n_experts > 0;
  const int n_probes = r.moe ? 6 : 5;
  int probe_index = 0;
  auto starting = [&](const char* name) {
    if (progress) progress(name, probe_index, n_probes);
    ++probe_index;
  };
  starting("sink scores");
  r.sinks = sink_scores(session, ids, so);
  r.top_heads = rank_heads(r.sinks);
  starting("attention maps");
  r.maps = attention_maps(session, ids, r.top_heads, options.top_heads, options.map_size);
  starting("massive activations");
  r.massive = massive_with_token0(session, ids, r.token0_max_abs);
  ValueNormOptions vo;
  vo.first_n = options.value_norm_tokens;
  starting("value norms");
  r.value_norms = value_norms(session, ids, vo);
  starting("propagation");
  r.propagation = propagation(session, ids);
  if (r.moe) {
    starting("super experts");
    r.super_experts = super_experts(session, {r.ids});
  }
  return r;
}

nlohmann::json inspect_report_json(const Model& model, const InspectReport& r) {
  const ModelConfig& c = model.config();
  nlohmann::json j;
  j["format"] = "sinklab-inspect-report";
  j["version"] = 1;
  j["verdict"] = sink_verdict(r);
  j["model"] = {{"path", model.path()},         {"format", model.format()},   {"arch", c.arch},
                {"variant", c.variant.empty() ? nlohmann::json() : nlohmann::json(c.variant)},
                {"n_layers", c.n_layers},       {"n_heads", c.n_heads},       {"n_kv_heads", c.n_kv_heads},
                {"head_dim", c.head_dim},       {"dim", c.dim},               {"n_params", model.n_params()},
                {"moe", c.moe.n_experts > 0},   {"n_experts", c.moe.n_experts}};
  j["text"] = {{"source", r.options.text_source},
               {"n_tokens", r.ids.size()},
               {"ids", r.ids},
               {"tokens", r.tokens},
               {"preview", text_preview(model, r.ids)}};
  j["options"] = {{"eps", r.options.eps},
                  {"first_k", r.options.first_k},
                  {"attention_map_size", r.options.map_size},
                  {"value_norm_tokens", r.options.value_norm_tokens},
                  {"ablate", r.options.ablate}};
  j["sink_scores"] = r.sinks;
  nlohmann::json heads = nlohmann::json::array();
  for (const InspectHead& h : r.top_heads) heads.push_back(head_json(h));
  j["sink_scores"]["top_heads"] = heads;
  j["sink_logits"] = r.sink_logits.empty() ? nlohmann::json() : nlohmann::json(r.sink_logits);
  nlohmann::json maps = nlohmann::json::array();
  for (const InspectAttentionMap& m : r.maps) {
    nlohmann::json x = head_json(m.head);
    x["size"] = m.size;
    x["probs"] = m.probs;
    maps.push_back(x);
  }
  j["attention_maps"] = maps;
  j["massive_activations"] = r.massive;
  nlohmann::json token0 = nlohmann::json::array();
  for (size_t i = 0; i < r.massive.layers.size() && i < r.token0_max_abs.size(); ++i) {
    const double top = r.token0_max_abs[i], median = r.massive.layers[i].median_abs;
    const double ratio = median > 0 ? top / median : std::numeric_limits<double>::quiet_NaN();
    token0.push_back({{"layer", r.massive.layers[i].layer},
                      {"max_abs", std::isfinite(top) ? nlohmann::json(top) : nlohmann::json()},
                      {"ratio", std::isfinite(ratio) ? nlohmann::json(ratio) : nlohmann::json()}});
  }
  j["massive_activations"]["token0"] = token0;
  j["value_norms"] = r.value_norms;
  j["propagation"] = r.propagation;
  j["propagation"].erase("attention");
  if (r.moe) {
    j["super_experts"] = r.super_experts;
    j["super_experts"]["moe"] = true;
  } else {
    j["super_experts"] = {{"moe", false}, {"reason", "dense model: it has no experts"}};
  }
  return j;
}

std::string inspect_summary(const nlohmann::json& j) {
  std::ostringstream o;
  if (j.contains("verdict")) o << "verdict:    " << j.at("verdict").at("text").get<std::string>() << "\n";
  const auto& m = j.at("model");
  o << "model:      " << m.at("path").get<std::string>() << " (" << m.at("arch").get<std::string>() << ", "
    << m.at("n_layers").get<int64_t>() << " layers x " << m.at("n_heads").get<int64_t>() << " heads)\n";
  o << "tokens:     " << j.at("text").at("n_tokens").get<int64_t>() << "\n";
  const auto& s = j.at("sink_scores");
  const double eps = s.at("eps").get<double>();
  o << "sinks:      ";
  const auto& pct = s.at("sink_percent");
  for (size_t k = 0; k < pct.size(); ++k)
    o << (k ? ", " : "") << "Sink_" << k << "^" << fmt("%g", eps) << " = " << fmt("%.1f%%", pct[k].get<double>());
  o << "\n";
  const auto& heads = s.at("top_heads");
  o << "top heads:  ";
  for (size_t i = 0; i < std::min<size_t>(heads.size(), 4); ++i)
    o << (i ? ", " : "") << "L" << heads[i].at("layer").get<int>() << "H" << heads[i].at("head").get<int>()
      << " alpha0=" << fmt("%.3f", heads[i].at("alpha0").get<double>());
  o << "\n";
  int64_t flagged = 0;
  double max_abs = 0, max_ratio = 0;
  for (const auto& l : j.at("massive_activations").at("layers")) {
    flagged += l.at("n_flagged").get<int64_t>();
    max_abs = std::max(max_abs, l.at("max_abs").get<double>());
    if (l.at("max_ratio").is_number()) max_ratio = std::max(max_ratio, l.at("max_ratio").get<double>());
  }
  o << "massive:    " << flagged << " flagged entries; max |h| " << fmt("%.2f", max_abs) << ", max ratio to median "
    << fmt("%.1f", max_ratio) << "\n";
  const auto& inf = j.at("propagation").at("influence_on_last");
  if (!inf.empty())
    o << "rollout:    influence of position 0 on the last token = " << fmt("%.3f", inf[0].get<double>()) << "\n";
  if (j.contains("sink_logits") && !j.at("sink_logits").is_null() && s.contains("sink_logit_mass")) {
    // Learned sink logits: where a head's spare attention goes, to the logit or to token 0.
    const auto& mass = s.at("sink_logit_mass");
    const auto& alpha = s.at("alpha");
    const int64_t K = s.at("n_keys").get<int64_t>();
    double to_logit = 0, to_token0 = 0;
    int logit_heads = 0;
    for (size_t p = 0; p < mass.size(); ++p) {
      const double m = mass[p].get<double>(), a0 = alpha[p * size_t(K)].get<double>();
      to_logit += m;
      to_token0 += a0;
      logit_heads += m > a0;
    }
    const double pairs = double(std::max<size_t>(mass.size(), 1));
    o << "sink logit: heads send " << fmt("%.3f", to_logit / pairs) << " of their attention to the learned sink logit and "
      << fmt("%.3f", to_token0 / pairs) << " to token 0 (mean); the logit takes more in " << logit_heads << " of "
      << mass.size() << " heads\n";
  }
  const auto& se = j.at("super_experts");
  if (se.at("moe").get<bool>())
    o << "experts:    " << se.at("supers").size() << " super experts\n";
  else
    o << "experts:    none (dense model)\n";
  return o.str();
}

void write_inspect_report(const std::string& dir, const nlohmann::json& report) {
  check(!dir.empty(), "--out: the output folder is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec && std::filesystem::is_directory(dir), "--out: cannot create folder '" + dir + "'");
  const std::filesystem::path base(dir);
  write_file(base / "report.json",
             report.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  write_file(base / "report.html", inspect_report_html(report));
}

}  // namespace sinklab
