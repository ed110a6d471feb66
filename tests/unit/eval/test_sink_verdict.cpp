// The sink verdict of inspection reports: its numbers and words on hand-built
// reports (a planted sink and none), and end to end on tiny planted models
// (token 0's massive ratio, the learned sink logits table, the sink-token note).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../probe/planted_models.h"
#include "sinklab/report.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

// Two layers x three heads, alpha for keys 0 and 1. Layer 0 has two heads above
// eps = 0.3 on key 0; layer 1 has none on key 0 (but one on key 1, which must not count).
InspectReport hand_built_report(const std::vector<double>& alpha0) {
  InspectReport r;
  r.options.eps = 0.3;
  r.ids = {1, 2, 3};
  SinkScores& s = r.sinks;
  s.eps = 0.3;
  s.n_heads = 3;
  s.n_keys = 2;
  s.n_tokens = 3;
  s.layers = {0, 1};
  for (double a : alpha0) {
    s.alpha.push_back(a);
    s.alpha.push_back(0.8);  // key 1
  }
  // Value norms [layer][kv head][token]: per layer, mean over kv heads of ||v_0|| /
  // mean over kv heads and tokens t >= 1: layer 0: 2 / 15; layer 1: 0.1 / 10.
  ValueNorms& v = r.value_norms;
  v.n_kv_heads = 2;
  v.n_tokens = 3;
  v.layers = {0, 1};
  v.norms = {1, 10, 10, 3, 10, 30, /* layer 1 */ 0.1, 10, 10, 0.1, 10, 10};
  // Token 0's max |h| over the layer medians: 60 / 0.5 = 120 and 480 / 2 = 240.
  MassiveLayer l0, l1;
  l0.layer = 0;
  l0.median_abs = 0.5;
  l1.layer = 1;
  l1.median_abs = 2;
  r.massive.layers = {l0, l1};
  r.token0_max_abs = {60, 480};
  return r;
}

const std::vector<double> kSinkAlpha = {0.9, 0.1, 0.5, /* layer 1 */ 0.2, 0.05, 0.1};
const std::vector<double> kNoSinkAlpha = {0.05, 0.01, 0.02, /* layer 1 */ 0.03, 0.04, 0.0};

// Median of |x| as the massive_activations probe takes it (mean of the two middle values).
double median_abs(const std::vector<float>& x) {
  std::vector<double> a;
  for (float v : x) a.push_back(std::fabs(double(v)));
  std::sort(a.begin(), a.end());
  const size_t m = a.size() / 2;
  return a.size() % 2 ? a[m] : 0.5 * (a[m - 1] + a[m]);
}

// A two-layer planted model (sinklab arch, no positional encoding): head 0 of
// layer 0 sinks on token id 0 (its key alone carries dimension 1, which that
// head's queries look for), and layer 1's FFN writes a massive value into
// dimension 3 of token id 0 only. Every token carries dims 0 and 2..9, so the
// layer medians are well above 0.
constexpr int64_t kVocab = 7, kDim = 16, kHeads = 2, kHeadDim = 4;

PlantedModel planted_sink_model(bool plant_sink) {
  PlantedModel m = zero_decoder(kVocab, kDim, 2, kHeads, kHeadDim, 4);
  Tensor& e = m.get("model.embed_tokens.weight");
  Lcg rng(11);
  for (int64_t t = 0; t < kVocab; ++t) {
    e.at(t, 0) = 1.f;
    for (int64_t d = 2; d < 10; ++d) e.at(t, d) = (t == 0 ? 0.1f : 1.f) * (1.f + 0.5f * rng.next());
  }
  e.at(0, 1) = 1.f;  // token id 0's marker
  if (plant_sink) {
    m.get(layer_name(0, "self_attn.q_proj.weight")).at(0, 0) = 4.f;
    m.get(layer_name(0, "self_attn.k_proj.weight")).at(0, 1) = 4.f;
  }
  Tensor& wv = m.get(layer_name(0, "self_attn.v_proj.weight"));
  for (int64_t r = 0; r < kHeads * kHeadDim; ++r) wv.at(r, 2 + r % 8) = 1.f;
  m.get(layer_name(1, "mlp.gate_proj.weight")).at(0, 1) = 4.f;
  m.get(layer_name(1, "mlp.up_proj.weight")).at(0, 1) = 4.f;
  m.get(layer_name(1, "mlp.down_proj.weight")).at(3, 0) = 500.f;
  return m;
}

