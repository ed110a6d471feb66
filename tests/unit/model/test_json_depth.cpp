// Deeply nested JSON in every model input (safetensors header, config.json,
// tokenizer.json) is one clear Error at parse time, never a stack overflow in
// the recursive copies and destructors that would follow.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "sinklab/formats.h"
#include "sinklab/json_text.h"
#include "sinklab/model.h"
#include "sinklab/tokenizer.h"

namespace fs = std::filesystem;
using namespace sinklab;

namespace {

std::string nested_arrays(int n) { return std::string(size_t(n), '[') + std::string(size_t(n), ']'); }
std::string nested_objects(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "{\"a\":";
  return s + "1" + std::string(size_t(n), '}');
}

void expect_too_deep(const std::function<void()>& f, const std::string& where) {
  try {
    f();
    ADD_FAILURE() << where << ": no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 256 levels"), std::string::npos) << e.what();
  }
}

TEST(JsonDepth, BoundAtTheLimit) {
  EXPECT_NO_THROW(parse_json_text(nested_arrays(200), "ok"));
  expect_too_deep([] { parse_json_text(nested_arrays(300), "x"); }, "300 arrays");
  expect_too_deep([] { parse_json_text(nested_arrays(1000000), "x"); }, "1M arrays");
  expect_too_deep([] { parse_json_text(nested_objects(70000), "x"); }, "70k objects");
}

TEST(JsonDepth, ModelInputsRefuseDeepNesting) {
  const fs::path dir = fs::temp_directory_path() / ("sinklab_json_depth_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // config.json beside a valid safetensors file.
  std::vector<float> w(4, 1.f);
  TensorEntry e;
  e.name = "w";
  e.shape = {4};
  e.data = reinterpret_cast<const uint8_t*>(w.data());
  e.nbytes = 16;
  write_safetensors((dir / "model.safetensors").string(), {e});
  std::ofstream(dir / "config.json") << "{\"model_type\": " << nested_objects(70000) << "}";
  expect_too_deep([&] { Model::load(dir.string()); }, "config.json");
  // A safetensors header.
  const std::string header = "{\"__metadata__\": " + nested_arrays(100000) + "}";
  std::vector<uint8_t> file(8 + header.size());
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  std::memcpy(file.data() + 8, header.data(), header.size());
  expect_too_deep([&] { parse_safetensors(file.data(), file.size(), "hostile.safetensors"); }, "header");
  // tokenizer.json.
  expect_too_deep([] { tokenizer_from_json_string("{\"model\": " + nested_arrays(100000) + "}", "t.json"); },
                  "tokenizer.json");
  fs::remove_all(dir);
}

}  // namespace
