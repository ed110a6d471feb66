// llama2.c checkpoints: the real stories260K file, synthetic v0/v1 files
// whose values encode their own offsets, and hostile headers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "sinklab/formats.h"

using namespace sinklab;
namespace fs = std::filesystem;

namespace {

fs::path assets_dir() {
  const char* env = std::getenv("SINKLAB_ASSETS");
  return env && *env ? fs::path(env) : fs::path(SINKLAB_SOURCE_DIR) / ".." / "shared" / "assets";
}

struct Dims {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 10, seq = 4;
};

// Builds a checkpoint whose i-th weight float equals i, so each tensor's first
// value gives its position in the file.
std::vector<uint8_t> make_checkpoint(const Dims& d, int version, bool shared) {
  std::vector<uint8_t> b;
  auto put32 = [&](int32_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + 4);
  };
  if (version == 1) {
    put32(0x616b3432);
    put32(1);
  }
  for (int32_t v : {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, version == 0 && !shared ? -d.vocab : d.vocab, d.seq})
    put32(v);
  if (version == 1) {
    b.push_back(shared ? 1 : 0);
    b.resize(256, 0);
  }
  const int64_t kv = d.dim / d.heads * d.kv_heads;
  int64_t n = int64_t(d.vocab) * d.dim * (shared ? 1 : 2) + int64_t(d.layers) * (2 * d.dim + 2 * d.dim * d.dim +
              2 * kv * d.dim + 3 * int64_t(d.hidden) * d.dim) + d.dim;
  if (version == 0) n += int64_t(d.seq) * (d.dim / d.heads);
  for (int64_t i = 0; i < n; ++i) {
    const float f = float(i);
    const auto* p = reinterpret_cast<const uint8_t*>(&f);
    b.insert(b.end(), p, p + 4);
  }
  return b;
}

float first(const TensorFile& tf, const std::string& name) {
  float f;
  std::memcpy(&f, tf.tensor(name).data, 4);
  return f;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() + 1]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  try {
    parse_llama2c(copy.get(), bytes.size(), "test.bin");
    FAIL() << "expected an Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::vector<uint8_t> with_header(const std::vector<uint8_t>& base, int field, int32_t value) {
  std::vector<uint8_t> b = base;
  std::memcpy(b.data() + 4 * field, &value, 4);
  return b;
}

}  // namespace

