// `sinklab convert --type X` (export_gguf) writes the blocks quant::quantize_rows
// makes, read back bit for bit by the GGUF loader; matrices whose rows do not
// fill whole blocks stay f32, and the file loads as a model. write_gguf and
// load_gguf keep every block type's bytes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>
#include <unistd.h>

#include "../../../src/model/quant_kernels.h"
#include "sinklab/export.h"
#include "sinklab/model.h"

using namespace sinklab;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kDim = 256, kHidden = 288, kVocab = 40;  // ffn_down rows of 288: whole 32-blocks, no 256-blocks

struct TinyLlama {
  std::map<std::string, std::vector<float>> values;  // Hugging Face names
  std::map<std::string, std::vector<int64_t>> shapes;
  std::shared_ptr<const Model> model;
};

TinyLlama tiny_llama() {
  TinyLlama t;
  const std::pair<const char*, std::vector<int64_t>> tensors[] = {
      {"model.embed_tokens.weight", {kVocab, kDim}},
      {"model.layers.0.input_layernorm.weight", {kDim}},
      {"model.layers.0.self_attn.q_proj.weight", {kDim, kDim}},
      {"model.layers.0.self_attn.k_proj.weight", {kDim, kDim}},
      {"model.layers.0.self_attn.v_proj.weight", {kDim, kDim}},
      {"model.layers.0.self_attn.o_proj.weight", {kDim, kDim}},
      {"model.layers.0.post_attention_layernorm.weight", {kDim}},
      {"model.layers.0.mlp.gate_proj.weight", {kHidden, kDim}},
      {"model.layers.0.mlp.up_proj.weight", {kHidden, kDim}},
      {"model.layers.0.mlp.down_proj.weight", {kDim, kHidden}},
      {"model.norm.weight", {kDim}},
      {"lm_head.weight", {kVocab, kDim}},
  };
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 0.05f);
  auto file = std::make_unique<TensorFile>(FileFormat::Safetensors, "tiny");
  for (const auto& [name, shape] : tensors) {
    std::vector<float>& v = t.values[name];
    v.resize(size_t(shape.size() == 1 ? shape[0] : shape[0] * shape[1]));
    for (float& x : v) x = shape.size() == 1 ? 1.f + normal(rng) : normal(rng);
    t.shapes[name] = shape;
    TensorEntry e;
    e.name = name;
    e.type = TensorType::F32;
    e.shape = shape;
    e.data = reinterpret_cast<const uint8_t*>(v.data());
    e.nbytes = v.size() * 4;
    file->add_tensor(std::move(e));
  }
  file->set_config(nlohmann::json::parse(R"({"model_type": "llama", "vocab_size": 40, "hidden_size": 256,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 288,
      "max_position_embeddings": 64, "tie_word_embeddings": false})"));
  t.model = Model::from_tensor_file(std::move(file), "tiny");
  return t;
}

}  // namespace

