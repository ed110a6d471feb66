// The attention variant of sinklab-trained checkpoints (config.json
// "sinklab_variant"): read by the llama and sinklab rows, validated, named by
// Model::describe; and the learned sink logits through Model::sink_logits.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../probe/planted_models.h"
#include "sinklab/model.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

PlantedModel tiny(const std::string& model_type) {
  PlantedModel m = zero_decoder(8, 8, 2, 2, 4, 4, /*rope=*/model_type == "llama");
  m.config["model_type"] = model_type;
  return m;
}

// The message of the Error that loading m throws ("" when it loads).
std::string load_error(const PlantedModel& m, const std::string& tag) {
  try {
    m.write_and_load(tag);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(ModelVariant, LlamaRowReadsTheVariantAndDescribeNamesIt) {
  PlantedModel m = tiny("llama");
  m.config["sinklab_variant"] = "sink-token";
  auto model = m.write_and_load("variant_llama");
  EXPECT_EQ(model->config().arch, "llama");
  EXPECT_EQ(model->config().variant, "sink-token");
  const std::string d = model->describe();
  EXPECT_TRUE(has(d, "\nattention:    sink-token (a learned <|sink|> token first in every sequence)\n")) << d;
}

TEST(ModelVariant, SinklabRowReadsSinkLogitAndAlibi) {
  PlantedModel m = tiny("sinklab");
  m.config["attention_sinks"] = true;
  m.config["sinklab_variant"] = "sink-logit";
  m.add(layer_name(0, "self_attn.sinks"), {2}).data = {0.25f, -1.5f};
  m.add(layer_name(1, "self_attn.sinks"), {2}).data = {3.f, 0.f};
  auto model = m.write_and_load("variant_sink_logit");
  EXPECT_EQ(model->config().variant, "sink-logit");
  const std::string d = model->describe();
  EXPECT_TRUE(has(d, "\nattention:    sink-logit (learned per-head sink logits)\n")) << d;
  const std::span<const float> l0 = model->sink_logits(0), l1 = model->sink_logits(1);
  EXPECT_EQ(std::vector<float>(l0.begin(), l0.end()), (std::vector<float>{0.25f, -1.5f}));
  EXPECT_EQ(std::vector<float>(l1.begin(), l1.end()), (std::vector<float>{3.f, 0.f}));
  EXPECT_THROW(model->sink_logits(2), Error);
  EXPECT_THROW(model->sink_logits(-1), Error);

  PlantedModel a = tiny("sinklab");
  a.config["attention_prior"] = {{"type", "alibi"}};
  a.config["sinklab_variant"] = "alibi";
  auto alibi = a.write_and_load("variant_alibi");
  EXPECT_EQ(alibi->config().variant, "alibi");
  EXPECT_TRUE(has(alibi->describe(), "\nattention:    alibi (ALiBi attention prior, no RoPE)\n"));
  EXPECT_TRUE(alibi->sink_logits(0).empty());
}

TEST(ModelVariant, WithoutTheKeyThereIsNoVariantLine) {
  auto model = tiny("llama").write_and_load("variant_none");
  EXPECT_EQ(model->config().variant, "");
  EXPECT_FALSE(has(model->describe(), "attention:")) << model->describe();
  PlantedModel null_variant = tiny("sinklab");
  null_variant.config["sinklab_variant"] = nullptr;
  EXPECT_EQ(null_variant.write_and_load("variant_null")->config().variant, "");
  EXPECT_EQ(attention_variant_description(""), nullptr);
  EXPECT_EQ(attention_variant_description("Sink-Logit"), nullptr);
}

TEST(ModelVariant, UnknownOrInconsistentVariantIsAClearError) {
  PlantedModel m = tiny("llama");
  m.config["sinklab_variant"] = "sinkhole";
  std::string e = load_error(m, "variant_unknown");
  EXPECT_TRUE(has(e, "config.json") && has(e, "sinklab_variant") && has(e, "'sinkhole'") &&
              has(e, "known: vanilla, sink-token, sink-logit, goat, alibi"))
      << e;

  m.config["sinklab_variant"] = 3;
  e = load_error(m, "variant_number");
  EXPECT_TRUE(has(e, "config.json") && has(e, "sinklab_variant") && has(e, "must be a string")) << e;

  PlantedModel s = tiny("sinklab");
  s.config["sinklab_variant"] = "sink-logit";  // but no attention_sinks
  e = load_error(s, "variant_inconsistent");
  EXPECT_TRUE(has(e, "config.json") && has(e, "sinklab_variant") && has(e, "'sink-logit'") &&
              has(e, "no sink logits"))
      << e;

  PlantedModel g = tiny("sinklab");
  g.config["sinklab_variant"] = "goat";  // but no GOAT prior
  e = load_error(g, "variant_goat");
  EXPECT_TRUE(has(e, "'goat'") && has(e, "no attention prior")) << e;
}
