// The model runtime against independent PyTorch golden logits, one tiny random
// model per architecture (tests/reference/make_tiny_models.py), and the GGUF
// export of each of them read back through Model::load.
//
// Error measure: per-row relative error, max over positions of
// max_v |got - ref| / max_v |ref|. The runtime (float32) must stay within 1e-4
// of the float64 reference, batched and token by token; an f32 GGUF export must
// give the safetensors logits within 1e-6.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <unistd.h>

#include "sinklab/export.h"
#include "sinklab/formats.h"
#include "tiny_models.h"

using namespace sinklab;
using namespace sinklab::test;

namespace {

constexpr double kReferenceTolerance = 1e-4;
constexpr double kGgufF32Tolerance = 1e-6;
// Measured maxima over the tiny models (per-row relative error against the
// float64 reference): q8_0 ~5e-3, f16 ~5e-4, bf16 ~4e-3; bounds leave 2-3x room.
// Reduced-precision exports against the float64 reference. Measured maxima of
// the per-row error over the tiny models: q8_0 2.6e-2, f16 1.0e-3, bf16 8.5e-3.
// A quantised MoE model may send a token to another expert where the router's
// k-th and (k+1)-th probabilities are close (olmoe: one row of 24, error 0.29),
// a discontinuity of top-k routing rather than an export error; for MoE models
// the q8_0 bound therefore applies to the median row.
constexpr double kGgufQ8Tolerance = 4e-2;
constexpr double kGgufF16Tolerance = 3e-3;
constexpr double kGgufBf16Tolerance = 2e-2;

std::string temp_gguf(const std::string& name, const char* suffix) {
  return (std::filesystem::path(::testing::TempDir()) /
          ("sinklab_" + name + "_" + std::to_string(::getpid()) + suffix + ".gguf"))
      .string();
}


#define SKIP_WITHOUT_TINY_MODELS()                                       \
  if (tiny_models_dir().empty()) GTEST_SKIP() << tiny_models_missing_message()

void check_against_reference(const std::string& name) {
  SKIP_WITHOUT_TINY_MODELS();
  const std::string folder = tiny_models_dir() + "/" + name;
  ASSERT_TRUE(std::filesystem::is_directory(folder)) << folder << " was not generated";
  const auto model = Model::load(folder);
  const int64_t V = model->config().vocab;
  const Golden g = read_golden(folder, V);
  ASSERT_FALSE(g.ids.empty());
  const std::vector<float> batched = batched_logits(model, g.ids);
  const std::vector<float> stepwise = stepwise_logits(model, g.ids);
  const double err_batched = max_row_relative_error(batched.data(), g.logits.data(), g.ids.size(), V);
  const double err_stepwise = max_row_relative_error(stepwise.data(), g.logits.data(), g.ids.size(), V);
  std::printf("[ reference ] %-18s batched %.2e  token-by-token %.2e\n", name.c_str(), err_batched, err_stepwise);
  EXPECT_LE(err_batched, kReferenceTolerance) << name << ": batched prefill vs PyTorch";
  EXPECT_LE(err_stepwise, kReferenceTolerance) << name << ": token-by-token decode vs PyTorch";
}

// Exports `name` as GGUF of `type`, loads it and returns the per-row errors of
// its logits against `ref` (for every position of `ids`).
std::vector<double> gguf_errors(const std::string& name, TensorType type, const std::vector<float>& ref,
                                const std::vector<int32_t>& ids, bool* identical = nullptr) {
  const std::string folder = tiny_models_dir() + "/" + name;
  const auto model = Model::load(folder);
  const std::string path = temp_gguf(name, tensor_type_name(type));
  GgufExportOptions opts;
  opts.type = type;
  export_gguf(*model, path, opts);
  const auto back = Model::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(back->format(), "gguf");
  EXPECT_EQ(back->config().arch, model->config().arch);
  const std::vector<float> got = batched_logits(back, ids);
  if (identical) *identical = got == ref;
  return row_relative_errors(got.data(), ref.data(), ids.size(), model->config().vocab);
}

void check_gguf_round_trip(const std::string& name) {
  SKIP_WITHOUT_TINY_MODELS();
  const std::string folder = tiny_models_dir() + "/" + name;
  // Weights in f32 on both sides (gpt-oss's mxfp4 experts dequantised), so
  // that only the file differs, not the kernels.
  LoadOptions f32;
  f32.keep_quantized = false;
  const auto model = Model::load(folder, f32);
  const Golden g = read_golden(folder, model->config().vocab);
  const std::vector<float> ref = batched_logits(model, g.ids);
  bool identical = false;
  const std::vector<double> errs = gguf_errors(name, TensorType::F32, ref, g.ids, &identical);
  const double err = *std::max_element(errs.begin(), errs.end());
  std::printf("[ gguf f32  ] %-18s vs safetensors %.2e%s\n", name.c_str(), err, identical ? " (bitwise)" : "");
  EXPECT_LE(err, kGgufF32Tolerance) << name << ": f32 GGUF export vs the safetensors load";
}

TEST(TinyModelReference, Llama) { check_against_reference("llama"); }
TEST(TinyModelReference, LlamaTied) { check_against_reference("llama_tied"); }
TEST(TinyModelReference, LlamaRopeLlama3) { check_against_reference("llama_rope_llama3"); }
TEST(TinyModelReference, LlamaRopeLinear) { check_against_reference("llama_rope_linear"); }
TEST(TinyModelReference, Mistral) { check_against_reference("mistral"); }
TEST(TinyModelReference, Qwen2) { check_against_reference("qwen2"); }
TEST(TinyModelReference, Qwen3) { check_against_reference("qwen3"); }
TEST(TinyModelReference, Mixtral) { check_against_reference("mixtral"); }
TEST(TinyModelReference, Qwen2Moe) { check_against_reference("qwen2_moe"); }
TEST(TinyModelReference, Qwen3Moe) { check_against_reference("qwen3_moe"); }
TEST(TinyModelReference, Olmoe) { check_against_reference("olmoe"); }
TEST(TinyModelReference, Sinklab) { check_against_reference("sinklab"); }
TEST(TinyModelReference, SinklabQkNorm) { check_against_reference("sinklab_qk_norm"); }
TEST(TinyModelReference, GptOss) { check_against_reference("gpt_oss"); }
TEST(TinyModelReference, GptOssFloat) { check_against_reference("gpt_oss_float"); }
TEST(TinyModelReference, Gemma2) { check_against_reference("gemma2"); }
TEST(TinyModelReference, Gemma3) { check_against_reference("gemma3"); }

TEST(TinyModelReference, EveryGeneratedModelIsChecked) {
  SKIP_WITHOUT_TINY_MODELS();
  std::set<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(tiny_models_dir()))
    if (e.is_directory()) found.insert(e.path().filename().string());
  std::set<std::string> known(tiny_model_names().begin(), tiny_model_names().end());
  EXPECT_EQ(found, known) << "make_tiny_models.py and the lists of tiny_models.h and this file differ";
}

