// Byte-level BPE tokenizer.json vocabularies written as GGUF "gpt2" metadata
// (write_gguf_tokenizer) must rebuild (tokenizer_from_gguf) to a tokenizer that
// encodes and decodes exactly like the original, with a pre-tokenizer name
// that matters; vocabularies GGUF cannot carry exactly are not written; a model
// folder exported with export_gguf keeps its tokenizer without tokenizer.json.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "sinklab/export.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

const std::string kBos = "<|begin_of_text|>", kEos = "<|endoftext|>", kImStart = "<|im_start|>";

const std::string kCorpus =
    "The quick brown fox jumps over the lazy dog. It's 2024 and we'll see 12345 apples, 678 pears.\n"
    "Grüße aus München! Ça va très bien, merci. Привет, как дела? Всё хорошо.\n"
    "東京は日本の首都です。 北京是中国的首都。 مرحبا بالعالم 😀😀 🚀\n"
    "    indented code() { return x + y; }\n\n\tTabs\tand  double  spaces   here.\n"
    "<|endoftext|>Numbers: 3.14159 2718281828 1,000,000 and 007.<|im_start|>user hello<|endoftext|>\n";

std::string corpus() {
  std::string text;
  for (int i = 0; i < 6; ++i) text += kCorpus;
  return text;
}

const std::vector<std::string> kTexts = {
    "",
    "The quick brown fox",
    " leading and trailing spaces  ",
    "Grüße aus München! Привет мир. 東京 北京 مرحبا 😀🚀",
    "digits 1 12 123 1234 12345 3.14159 1,000,000",
    "whitespace   runs\t\t\n\n\n  \r\n end   ",
    "it's WE'LL they'D I'm",
    kBos + "hi" + kEos + "there" + kImStart + "user<|im" + "<tool>x",
    "bad \xFF\xFE bytes \xC3 cut \xE6\x9D",
    "xyzzy xyzzy",
    "f(x) = g(y) * 12",
    "xY we'll",  // a word Llama-3 keeps and o200k splits, and the reverse
};

// A trained tokenizer.json with BOS/EOS specials, one non-special added token
// ("<tool>"), one vocabulary token no merge produces ("xyzzy", so that
// ignore_merges changes encodings) and merges only some splits can use
// ("(x": not the GPT-2 split; "12": not the Qwen2 split; "xY": not the o200k split).
json trained_json(PretokenizerPattern pattern) {
  BpeTrainOptions o;
  o.vocab_size = 600;
  o.special_tokens = {kBos, kEos, kImStart};
  o.pattern = pattern;
  json j = json::parse(train_bpe_tokenizer_json(corpus(), o));
  for (const auto& [a, b] : {std::pair{"(", "x"}, std::pair{"1", "2"}, std::pair{"x", "Y"}}) {
    const std::string merged = std::string(a) + b;
    if (j["model"]["vocab"].contains(merged)) continue;
    j["model"]["vocab"][merged] = j["model"]["vocab"].size();
    j["model"]["merges"].push_back(std::string(a) + " " + b);
  }
  const int32_t n = int32_t(j["model"]["vocab"].size());
  j["model"]["vocab"]["xyzzy"] = n;
  j["added_tokens"].push_back({{"id", n + 1}, {"content", "<tool>"}, {"special", false}});
  return j;
}

std::unique_ptr<Tokenizer> from_json(const json& j) { return tokenizer_from_json_string(j.dump(), "trained.json"); }

Metadata written(const Tokenizer& tok) {
  Metadata m("trained.gguf");
  EXPECT_TRUE(write_gguf_tokenizer(tok, m));
  return m;
}

Metadata with_pre(Metadata m, const std::string& pre) {
  m.set("tokenizer.ggml.pre", pre);
  return m;
}

void expect_same_tokenizer(const Tokenizer& want, const Tokenizer& got, const std::string& what) {
  ASSERT_EQ(got.vocab_size(), want.vocab_size()) << what;
  EXPECT_EQ(got.bos_id(), want.bos_id()) << what;
  EXPECT_EQ(got.eos_id(), want.eos_id()) << what;
  for (int32_t id = 0; id < want.vocab_size(); ++id) {
    EXPECT_EQ(got.token_text(id), want.token_text(id)) << what << " id " << id;
    EXPECT_EQ(got.is_special(id), want.is_special(id)) << what << " id " << id;
  }
  for (const std::string& text : kTexts) {
    for (bool bos : {false, true}) {
      const Ids ids = want.encode(text, bos);
      EXPECT_EQ(got.encode(text, bos), ids) << what << ": " << text;
      for (bool skip : {false, true}) EXPECT_EQ(got.decode(ids, skip), want.decode(ids, skip)) << what << ": " << text;
    }
  }
  EXPECT_EQ(got.decode(want.encode(kTexts[3], false)), kTexts[3]);
}

