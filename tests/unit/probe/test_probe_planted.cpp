// Each probe finds exactly what a tiny hand-built model plants, and nothing else:
// a sink head, a massive activation, a super expert, a propagation bottleneck.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "planted_models.h"
#include "sinklab/probe.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

// Token t embeds as e_0 + e_{1+t}: every token has the same RMS, and token 0
// alone carries dimension 1 (its marker).
constexpr int64_t kVocab = 7, kDim = 8, kHeads = 2, kHeadDim = 4;

void marker_embeddings(PlantedModel& m) {
  Tensor& e = m.get("model.embed_tokens.weight");
  for (int64_t t = 0; t < kVocab; ++t) {
    e.at(t, 0) = 1.f;
    e.at(t, 1 + t) = 1.f;
  }
}

// Head h of layer l attends to key 0 (token id 0) with logit z and to every other key with 0.
void plant_sink_head(PlantedModel& m, int l, int h, float a, float b) {
  m.get(layer_name(l, "self_attn.q_proj.weight")).at(h * kHeadDim, 0) = a;
  m.get(layer_name(l, "self_attn.k_proj.weight")).at(h * kHeadDim, 1) = b;
}

double planted_logit(double a, double b) {
  const double rms_scale = 1.0 / std::sqrt(2.0 / double(kDim) + 1e-6);
  return rms_scale * rms_scale * a * b / std::sqrt(double(kHeadDim));
}

// A[i][j] of a planted sink head (key 0 is the sink token) or a uniform head (z = 0).
double planted_prob(double z, int64_t i, int64_t j) {
  if (j > i) return 0;
  const double ez = std::exp(z);
  return (j == 0 ? ez : 1.0) / (ez + double(i));
}

std::vector<int32_t> sink_ids(int64_t n) {
  std::vector<int32_t> ids = {0};
  for (int64_t i = 1; i < n; ++i) ids.push_back(int32_t(1 + (i - 1) % (kVocab - 1)));
  return ids;
}

}  // namespace

TEST(SinkScores, FindsExactlyThePlantedSinkHead) {
  PlantedModel m = zero_decoder(kVocab, kDim, 2, kHeads, kHeadDim, 4);
  marker_embeddings(m);
  const float a = 1.5f, b = 1.5f;
  plant_sink_head(m, 0, 0, a, b);
  auto model = m.write_and_load("sink_head");
  const std::vector<int32_t> ids = sink_ids(16);
  const int64_t n = int64_t(ids.size());
  SinkScoreOptions one_key;
  one_key.first_k = 1;  // the sink region is token 0 alone: its mass is alpha_0
  const SinkScores s = sink_scores(model, ids, one_key);
  ASSERT_EQ(s.layers, (std::vector<int>{0, 1}));
  ASSERT_EQ(s.n_keys, n);
  ASSERT_EQ(s.alpha.size(), size_t(2 * kHeads * n));
  const double z = planted_logit(a, b);
  for (size_t li = 0; li < 2; ++li)
    for (int64_t h = 0; h < kHeads; ++h) {
      const double head_z = (li == 0 && h == 0) ? z : 0.0;
      for (int64_t k = 0; k < n; ++k) {
        double want = 0;
        for (int64_t i = k; i < n; ++i) want += planted_prob(head_z, i, k);
        want /= double(n - k);
        EXPECT_NEAR(s.alpha_at(li, h, k), want, 1e-5) << "layer " << li << " head " << h << " key " << k;
      }
      EXPECT_NEAR(s.mass_first_k[li * kHeads + size_t(h)], s.alpha_at(li, h, 0), 1e-6);
    }
  EXPECT_GT(s.alpha_at(0, 0, 0), 0.9);
  // One of four (layer, head) pairs sinks on key 0; no other key is a sink.
  EXPECT_DOUBLE_EQ(s.sink_percent[0], 25.0);
  for (int64_t k = 1; k < n; ++k) EXPECT_EQ(s.sink_percent[size_t(k)], 0.0) << "key " << k;

  SinkScoreOptions narrow;
  narrow.max_keys = 3;
  narrow.layers = {0};
  narrow.first_k = 2;
  const SinkScores t = sink_scores(model, ids, narrow);
  ASSERT_EQ(t.alpha.size(), size_t(kHeads * 3));
  EXPECT_NEAR(t.alpha_at(0, 0, 0), s.alpha_at(0, 0, 0), 1e-12);
  EXPECT_DOUBLE_EQ(t.sink_percent[0], 50.0);
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) mass += planted_prob(z, i, 0) + planted_prob(z, i, 1);
  EXPECT_NEAR(t.mass_first_k[0], mass / double(n), 1e-5);

  nlohmann::json j = s;
  EXPECT_EQ(j["alpha"].size(), s.alpha.size());
  EXPECT_EQ(j["sink_percent"][0].get<double>(), 25.0);
}