TEST(TinyModelGguf, Llama) { check_gguf_round_trip("llama"); }
TEST(TinyModelGguf, LlamaTied) { check_gguf_round_trip("llama_tied"); }
TEST(TinyModelGguf, LlamaRopeLlama3) { check_gguf_round_trip("llama_rope_llama3"); }
TEST(TinyModelGguf, LlamaRopeLinear) { check_gguf_round_trip("llama_rope_linear"); }
TEST(TinyModelGguf, Mistral) { check_gguf_round_trip("mistral"); }
TEST(TinyModelGguf, Qwen2) { check_gguf_round_trip("qwen2"); }
TEST(TinyModelGguf, Qwen3) { check_gguf_round_trip("qwen3"); }
TEST(TinyModelGguf, Mixtral) { check_gguf_round_trip("mixtral"); }
TEST(TinyModelGguf, Qwen2Moe) { check_gguf_round_trip("qwen2_moe"); }
TEST(TinyModelGguf, Qwen3Moe) { check_gguf_round_trip("qwen3_moe"); }
TEST(TinyModelGguf, Olmoe) { check_gguf_round_trip("olmoe"); }
TEST(TinyModelGguf, Sinklab) { check_gguf_round_trip("sinklab"); }
TEST(TinyModelGguf, SinklabQkNorm) { check_gguf_round_trip("sinklab_qk_norm"); }
TEST(TinyModelGguf, GptOss) { check_gguf_round_trip("gpt_oss"); }
TEST(TinyModelGguf, GptOssFloat) { check_gguf_round_trip("gpt_oss_float"); }
TEST(TinyModelGguf, Gemma2) { check_gguf_round_trip("gemma2"); }
TEST(TinyModelGguf, Gemma3) { check_gguf_round_trip("gemma3"); }

