// safetensors: writer round trips (single file, directory, shards, config.json)
// and hostile headers, plus truncation at every prefix.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "sinklab/formats.h"

using namespace sinklab;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("sinklab_st_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// Header length + JSON header + `data_bytes` bytes of data.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes, uint64_t claimed_len = 0) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = claimed_len ? claimed_len : header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

TensorFile parse_exact(const std::vector<uint8_t>& bytes, size_t n) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(copy.get(), bytes.data(), n);
  TensorFile tf = parse_safetensors(copy.get(), n, "test.safetensors");
  return tf;  // entries dangle after return; callers only inspect shapes and errors
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    parse_exact(bytes, bytes.size());
    FAIL() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

struct Sample {
  std::vector<float> f32 = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  std::vector<uint16_t> f16, bf16;
  float scalar = 7.5f;
  Sample() {
    for (float x : f32) {
      f16.push_back(f32_to_f16(x).bits);
      bf16.push_back(f32_to_bf16(-x).bits);
    }
  }
  std::vector<TensorEntry> entries(const std::string& prefix = "") const {
    return {{prefix + "a.f32", TensorType::F32, {2, 3}, reinterpret_cast<const uint8_t*>(f32.data()), 24},
            {prefix + "b.f16", TensorType::F16, {6}, reinterpret_cast<const uint8_t*>(f16.data()), 12},
            {prefix + "c.bf16", TensorType::BF16, {3, 1, 2}, reinterpret_cast<const uint8_t*>(bf16.data()), 12},
            {prefix + "d.scalar", TensorType::F32, {}, reinterpret_cast<const uint8_t*>(&scalar), 4},
            {prefix + "e.empty", TensorType::F16, {0, 5}, nullptr, 0}};
  }
};

void expect_sample(const TensorFile& tf, const Sample& s, const std::string& prefix = "") {
  for (const TensorEntry& e : s.entries(prefix)) {
    const TensorEntry& g = tf.tensor(e.name);
    EXPECT_EQ(g.type, e.type) << e.name;
    EXPECT_EQ(g.shape, e.shape) << e.name;
    ASSERT_EQ(g.nbytes, e.nbytes) << e.name;
    if (e.nbytes) {
      EXPECT_EQ(std::memcmp(g.data, e.data, e.nbytes), 0) << e.name;
    }
  }
  std::vector<float> y(6);
  dequantize(tf.tensor(prefix + "c.bf16"), y.data());
  EXPECT_EQ(y[4], -5.f);
}

}  // namespace

TEST(FormatsSafetensors, RoundTripFileAndDirectory) {
  const fs::path dir = temp_dir("rt");
  const Sample s;
  write_safetensors((dir / "model.safetensors").string(), s.entries(), {{"format", "pt"}});
  write_text(dir / "config.json", R"({"model_type": "llama", "hidden_size": 64})");
  const TensorFile file = load_safetensors((dir / "model.safetensors").string());
  EXPECT_EQ(file.size(), 5u);
  expect_sample(file, s);
  EXPECT_EQ(file.metadata().get_string("format"), "pt");
  ASSERT_TRUE(file.has_config());
  EXPECT_EQ(file.config()["hidden_size"].get<int>(), 64);
  const TensorFile in_dir = load_safetensors(dir.string());
  expect_sample(in_dir, s);
  EXPECT_EQ(load_tensor_file(dir.string()).format(), FileFormat::Safetensors);
  // The data section starts 8-byte aligned.
  const std::vector<uint8_t> raw = read_all(dir / "model.safetensors");
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  write_text(dir / "config.json", "{not json");
  EXPECT_THROW(load_safetensors(dir.string()), Error);
  fs::remove_all(dir);
}

