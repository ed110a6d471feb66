// Vision config.json parsing (defaults, nested vision_config) and the errors of
// bad configs and checkpoints: each names what was wrong.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sinklab/formats.h"
#include "sinklab/vision.h"

using namespace sinklab;
using nlohmann::json;

namespace {

std::string error_of(const json& j) {
  try {
    parse_vision_config(j, "cfg");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(VisionConfig, ClassDefaultsFillMissingKeys) {
  const VisionConfig vit = parse_vision_config(json{{"model_type", "vit"}}, "cfg");
  EXPECT_EQ(vit.arch, VisionArch::Vit);
  EXPECT_EQ(vit.dim, 768);
  EXPECT_EQ(vit.patch_size, 16);
  EXPECT_FLOAT_EQ(vit.norm_eps, 1e-12f);
  EXPECT_EQ(vit.n_prefix(), 1);
  const VisionConfig clip = parse_vision_config(json{{"model_type", "clip_vision_model"}}, "cfg");
  EXPECT_EQ(clip.act, VisionActivation::QuickGelu);
  EXPECT_EQ(clip.patch_size, 32);
  EXPECT_TRUE(clip.pre_norm);
  const VisionConfig sig = parse_vision_config(json{{"model_type", "siglip_vision_model"}}, "cfg");
  EXPECT_FALSE(sig.cls_token);
  EXPECT_EQ(sig.n_prefix(), 0);
  EXPECT_EQ(sig.act, VisionActivation::GeluTanh);
}

TEST(VisionConfig, RegistersAndNestedVisionConfig) {
  const VisionConfig reg = parse_vision_config(
      json{{"model_type", "dinov2_with_registers"}, {"hidden_size", 64}, {"num_attention_heads", 4}}, "cfg");
  EXPECT_EQ(reg.n_registers, 4);
  EXPECT_EQ(reg.n_prefix(), 5);
  EXPECT_EQ(reg.hidden, 256);
  EXPECT_TRUE(reg.layerscale);
  const VisionConfig clip = parse_vision_config(
      json{{"model_type", "clip"}, {"projection_dim", 16}, {"vision_config", {{"hidden_size", 32}, {"num_attention_heads", 4}}}},
      "cfg");
  EXPECT_EQ(clip.dim, 32);
  EXPECT_EQ(clip.proj_dim, 16);
}

TEST(VisionConfig, BadConfigsNameTheProblem) {
  EXPECT_NE(error_of(json::array()).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "llama"}}).find("not a vision architecture"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "clip"}}).find("vision_config"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "vit"}, {"hidden_size", 30}, {"num_attention_heads", 4}}).find("multiple"),
            std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "vit"}, {"patch_size", "16"}}).find("patch_size"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "vit"}, {"hidden_act", "relu6"}}).find("relu6"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "vit"}, {"image_size", 8}}).find("smaller than patch_size"),
            std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "dinov2"}, {"use_swiglu_ffn", true}}).find("swiglu"), std::string::npos);
}

}  // namespace

namespace {

// A checkpoint missing a tensor, or holding one of another shape, names it.
TEST(VisionLoad, MissingOrMisshapedTensorIsNamed) {
  const std::string dir = ::testing::TempDir() + "/sinklab_vision_bad_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/config.json") << R"({"model_type": "vit", "hidden_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2, "intermediate_size": 16, "image_size": 8, "patch_size": 4})";
  }
  std::vector<float> patch(8 * 3 * 4 * 4, 0.f), bias(8, 0.f), cls(7, 0.f);
  auto entry = [](const char* name, std::vector<int64_t> shape, const std::vector<float>& v) {
    TensorEntry e;
    e.name = name, e.type = TensorType::F32, e.shape = std::move(shape);
    e.data = reinterpret_cast<const uint8_t*>(v.data()), e.nbytes = v.size() * 4;
    return e;
  };
  write_safetensors(dir + "/model.safetensors", {entry("embeddings.patch_embeddings.projection.weight", {8, 3, 4, 4}, patch),
                                                 entry("embeddings.patch_embeddings.projection.bias", {8}, bias)});
  try {
    VisionModel::load(dir);
    ADD_FAILURE() << "loaded a checkpoint without cls_token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("embeddings.cls_token"), std::string::npos) << e.what();
  }
  write_safetensors(dir + "/model.safetensors", {entry("embeddings.patch_embeddings.projection.weight", {8, 3, 4, 4}, patch),
                                                 entry("embeddings.patch_embeddings.projection.bias", {8}, bias),
                                                 entry("embeddings.cls_token", {1, 1, 7}, cls)});
  try {
    VisionModel::load(dir);
    ADD_FAILURE() << "loaded a 7-wide cls_token for hidden_size 8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1, 8]"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

TEST(VisionConfig, OpenClipConfig) {
  const VisionConfig c = parse_openclip_config(
      json::parse(R"({"model_cfg": {"embed_dim": 512, "quick_gelu": true, "vision_cfg": {"image_size": 224,
        "layers": 12, "width": 768, "patch_size": 16}}})"),
      "oc");
  EXPECT_EQ(c.arch, VisionArch::Clip);
  EXPECT_EQ(c.n_heads, 12);
  EXPECT_EQ(c.hidden, 3072);
  EXPECT_EQ(c.proj_dim, 512);
  EXPECT_EQ(c.act, VisionActivation::QuickGelu);
  EXPECT_TRUE(c.pre_norm);
  auto err = [](const char* text) {
    try {
      parse_openclip_config(json::parse(text), "oc");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(R"({"model_cfg": {"vision_cfg": {"layers": [3, 4, 6, 3], "width": 64}}})").find("clip_resnet"),
            std::string::npos);
  EXPECT_NE(err(R"({"model_cfg": {}})").find("vision_cfg"), std::string::npos);
  EXPECT_NE(err(R"({"model_cfg": {"vision_cfg": {"width": 100, "head_width": 64}}})").find("head_width"),
            std::string::npos);
}

}  // namespace