// Some text encodes differently under `m` than under `want`.
bool encodes_differently(const Tokenizer& want, const Metadata& m) {
  const auto other = tokenizer_from_gguf(m, "other.gguf");
  for (const std::string& text : kTexts)
    if (other->encode(text, false) != want.encode(text, false)) return true;
  return false;
}

struct Case {
  PretokenizerPattern pattern;
  bool ignore_merges;
  const char* pre;
};
const Case kCases[] = {{PretokenizerPattern::Gpt2, false, "gpt-2"},
                       {PretokenizerPattern::Llama3, true, "llama-bpe"},
                       {PretokenizerPattern::Llama3, false, "smaug-bpe"},
                       {PretokenizerPattern::Qwen2, false, "qwen2"},
                       {PretokenizerPattern::O200k, false, "gpt-4o"}};

TEST(GgufTokenizerExport, ByteLevelBpeRoundTripsExactly) {
  for (const Case& c : kCases) {
    json j = trained_json(c.pattern);
    j["model"]["ignore_merges"] = c.ignore_merges;
    const auto tok = from_json(j);
    const Metadata m = written(*tok);
    EXPECT_EQ(m.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(m.get_string("tokenizer.ggml.pre"), c.pre);
    EXPECT_FALSE(m.contains("tokenizer.ggml.scores"));
    const std::vector<std::string> tokens = m.get_string_array("tokenizer.ggml.tokens");
    const std::vector<int64_t> types = m.get_int_array("tokenizer.ggml.token_type");
    ASSERT_EQ(tokens.size(), size_t(tok->vocab_size()));
    EXPECT_EQ(tokens[1], kEos);
    EXPECT_EQ(types[1], 3);                  // control
    EXPECT_EQ(types[tokens.size() - 1], 4);  // "<tool>": user-defined
    EXPECT_EQ(types[tokens.size() - 2], 1);  // "xyzzy"
    const std::vector<std::string> merges = m.get_string_array("tokenizer.ggml.merges");
    EXPECT_EQ(merges, j["model"]["merges"].get<std::vector<std::string>>());
    EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), 0);  // <|begin_of_text|>, a known name
    EXPECT_EQ(m.get_int("tokenizer.ggml.eos_token_id"), 1);
    EXPECT_FALSE(m.get_bool("tokenizer.ggml.add_bos_token"));  // no post-processor adds it

    const auto back = tokenizer_from_gguf(m, "trained.gguf");
    expect_same_tokenizer(*tok, *back, c.pre);
    // Written again from the rebuilt tokenizer: the same metadata.
    const Metadata again = written(*back);
    for (const char* key : {"tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
      EXPECT_EQ(again.at(key), m.at(key)) << key;

    // Every other written name changes some encoding: the choice is not cosmetic.
    for (const Case& other : kCases) {
      if (std::string(other.pre) == c.pre) continue;
      EXPECT_TRUE(encodes_differently(*tok, with_pre(m, other.pre))) << c.pre << " read as " << other.pre;
    }
  }
}

TEST(GgufTokenizerExport, TemplateBosSetsAddBosToken) {
  json j = trained_json(PretokenizerPattern::Llama3);
  j["model"]["ignore_merges"] = true;
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", kBos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"special_tokens", {{kBos, {{"id", kBos}, {"ids", {0}}, {"tokens", {kBos}}}}}}};
  const auto tok = from_json(j);
  const Metadata m = written(*tok);
  EXPECT_TRUE(m.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), 0);
  expect_same_tokenizer(*tok, *tokenizer_from_gguf(m, "t.gguf"), "template");
}

TEST(GgufTokenizerExport, IdsAlreadyInTheMetadataAreKept) {
  const auto tok = from_json(trained_json(PretokenizerPattern::Gpt2));
  Metadata m("t.gguf");
  m.set("tokenizer.ggml.eos_token_id", MetaValue::unsigned_integer(MetaValue::Type::U32, 2));
  ASSERT_TRUE(write_gguf_tokenizer(*tok, m));
  EXPECT_EQ(m.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), 0);
}