TEST(QuantExport, ConvertWritesTheBlocksOfQuantizeRows) {
  const TinyLlama t = tiny_llama();
  // GGUF name -> Hugging Face name, for the matrices written without a row reordering.
  const std::pair<const char*, const char*> matrices[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"},
      {"blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight"},
      {"blk.0.ffn_gate.weight", "model.layers.0.mlp.gate_proj.weight"},
      {"blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight"},
      {"blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"},
      {"output.weight", "lm_head.weight"},
  };
  const fs::path path = fs::temp_directory_path() / ("sinklab_quant_export_" + std::to_string(::getpid()) + ".gguf");
  for (const char* type_name : {"q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "mxfp4"}) {
    SCOPED_TRACE(type_name);
    GgufExportOptions opts;
    opts.type = gguf_export_type_from_name(type_name);
    const GgufExportSummary s = export_gguf(*t.model, path.string(), opts);
    EXPECT_GT(s.n_converted, 0);
    const TensorFile f = load_gguf(path.string());
    for (const auto& [gguf_name, hf_name] : matrices) {
      const TensorEntry& e = f.tensor(gguf_name);
      const std::vector<int64_t>& shape = t.shapes.at(hf_name);
      const int64_t rows = shape[0], cols = shape[1];
      const bool fits = cols % tensor_type_block_size(opts.type) == 0;
      ASSERT_EQ(e.type, fits ? opts.type : TensorType::F32) << gguf_name;
      ASSERT_EQ(e.shape, shape) << gguf_name;
      std::vector<uint8_t> want(quant::row_bytes(e.type, cols) * size_t(rows));
      quant::quantize_rows(e.type, t.values.at(hf_name).data(), rows, cols, want.data());
      ASSERT_EQ(e.nbytes, want.size()) << gguf_name;
      EXPECT_EQ(std::memcmp(e.data, want.data(), want.size()), 0) << gguf_name << " differs from quantize_rows";
    }
    EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, TensorType::F32);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, opts.type);
    // The file loads as a model, whose logits stay near the f32 model's.
    const auto back = Model::load(path.string());
    Session a(t.model), b(back);
    const std::vector<int32_t> ids = {1, 5, 9, 2};
    std::vector<float> la, lb;
    a.feed(ids, &la);
    b.feed(ids, &lb);
    ASSERT_EQ(la.size(), lb.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < la.size(); ++i) diff = std::max(diff, std::fabs(double(la[i]) - lb[i])), scale = std::max(scale, std::fabs(double(la[i])));
    std::printf("[ quant export ] %s: max logit difference %.3g (largest logit %.3g)\n", type_name, diff, scale);
    EXPECT_TRUE(std::isfinite(diff));
  }
  fs::remove(path);
}

TEST(QuantExport, GgufKeepsEveryBlockTypeBitForBit) {
  // One tensor of each block type, written by write_gguf and read by load_gguf.
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.f, 1.f);
  const TensorType types[] = {TensorType::F16,  TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K,
                              TensorType::Q5_K, TensorType::Q6_K, TensorType::MXFP4};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TensorEntry> entries;
  for (TensorType t : types) {
    std::vector<float> x(3 * 512);
    for (float& v : x) v = normal(rng);
    bytes.emplace_back(quant::row_bytes(t, 512) * 3);
    quant::quantize_rows(t, x.data(), 3, 512, bytes.back().data());
  }
  for (size_t i = 0; i < std::size(types); ++i)
    entries.push_back(TensorEntry{std::string("w_") + tensor_type_name(types[i]), types[i], {3, 512},
                                  bytes[i].data(), bytes[i].size()});
  const fs::path path = fs::temp_directory_path() / ("sinklab_quant_types_" + std::to_string(::getpid()) + ".gguf");
  write_gguf(path.string(), Metadata(), entries);
  const TensorFile f = load_gguf(path.string());
  for (const TensorEntry& e : entries) {
    const TensorEntry& back = f.tensor(e.name);
    EXPECT_EQ(back.type, e.type) << e.name;
    EXPECT_EQ(back.shape, e.shape) << e.name;
    ASSERT_EQ(back.nbytes, e.nbytes) << e.name;
    EXPECT_EQ(std::memcmp(back.data, e.data, e.nbytes), 0) << e.name;
  }
  fs::remove(path);
}

TEST(QuantExport, TypeNames) {
  EXPECT_EQ(gguf_export_type_from_name("Q4_K"), TensorType::Q4_K);
  EXPECT_EQ(gguf_export_type_from_name("q5_k"), TensorType::Q5_K);
  EXPECT_EQ(gguf_export_type_from_name("q6_k"), TensorType::Q6_K);
  EXPECT_EQ(gguf_export_type_from_name("q4_0"), TensorType::Q4_0);
  EXPECT_EQ(gguf_export_type_from_name("mxfp4"), TensorType::MXFP4);
  EXPECT_THROW(gguf_export_type_from_name("q4_1"), Error);
}
