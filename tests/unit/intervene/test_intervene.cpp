// Interventions change exactly what they name: every tap is captured with and
// without the intervention and diffed. Nothing upstream of the edit changes,
// the named entries take the specified values (checked against values computed
// here from the unedited run), and downstream may change.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "../probe/planted_models.h"
#include "sinklab/intervene.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

constexpr int64_t kV = 11, kD = 16, kL = 3, kH = 4, kKv = 2, kHd = 4, kF = 8;
const std::vector<int32_t> kIds = {1, 5, 3, 9, 2, 2, 7, 10, 0, 4};

std::shared_ptr<const Model> random_gqa_model() {
  PlantedModel m = zero_decoder(kV, kD, kL, kH, kHd, kF, /*rope=*/true);
  m.config["num_key_value_heads"] = kKv;
  m.config["bos_token_id"] = 1;
  Lcg rng(7);
  for (auto& [name, t] : m.tensors) {
    if (name.find("norm") != std::string::npos) continue;
    if (name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos)
      t = Tensor{{kKv * kHd, kD}, std::vector<float>(size_t(kKv * kHd * kD))};
    fill_random(t, rng, name.find("q_proj") != std::string::npos ? 1.5f : 0.7f);
  }
  return m.write_and_load("intervene_gqa");
}

std::shared_ptr<const Model> random_moe_model() {
  constexpr int64_t E = 4;
  PlantedModel m;
  m.config = {{"model_type", "mixtral"},  {"vocab_size", kV},       {"hidden_size", kD},
              {"num_hidden_layers", 2},   {"num_attention_heads", 2}, {"num_key_value_heads", 2},
              {"intermediate_size", kF},  {"num_local_experts", E}, {"num_experts_per_tok", 2},
              {"rms_norm_eps", 1e-6},     {"max_position_embeddings", 64}};
  Lcg rng(3);
  fill_random(m.add("model.embed_tokens.weight", {kV, kD}), rng, 1.f);
  fill_random(m.add("lm_head.weight", {kV, kD}), rng, 0.3f);
  m.add("model.norm.weight", {kD}, 1.f);
  for (int l = 0; l < 2; ++l) {
    m.add(layer_name(l, "input_layernorm.weight"), {kD}, 1.f);
    m.add(layer_name(l, "post_attention_layernorm.weight"), {kD}, 1.f);
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"})
      fill_random(m.add(layer_name(l, std::string("self_attn.") + p + ".weight"), {kD, kD}), rng, 0.3f);
    fill_random(m.add(layer_name(l, "block_sparse_moe.gate.weight"), {E, kD}), rng, 0.5f);
    for (int e = 0; e < int(E); ++e) {
      const std::string p = "block_sparse_moe.experts." + std::to_string(e) + ".";
      fill_random(m.add(layer_name(l, p + "w1.weight"), {kF, kD}), rng, 0.5f);
      fill_random(m.add(layer_name(l, p + "w3.weight"), {kF, kD}), rng, 0.5f);
      fill_random(m.add(layer_name(l, p + "w2.weight"), {kD, kF}), rng, 0.5f);
    }
  }
  return m.write_and_load("intervene_moe");
}

struct Captured {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
  std::vector<int32_t> row_ids;
  float at(int64_t r, int64_t c) const { return data[size_t(r * cols + c)]; }
};
using Capture = std::map<std::string, Captured>;

// Every tap of a fresh session fed `ids` in the given chunks, with the interventions attached first.
Capture capture_all(const std::shared_ptr<const Model>& model, const std::vector<std::string>& specs,
                    const std::vector<int32_t>& ids = kIds, std::vector<size_t> chunks = {}) {
  Session s(model);
  const std::vector<Intervention> list = parse_interventions(specs);
  AttachedInterventions attached(s, list);
  Capture out;
  s.taps().add("*", [&out](const TapEvent& e) {
    Captured& c = out[e.name];
    c.cols = e.cols;
    c.rows += e.rows;
    c.data.insert(c.data.end(), e.data, e.data + e.rows * e.cols);
    c.row_ids.insert(c.row_ids.end(), e.row_ids.begin(), e.row_ids.end());
  });
  if (chunks.empty()) chunks = {ids.size()};
  size_t done = 0;
  std::vector<float> logits;
  for (size_t n : chunks) {
    s.feed(std::span<const int32_t>(ids.data() + done, n), &logits);
    done += n;
  }
  return out;
}