TEST(FormatsSafetensors, ShardedDirectory) {
  const fs::path dir = temp_dir("shards");
  const Sample s;
  std::vector<TensorEntry> all = s.entries();
  write_safetensors((dir / "model-00001-of-00002.safetensors").string(), {all[0], all[1]});
  write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {all[2], all[3], all[4]});
  nlohmann::json index = {{"metadata", {{"total_size", 52}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < all.size(); ++i)
    index["weight_map"][all[i].name] = i < 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  write_text(dir / "model.safetensors.index.json", index.dump());
  const TensorFile tf = load_safetensors(dir.string());
  EXPECT_EQ(tf.size(), 5u);
  expect_sample(tf, s);

  index["weight_map"]["a.f32"] = "model-00002-of-00002.safetensors";
  write_text(dir / "model.safetensors.index.json", index.dump());
  EXPECT_THROW(load_safetensors(dir.string()), Error);
  index["weight_map"]["a.f32"] = "../outside.safetensors";
  write_text(dir / "model.safetensors.index.json", index.dump());
  try {
    load_safetensors(dir.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plain file name"), std::string::npos) << e.what();
  }
  // The same tensor in two shards is a duplicate.
  write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {all[0], all[2], all[3], all[4]});
  index["weight_map"]["a.f32"] = "model-00001-of-00002.safetensors";
  write_text(dir / "model.safetensors.index.json", index.dump());
  EXPECT_THROW(load_safetensors(dir.string()), Error);
  fs::remove(dir / "model.safetensors.index.json");
  EXPECT_THROW(load_safetensors(dir.string()), Error);
  fs::remove_all(dir);
}

TEST(FormatsSafetensors, TruncatedAtEveryPrefix) {
  const fs::path dir = temp_dir("trunc");
  const Sample s;
  write_safetensors((dir / "t.safetensors").string(), s.entries(), {{"k", "v"}});
  const std::vector<uint8_t> bytes = read_all(dir / "t.safetensors");
  EXPECT_EQ(parse_exact(bytes, bytes.size()).size(), 5u);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_THROW(parse_exact(bytes, n), Error) << "prefix " << n;
  fs::remove_all(dir);
}

TEST(FormatsSafetensors, HostileHeaders) {
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"w": {"dtype": ")" + dtype + R"(", "shape": )" + shape + R"(, "data_offsets": )" + offsets + "}}";
  };
  EXPECT_NO_THROW(parse_exact(make_file(one("F32", "[2]", "[0, 8]"), 8), 16 + one("F32", "[2]", "[0, 8]").size()));
  expect_error(make_file("{}", 0, 1000), "exceeds the file size");
  expect_error(make_file("{}", 0, uint64_t(1) << 40), "cap");
  expect_error(make_file("{\"w\": ", 0), "not valid JSON");
  expect_error(make_file("[1, 2]", 0), "must be a JSON object");
  expect_error(make_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4), "missing string 'dtype'");
  expect_error(make_file(one("I64", "[1]", "[0, 8]"), 8), "unsupported dtype 'I64'");
  expect_error(make_file(one("I64", "[1]", "[0, 8]"), 8), "tensor 'w'");
  expect_error(make_file(one("F32", "[-1]", "[0, 4]"), 4), "non-negative integer");
  expect_error(make_file(one("F32", "[1.5]", "[0, 4]"), 4), "non-negative integer");
  expect_error(make_file(one("F32", "[1]", "[8, 4]"), 8), "begin 8 > end 4");
  expect_error(make_file(one("F32", "[1]", "[0, 4]"), 2), "past the data section");
  expect_error(make_file(one("F32", "[1]", "[0, 18446744073709551615]"), 8), "past the data section");
  expect_error(make_file(one("F32", "[3]", "[0, 8]"), 8), "need 12");
  expect_error(make_file(one("F32", "[1099511627776, 1099511627776, 1099511627776]", "[0, 8]"), 8), "overflow");
  expect_error(make_file(one("F32", "[4611686018427387904]", "[0, 8]"), 8), "overflow");
  expect_error(make_file(one("F32", "[1]", "[0]"), 8), "data_offsets");
  expect_error(make_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                         R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                         12),
               "overlap");
  expect_error(make_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                         R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                         8),
               "duplicate tensor name 'a'");
  expect_error(make_file(R"({"__metadata__": {"k": 3}})", 0), "__metadata__");
  expect_error(make_file(R"({"__metadata__": "x"})", 0), "__metadata__");
  expect_error(make_file(std::string(2000, '[') + std::string(2000, ']'), 0), "nested deeper than 256 levels");
  expect_error(make_file(std::string(200, '[') + std::string(200, ']'), 0), "must be a JSON object");
}

TEST(FormatsSafetensors, WriterValidatesAndIsAtomic) {
  const fs::path dir = temp_dir("writer");
  const fs::path path = dir / "x.safetensors";
  write_text(path, "precious");
  std::vector<uint8_t> q(34);
  EXPECT_THROW(write_safetensors(path.string(), {{"q", TensorType::Q8_0, {32}, q.data(), 34}}), Error);
  EXPECT_THROW(write_safetensors(path.string(), {{"f", TensorType::F32, {4}, q.data(), 12}}), Error);
  EXPECT_THROW(write_safetensors(path.string(), {{"f", TensorType::F32, {1}, q.data(), 4},
                                                 {"f", TensorType::F32, {1}, q.data(), 4}}),
               Error);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  const std::vector<uint8_t> kept = read_all(path);
  EXPECT_EQ(std::string(kept.begin(), kept.end()), "precious");
  fs::remove_all(dir);
}