// llama.cpp pre names that share a split regex (and ignore_merges rule) with
// a written name encode the same; those with another rule or regex do not load.
TEST(GgufTokenizerExport, LlamaCppPreNamesWithTheSameSplit) {
  const std::map<std::string, std::vector<std::string>> same = {
      {"gpt-2",
       {"phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum", "modern-bert",
        "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling"}},
      {"llama-bpe", {"llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"}},
      {"smaug-bpe", {"dbrx"}},
      {"qwen2", {"deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"}},
      {"gpt-4o", {"llama4"}}};
  for (const Case& c : kCases) {
    json j = trained_json(c.pattern);
    j["model"]["ignore_merges"] = c.ignore_merges;
    const auto tok = from_json(j);
    const Metadata m = written(*tok);
    for (const std::string& name : same.at(c.pre))
      expect_same_tokenizer(*tok, *tokenizer_from_gguf(with_pre(m, name), "t.gguf"), name);
  }
  const Metadata m = written(*from_json(trained_json(PretokenizerPattern::Gpt2)));
  for (const char* name : {"default", "starcoder", "smollm", "falcon", "deepseek-llm", "chatglm-bpe", "roberta-bpe",
                           "tekken", "qwen35", "LLAMA-BPE"}) {
    const auto tok = tokenizer_from_gguf(with_pre(m, name), "t.gguf");
    EXPECT_THROW(tok->encode("hi", false), Error) << name;
  }
}

// ---- what is not written ---------------------------------------------------

void expect_not_written(const json& j, const std::string& what) {
  const auto tok = from_json(j);
  Metadata m("t.gguf");
  EXPECT_FALSE(write_gguf_tokenizer(*tok, m)) << what;
  EXPECT_TRUE(m.values().empty()) << what;
}

TEST(GgufTokenizerExport, InexpressiblePipelinesAreNotWritten) {
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["model"]["ignore_merges"] = true;  // llama.cpp has no GPT-2-split name that ignores merges
    expect_not_written(j, "gpt2 + ignore_merges");
  }
  {
    json j = trained_json(PretokenizerPattern::O200k);
    j["model"]["ignore_merges"] = true;  // llama.cpp's gpt-4o merges whole words too
    expect_not_written(j, "o200k + ignore_merges");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    expect_not_written(j, "literal split");
  }
  {
    json j = trained_json(PretokenizerPattern::Qwen2);
    j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "b"}};
    expect_not_written(j, "normalizer");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["pre_tokenizer"]["add_prefix_space"] = true;
    expect_not_written(j, "add_prefix_space");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["added_tokens"].back()["lstrip"] = true;
    expect_not_written(j, "lstrip");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["pre_tokenizer"]["use_regex"] = false;  // no split at all
    expect_not_written(j, "no split");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    j["decoder"] = {{"type", "Fuse"}};
    expect_not_written(j, "decoder");
  }
  {
    json j = trained_json(PretokenizerPattern::Gpt2);
    const int32_t next = int32_t(j["model"]["vocab"].size()) + 1;  // after "<tool>"
    j["added_tokens"].push_back({{"id", next}, {"content", "xyzzy"}, {"special", false}});  // text of another id
    expect_not_written(j, "duplicate token text");
  }
}

TEST(GgufTokenizerExport, MissingIdIsAnError) {
  json j = trained_json(PretokenizerPattern::Gpt2);
  const int32_t n = int32_t(j["model"]["vocab"].size()) + int32_t(j["added_tokens"].size()) - 3;
  j["added_tokens"].push_back({{"id", n + 1}, {"content", "<gap>"}, {"special", true}});  // id n has no token
  const auto tok = from_json(j);
  Metadata m("t.gguf");
  try {
    write_gguf_tokenizer(*tok, m);
    ADD_FAILURE() << "no Error for a vocabulary without id " << n;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id " + std::to_string(n)), std::string::npos) << e.what();
  }
}

// SentencePiece-style tokenizer.json BPE (Llama 2) is not written: GGUF keeps
// such vocabularies as "llama" with scores, and the score-driven encoder merges
// any adjacent pair whose concatenation is a token, which BPE does not.
std::string sp_piece(int b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

TEST(GgufTokenizerExport, SentencePieceBpeIsNotWrittenBecauseScoresCannotReplaceMerges) {
  const std::string sp = "\xE2\x96\x81";
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) pieces.push_back(sp_piece(b));
  pieces.insert(pieces.end(), {sp, "a", "b", "c", "bc", "ab", "abc"});
  json vocab = json::object();
  for (size_t id = 0; id < pieces.size(); ++id) vocab[pieces[id]] = id;
  const json j = {
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", sp}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"model",
       {{"type", "BPE"},
        {"byte_fallback", true},
        {"unk_token", "<unk>"},
        {"vocab", vocab},
        {"merges", {"b c", "a b", "ab c"}}}}};
  const auto tok = from_json(j);
  const int32_t kSp = 259, kA = 260, kBc = 263, kAbc = 265;
  EXPECT_EQ(tok->encode("abc", false), (Ids{kSp, kA, kBc}));  // no merge joins "a" and "bc"
  expect_not_written(j, "sentencepiece bpe");

  // Scores from merge ranks (the best that could be written) merge "a" + "bc".
  std::vector<uint8_t> bin(4, 0);
  for (size_t id = 0; id < pieces.size(); ++id) {
    std::string piece = pieces[id] == sp ? " " : pieces[id];
    const float score = piece == "bc" ? 0.f : piece == "ab" ? -1.f : piece == "abc" ? -2.f : -1000.f;
    const int32_t len = int32_t(piece.size());
    const size_t at = bin.size();
    bin.resize(at + 8 + piece.size());
    std::memcpy(bin.data() + at, &score, 4);
    std::memcpy(bin.data() + at + 4, &len, 4);
    std::memcpy(bin.data() + at + 8, piece.data(), piece.size());
  }
  const auto scored = llama2c_tokenizer_from_bytes(bin, int32_t(pieces.size()));
  EXPECT_EQ(scored->encode("abc", false), (Ids{kSp, kAbc}));
}