// llama.cpp writes Llama 3.1 scaling only as rope_freqs.weight (per-frequency
// divisors), without sinklab's rope.scaling.llama3.* keys: the tensor alone
// must reproduce the reference logits, and the model must re-export unchanged.
TEST(TinyModelGguf, LlamaCppRopeFreqsAloneCarryLlama31Scaling) {
  SKIP_WITHOUT_TINY_MODELS();
  const std::string name = "llama_rope_llama3", folder = tiny_models_dir() + "/" + name;
  const auto model = Model::load(folder);
  const Golden g = read_golden(folder, model->config().vocab);
  const std::string ours = temp_gguf(name, "ours"), theirs = temp_gguf(name, "llamacpp");
  export_gguf(*model, ours);
  {
    const TensorFile f = load_gguf(ours);
    Metadata meta;
    for (const auto& [key, value] : f.metadata().values())
      if (key.find("rope.scaling") == std::string::npos) meta.set(key, value);
    std::vector<TensorEntry> entries;
    for (const std::string& t : f.names()) entries.push_back(f.tensor(t));
    ASSERT_TRUE(f.contains("rope_freqs.weight"));
    write_gguf(theirs, meta, entries, 3);
  }
  std::filesystem::remove(ours);
  const auto back = Model::load(theirs);
  ASSERT_TRUE(back->config().rope.freq_factors);
  EXPECT_EQ(back->config().rope.scaling, RopeScaling::None);
  const std::vector<double> errs = row_relative_errors(batched_logits(back, g.ids).data(), g.logits.data(),
                                                       g.ids.size(), model->config().vocab);
  EXPECT_LE(*std::max_element(errs.begin(), errs.end()), kReferenceTolerance);
  export_gguf(*back, ours);  // export checks that the written file reloads to the same configuration
  const TensorFile again = load_gguf(ours);
  EXPECT_FALSE(again.metadata().contains("llama.rope.scaling.llama3.factor"));
  EXPECT_TRUE(again.contains("rope_freqs.weight"));
  std::filesystem::remove(ours);
  std::filesystem::remove(theirs);
}

// Reduced-precision exports against the float64 reference logits.
// The tiny gpt-oss models are drawn so that every clamp of their SwiGLU is hit,
// which makes their logits about 3x as sensitive to weight rounding as the
// others': the float64 reference itself, with its matrices rounded to f16 /
// bf16, moves by up to 6.2e-3 / 4.9e-2 (median 1.6e-3 / 1.6e-2), as the GGUF
// exports do.
double rounding_sensitivity(const std::string& name) { return name.rfind("gpt_oss", 0) == 0 ? 3.0 : 1.0; }

TEST(TinyModelGguf, ReducedPrecisionStaysClose) {
  SKIP_WITHOUT_TINY_MODELS();
  const std::pair<TensorType, double> kinds[] = {{TensorType::Q8_0, kGgufQ8Tolerance},
                                                 {TensorType::F16, kGgufF16Tolerance},
                                                 {TensorType::BF16, kGgufBf16Tolerance}};
  for (const std::string& name : tiny_model_names()) {
    const std::string folder = tiny_models_dir() + "/" + name;
    const auto model = Model::load(folder);
    const Golden g = read_golden(folder, model->config().vocab);
    for (const auto& [type, bound] : kinds) {
      std::vector<double> errs = gguf_errors(name, type, g.logits, g.ids);
      std::sort(errs.begin(), errs.end());
      const double worst = errs.back(), median = errs[errs.size() / 2];
      const bool routed = model->config().moe.n_experts > 0 && type == TensorType::Q8_0;
      std::printf("[ gguf %-4s ] %-18s vs reference max %.2e median %.2e\n", tensor_type_name(type), name.c_str(),
                  worst, median);
      EXPECT_LE(routed ? median : worst, bound * rounding_sensitivity(name))
          << name << ": " << tensor_type_name(type) << " GGUF export";
    }
  }
}