// With q = k = 0 every key of query i has logit 0, so a learned sink logit s
// takes e^s / (e^s + i + 1) of row i; heads without sink logits drop nothing.
TEST(SinkScores, SinkLogitMassIsWhatTheLogitTakes) {
  PlantedModel m = zero_decoder(kVocab, kDim, 2, kHeads, kHeadDim, 4);
  m.config["attention_sinks"] = true;
  const float sinks[2][kHeads] = {{2.f, -1.f}, {0.f, 4.f}};
  for (int l = 0; l < 2; ++l) {
    Tensor& t = m.add(layer_name(l, "self_attn.sinks"), {kHeads});
    for (int64_t h = 0; h < kHeads; ++h) t.data[size_t(h)] = sinks[l][h];
  }
  auto model = m.write_and_load("sink_logit_mass");
  const std::vector<int32_t> ids = sink_ids(12);
  const int64_t n = int64_t(ids.size());
  const SinkScores s = sink_scores(model, ids);
  ASSERT_EQ(s.sink_logit_mass.size(), size_t(2 * kHeads));
  for (int l = 0; l < 2; ++l)
    for (int64_t h = 0; h < kHeads; ++h) {
      double want = 0;
      for (int64_t i = 0; i < n; ++i) want += std::exp(sinks[l][h]) / (std::exp(sinks[l][h]) + double(i + 1));
      EXPECT_NEAR(s.sink_logit_mass[size_t(l * kHeads + h)], want / double(n), 1e-5) << "layer " << l << " head " << h;
    }
  const SinkScores plain = sink_scores(zero_decoder(kVocab, kDim, 2, kHeads, kHeadDim, 4).write_and_load("no_sink"), ids);
  for (double v : plain.sink_logit_mass) EXPECT_NEAR(v, 0.0, 1e-6);
}

