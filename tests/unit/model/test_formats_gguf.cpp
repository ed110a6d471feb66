// GGUF: round trips through write_gguf, hand-built files (dimension order,
// hostile headers) and truncation at every prefix.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "sinklab/formats.h"

using namespace sinklab;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("sinklab_gguf_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Parses an exact-size heap copy so that any read past the end is caught by ASan.
TensorFile parse_copy(const std::vector<uint8_t>& bytes, size_t n, std::unique_ptr<uint8_t[]>& keep) {
  keep.reset(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(keep.get(), bytes.data(), n);
  return parse_gguf(keep.get(), n, "test.gguf");
}

void expect_valid(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> keep;
  EXPECT_NO_THROW(parse_copy(bytes, bytes.size(), keep));
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  std::unique_ptr<uint8_t[]> keep;
  try {
    parse_copy(bytes, bytes.size(), keep);
    FAIL() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Little-endian byte builder for hand-made GGUF files.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Bytes& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(uint32_t(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Bytes& align(size_t a = 32) {
    while (b.size() % a) b.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

Metadata all_types_metadata() {
  using T = MetaValue::Type;
  Metadata m;
  m.set("general.architecture", "llama");
  m.set("general.alignment", uint32_t(64));
  m.set("u8", MetaValue::unsigned_integer(T::U8, 200));
  m.set("i8", MetaValue::integer(T::I8, -100));
  m.set("u16", MetaValue::unsigned_integer(T::U16, 60000));
  m.set("i16", MetaValue::integer(T::I16, -30000));
  m.set("u32", uint32_t(4000000000u));
  m.set("i32", int32_t(-2000000000));
  m.set("u64", uint64_t(1) << 63);
  m.set("i64", int64_t(-1) << 62);
  m.set("f32", 1.5f);
  m.set("f64", 2.25);
  m.set("bool", true);
  m.set("empty string", "");
  m.set("tokens", MetaValue::array(T::String, {"<s>", "</s>", "hello"}));
  m.set("scores", MetaValue::array(T::F32, {0.5f, -1.f}));
  m.set("nested", MetaValue::array(T::Array, {MetaValue::array(T::I32, {int32_t(1), int32_t(2)}),
                                              MetaValue::array(T::I32, {})}));
  return m;
}

}  // namespace

TEST(FormatsMetadata, TypedGettersNameTheKey) {
  Metadata m("model.gguf");
  m.set("n", int32_t(7));
  m.set("s", "text");
  m.set("big", uint64_t(1) << 63);
  EXPECT_EQ(m.get_int("n"), 7);
  EXPECT_EQ(m.get_double("n"), 7.0);
  EXPECT_EQ(m.get_string("s"), "text");
  EXPECT_EQ(m.get_int("missing", 3), 3);
  auto expect_msg = [](auto fn, const std::string& a, const std::string& b) {
    try {
      fn();
      FAIL();
    } catch (const Error& e) {
      const std::string w = e.what();
      EXPECT_NE(w.find(a), std::string::npos) << w;
      EXPECT_NE(w.find(b), std::string::npos) << w;
    }
  };
  expect_msg([&] { m.get_int("nope"); }, "'nope'", "missing");
  expect_msg([&] { m.get_string("n"); }, "'n'", "expected string");
  expect_msg([&] { m.get_bool("s"); }, "model.gguf", "expected bool");
  expect_msg([&] { m.get_int("big"); }, "'big'", "int64");
  expect_msg([&] { m.get_int("s", 1); }, "'s'", "integer");
  EXPECT_THROW(MetaValue::integer(MetaValue::Type::I8, 128), Error);
  EXPECT_THROW(MetaValue::unsigned_integer(MetaValue::Type::U16, 70000), Error);
  EXPECT_THROW(MetaValue::array(MetaValue::Type::I32, {"x"}), Error);
}

TEST(FormatsGguf, RoundTripAllTypesV2AndV3) {
  const fs::path dir = temp_dir("rt");
  std::vector<std::vector<uint8_t>> store;
  std::vector<TensorEntry> entries;
  auto add = [&](const std::string& name, TensorType t, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint8_t> bytes(tensor_type_nbytes(t, n, name));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + store.size());
    store.push_back(std::move(bytes));
    entries.push_back({name, t, shape, nullptr, store.back().size()});
  };
  store.reserve(16);
  add("f32", TensorType::F32, {3, 4});
  add("f16", TensorType::F16, {2, 8});
  add("bf16", TensorType::BF16, {5});
  add("q8", TensorType::Q8_0, {2, 64});
  add("q4", TensorType::Q4_0, {32});
  add("q4k", TensorType::Q4_K, {256});
  add("q6k", TensorType::Q6_K, {2, 1, 256});
  add("empty", TensorType::F32, {0, 4});
  for (size_t i = 0; i < entries.size(); ++i) entries[i].data = store[i].data();
  const Metadata meta = all_types_metadata();
  for (uint32_t version : {2u, 3u}) {
    const std::string path = (dir / ("m" + std::to_string(version) + ".gguf")).string();
    write_gguf(path, meta, entries, version);
    const TensorFile tf = load_gguf(path);
    EXPECT_EQ(tf.gguf_version(), version);
    EXPECT_EQ(tf.gguf_alignment(), 64u);
    ASSERT_EQ(tf.size(), entries.size());
    EXPECT_EQ(tf.names().front(), "f32");
    for (const TensorEntry& e : entries) {
      const TensorEntry& g = tf.tensor(e.name);
      EXPECT_EQ(g.type, e.type) << e.name;
      EXPECT_EQ(g.shape, e.shape) << e.name;
      ASSERT_EQ(g.nbytes, e.nbytes) << e.name;
      if (e.nbytes) {
        EXPECT_EQ(std::memcmp(g.data, e.data, e.nbytes), 0) << e.name;
        EXPECT_EQ((g.data - tf.tensor("f32").data) % 64, 0) << e.name;
      }
    }
    ASSERT_EQ(tf.metadata().size(), meta.size());
    for (const auto& [k, v] : meta.values()) EXPECT_TRUE(tf.metadata().at(k) == v) << k;
    EXPECT_EQ(tf.metadata().get_string_array("tokens")[2], "hello");
    EXPECT_EQ(tf.metadata().get_array("nested")[0].as_array()[1].as_int(), 2);
    EXPECT_EQ(tf.metadata().get_int("i64"), int64_t(-1) << 62);
  }
  EXPECT_EQ(load_tensor_file((dir / "m3.gguf").string()).format(), FileFormat::Gguf);
  fs::remove_all(dir);
}

TEST(FormatsGguf, DimensionsAreInnermostFirstOnDisk) {
  Bytes f;
  f.header(1, 0).tensor("w", {4, 3}, 0, 0).align();
  for (int i = 0; i < 12; ++i) f.put<float>(float(i));
  std::unique_ptr<uint8_t[]> keep;
  const TensorFile tf = parse_copy(f.b, f.b.size(), keep);
  const TensorEntry& w = tf.tensor("w");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> y(12);
  dequantize(w, y.data());
  EXPECT_EQ(y[5], 5.f);  // row 1, column 1 of a row-major [3, 4]
}

TEST(FormatsGguf, TruncatedAtEveryPrefix) {
  const fs::path dir = temp_dir("trunc");
  std::vector<float> a(8, 1.f);
  std::vector<uint8_t> q(34, 3);
  Metadata m;
  m.set("general.name", "tiny");
  m.set("list", MetaValue::array(MetaValue::Type::U16, {MetaValue::unsigned_integer(MetaValue::Type::U16, 1)}));
  write_gguf((dir / "t.gguf").string(), m,
             {{"a", TensorType::F32, {2, 4}, reinterpret_cast<const uint8_t*>(a.data()), 32},
              {"q", TensorType::Q8_0, {32}, q.data(), 34}});
  const std::vector<uint8_t> bytes = read_all(dir / "t.gguf");
  std::unique_ptr<uint8_t[]> keep;
  EXPECT_EQ(parse_copy(bytes, bytes.size(), keep).size(), 2u);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_THROW(parse_copy(bytes, n, keep), Error) << "prefix " << n;
  fs::remove_all(dir);
}

TEST(FormatsGguf, HostileHeaders) {
  expect_error({'G', 'G', 'U'}, "truncated");
  expect_valid(Bytes().header(0, 0).b);  // no tensors, no metadata
  {
    Bytes f;
    f.b = {'G', 'G', 'M', 'L', 0, 0, 0, 0};
    expect_error(f.b, "not a GGUF file");
  }
  expect_error(Bytes().header(0, 0, 1).b, "version 1");
  expect_error(Bytes().header(0, 0, 7).b, "unsupported GGUF version 7");
  expect_error(Bytes().header(0, 0, 0x03000000).b, "big-endian");
  expect_error(Bytes().header(uint64_t(1) << 60, 0).b, "tensor count");
  expect_error(Bytes().header(0, ~uint64_t(0)).b, "metadata count");
  // Strings: lying lengths and oversized keys.
  expect_error(Bytes().header(0, 1).put<uint64_t>(~uint64_t(0)).zeros(16).b, "metadata key length");
  expect_error(Bytes().header(0, 1).str(std::string(70000, 'k')).put<uint32_t>(7).put<uint8_t>(1).b, "cap");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(uint64_t(1) << 40).b,
               "runs past the end");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(13).put<uint64_t>(0).b, "unknown metadata value type");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2).b, "neither 0 nor 1");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1000000).b,
               "array length");
  {
    Bytes f;  // arrays nested 100 deep
    f.header(0, 1).str("deep").put<uint32_t>(9);
    for (int i = 0; i < 100; ++i) f.put<uint32_t>(9).put<uint64_t>(1);
    f.zeros(64);
    expect_error(f.b, "nested deeper");
  }
  expect_error(Bytes().header(0, 2).str("k").put<uint32_t>(7).put<uint8_t>(1).str("k").put<uint32_t>(7)
                   .put<uint8_t>(1).b,
               "duplicate metadata key");
  expect_error(Bytes().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(0).b, "power of two");
  expect_error(Bytes().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(24).b, "power of two");
  expect_error(Bytes().header(0, 1).str("general.alignment").put<uint32_t>(8).str("x").b, "expected an unsigned");
}