bool same(const Captured& a, const Captured& b) { return a.rows == b.rows && a.cols == b.cols && a.data == b.data; }

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return name == "token_embd" ? -1 : 1 << 20;
  return std::stoi(name.substr(4));
}

}  // namespace

TEST(InterventionParse, ReadsEveryKindAndItsDefaults) {
  Intervention s = parse_intervention("sink:keys=0;2..4,layers=1,heads=0;3");
  EXPECT_EQ(s.kind, InterventionKind::SinkMask);
  EXPECT_EQ(s.tokens, (std::vector<int64_t>{0, 2, 3, 4}));
  EXPECT_EQ(s.layers, (std::vector<int>{1}));
  EXPECT_EQ(s.heads, (std::vector<int>{0, 3}));
  EXPECT_EQ(parse_intervention("sink").tokens, (std::vector<int64_t>{0}));
  Intervention r = parse_intervention("reset:layer=2,dims=17;42,tokens=0,mode=mean");
  EXPECT_EQ(r.kind, InterventionKind::Reset);
  EXPECT_EQ(r.layer, 2);
  EXPECT_EQ(r.dims, (std::vector<int64_t>{17, 42}));
  EXPECT_EQ(r.tokens, (std::vector<int64_t>{0}));
  EXPECT_EQ(r.mode, ResetMode::Mean);
  EXPECT_EQ(parse_intervention("reset:tap=blk.0.ffn_act,dims=1").tap, "blk.0.ffn_act");
  Intervention p = parse_intervention("prune:layer=1,expert=3");
  EXPECT_EQ(p.layer, 1);
  EXPECT_EQ(p.experts, (std::vector<int>{3}));
  EXPECT_EQ(parse_intervention("prepend").token_ids, (std::vector<int32_t>{-1}));
  EXPECT_EQ(parse_intervention("prepend:token=5;bos").token_ids, (std::vector<int32_t>{5, -1}));
}