TEST(FormatsLlama2c, Stories260K) {
  const fs::path path = assets_dir() / "models" / "stories260K" / "stories260K.bin";
  if (!fs::exists(path)) GTEST_SKIP() << "stories260K.bin not found at " << path << " (set SINKLAB_ASSETS)";
  const TensorFile tf = load_llama2c(path.string());
  EXPECT_EQ(tf.format(), FileFormat::Llama2c);
  EXPECT_EQ(tf.size(), 1u + 5u * 9u + 1u);
  EXPECT_FALSE(tf.contains("lm_head.weight"));
  const Metadata& m = tf.metadata();
  EXPECT_EQ(m.get_int("dim"), 64);
  EXPECT_EQ(m.get_int("hidden_dim"), 172);
  EXPECT_EQ(m.get_int("n_layers"), 5);
  EXPECT_EQ(m.get_int("n_heads"), 8);
  EXPECT_EQ(m.get_int("n_kv_heads"), 4);
  EXPECT_EQ(m.get_int("vocab_size"), 512);
  EXPECT_EQ(m.get_int("seq_len"), 512);
  EXPECT_TRUE(m.get_bool("shared_classifier"));
  EXPECT_EQ(tf.tensor("model.embed_tokens.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(tf.tensor("model.layers.4.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(tf.tensor("model.layers.0.mlp.gate_proj.weight").shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(tf.tensor("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(tf.tensor("model.layers.2.input_layernorm.weight").shape, (std::vector<int64_t>{64}));
  // Layout: the final norm sits right before the two RoPE tables (2 * 512 * 4
  // floats) at the end of the file.
  const TensorEntry& emb = tf.tensor("model.embed_tokens.weight");
  const TensorEntry& norm = tf.tensor("model.norm.weight");
  EXPECT_EQ(size_t(norm.data - emb.data) + 28 + 64 * 4 + 2 * 512 * 4 * 4, size_t(1056540));
  std::vector<float> w(64);
  dequantize(norm, w.data());
  for (float x : w) EXPECT_TRUE(std::isfinite(x) && x > 0.f && x < 100.f) << x;  // RMSNorm gains
  EXPECT_EQ(load_tensor_file(path.string()).size(), tf.size());
}

TEST(FormatsLlama2c, SyntheticLayouts) {
  const Dims d;  // D=8, H=12, L=2, KV=4, V=10
  for (int version : {0, 1}) {
    for (bool shared : {true, false}) {
      SCOPED_TRACE("version " + std::to_string(version) + (shared ? " tied" : " untied"));
      const std::vector<uint8_t> bytes = make_checkpoint(d, version, shared);
      const TensorFile tf = parse_llama2c(bytes.data(), bytes.size(), "synthetic.bin");
      EXPECT_EQ(tf.size(), size_t(1 + 2 * 9 + 1 + (shared ? 0 : 1)));
      EXPECT_EQ(tf.metadata().get_bool("shared_classifier"), shared);
      EXPECT_EQ(tf.metadata().get_int("vocab_size"), 10);
      EXPECT_EQ(tf.metadata().get_int("version"), version);
      if (version == 0) {
        EXPECT_EQ(first(tf, "model.embed_tokens.weight"), 0.f);
        EXPECT_EQ(first(tf, "model.layers.0.input_layernorm.weight"), 80.f);
        EXPECT_EQ(first(tf, "model.layers.1.input_layernorm.weight"), 88.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.q_proj.weight"), 96.f);
        EXPECT_EQ(first(tf, "model.layers.1.self_attn.q_proj.weight"), 160.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.k_proj.weight"), 224.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.v_proj.weight"), 288.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.o_proj.weight"), 352.f);
        EXPECT_EQ(first(tf, "model.layers.0.post_attention_layernorm.weight"), 480.f);
        EXPECT_EQ(first(tf, "model.layers.0.mlp.gate_proj.weight"), 496.f);
        EXPECT_EQ(first(tf, "model.layers.0.mlp.down_proj.weight"), 688.f);
        EXPECT_EQ(first(tf, "model.layers.0.mlp.up_proj.weight"), 880.f);
        EXPECT_EQ(first(tf, "model.norm.weight"), 1072.f);
        if (!shared) {
          EXPECT_EQ(first(tf, "lm_head.weight"), 1072.f + 8 + 4 * 4);
        }
      } else {
        EXPECT_EQ(first(tf, "model.layers.0.input_layernorm.weight"), 0.f);
        EXPECT_EQ(first(tf, "model.layers.1.input_layernorm.weight"), 8.f);
        EXPECT_EQ(first(tf, "model.layers.0.post_attention_layernorm.weight"), 16.f);
        EXPECT_EQ(first(tf, "model.norm.weight"), 32.f);
        EXPECT_EQ(first(tf, "model.embed_tokens.weight"), 40.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.q_proj.weight"), 120.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.k_proj.weight"), 248.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.v_proj.weight"), 312.f);
        EXPECT_EQ(first(tf, "model.layers.0.self_attn.o_proj.weight"), 376.f);
        EXPECT_EQ(first(tf, "model.layers.0.mlp.gate_proj.weight"), 504.f);
        EXPECT_EQ(first(tf, "model.layers.0.mlp.down_proj.weight"), 696.f);
        EXPECT_EQ(first(tf, "model.layers.1.mlp.up_proj.weight"), 888.f + 96);
        if (!shared) {
          EXPECT_EQ(first(tf, "lm_head.weight"), 1080.f);
        }
      }
      EXPECT_EQ(tf.tensor("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<int64_t>{4, 8}));
      EXPECT_EQ(tf.tensor("model.layers.1.mlp.down_proj.weight").shape, (std::vector<int64_t>{8, 12}));
    }
  }
}

TEST(FormatsLlama2c, TruncatedAtEveryPrefix) {
  for (int version : {0, 1}) {
    const std::vector<uint8_t> bytes = make_checkpoint(Dims{}, version, false);
    for (size_t n = 0; n < bytes.size(); ++n) {
      std::unique_ptr<uint8_t[]> copy(new uint8_t[n ? n : 1]);
      std::memcpy(copy.get(), bytes.data(), n);
      EXPECT_THROW(parse_llama2c(copy.get(), n, "t.bin"), Error) << "version " << version << " prefix " << n;
    }
    std::vector<uint8_t> longer = bytes;
    longer.resize(bytes.size() + 4);
    expect_error(longer, "requires exactly");
  }
}

TEST(FormatsLlama2c, HostileHeaders) {
  const std::vector<uint8_t> v0 = make_checkpoint(Dims{}, 0, true);
  expect_error(with_header(v0, 0, 0), "dim = 0");
  expect_error(with_header(v0, 0, -8), "dim = -8");
  expect_error(with_header(v0, 3, 3), "not divisible by n_heads");
  expect_error(with_header(v0, 4, 2), "requires exactly");  // more kv heads: the file is too short
  expect_error(with_header(with_header(v0, 3, 4), 4, 3), "not divisible by n_kv_heads");
  expect_error(with_header(with_header(v0, 0, 6), 3, 2), "must be even");
  expect_error(with_header(v0, 5, INT32_MIN), "vocab_size");
  expect_error(with_header(v0, 6, 0), "seq_len = 0");
  // Large but in-range fields: the size check must not overflow.
  std::vector<uint8_t> big = v0;
  for (auto [field, value] : {std::pair{0, 1 << 16}, {1, 1 << 18}, {2, 1 << 10}, {3, 1 << 10}, {4, 1 << 10},
                              {5, 1 << 22}, {6, 1 << 24}})
    big = with_header(big, field, value);
  expect_error(big, "requires exactly");
  std::vector<uint8_t> v1 = make_checkpoint(Dims{}, 1, true);
  expect_error(with_header(v1, 1, 2), "version 2");
  v1[36] = 7;
  expect_error(v1, "neither 0 nor 1");
}