TEST(MassiveActivations, FindsThePlantedDimensionOnThePlantedToken) {
  constexpr int64_t V = 6, D = 16, content = 10;
  PlantedModel m = zero_decoder(V, D, 3, 2, 4, 4);
  Tensor& e = m.get("model.embed_tokens.weight");
  Lcg rng(7);
  for (int64_t t = 0; t < V; ++t) {
    for (int64_t d = 0; d < content; ++d) {
      const float r = rng.next();
      e.at(t, d) = (r < 0 ? -1.f : 1.f) * (1.f + 0.5f * r);
    }
    e.at(t, content + t) = 1.f;
  }
  // Layer 1's FFN writes into dimension 2 of token id 3 only: its gate and up
  // read token 3's marker, which every other token has at 0 (silu(0) = 0).
  const int64_t planted_dim = 2, planted_token_id = 3;
  const float beta = 4.f, gamma = 4.f, delta = 500.f;
  m.get(layer_name(1, "mlp.gate_proj.weight")).at(0, content + planted_token_id) = beta;
  m.get(layer_name(1, "mlp.up_proj.weight")).at(0, content + planted_token_id) = gamma;
  m.get(layer_name(1, "mlp.down_proj.weight")).at(planted_dim, 0) = delta;
  auto model = m.write_and_load("massive");
  const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 5, 0, 1};
  const int64_t planted_pos = 3;

  double sq = 0;
  for (int64_t d = 0; d < D; ++d) sq += double(e.at(planted_token_id, d)) * e.at(planted_token_id, d);
  const double h = 1.0 / std::sqrt(sq / double(D) + 1e-6);
  const double g = beta * h, silu = g / (1 + std::exp(-g));
  const double want = double(e.at(planted_token_id, planted_dim)) + delta * silu * gamma * h;

  const MassiveActivations r = massive_activations(model, ids);
  ASSERT_EQ(r.layers.size(), 3u);
  EXPECT_EQ(r.layers[0].n_flagged, 0);
  EXPECT_LT(r.layers[0].max_abs, 2.0);
  for (int l = 1; l < 3; ++l) {
    const MassiveLayer& L = r.layers[size_t(l)];
    EXPECT_EQ(L.layer, l);
    ASSERT_EQ(L.n_flagged, 1) << "layer " << l;
    const ActivationEntry& a = L.flagged[0];
    EXPECT_EQ(a.dim, planted_dim);
    EXPECT_EQ(a.token, planted_pos);
    EXPECT_EQ(a.token_id, planted_token_id);
    EXPECT_NEAR(a.value, want, 1e-4 * want);
    EXPECT_GT(a.ratio, 1000.0);
    EXPECT_GT(L.median_abs, 0.4);
    EXPECT_EQ(L.top.size(), 5u);
    EXPECT_EQ(L.top[0].dim, planted_dim);
    EXPECT_LT(std::fabs(L.top[1].value), 2.f);
  }
  // Thresholds are configurable; ratios are reported either way.
  MassiveActivationOptions strict;
  strict.abs_threshold = 1e9;
  strict.layers = {2};
  const MassiveActivations s = massive_activations(model, ids, strict);
  ASSERT_EQ(s.layers.size(), 1u);
  EXPECT_EQ(s.layers[0].layer, 2);
  EXPECT_EQ(s.layers[0].n_flagged, 0);
  EXPECT_TRUE(s.layers[0].top[0].above_ratio);
  EXPECT_FALSE(s.layers[0].top[0].above_abs);
  EXPECT_GT(s.layers[0].max_ratio, 1000.0);
  nlohmann::json j = r;
  EXPECT_EQ(j["layers"][1]["flagged"][0]["dim"].get<int64_t>(), planted_dim);
}

namespace {

PlantedModel mixtral(int64_t layers, int64_t experts, uint64_t seed) {
  constexpr int64_t V = 8, D = 8, H = 2, F = 4;
  PlantedModel m;
  m.config = {{"model_type", "mixtral"},        {"vocab_size", V},          {"hidden_size", D},
              {"num_hidden_layers", layers},    {"num_attention_heads", H}, {"num_key_value_heads", H},
              {"intermediate_size", F},         {"num_local_experts", experts},
              {"num_experts_per_tok", 2},       {"rms_norm_eps", 1e-6},     {"max_position_embeddings", 64}};
  Lcg rng(seed);
  fill_random(m.add("model.embed_tokens.weight", {V, D}), rng, 1.f);
  fill_random(m.add("lm_head.weight", {V, D}), rng, 0.3f);
  m.add("model.norm.weight", {D}, 1.f);
  for (int l = 0; l < int(layers); ++l) {
    m.add(layer_name(l, "input_layernorm.weight"), {D}, 1.f);
    m.add(layer_name(l, "post_attention_layernorm.weight"), {D}, 1.f);
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"})
      fill_random(m.add(layer_name(l, std::string("self_attn.") + p + ".weight"), {D, D}), rng, 0.3f);
    fill_random(m.add(layer_name(l, "block_sparse_moe.gate.weight"), {experts, D}), rng, 0.5f);
    for (int e = 0; e < int(experts); ++e) {
      const std::string p = "block_sparse_moe.experts." + std::to_string(e) + ".";
      fill_random(m.add(layer_name(l, p + "w1.weight"), {F, D}), rng, 0.5f);
      fill_random(m.add(layer_name(l, p + "w3.weight"), {F, D}), rng, 0.5f);
      fill_random(m.add(layer_name(l, p + "w2.weight"), {D, F}), rng, 0.5f);
    }
  }
  return m;
}

void scale(Tensor& t, float f) {
  for (float& x : t.data) x *= f;
}

}  // namespace