// 16 tokens: a uniform head gives token 0 alpha_0 = H_16 / 16 = 0.21 (< eps = 0.3).
const std::vector<int32_t> kIds = {0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3};

InspectOptions small_options() {
  InspectOptions o;
  o.first_k = 2;
  o.map_size = 4;
  o.value_norm_tokens = 6;
  return o;
}

}  // namespace

TEST(SinkVerdict, PlantedSinkGivesItsCountsDrainAndMassiveRatio) {
  const SinkVerdict v = sink_verdict(hand_built_report(kSinkAlpha));
  EXPECT_TRUE(v.sink);
  EXPECT_EQ(v.heads_above, 2);
  EXPECT_EQ(v.heads_total, 6);
  EXPECT_DOUBLE_EQ(v.max_alpha0, 0.9);
  EXPECT_DOUBLE_EQ(v.eps, 0.3);
  // Only layer 0 has a head above eps: layer 1's smaller ratio (0.01) does not count.
  EXPECT_DOUBLE_EQ(v.value_drain, 2.0 / 15.0);
  EXPECT_EQ(v.value_drain_layer, 0);
  EXPECT_DOUBLE_EQ(v.massive_ratio, 240.0);
  EXPECT_EQ(v.massive_ratio_layer, 1);
  EXPECT_EQ(v.text, "sink on token 0: 2 of 6 heads with α0 > 0.3; value drain 0.13; massive ratio 240");

  const nlohmann::json j = v;
  EXPECT_EQ(j.at("heads_above").get<int64_t>(), 2);
  EXPECT_EQ(j.at("text").get<std::string>(), v.text);
  EXPECT_NE(j.at("explanation").get<std::string>().find("soaks up"), std::string::npos);
  EXPECT_NE(j.at("definitions").get<std::string>().find("median"), std::string::npos);
}

TEST(SinkVerdict, NoHeadAboveEpsIsNoSink) {
  SinkVerdict v = sink_verdict(hand_built_report(kNoSinkAlpha));
  EXPECT_FALSE(v.sink);
  EXPECT_EQ(v.heads_above, 0);
  EXPECT_EQ(v.heads_total, 6);
  EXPECT_DOUBLE_EQ(v.max_alpha0, 0.05);
  // Without a sink layer every layer counts: layer 1's 0.1 / 10.
  EXPECT_DOUBLE_EQ(v.value_drain, 0.01);
  EXPECT_EQ(v.value_drain_layer, 1);
  EXPECT_EQ(v.text, "no sink: max α0 = 0.05 ≤ ε = 0.3");

  // alpha_0 equal to eps is not above it; a little more is.
  std::vector<double> at_eps = kNoSinkAlpha;
  at_eps[4] = 0.3;
  v = sink_verdict(hand_built_report(at_eps));
  EXPECT_FALSE(v.sink);
  EXPECT_EQ(v.text, "no sink: max α0 = 0.3 ≤ ε = 0.3");
  at_eps[4] = 0.31;
  v = sink_verdict(hand_built_report(at_eps));
  EXPECT_TRUE(v.sink);
  EXPECT_EQ(v.heads_above, 1);
  EXPECT_EQ(v.value_drain_layer, 1);
}

TEST(SinkVerdict, SaysWhatTheAttentionVariantAdds) {
  InspectReport r = hand_built_report(kSinkAlpha);
  r.variant = "sink-token";
  r.token0_is_sink_token = true;
  EXPECT_EQ(sink_verdict(r).text,
            "sink on token 0 (the learned <|sink|> token): 2 of 6 heads with α0 > 0.3; value drain 0.13; "
            "massive ratio 240");
  r.token0_is_sink_token = false;
  EXPECT_NE(sink_verdict(r).text.find("learned <|sink|> token is not token 0"), std::string::npos);

  InspectReport quiet = hand_built_report(kNoSinkAlpha);
  quiet.variant = "sink-token";
  quiet.token0_is_sink_token = true;
  EXPECT_EQ(sink_verdict(quiet).text, "no sink: max α0 = 0.05 ≤ ε = 0.3 (token 0 is the learned <|sink|> token)");

  quiet.variant = "sink-logit";
  quiet.token0_is_sink_token = false;
  quiet.sink_logits = {{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}};
  EXPECT_EQ(sink_verdict(quiet).text,
            "no sink: max α0 = 0.05 ≤ ε = 0.3; the model has learned per-head sink logits (see sink_logits)");
}