TEST(TinyModelGguf, UsesLlamaCppNamesAndKeys) {
  SKIP_WITHOUT_TINY_MODELS();
  struct Case {
    const char* model;
    const char* arch;
    std::vector<std::string> tensors;
    std::vector<std::string> keys;
  };
  const std::vector<Case> cases = {
      {"llama_tied", "llama", {"token_embd.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight"}, {}},
      {"mistral", "llama", {"output.weight"}, {"llama.attention.sliding_window"}},
      {"llama_rope_linear", "llama", {}, {"llama.rope.scaling.type", "llama.rope.scaling.factor"}},
      {"llama_rope_llama3", "llama", {"rope_freqs.weight"},
       {"llama.rope.scaling.original_context_length", "llama.rope.scaling.llama3.factor"}},
      {"qwen2", "qwen2", {"blk.0.attn_q.bias", "blk.0.attn_v.bias"}, {"qwen2.rope.freq_base"}},
      {"qwen3", "qwen3", {"blk.2.attn_q_norm.weight", "blk.2.attn_k_norm.weight"}, {}},
      {"mixtral", "llama", {"blk.0.ffn_gate_inp.weight", "blk.0.ffn_gate_exps.weight", "blk.1.ffn_down_exps.weight"},
       {"llama.expert_count", "llama.expert_used_count"}},
      {"qwen2_moe", "qwen2moe", {"blk.0.ffn_gate_shexp.weight", "blk.0.ffn_down_shexp.weight",
                                 "blk.0.ffn_gate_inp_shexp.weight"},
       {"qwen2moe.expert_shared_feed_forward_length", "qwen2moe.expert_feed_forward_length"}},
      {"qwen3_moe", "qwen3moe", {"blk.0.attn_q_norm.weight", "blk.1.ffn_up_exps.weight"}, {}},
      {"olmoe", "olmoe", {"blk.0.attn_q_norm.weight"}, {}},
      {"sinklab", "sinklab", {"blk.0.attn_sinks.weight"},
       {"sinklab.attention.sinks", "sinklab.attention.sliding_window_pattern"}},
      {"gpt_oss", "gpt-oss", {"blk.0.attn_sinks.weight", "blk.0.post_attention_norm.weight", "blk.0.ffn_gate_inp.bias",
                              "blk.1.ffn_gate_exps.bias", "blk.1.ffn_down_exps.bias", "blk.0.attn_output.bias"},
       {"gpt-oss.expert_feed_forward_length", "gpt-oss.attention.sliding_window", "gpt-oss.rope.scaling.type"}},
      {"gemma2", "gemma2", {"blk.0.post_attention_norm.weight", "blk.0.ffn_norm.weight", "blk.0.post_ffw_norm.weight"},
       {"gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping", "gemma2.attention.sliding_window"}},
      {"gemma3", "gemma3", {"blk.0.attn_q_norm.weight", "blk.0.post_ffw_norm.weight"},
       {"gemma3.rope.freq_base_swa", "gemma3.attention.scale"}},
  };
  for (const Case& c : cases) {
    const auto model = Model::load(tiny_models_dir() + "/" + c.model);
    const std::string path = temp_gguf(c.model, "names");
    const GgufExportSummary s = export_gguf(*model, path);
    EXPECT_EQ(s.gguf_arch, c.arch) << c.model;
    EXPECT_EQ(s.permuted_qk, std::string(c.arch) == "llama") << c.model;
    const TensorFile f = load_gguf(path);
    std::filesystem::remove(path);
    EXPECT_EQ(f.gguf_version(), 3u);
    EXPECT_EQ(f.metadata().get_string("general.architecture"), c.arch);
    for (const char* key : {"block_count", "embedding_length", "attention.head_count", "attention.head_count_kv",
                            "attention.key_length", "attention.layer_norm_rms_epsilon", "rope.freq_base",
                            "rope.dimension_count", "context_length", "vocab_size"})
      EXPECT_TRUE(f.metadata().contains(std::string(c.arch) + "." + key)) << c.model << ": " << key;
    for (const std::string& t : c.tensors) EXPECT_TRUE(f.contains(t)) << c.model << ": tensor " << t;
    for (const std::string& k : c.keys) EXPECT_TRUE(f.metadata().contains(k)) << c.model << ": key " << k;
    EXPECT_EQ(f.contains("output.weight"), !model->config().tied_embeddings) << c.model;
  }
}

}  // namespace