TEST(InterventionParse, RejectsMalformedSpecsWithTheSpecInTheMessage) {
  for (const char* bad : {"", "mask:keys=0", "sink:", "sink:kyes=0", "sink:keys=", "sink:keys=a", "sink:keys=-1",
                          "sink:keys=3..1", "sink:keys=0,keys=1", "sink:keys=0;;1", "reset:dims=1",
                          "reset:layer=0,tap=logits,dims=1", "reset:layer=0", "reset:layer=0,dims=1,mode=half",
                          "reset:layer=0;1,dims=1", "prune:layer=0", "prepend:token=x", "sink:keys=0..99999999"}) {
    try {
      parse_intervention(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("ablate spec '") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(InterventionValidate, RejectsWhatTheModelDoesNotHave) {
  auto model = random_gqa_model();
  Session s(model);
  for (const char* bad : {"sink:keys=0,layers=3", "sink:heads=4", "reset:layer=3,dims=0", "reset:layer=0,dims=16",
                          "reset:tap=blk.0.bogus,dims=0", "reset:tap=blk.9.q,dims=0", "reset:tap=blk.0.k,dims=8",
                          "reset:tap=blk.0.attn_probs,dims=0", "reset:tap=blk.0.moe.router_probs,dims=0",
                          "prune:layer=0,expert=0", "prepend:token=11"}) {
    const std::vector<Intervention> list = parse_interventions({bad});
    EXPECT_THROW(AttachedInterventions(s, list), Error) << bad;
  }
  EXPECT_TRUE(s.taps().empty());
  EXPECT_EQ(tap_width(model->config(), "blk.2.v"), kKv * kHd);
  EXPECT_EQ(tap_width(model->config(), "logits"), kV);
  EXPECT_EQ(tap_width(model->config(), "blk.1.ffn_act"), kF);
  KeyMask empty;
  EXPECT_THROW(s.add_key_mask(empty), Error);
}

TEST(SinkMask, HidesTheNamedKeysInTheNamedLayerAndNothingUpstream) {
  auto model = random_gqa_model();
  const Capture base = capture_all(model, {});
  const Capture cut = capture_all(model, {"sink:keys=0;3,layers=1"});
  const int64_t n = int64_t(kIds.size());
  ASSERT_EQ(base.size(), cut.size());
  for (const auto& [name, t] : base) {
    const int l = layer_of(name);
    const bool upstream = l < 1 || (l == 1 && (name.ends_with(".attn_norm") || name.ends_with(".q") ||
                                               name.ends_with(".k") || name.ends_with(".v")));
    if (upstream) {
      EXPECT_TRUE(same(t, cut.at(name))) << name << " is upstream of the mask and changed";
    }
    if (l == 1 && name.ends_with(".attn_ctx")) {
      EXPECT_FALSE(same(t, cut.at(name))) << name << " did not change";
    }
    if (l == 2 && name.ends_with(".attn_probs")) {
      EXPECT_FALSE(same(t, cut.at(name)));
    }
  }
  // Layer 1: the masked probabilities are the unmasked ones renormalised over the visible keys.
  const Captured& p0 = base.at("blk.1.attn_probs");
  const Captured& p1 = cut.at("blk.1.attn_probs");
  ASSERT_EQ(p1.cols, n);
  for (int64_t row = 0; row < kH * n; ++row) {
    const int64_t q = row % n;
    double visible = 0;
    for (int64_t j = 0; j <= q; ++j)
      if (j != 0 && j != 3) visible += p0.at(row, j);
    for (int64_t j = 0; j < n; ++j) {
      const double want = (j == 0 || j == 3 || visible == 0) ? 0.0 : p0.at(row, j) / visible;
      EXPECT_NEAR(p1.at(row, j), want, 1e-5) << "row " << row << " key " << j;
    }
  }
}

TEST(SinkMask, HeadSpecificMaskUnderGqaLeavesTheOtherHeadsOfItsGroupAlone) {
  auto model = random_gqa_model();
  const Capture base = capture_all(model, {});
  const Capture cut = capture_all(model, {"sink:keys=0,layers=0,heads=1"});
  const int64_t n = int64_t(kIds.size());
  const Captured& p0 = base.at("blk.0.attn_probs");
  const Captured& p1 = cut.at("blk.0.attn_probs");
  const Captured& v = base.at("blk.0.v");
  const Captured& ctx = cut.at("blk.0.attn_ctx");
  const Captured& ctx0 = base.at("blk.0.attn_ctx");
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t q = 0; q < n; ++q) {
      const int64_t row = h * n + q;
      double visible = 0;
      for (int64_t j = 1; j <= q; ++j) visible += p0.at(row, j);
      for (int64_t j = 0; j < n; ++j) {
        const double want = h != 1 ? p0.at(row, j) : (j == 0 || visible == 0) ? 0.0 : p0.at(row, j) / visible;
        EXPECT_NEAR(p1.at(row, j), want, 1e-6) << "head " << h << " query " << q << " key " << j;
      }
      // The attention output is the masked probabilities times the values of the head's kv group.
      for (int64_t d = 0; d < kHd; ++d) {
        double want = 0;
        for (int64_t j = 0; j < n; ++j) want += double(p1.at(row, j)) * v.at(j, (h / (kH / kKv)) * kHd + d);
        EXPECT_NEAR(ctx.at(q, h * kHd + d), want, 1e-5);
        if (h != 1) {
          EXPECT_NEAR(ctx.at(q, h * kHd + d), ctx0.at(q, h * kHd + d), 1e-6);
        }
      }
    }
}

TEST(ActivationReset, ZeroesTheNamedEntriesAndLeavesEarlierTokensAlone) {
  auto model = random_gqa_model();
  const Capture base = capture_all(model, {});
  const Capture cut = capture_all(model, {"reset:layer=0,dims=3;5,tokens=2"});
  const Captured& r0 = base.at("blk.0.resid_out");
  const Captured& r1 = cut.at("blk.0.resid_out");
  for (int64_t t = 0; t < r0.rows; ++t)
    for (int64_t d = 0; d < kD; ++d) {
      if (t == 2 && (d == 3 || d == 5))
        EXPECT_EQ(r1.at(t, d), 0.f);
      else
        EXPECT_EQ(r1.at(t, d), r0.at(t, d)) << "token " << t << " dim " << d;
    }
  EXPECT_NE(r0.at(2, 3), 0.f);
  for (const auto& [name, t] : base) {
    const int l = layer_of(name);
    if (l < 0 || (l == 0 && !name.ends_with(".resid_out"))) {
      EXPECT_TRUE(same(t, cut.at(name))) << name;
    } else if (l >= 1 && !name.ends_with("attn_probs")) {
      // Causal: rows of tokens 0 and 1 never see token 2.
      const Captured& c = cut.at(name);
      const int64_t rows = std::min<int64_t>(2, t.rows);
      EXPECT_TRUE(std::equal(t.data.begin(), t.data.begin() + rows * t.cols, c.data.begin())) << name;
    }
  }
  EXPECT_FALSE(same(base.at("blk.1.resid_out"), cut.at("blk.1.resid_out")));
}

TEST(ActivationReset, MeanIsTheMeanOverTheOtherTokensOfTheStream) {
  auto model = random_gqa_model();
  const Capture base = capture_all(model, {});
  const Captured& r0 = base.at("blk.1.resid_out");
  const std::vector<std::string> spec = {"reset:layer=1,dims=0;7,tokens=1;6,mode=mean"};
  const Capture one = capture_all(model, spec);
  const Capture two = capture_all(model, spec, kIds, {4, 6});  // token 1 in the first feed, 6 in the second
  for (int64_t d : {0, 7}) {
    // Token 6 (second feed) sees every other row: the whole stream except tokens 1 and 6.
    double all = 0;
    for (int64_t t = 0; t < r0.rows; ++t)
      if (t != 1 && t != 6) all += r0.at(t, d);
    EXPECT_NEAR(one.at("blk.1.resid_out").at(6, d), all / double(r0.rows - 2), 1e-5);
    EXPECT_NEAR(two.at("blk.1.resid_out").at(6, d), all / double(r0.rows - 2), 1e-5);
    EXPECT_NEAR(one.at("blk.1.resid_out").at(1, d), all / double(r0.rows - 2), 1e-5);
    // In the chunked run token 1 sees only the first feed: tokens 0, 2 and 3.
    const double first = (r0.at(0, d) + r0.at(2, d) + r0.at(3, d)) / 3.0;
    EXPECT_NEAR(two.at("blk.1.resid_out").at(1, d), first, 1e-5);
  }
  EXPECT_EQ(one.at("blk.1.resid_out").at(6, 1), r0.at(6, 1));
}

TEST(ActivationReset, NamedTapAndEveryRow) {
  auto model = random_gqa_model();
  const Capture base = capture_all(model, {});
  const Capture cut = capture_all(model, {"reset:tap=blk.2.ffn_act,dims=0..2"});
  const Captured& a = cut.at("blk.2.ffn_act");
  for (int64_t t = 0; t < a.rows; ++t)
    for (int64_t d = 0; d < kF; ++d)
      if (d <= 2)
        EXPECT_EQ(a.at(t, d), 0.f);
      else
        EXPECT_EQ(a.at(t, d), base.at("blk.2.ffn_act").at(t, d));
  EXPECT_TRUE(same(base.at("blk.2.ffn_norm"), cut.at("blk.2.ffn_norm")));
  EXPECT_FALSE(same(base.at("blk.2.ffn_out"), cut.at("blk.2.ffn_out")));
}

TEST(ExpertPrune, ZeroesTheExpertOutputAndRemovesItsShareOfTheFfn) {
  auto model = random_moe_model();
  const Capture base = capture_all(model, {});
  const Capture cut = capture_all(model, {"prune:layer=1,expert=2"});
  const std::string down = "blk.1.moe.expert.2.down_out";
  ASSERT_TRUE(base.count(down)) << "expert 2 of layer 1 received no tokens; pick another seed";
  for (float x : cut.at(down).data) EXPECT_EQ(x, 0.f);
  for (const auto& [name, t] : base)
    if (layer_of(name) < 1 || name == "blk.1.moe.router_probs" || name == "blk.1.ffn_norm") {
      EXPECT_TRUE(same(t, cut.at(name))) << name;
    }
  // ffn_out loses exactly the expert's routed share: weight * its down output.
  const ModelConfig& c = model->config();
  const Captured& router = base.at("blk.1.moe.router_probs");
  const Captured& d0 = base.at(down);
  std::vector<float> want = base.at("blk.1.ffn_out").data;
  for (int64_t r = 0; r < d0.rows; ++r) {
    const int64_t tok = d0.row_ids[size_t(r)];
    std::vector<std::pair<float, int>> p;
    for (int e = 0; e < c.moe.n_experts; ++e) p.push_back({-router.at(tok, e), e});
    std::sort(p.begin(), p.end());
    const float norm = c.moe.norm_topk ? -(p[0].first + p[1].first) : 1.f;
    for (int64_t d = 0; d < kD; ++d) want[size_t(tok * kD + d)] -= router.at(tok, 2) / norm * d0.at(r, d);
  }
  const Captured& got = cut.at("blk.1.ffn_out");
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data[i], want[i], 1e-5);
  Session s(model);
  EXPECT_THROW(AttachedInterventions(s, parse_interventions({"prune:layer=1,expert=4"})), Error);
  EXPECT_THROW(AttachedInterventions(s, parse_interventions({"prune:layer=2,expert=0"})), Error);
}

TEST(Prepend, PutsTheTokensFirstAndShiftsStreamIndices) {
  auto model = random_gqa_model();
  const std::vector<Intervention> list = parse_interventions({"prepend:token=bos;7", "sink:keys=0"});
  const std::vector<int32_t> prefix = intervention_prefix(list, model->config());
  EXPECT_EQ(prefix, (std::vector<int32_t>{1, 7}));
  // The text's token i is at stream index i + 2; sink:keys=0 hides the prepended BOS.
  std::vector<int32_t> fed = prefix;
  fed.insert(fed.end(), kIds.begin(), kIds.end());
  Session s(model);
  AttachedInterventions attached(s, list);
  std::vector<int32_t> text_tokens;
  std::vector<float> probs;
  s.taps().add("blk.0.attn_probs", [&](const TapEvent& e) { probs.assign(e.data, e.data + e.rows * e.cols); });
  s.taps().add("token_embd", [&](const TapEvent& e) { text_tokens.assign(e.tokens.begin(), e.tokens.end()); });
  s.feed(prefix);
  s.feed(kIds);
  ASSERT_EQ(text_tokens.size(), kIds.size());
  EXPECT_EQ(text_tokens.front(), 2);
  const int64_t n = int64_t(kIds.size()), n_ctx = n + 2;
  for (int64_t row = 0; row < kH * n; ++row) EXPECT_EQ(probs[size_t(row * n_ctx)], 0.f);
  // Without an explicit BOS in the config, 'bos' is an error.
  PlantedModel plain = zero_decoder(kV, kD, 1, 2, kHd, kF);
  auto no_bos = plain.write_and_load("intervene_no_bos");
  EXPECT_THROW(intervention_prefix(parse_interventions({"prepend"}), no_bos->config()), Error);
}

TEST(AttachedInterventions, RemovesExactlyWhatItAdded) {
  auto model = random_gqa_model();
  Session s(model);
  std::vector<float> before, after;
  s.feed(kIds, &before);
  {
    AttachedInterventions a(s, parse_interventions({"sink", "reset:layer=0,dims=1", "reset:tap=logits,dims=0"}));
    std::vector<float> during;
    s.reset();
    s.feed(kIds, &during);
    EXPECT_NE(during, before);
    EXPECT_EQ(during[0], 0.f);
  }
  EXPECT_TRUE(s.taps().empty());
  s.reset();
  s.feed(kIds, &after);
  EXPECT_EQ(after, before);
  EXPECT_EQ(describe_interventions(parse_interventions({"sink", "prepend"})), "sink + prepend");
}

TEST(SinkMask, FollowsTheTokenThroughAStreamingCache) {
  // Slots are reused after eviction, so the mask must find token 5 by stream index, not by slot.
  auto model = random_gqa_model();
  SessionOptions so;
  so.cache = "sink:sink=1,window=3";
  Session plain(model, so), cut(model, so);
  AttachedInterventions attached(cut, parse_interventions({"sink:keys=5"}));
  std::vector<float> probs;
  cut.taps().add("blk.2.attn_probs", [&](const TapEvent& e) { probs.assign(e.data, e.data + e.rows * e.cols); });
  const std::vector<int32_t> ids = {1, 5, 3, 9, 2, 2, 7, 10, 0, 4, 6, 8};
  int checked = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    plain.feed(std::span<const int32_t>(&ids[i], 1));
    cut.feed(std::span<const int32_t>(&ids[i], 1));
    const auto a = plain.logits(), b = cut.logits();
    if (i < 5) {
      EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << "step " << i << " precedes token 5";
    }
    const int32_t slot = cut.cache().slot_of(5);
    if (i >= 5 && slot >= 0) {
      EXPECT_FALSE(std::equal(a.begin(), a.end(), b.begin())) << "step " << i;
      const int64_t cols = int64_t(probs.size()) / kH;
      for (int64_t h = 0; h < kH; ++h) {
        EXPECT_EQ(probs[size_t(h * cols + slot)], 0.f) << "step " << i << " head " << h;
        double sum = 0;
        for (int64_t s = 0; s < cols; ++s) sum += probs[size_t(h * cols + s)];
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);  // token 5 stays for steps 5, 6 and 7 of a window of 3
  EXPECT_EQ(cut.cache().slot_of(5), -1);
}