TEST(SinkVerdict, UnmeasurableNumbersAreNotANumberAndNullInJson) {
  InspectReport r = hand_built_report(kSinkAlpha);
  r.value_norms.n_tokens = 1;  // no tokens after token 0
  r.value_norms.norms = {1, 3, 0.1, 0.1};
  r.token0_max_abs.clear();
  const SinkVerdict v = sink_verdict(r);
  EXPECT_TRUE(std::isnan(v.value_drain));
  EXPECT_TRUE(std::isnan(v.massive_ratio));
  EXPECT_EQ(v.text, "sink on token 0: 2 of 6 heads with α0 > 0.3; value drain n/a; massive ratio n/a");
  const nlohmann::json j = v;
  EXPECT_TRUE(j.at("value_drain").is_null());
  EXPECT_TRUE(j.at("massive_ratio_layer").is_null());
}

TEST(SinkVerdict, InconsistentReportIsAnError) {
  InspectReport r = hand_built_report(kSinkAlpha);
  r.token0_max_abs = {1.0};
  EXPECT_THROW(sink_verdict(r), Error);
  r = hand_built_report(kSinkAlpha);
  r.sinks.alpha.pop_back();
  EXPECT_THROW(sink_verdict(r), Error);
}

TEST(SinkVerdict, RunInspectFindsThePlantedSinkAndToken0sMassiveRatio) {
  auto model = planted_sink_model(true).write_and_load("verdict_sink");
  const InspectReport r = run_inspect(model, kIds, small_options());
  const SinkVerdict v = sink_verdict(r);
  EXPECT_TRUE(v.sink);
  EXPECT_EQ(v.heads_above, 1);
  EXPECT_EQ(v.heads_total, 2 * kHeads);
  EXPECT_GT(v.max_alpha0, 0.9);

  // Token 0's ratio, computed here from the captured residual streams.
  Session session(model);
  const auto captured = capture_taps(session, kIds, {"blk.0.resid_out", "blk.1.resid_out"});
  ASSERT_EQ(r.token0_max_abs.size(), 2u);
  double want = 0;
  for (int l = 0; l < 2; ++l) {
    const CapturedTensor& t = captured.at("blk." + std::to_string(l) + ".resid_out");
    double top = 0;
    for (int64_t c = 0; c < t.cols; ++c) top = std::max(top, std::fabs(double(t.row(0)[c])));
    EXPECT_NEAR(r.token0_max_abs[size_t(l)], top, 1e-6 * top) << "layer " << l;
    want = std::max(want, top / median_abs(t.data));
  }
  EXPECT_GT(want, 1000.0);  // the planted massive activation
  EXPECT_NEAR(v.massive_ratio, want, 1e-6 * want);
  EXPECT_EQ(v.massive_ratio_layer, 1);

  // Value drain from the report's own value norms (one sink layer: layer 0).
  const ValueNorms& vn = r.value_norms;
  double first = 0, rest = 0;
  for (int64_t g = 0; g < vn.n_kv_heads; ++g) {
    first += vn.at(0, g, 0);
    for (int64_t t = 1; t < vn.n_tokens; ++t) rest += vn.at(0, g, t);
  }
  const double drain = (first / double(vn.n_kv_heads)) / (rest / double(vn.n_kv_heads * (vn.n_tokens - 1)));
  EXPECT_NEAR(v.value_drain, drain, 1e-12);
  EXPECT_LT(v.value_drain, 0.5);
  EXPECT_EQ(v.value_drain_layer, 0);

  // report.json: the verdict, token 0's ratios, no sink logits; the summary starts with the verdict.
  const nlohmann::json j = inspect_report_json(*model, r);
  EXPECT_EQ(j.at("verdict").at("text").get<std::string>(), v.text);
  EXPECT_EQ(j.at("verdict").at("heads_above").get<int64_t>(), 1);
  EXPECT_TRUE(j.at("sink_logits").is_null());
  EXPECT_TRUE(j.at("model").at("variant").is_null());
  ASSERT_EQ(j.at("massive_activations").at("token0").size(), 2u);
  EXPECT_NEAR(j["massive_activations"]["token0"][1]["ratio"].get<double>(), want, 1e-6 * want);
  const std::string summary = inspect_summary(j);
  EXPECT_EQ(summary.substr(0, summary.find('\n')), "verdict:    " + v.text);
  const std::string html = inspect_report_html(j);
  EXPECT_NE(html.find("<section id=\"sec-verdict\">"), std::string::npos);
  EXPECT_LT(html.find("sec-verdict"), html.find("sec-sinks"));
  EXPECT_NE(html.find("soaks up a head's spare attention"), std::string::npos);
}