TEST(SuperExperts, FindsThePlantedExpertOnlyInEarlyLayers) {
  constexpr int L = 4, E = 4;
  PlantedModel m = mixtral(L, E, 11);
  // Layer 1's router is zero: every token goes to experts 0 and 1 (ties pick the lower index).
  for (float& x : m.get(layer_name(1, "block_sparse_moe.gate.weight")).data) x = 0;
  scale(m.get(layer_name(1, "block_sparse_moe.experts.1.w2.weight")), 1000.f);
  // A large expert in the last layer (3 >= 0.75 * 4) is not eligible.
  for (float& x : m.get(layer_name(3, "block_sparse_moe.gate.weight")).data) x = 0;
  scale(m.get(layer_name(3, "block_sparse_moe.experts.0.w2.weight")), 300.f);
  auto model = m.write_and_load("super_expert");
  const std::vector<std::vector<int32_t>> batches = {{0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4}, {3, 3, 1}};
  const SuperExperts s = super_experts(model, batches);
  ASSERT_EQ(s.experts.size(), size_t(L * E));
  ASSERT_EQ(s.supers.size(), 1u);
  EXPECT_EQ(s.supers[0].layer, 1);
  EXPECT_EQ(s.supers[0].expert, 1);
  const int64_t tokens = 8 + 4 + 3;
  const auto& at = [&](int l, int e) { return s.experts[size_t(l * E + e)]; };
  EXPECT_EQ(at(1, 0).routed, tokens);
  EXPECT_EQ(at(1, 1).routed, tokens);
  EXPECT_EQ(at(1, 2).routed, 0);
  EXPECT_EQ(at(1, 3).routed, 0);
  EXPECT_EQ(at(1, 2).max_out, 0.0);
  EXPECT_DOUBLE_EQ(s.overall_max, at(1, 1).max_out);
  EXPECT_GT(at(3, 0).max_out, s.overall_max / 10);
  EXPECT_FALSE(at(3, 0).super);
  int64_t routed = 0;
  for (const ExpertStat& x : s.experts) routed += x.routed;
  EXPECT_EQ(routed, int64_t(L) * tokens * 2);
  nlohmann::json j = s;
  EXPECT_EQ(j["supers"][0]["expert"].get<int>(), 1);

  // Without the plant: with 16 experts P99.5 lies between the two largest maxima, so the rule
  // can flag at most the single largest ordinary expert.
  PlantedModel plain = mixtral(L, E, 11);
  const SuperExperts none = super_experts(plain.write_and_load("no_super_expert"), batches);
  for (const ExpertStat& x : none.supers) EXPECT_DOUBLE_EQ(x.max_out, none.overall_max);
  EXPECT_LE(none.supers.size(), 1u);
}