TEST(FormatsGguf, HostileTensorInfos) {
  auto file = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
    Bytes f;
    f.header(1, 0).tensor("w", ne, type, offset).align().zeros(data_bytes);
    return f.b;
  };
  expect_valid(file({4}, 0, 0, 16));
  expect_error(file({}, 0, 0, 16), "0 dimensions");
  expect_error(file({1, 1, 1, 1, 1}, 0, 0, 16), "5 dimensions");
  expect_error(file({uint64_t(1) << 62, uint64_t(1) << 62}, 0, 0, 16), "overflows");
  expect_error(file({~uint64_t(0)}, 0, 0, 16), "absurd dimension");
  expect_error(file({uint64_t(1) << 61}, 0, 0, 16), "runs past the end");
  expect_error(file({32}, 3, 0, 64), "Q4_1");
  expect_error(file({32}, 99, 0, 64), "unsupported ggml type id 99");
  expect_error(file({16}, 8, 0, 64), "not a multiple of the Q8_0 block size");
  expect_error(file({4}, 0, 8, 64), "not a multiple of the alignment");
  expect_error(file({4}, 0, 32, 40), "runs past the end");
  expect_error(file({4}, 0, ~uint64_t(0) - 31, 40), "runs past the end");
  {
    Bytes f;
    f.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).align().zeros(64);
    expect_error(f.b, "overlap");
  }
  {
    Bytes f;
    f.header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).align().zeros(64);
    expect_error(f.b, "duplicate tensor name");
  }
}

TEST(FormatsGguf, WriterNeverLeavesPartialFiles) {
  const fs::path dir = temp_dir("atomic");
  const fs::path path = dir / "keep.gguf";
  std::ofstream(path) << "precious";
  std::vector<uint8_t> bytes(10);
  EXPECT_THROW(write_gguf(path.string(), Metadata(), {{"w", TensorType::F32, {4}, bytes.data(), 10}}), Error);
  EXPECT_THROW(write_gguf(path.string(), Metadata(), {{"w", TensorType::Q8_0, {16}, bytes.data(), 17}}), Error);
  EXPECT_THROW(write_gguf((dir / "missing" / "x.gguf").string(), Metadata(), {}), Error);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  std::ifstream in(path);
  std::string s;
  in >> s;
  EXPECT_EQ(s, "precious");
  fs::remove_all(dir);
}