TEST(SinkVerdict, RunInspectWithoutAPlantedSinkSaysNoSink) {
  auto model = planted_sink_model(false).write_and_load("verdict_nosink");
  const InspectReport r = run_inspect(model, kIds, small_options());
  const SinkVerdict v = sink_verdict(r);
  EXPECT_FALSE(v.sink);
  EXPECT_EQ(v.heads_above, 0);
  // Every head is uniform: alpha_0 = mean over queries i of 1 / (i + 1).
  double uniform = 0;
  for (size_t i = 0; i < kIds.size(); ++i) uniform += 1.0 / double(i + 1);
  uniform /= double(kIds.size());
  EXPECT_NEAR(v.max_alpha0, uniform, 1e-5);
  char want[128];
  std::snprintf(want, sizeof want, "no sink: max α0 = %.3g ≤ ε = 0.3", uniform);
  EXPECT_EQ(v.text, want);
}

TEST(SinkVerdict, SinkLogitModelsReportTheirLearnedSinkLogits) {
  PlantedModel m = planted_sink_model(true);
  m.config["attention_sinks"] = true;
  m.config["sinklab_variant"] = "sink-logit";
  const std::vector<std::vector<float>> logits = {{0.5f, -1.25f}, {2.f, 3.f}};
  for (int l = 0; l < 2; ++l) m.add(layer_name(l, "self_attn.sinks"), {kHeads}).data = logits[size_t(l)];
  auto model = m.write_and_load("verdict_sink_logits");
  const InspectReport r = run_inspect(model, kIds, small_options());
  EXPECT_EQ(r.sink_logits, logits);
  const nlohmann::json j = inspect_report_json(*model, r);
  ASSERT_TRUE(j.at("sink_logits").is_array());
  EXPECT_EQ(j.at("sink_logits").get<std::vector<std::vector<float>>>(), logits);
  EXPECT_EQ(j.at("model").at("variant").get<std::string>(), "sink-logit");
  const std::string text = j.at("verdict").at("text").get<std::string>();
  EXPECT_NE(text.find("learned per-head sink logits (see sink_logits)"), std::string::npos) << text;
}

TEST(SinkVerdict, SinkTokenModelsNameTheirLearnedSinkToken) {
  PlantedModel m = planted_sink_model(true);
  m.config["sinklab_variant"] = "sink-token";
  m.config["bos_token_id"] = 0;  // no tokenizer: the BOS is the sink token
  auto model = m.write_and_load("verdict_sink_token");
  const InspectReport r = run_inspect(model, kIds, small_options());
  EXPECT_TRUE(r.token0_is_sink_token);
  const std::string text = sink_verdict(r).text;
  EXPECT_EQ(text.rfind("sink on token 0 (the learned <|sink|> token): 1 of 4 heads with α0 > 0.3; ", 0), 0u)
      << text;
  const std::vector<int32_t> no_bos(kIds.begin() + 1, kIds.end());
  const InspectReport shifted = run_inspect(model, no_bos, small_options());
  EXPECT_FALSE(shifted.token0_is_sink_token);
  EXPECT_NE(sink_verdict(shifted).text.find("is not token 0"), std::string::npos);
}