TEST(Propagation, PlantedBottleneckRoutesEverythingThroughTheSink) {
  constexpr int L = 3;
  PlantedModel m = zero_decoder(kVocab, kDim, L, kHeads, kHeadDim, 4);
  marker_embeddings(m);
  const float a = 3.f, b = 3.f;
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < kHeads; ++h) plant_sink_head(m, l, h, a, b);
  auto model = m.write_and_load("bottleneck");
  const std::vector<int32_t> ids = sink_ids(10);
  const int64_t n = int64_t(ids.size());
  PropagationOptions opts;
  opts.keep_attention = true;
  const Propagation p = propagation(model, ids, opts);
  const double z = planted_logit(a, b);
  // Expected rollout: every layer has the same A, so r = e_last^T M^L.
  std::vector<double> r(static_cast<size_t>(n), 0.0);
  r[size_t(n - 1)] = 1;
  for (int l = 0; l < L; ++l) {
    std::vector<double> next(static_cast<size_t>(n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) next[size_t(j)] += r[size_t(i)] * (0.5 * planted_prob(z, i, j) + (i == j ? 0.5 : 0));
    r = next;
  }
  ASSERT_EQ(p.influence_on_last.size(), size_t(n));
  for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(p.influence_on_last[size_t(j)], r[size_t(j)], 1e-6) << j;
  EXPECT_NEAR(p.influence_on_last[0], 1 - std::pow(0.5, L), 1e-4);
  EXPECT_NEAR(p.influence_on_last[size_t(n - 1)], std::pow(0.5, L), 1e-4);
  for (int64_t j = 1; j + 1 < n; ++j) EXPECT_LT(p.influence_on_last[size_t(j)], 1e-4) << "middle position " << j;
  ASSERT_EQ(p.attention.size(), size_t(L * n * n));
  EXPECT_NEAR(p.attention[size_t((n - 1) * n)], planted_prob(z, n - 1, 0), 1e-6);

  // The residual stream is the embedding in every layer: rows e_0 + e_{1+id}.
  std::vector<float> x(static_cast<size_t>(n * kDim), 0.f);
  for (int64_t i = 0; i < n; ++i) {
    x[size_t(i * kDim)] = 1;
    x[size_t(i * kDim + 1 + ids[size_t(i)])] = 1;
  }
  const RankMeasures want = rank_measures(x.data(), n, kDim);
  ASSERT_EQ(p.layers.size(), size_t(L));
  for (const PropagationLayer& pl : p.layers) {
    EXPECT_NEAR(pl.centered_ratio, want.centered_ratio, 1e-6);
    EXPECT_NEAR(pl.effective_rank, want.effective_rank, 1e-6);
    double energy = 0;  // distinct tokens are sqrt(2) apart, equal tokens 0
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j)
        if (ids[size_t(i)] != ids[size_t(j)]) energy += 2 * planted_prob(z, i, j);
    EXPECT_NEAR(pl.dirichlet_energy, energy, 1e-5);
    EXPECT_NEAR(pl.dirichlet_energy_normalized, energy / (2.0 * double(n)), 1e-6);
  }
  nlohmann::json j = p;
  EXPECT_EQ(j["layers"].size(), size_t(L));
}

TEST(RankMeasures, KnownSingularValues) {
  // Orthogonal rows with norms 3, 2, 1: sigma = {3, 2, 1}.
  const std::vector<float> x = {3, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0};
  const RankMeasures r = rank_measures(x.data(), 3, 4);
  ASSERT_EQ(r.singular_values.size(), 3u);
  EXPECT_NEAR(r.singular_values[0], 3, 1e-12);
  EXPECT_NEAR(r.singular_values[1], 2, 1e-12);
  EXPECT_NEAR(r.singular_values[2], 1, 1e-12);
  double h = 0;
  for (double s : {3.0, 2.0, 1.0}) h -= s / 6 * std::log(s / 6);
  EXPECT_NEAR(r.effective_rank, std::exp(h), 1e-12);
  // Centered: mean row (1, 2/3, 1/3, 0); ||X - 1 mean||^2 = ||X||^2 - 3 ||mean||^2.
  const double mean_sq = 1 + 4.0 / 9 + 1.0 / 9;
  EXPECT_NEAR(r.centered_ratio, std::sqrt((14 - 3 * mean_sq) / 14), 1e-12);
  // Identical rows: rank 1 and no spread; tall matrices use the other Gram side.
  const std::vector<float> same = {1, 2, 1, 2, 1, 2, 1, 2, 1, 2};
  const RankMeasures c = rank_measures(same.data(), 5, 2);
  EXPECT_NEAR(c.effective_rank, 1.0, 1e-7);
  EXPECT_NEAR(c.centered_ratio, 0.0, 1e-12);
  EXPECT_NEAR(c.singular_values[0], std::sqrt(25.0), 1e-9);
  // A random square matrix: sum of sigma^2 equals ||X||_F^2.
  Lcg rng(3);
  std::vector<float> rnd(36);
  double fro = 0;
  for (float& v : rnd) {
    v = rng.next();
    fro += double(v) * v;
  }
  const RankMeasures q = rank_measures(rnd.data(), 6, 6);
  double sum = 0;
  for (double s : q.singular_values) sum += s * s;
  EXPECT_NEAR(sum, fro, 1e-9 * fro);
  EXPECT_THROW(rank_measures(rnd.data(), 0, 6), Error);
}

TEST(Percentile, MatchesLinearInterpolation) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({5}, 99.5), 5);
  EXPECT_NEAR(percentile({0, 10}, 99.5), 9.95, 1e-12);
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile({1}, 101), Error);
}
