// Image decoding and Hugging Face preprocessing. The pixels of every processor
// config in tests/reference/make_vision_preprocess.py (PIL's resampling and
// transformers' crop / rescale / normalise written in numpy) must come out bit
// for bit; hostile files (empty, truncated PNG and JPEG, huge or zero
// dimensions, garbage) give one clear error.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "sinklab/json_text.h"
#include "sinklab/vision.h"
#include "tiny_vision_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

std::string preprocess_dir() {
  const char* env = std::getenv("SINKLAB_VISION_PREPROCESS");
  if (!env || !*env || !std::filesystem::is_directory(env)) return "";
  return env;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class PreprocessReference : public ::testing::TestWithParam<std::string> {};

TEST_P(PreprocessReference, EqualsNumpyBitForBit) {
  const std::string dir = preprocess_dir();
  if (dir.empty())
    GTEST_SKIP() << "SINKLAB_VISION_PREPROCESS is unset; run through ctest (fixture vision_preprocess runs "
                    "tests/reference/make_vision_preprocess.py, which needs python3-numpy)";
  const std::string cfg_path = dir + "/" + GetParam() + ".json";
  const ImagePreprocess p = parse_preprocessor_config(parse_json_text(read_text(cfg_path), cfg_path), cfg_path);
  for (const char* image : {"wide", "tall"}) {
    const Image img = load_image(dir + "/" + image + ".png");
    const std::string raw = read_text(dir + "/" + image + ".rgb");
    ASSERT_EQ(img.rgb.size(), raw.size()) << image;
    EXPECT_EQ(0, std::memcmp(img.rgb.data(), raw.data(), raw.size())) << image << ": decoded PNG pixels differ";
    PreprocessedImage out;
    out.pixels.assign(10, std::nanf(""));  // poisoned: must be replaced
    out = preprocess_image(img, p);
    int h = 0, w = 0;
    std::istringstream(read_text(dir + "/" + GetParam() + "." + image + ".shape")) >> h >> w;
    ASSERT_EQ(out.height, h) << image;
    ASSERT_EQ(out.width, w) << image;
    const std::vector<float> ref = read_f32(dir + "/" + GetParam() + "." + image + ".f32");
    ASSERT_EQ(out.pixels.size(), ref.size());
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      if (std::memcmp(&out.pixels[i], &ref[i], 4) != 0 && differ++ == 0) first = i;
    EXPECT_EQ(differ, 0u) << GetParam() << "/" << image << ": " << differ << " of " << ref.size()
                          << " values differ; first at " << first << ": " << out.pixels[first] << " vs " << ref[first];
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, PreprocessReference,
                         ::testing::Values("vit", "clip", "dinov2", "siglip_upscale", "lanczos_pad_crop", "box",
                                           "hamming_raw"));

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    decode_image(bytes.data(), bytes.size(), "img");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

uint32_t crc32_of(const std::vector<uint8_t>& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void append_u32be(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

// A PNG with only a header chunk claiming width x height (and a tiny IDAT).
std::vector<uint8_t> png_header_only(uint32_t width, uint32_t height) {
  std::vector<uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* kind, std::vector<uint8_t> data) {
    append_u32be(v, uint32_t(data.size()));
    std::vector<uint8_t> body(kind, kind + 4);
    body.insert(body.end(), data.begin(), data.end());
    v.insert(v.end(), body.begin(), body.end());
    append_u32be(v, crc32_of(body));
  };
  std::vector<uint8_t> ihdr;
  append_u32be(ihdr, width);
  append_u32be(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  chunk("IEND", {});
  return v;
}

std::vector<uint8_t> encode(bool jpeg) {
  std::vector<uint8_t> pixels(40 * 30 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t((i * 37) % 251);
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* o = static_cast<std::vector<uint8_t>*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  if (jpeg) stbi_write_jpg_to_func(sink, &out, 40, 30, 3, pixels.data(), 90);
  else stbi_write_png_to_func(sink, &out, 40, 30, 3, pixels.data(), 40 * 3);
  return out;
}

TEST(ImageDecode, WholeFilesDecode) {
  for (bool jpeg : {false, true}) {
    const Image img = decode_image(encode(jpeg).data(), encode(jpeg).size(), "img");
    EXPECT_EQ(img.width, 40);
    EXPECT_EQ(img.height, 30);
    EXPECT_EQ(img.rgb.size(), size_t(40 * 30 * 3));
  }
}

TEST(ImageDecode, HostileFilesGiveClearErrors) {
  EXPECT_NE(error_of({}).find("empty"), std::string::npos);
  EXPECT_NE(error_of({'h', 'e', 'l', 'l', 'o'}).find("not a readable image"), std::string::npos);
  for (bool jpeg : {false, true}) {
    std::vector<uint8_t> whole = encode(jpeg);
    for (double keep : {0.2, 0.6, 0.95}) {
      std::vector<uint8_t> cut(whole.begin(), whole.begin() + std::ptrdiff_t(double(whole.size()) * keep));
      const std::string e = error_of(cut);
      EXPECT_FALSE(e.empty()) << (jpeg ? "JPEG" : "PNG") << " cut to " << keep << " decoded without error";
      EXPECT_NE(e.find("img: "), std::string::npos) << e;
    }
  }
  const std::string huge = error_of(png_header_only(100000, 100000));
  EXPECT_NE(huge.find("100000x100000"), std::string::npos) << huge;
  const std::string wide = error_of(png_header_only(40000, 2));
  EXPECT_NE(wide.find("40000x2"), std::string::npos) << wide;
  EXPECT_FALSE(error_of(png_header_only(0, 10)).empty());
  EXPECT_FALSE(error_of(png_header_only(10, 0)).empty());
}

TEST(ImageDecode, PathErrorsNameThePath) {
  const std::string dir = ::testing::TempDir() + "/sinklab_img_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  try {
    load_image(dir);
    ADD_FAILURE() << "a folder loaded as an image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
  { std::ofstream(dir + "/empty.png"); }
  try {
    load_image(dir + "/empty.png");
    ADD_FAILURE() << "an empty file loaded as an image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Preprocess, BadConfigsNameTheKey) {
  auto err = [](const char* text) {
    try {
      parse_preprocessor_config(parse_json_text(text, "pp.json"), "pp.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(R"({"resample": 0})").find("resample 0"), std::string::npos);
  EXPECT_NE(err(R"({"size": {"longest_edge": 3}})").find("size"), std::string::npos);
  EXPECT_NE(err(R"({"size": {"height": -3, "width": 4}})").find("size.height"), std::string::npos);
  EXPECT_NE(err(R"({"image_std": [1, 0, 1]})").find("image_std"), std::string::npos);
  EXPECT_NE(err(R"({"image_mean": [1, 2]})").find("image_mean"), std::string::npos);
  EXPECT_NE(err(R"({"crop_size": "big"})").find("crop_size"), std::string::npos);
  const ImagePreprocess clip = parse_preprocessor_config(parse_json_text(R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 224})", "pp"), "pp");
  EXPECT_EQ(clip.shortest_edge, 224);
  EXPECT_TRUE(clip.center_crop);
  const ImagePreprocess vit = parse_preprocessor_config(parse_json_text(R"({"size": 384})", "pp"), "pp");
  EXPECT_EQ(vit.shortest_edge, 0);
  EXPECT_EQ(vit.height, 384);
}

}  // namespace