// ---- end to end: a model folder with tokenizer.json --------------------------

// A tiny random Llama written as safetensors + config.json + tokenizer.json.
fs::path write_tiny_llama(const fs::path& dir, const json& tokenizer, int64_t vocab) {
  const int64_t dim = 16, hidden = 32, heads = 2, layers = 1;
  fs::create_directories(dir);
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors;
  uint64_t state = 7;
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones = false) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> data(size_t(n), 1.f);
    if (!ones)
      for (float& x : data) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        x = float(double(state >> 40) / double(1 << 24) - 0.5) * 0.2f;
      }
    tensors[name] = {std::move(shape), std::move(data)};
  };
  add("model.embed_tokens.weight", {vocab, dim});
  add("lm_head.weight", {vocab, dim});
  add("model.norm.weight", {dim}, true);
  const std::string p = "model.layers.0.";
  add(p + "input_layernorm.weight", {dim}, true);
  add(p + "post_attention_layernorm.weight", {dim}, true);
  for (const char* w : {"q_proj", "k_proj", "v_proj", "o_proj"}) add(p + "self_attn." + w + ".weight", {dim, dim});
  add(p + "mlp.gate_proj.weight", {hidden, dim});
  add(p + "mlp.up_proj.weight", {hidden, dim});
  add(p + "mlp.down_proj.weight", {dim, hidden});
  std::vector<TensorEntry> entries;
  for (const auto& [name, t] : tensors)
    entries.push_back({name, TensorType::F32, t.first, reinterpret_cast<const uint8_t*>(t.second.data()),
                       t.second.size() * sizeof(float)});
  write_safetensors((dir / "model.safetensors").string(), entries);
  const json config = {{"model_type", "llama"},       {"vocab_size", vocab},          {"hidden_size", dim},
                       {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"num_key_value_heads", heads},
                       {"intermediate_size", hidden}, {"rms_norm_eps", 1e-5},         {"max_position_embeddings", 64},
                       {"rope_theta", 10000.0},       {"bos_token_id", 0},            {"eos_token_id", 1}};
  std::ofstream(dir / "config.json") << config.dump(2);
  std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
  return dir;
}

TEST(GgufTokenizerExport, ExportedModelCarriesItsTokenizerJson) {
  const fs::path root = fs::path(::testing::TempDir()) / ("sinklab_gguf_tokjson_" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (const Case& c : kCases) {
    json j = trained_json(c.pattern);
    j["model"]["ignore_merges"] = c.ignore_merges;
    const int64_t vocab = from_json(j)->vocab_size();
    const fs::path folder = write_tiny_llama(root / c.pre, j, vocab);
    const auto model = Model::load(folder.string());
    ASSERT_NE(model->tokenizer(), nullptr);
    fs::create_directories(root / "gguf");
    const fs::path gguf = root / "gguf" / (std::string(c.pre) + ".gguf");
    export_gguf(*model, gguf.string());
    ASSERT_FALSE(fs::exists(gguf.parent_path() / "tokenizer.json"));

    const TensorFile file = load_gguf(gguf.string());
    EXPECT_EQ(file.metadata().get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(file.metadata().get_string("tokenizer.ggml.pre"), c.pre);
    const auto back = Model::load(gguf.string());
    ASSERT_NE(back->tokenizer(), nullptr);
    expect_same_tokenizer(*model->tokenizer(), *back->tokenizer(), c.pre);
    EXPECT_EQ(back->config().bos_id, 0);
    EXPECT_EQ(back->config().eos_id, 1);
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace sinklab
