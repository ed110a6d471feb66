// Quantized weights stay quantized in memory: a generated ~60 MB Q4_0 GGUF,
// loaded and run, adds about its file size to the process (the mapped pages),
// where dequantising it at load (dtype f32) adds about seven times that.
// Also: the native path's logits equal those of the dequantised model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/model.h"

using namespace sinklab;

namespace {

int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * int64_t(sysconf(_SC_PAGESIZE));
}

// A Llama-shaped GGUF whose matrices are random Q4_0 blocks (f16 scale 0.02).
struct QuantFile {
  std::string path;
  int64_t bytes = 0;
};

QuantFile write_q4_0_model(const std::string& name, int64_t dim, int64_t layers, int64_t hidden, int64_t vocab) {
  QuantFile f;
  f.path = (std::filesystem::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()) + ".gguf")).string();
  std::mt19937 rng(5);
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorEntry> entries;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, TensorType t) {
    TensorEntry e;
    e.name = n;
    e.type = t;
    e.shape = std::move(shape);
    e.nbytes = tensor_type_nbytes(t, e.numel(), n);
    std::vector<uint8_t>& b = buffers.emplace_back(e.nbytes);
    if (t == TensorType::F32) {
      for (size_t i = 0; i < b.size(); i += 4) {
        const float one = 1.f;
        std::memcpy(b.data() + i, &one, 4);
      }
    } else {
      const uint16_t scale = f32_to_f16(0.02f).bits;
      for (size_t i = 0; i < b.size(); i += 18) {
        std::memcpy(b.data() + i, &scale, 2);
        for (size_t j = 2; j < 18; ++j) b[i + j] = uint8_t(rng());
      }
    }
    e.data = b.data();
    entries.push_back(std::move(e));
  };
  add("token_embd.weight", {vocab, dim}, TensorType::Q4_0);
  add("output.weight", {vocab, dim}, TensorType::Q4_0);
  add("output_norm.weight", {dim}, TensorType::F32);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) add(p + n + ".weight", {dim, dim}, TensorType::Q4_0);
    add(p + "ffn_gate.weight", {hidden, dim}, TensorType::Q4_0);
    add(p + "ffn_up.weight", {hidden, dim}, TensorType::Q4_0);
    add(p + "ffn_down.weight", {dim, hidden}, TensorType::Q4_0);
    add(p + "attn_norm.weight", {dim}, TensorType::F32);
    add(p + "ffn_norm.weight", {dim}, TensorType::F32);
  }
  Metadata m;
  m.set("general.architecture", "llama");
  m.set("llama.context_length", uint32_t(256));
  m.set("llama.embedding_length", uint32_t(dim));
  m.set("llama.block_count", uint32_t(layers));
  m.set("llama.feed_forward_length", uint32_t(hidden));
  m.set("llama.attention.head_count", uint32_t(dim / 64));
  m.set("llama.attention.head_count_kv", uint32_t(dim / 64));
  m.set("llama.vocab_size", uint32_t(vocab));
  write_gguf(f.path, m, entries);
  f.bytes = int64_t(std::filesystem::file_size(f.path));
  return f;
}

// RSS added by loading the model and running a short prompt (every weight is read).
int64_t added_rss(const std::string& path, bool keep_quantized, std::vector<float>* logits) {
  const int64_t before = resident_bytes();
  LoadOptions o;
  o.keep_quantized = keep_quantized;
  o.weight_dtype = DType::F32;
  auto model = Model::load(path, o);
  SessionOptions so;
  so.context = 16;
  Session s(model, so);
  const std::vector<int32_t> ids = {1, 7, 300, 42};
  s.feed(ids);
  logits->assign(s.logits().begin(), s.logits().end());
  return resident_bytes() - before;
}

TEST(QuantizedMemory, ResidentMemoryIsTheFileNotItsDequantisedSize) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "resident memory is not meaningful under AddressSanitizer";
#endif
  const QuantFile f = write_q4_0_model("q4_0_memory", 1024, 7, 2816, 8192);
  ASSERT_GE(f.bytes, int64_t(50) << 20);
  std::vector<float> native, dequantised;
  const int64_t native_rss = added_rss(f.path, true, &native);
  const int64_t f32_rss = added_rss(f.path, false, &dequantised);
  std::filesystem::remove(f.path);
  std::printf("[ memory ] file %.1f MiB: native +%.1f MiB resident, dequantised to f32 +%.1f MiB\n",
              double(f.bytes) / (1 << 20), double(native_rss) / (1 << 20), double(f32_rss) / (1 << 20));
  // KV (16 tokens) and scratch are well under a MiB at this size.
  EXPECT_LE(double(native_rss), 1.15 * double(f.bytes) + double(4 << 20));
  EXPECT_GE(double(f32_rss), 5.0 * double(f.bytes));
  // The same weights either way: only the order of the sums differs.
  ASSERT_EQ(native.size(), dequantised.size());
  double worst = 0, scale = 1e-6;
  for (size_t i = 0; i < native.size(); ++i) {
    worst = std::max(worst, std::abs(double(native[i]) - double(dequantised[i])));
    scale = std::max(scale, std::abs(double(dequantised[i])));
  }
  EXPECT_LT(worst / scale, 1e-4);
}

}  // namespace
