// Tokenizers embedded in GGUF metadata (tokenizer.ggml.*): stories260K exported
// with its llama2.c vocabulary and loaded without tok512.bin must tokenize like
// tok512.bin and reproduce the golden greedy ids; a "gpt2" vocabulary built
// from a tiny tokenizer.json must encode like that tokenizer.json; hostile
// metadata is an Error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "assets.h"
#include "sinklab/chat.h"
#include "sinklab/export.h"
#include "sinklab/formats.h"
#include "sinklab/model.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;
using Type = MetaValue::Type;

const char* kStories = "models/stories260K/stories260K.bin";
const char* kTok512 = "models/stories260K/tok512.bin";

const std::vector<std::string> kTexts = {
    "Once upon a time, there was a little girl named Lily.",
    "Tom and\nSue played   in the park!",
    "h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x98\x80 12345",
    "",
    " leading space",
    "bad \xFF\xFE bytes",
};

// A fresh folder that holds nothing but the files the test writes.
fs::path fresh_dir(const char* what) {
  const fs::path dir = fs::path(::testing::TempDir()) /
                       ("sinklab_gguf_tok_" + std::to_string(::getpid()) + "_" + what);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<int32_t> golden_ids() {
  std::ifstream f(test::asset("golden/stories260K_greedy200_ids.txt"));
  std::vector<int32_t> ids;
  for (int32_t x; f >> x;) ids.push_back(x);
  return ids;
}

std::shared_ptr<const Model> export_stories(const fs::path& gguf) {
  LoadOptions o;
  o.tokenizer_path = test::asset(kTok512);
  const auto model = Model::load(test::asset(kStories), o);
  export_gguf(*model, gguf.string());
  return model;
}

TEST(GgufTokenizer, Stories260KLoadsItsEmbeddedVocabulary) {
  if (!test::have_asset(kStories)) GTEST_SKIP() << "assets missing: " << test::assets_dir();
  const fs::path dir = fresh_dir("stories");
  const fs::path gguf = dir / "stories260K.gguf";
  export_stories(gguf);
  ASSERT_FALSE(fs::exists(dir / "tok512.bin"));
  const auto reference = load_llama2c_tokenizer(test::asset(kTok512), 512);

  const TensorFile file = load_gguf(gguf.string());
  const Metadata& m = file.metadata();
  EXPECT_EQ(m.get_string("tokenizer.ggml.model"), "llama");
  const std::vector<std::string> tokens = m.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(m.get_int_array("tokenizer.ggml.token_type")[3], 6);  // byte
  EXPECT_EQ(m.get_int_array("tokenizer.ggml.token_type")[1], 3);  // control
  for (size_t id = 0; id < tokens.size(); ++id) {
    // SentencePiece's escaped space replaces llama2.c's plain one.
    EXPECT_EQ(tokens[id].find(' '), std::string::npos) << id;
    EXPECT_EQ(tokens[id], [&] {
      std::string t = reference->token_text(int32_t(id));
      for (size_t p = t.find(' '); p != std::string::npos; p = t.find(' ', p + 3)) t.replace(p, 1, "\xE2\x96\x81");
      return t;
    }()) << id;
  }

  const auto model = Model::load(gguf.string());
  const Tokenizer* tok = model->tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(model->config().bos_id, 1);
  for (const std::string& text : kTexts) {
    for (bool bos : {false, true}) {
      const Ids ids = tok->encode(text, bos);
      EXPECT_EQ(ids, reference->encode(text, bos)) << text;
      EXPECT_EQ(tok->decode(ids), reference->decode(ids)) << text;
    }
  }
  const std::vector<int32_t> want = golden_ids();
  ASSERT_EQ(want.size(), 200u);
  EXPECT_EQ(tok->decode(want), reference->decode(want));

  Session s(model);
  Sampler greedy({});
  std::vector<int32_t> got;
  int32_t next = model->config().bos_id;
  for (int i = 0; i < 50; ++i) {
    s.feed(std::span<const int32_t>(&next, 1));
    next = greedy.sample(s.logits(), got);
    got.push_back(next);
  }
  EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + 50));

  // An explicit tokenizer wins over the embedded one (llama2.c pieces keep plain spaces).
  LoadOptions o;
  o.tokenizer_path = test::asset(kTok512);
  const auto explicit_tok = Model::load(gguf.string(), o);
  const int32_t spaced = reference->encode("the", false).front();
  EXPECT_EQ(explicit_tok->tokenizer()->token_text(spaced), reference->token_text(spaced));
  EXPECT_NE(tok->token_text(spaced), reference->token_text(spaced));
  fs::remove_all(dir);
}

TEST(GgufTokenizer, MoreTokensThanTheModelIsAnError) {
  if (!test::have_asset(kStories)) GTEST_SKIP() << "assets missing: " << test::assets_dir();
  const fs::path dir = fresh_dir("too_many");
  const fs::path gguf = dir / "stories260K.gguf";
  export_stories(gguf);
  {
    const TensorFile file = load_gguf(gguf.string());
    Metadata m = file.metadata();
    MetaValue::Array tokens = m.at("tokenizer.ggml.tokens").as_array();
    MetaValue::Array scores = m.at("tokenizer.ggml.scores").as_array();
    MetaValue::Array types = m.at("tokenizer.ggml.token_type").as_array();
    for (int i = 0; i < 10; ++i) {
      tokens.emplace_back("extra" + std::to_string(i));
      scores.emplace_back(0.f);
      types.push_back(MetaValue::integer(Type::I32, 1));
    }
    m.set("tokenizer.ggml.tokens", MetaValue::array(Type::String, tokens));
    m.set("tokenizer.ggml.scores", MetaValue::array(Type::F32, scores));
    m.set("tokenizer.ggml.token_type", MetaValue::array(Type::I32, types));
    std::vector<TensorEntry> entries;
    for (const auto& [name, e] : file.tensors()) entries.push_back(e);
    write_gguf((dir / "bigger.gguf").string(), m, entries);
  }
  EXPECT_THROW(Model::load((dir / "bigger.gguf").string()), Error);
  fs::remove_all(dir);
}

// ---- "gpt2": a dense byte-level vocabulary -------------------------------

// GPT-2's bytes_to_unicode, written out here independently of the library.
std::string byte_char(int b) {
  const auto printable = [](int k) { return (k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE; };
  int cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int k = 0; k < b; ++k) cp += !printable(k);
  }
  std::string s;
  if (cp < 0x80) return s += char(cp);
  s += char(0xC0 | (cp >> 6));
  s += char(0x80 | (cp & 0x3F));
  return s;
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"l", "l"}, {"ll", "o"},
    {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"Ġwor", "ld"}};
constexpr int32_t kHe = 257, kGThe = 258, kLlo = 260, kGWorld = 265;
constexpr int32_t kXyz = 266, kEndOfText = 267, kImStart = 268, kImPrefix = 269;

// The vocabulary as GGUF arrays: bytes, merge results, "xyz", then the added tokens.
struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  TinyVocab() {
    for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
    for (const auto& [a, b] : kMerges) {
      tokens.push_back(a + b);
      merges.push_back(a + " " + b);
    }
    tokens.push_back("xyz");
    tokens.insert(tokens.end(), {"<|endoftext|>", "<|im_start|>", "<|im"});
    types.assign(tokens.size(), 1);
    types[size_t(kEndOfText)] = types[size_t(kImStart)] = 3;
    types[size_t(kImPrefix)] = 4;
  }
};

json tiny_tokenizer_json(const json& pre_tokenizer, bool ignore_merges) {
  const TinyVocab v;
  json vocab = json::object();
  for (size_t id = 0; id < v.tokens.size(); ++id) vocab[v.tokens[id]] = id;
  json added = json::array();
  added.push_back({{"id", kEndOfText}, {"content", "<|endoftext|>"}, {"special", true}});
  added.push_back({{"id", kImStart}, {"content", "<|im_start|>"}, {"special", true}});
  added.push_back({{"id", kImPrefix}, {"content", "<|im"}, {"special", false}});
  return {{"added_tokens", added},
          {"pre_tokenizer", pre_tokenizer},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", v.merges}, {"ignore_merges", ignore_merges}}}};
}

MetaValue strings(const std::vector<std::string>& items) {
  MetaValue::Array a;
  for (const std::string& s : items) a.emplace_back(s);
  return MetaValue::array(Type::String, std::move(a));
}

MetaValue ints(const std::vector<int32_t>& items) {
  MetaValue::Array a;
  for (int32_t x : items) a.push_back(MetaValue::integer(Type::I32, x));
  return MetaValue::array(Type::I32, std::move(a));
}

Metadata tiny_gpt2_metadata(const std::string& pre) {
  const TinyVocab v;
  Metadata m("tiny.gguf");
  m.set("tokenizer.ggml.model", "gpt2");
  m.set("tokenizer.ggml.pre", pre);
  m.set("tokenizer.ggml.tokens", strings(v.tokens));
  m.set("tokenizer.ggml.token_type", ints(v.types));
  m.set("tokenizer.ggml.merges", strings(v.merges));
  m.set("tokenizer.ggml.eos_token_id", MetaValue::unsigned_integer(Type::U32, kEndOfText));
  return m;
}

const std::vector<std::string> kBpeTexts = {
    "hello world", " the", "the12", "<|endoftext|>hi<|im_start|>the", "<|im x", "xyz",
    "h\xC3\xA9llo \xF0\x9F\x98\x80\n\n  world 12345", "it's WE'LL", "bad \xFF bytes"};

TEST(GgufTokenizer, Gpt2VocabularyEncodesLikeItsTokenizerJson) {
  const json gpt2_pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  const auto reference = tokenizer_from_json_string(tiny_tokenizer_json(gpt2_pre, false).dump(), "tiny.json");
  const auto tok = tokenizer_from_gguf(tiny_gpt2_metadata("gpt-2"), "tiny.gguf");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 270);
  EXPECT_EQ(tok->eos_id(), kEndOfText);
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_EQ(tok->encode("hello world", false), (Ids{kHe, kLlo, kGWorld}));  // derived by hand
  EXPECT_EQ(tok->encode(" the", false), (Ids{kGThe}));
  EXPECT_EQ(tok->encode("<|im x", false), (Ids{kImPrefix, ' ', 'x'}));  // byte b has id b
  EXPECT_TRUE(tok->is_special(kEndOfText));
  EXPECT_FALSE(tok->is_special(kImPrefix));
  for (const std::string& text : kBpeTexts) {
    EXPECT_EQ(tok->encode(text, true), reference->encode(text, true)) << text;
    const Ids ids = reference->encode(text, false);
    EXPECT_EQ(tok->decode(ids, false), reference->decode(ids, false)) << text;
  }
}

TEST(GgufTokenizer, LlamaBpeUsesTheLlama3SplitAndWholeWords) {
  const json llama3_pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  const auto reference = tokenizer_from_json_string(tiny_tokenizer_json(llama3_pre, true).dump(), "tiny.json");
  const auto tok = tokenizer_from_gguf(tiny_gpt2_metadata("llama-bpe"), "tiny.gguf");
  EXPECT_EQ(tok->encode("xyz", false), (Ids{kXyz}));  // whole word, no merges needed
  EXPECT_EQ(tok->encode("the12345", false), (Ids{'t', kHe, '1', '2', '3', '4', '5'}));
  for (const std::string& text : kBpeTexts) EXPECT_EQ(tok->encode(text, false), reference->encode(text, false)) << text;
}

// ---- hostile metadata ------------------------------------------------------

void expect_error(Metadata m, const std::string& needle) {
  m.set_source("hostile.gguf");
  try {
    const auto tok = tokenizer_from_gguf(m, "hostile.gguf");
    ADD_FAILURE() << "no Error; expected one mentioning " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hostile.gguf"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

Metadata tiny_llama_metadata() {
  Metadata m("tiny.gguf");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
  }
  tokens.insert(tokens.end(), {"\xE2\x96\x81", "a", "\xE2\x96\x81" "a"});
  MetaValue::Array scores;
  for (size_t i = 0; i < tokens.size(); ++i) scores.emplace_back(float(i == tokens.size() - 1 ? 1.f : 0.f));
  m.set("tokenizer.ggml.model", "llama");
  m.set("tokenizer.ggml.tokens", strings(tokens));
  m.set("tokenizer.ggml.scores", MetaValue::array(Type::F32, std::move(scores)));
  return m;
}

TEST(GgufTokenizer, SmallLlamaVocabularyFromMetadata) {
  Metadata m = tiny_llama_metadata();
  m.set("tokenizer.ggml.bos_token_id", MetaValue::unsigned_integer(Type::U32, 2));  // unusual, honoured
  const auto tok = tokenizer_from_gguf(m, "tiny.gguf");
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->encode("a a", true), (Ids{2, 261, 261}));  // BOS, "▁a", "▁a"
  EXPECT_EQ(tok->encode("b", false), (Ids{259, 3 + 'b'}));  // "▁", byte fallback
  EXPECT_EQ(tok->decode(Ids{2, 261, 261, 3 + 'b'}), "a ab");

  // f64 scores outside float's range are clamped, not converted with overflow.
  MetaValue::Array huge;
  for (size_t i = 0; i < 262; ++i) huge.emplace_back(i == 261 ? 1e300 : i == 260 ? -1e300 : 0.0);
  m.set("tokenizer.ggml.scores", MetaValue::array(Type::F64, std::move(huge)));
  EXPECT_EQ(tokenizer_from_gguf(m, "tiny.gguf")->encode("a a", false), (Ids{261, 261}));
}

// Gemma's layout (llama.cpp's convert_hf_to_gguf): specials first, byte
// pieces at their SentencePiece ids (here 7..262), no dummy prefix.
Metadata tiny_gemma_metadata() {
  Metadata m("gemma.gguf");
  std::vector<std::string> tokens = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n"};
  std::vector<int64_t> types = {3, 3, 3, 2, 4, 4, 1};  // the turn tokens are user-defined
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
  }
  const std::string sp = "\xE2\x96\x81";
  // 263.. : pieces, the merged ones scored higher the earlier they merge.
  const std::vector<std::pair<std::string, float>> pieces = {
      {sp, 0}, {"H", 0}, {"e", 0}, {"l", 0}, {"o", 0}, {"w", 0}, {"r", 0}, {"d", 0},
      {"ll", -1}, {"He", -2}, {"llo", -3}, {"Hello", -4}, {sp + "w", -5}, {"or", -6}, {sp + "wor", -7},
      {"ld", -8}, {sp + "world", -9}};
  MetaValue::Array scores(tokens.size(), MetaValue(0.f));
  for (const auto& [piece, score] : pieces) {
    tokens.push_back(piece);
    types.push_back(1);
    scores.emplace_back(score);
  }
  m.set("tokenizer.ggml.model", "llama");
  m.set("tokenizer.ggml.tokens", strings(tokens));
  m.set("tokenizer.ggml.scores", MetaValue::array(Type::F32, std::move(scores)));
  MetaValue::Array type_values;
  for (int64_t t : types) type_values.push_back(MetaValue::integer(Type::I32, t));
  m.set("tokenizer.ggml.token_type", MetaValue::array(Type::I32, std::move(type_values)));
  m.set("tokenizer.ggml.bos_token_id", MetaValue::unsigned_integer(Type::U32, 2));
  m.set("tokenizer.ggml.eos_token_id", MetaValue::unsigned_integer(Type::U32, 1));
  m.set("tokenizer.ggml.add_space_prefix", MetaValue(false));
  return m;
}

TEST(GgufTokenizer, GemmaLayoutWithoutDummyPrefix) {
  constexpr int32_t kHello = 274, kSpaceWorld = 279, kSpace = 263, kNewline = 6;
  const auto tok = tokenizer_from_gguf(tiny_gemma_metadata(), "gemma.gguf");
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{2, kHello, kSpaceWorld}));
  // Byte fallback to the pieces at 7 + b; no "▁" before the text.
  EXPECT_EQ(tok->encode("x\n", false), (Ids{7 + 'x', kNewline}));
  EXPECT_EQ(tok->decode(Ids{2, kHello, kSpaceWorld, 7 + '!'}), "Hello world!");
  EXPECT_EQ(tok->decode(Ids{2, kSpace, kHello}), " Hello");  // a leading space is the text's own
  EXPECT_EQ(tok->special_token_id("<end_of_turn>"), 5);
  EXPECT_FALSE(tok->is_special(5));  // user-defined: found by name, decoded as text
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_EQ(tok->decode(Ids{4, kHello, 5, 1}), "<start_of_turn>Hello<end_of_turn>");
  const ChatFormat gemma = ChatFormat::for_model("gemma", *tok);
  EXPECT_EQ(gemma.encode(std::vector<ChatTurn>{{"user", "Hello"}}), (Ids{2, 4, 7 + 'u', 7 + 's', 265, 269, kNewline,
                                                                       kHello, 5, kNewline, 4, 7 + 'm', 267, 270,
                                                                       265, 266, kNewline}));
  EXPECT_EQ(gemma.stop_ids(), (Ids{5, 1}));
  // With add_space_prefix (llama.cpp's default) the text gets its "▁".
  Metadata m = tiny_gemma_metadata();
  m.set("tokenizer.ggml.add_space_prefix", MetaValue(true));
  EXPECT_EQ(tokenizer_from_gguf(m, "gemma.gguf")->encode("Hello", false), (Ids{kSpace, kHello}));
}

TEST(GgufTokenizer, HostileMetadataIsAnError) {
  const std::string p = "tokenizer.ggml.";
  EXPECT_EQ(tokenizer_from_gguf(Metadata("none.gguf"), "none.gguf"), nullptr);
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "tokens", ints({1, 2, 3}));
    expect_error(m, "tokenizer.ggml.tokens");
  }
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "tokens", MetaValue::array(Type::String, {}));
    expect_error(m, "tokenizer.ggml.tokens");
  }
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "scores", MetaValue::array(Type::F32, {MetaValue(1.f)}));
    expect_error(m, "tokenizer.ggml.scores");
  }
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "scores", strings({"x"}));
    expect_error(m, "tokenizer.ggml.scores");
  }
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "token_type", ints({1, 1}));
    expect_error(m, "tokenizer.ggml.token_type");
  }
  for (const MetaValue& bad : {MetaValue::unsigned_integer(Type::U32, 4000000000u),
                               MetaValue::unsigned_integer(Type::U64, ~uint64_t(0)),
                               MetaValue::integer(Type::I32, -1), MetaValue::integer(Type::I32, 262),
                               MetaValue("1")}) {
    Metadata m = tiny_llama_metadata();
    m.set(p + "bos_token_id", bad);
    expect_error(m, "bos_token_id");
  }
  {
    Metadata m = tiny_llama_metadata();
    MetaValue::Array tokens = m.at(p + "tokens").as_array();
    tokens[10] = MetaValue("x");  // byte token <0x07> missing
    m.set(p + "tokens", MetaValue::array(Type::String, std::move(tokens)));
    expect_error(m, "<0x07>");
  }
  {
    Metadata m = tiny_llama_metadata();
    m.set(p + "model", MetaValue::integer(Type::I32, 1));
    expect_error(m, "tokenizer.ggml.model");
  }
  {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    m.set(p + "merges", strings({"h e", "Ġ zz"}));
    expect_error(m, "\"zz\" is not in the vocabulary");
  }
  {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    m.set(p + "merges", ints({1}));
    expect_error(m, "tokenizer.ggml.merges");
  }
  {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    TinyVocab v;
    v.tokens[kXyz] = "he";  // duplicate of id 257
    m.set(p + "tokens", strings(v.tokens));
    expect_error(m, "appears twice");
  }
  {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    TinyVocab v;
    v.tokens[kXyz] = "x\xFF";
    m.set(p + "tokens", strings(v.tokens));
    expect_error(m, "not valid UTF-8");
  }
  {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    m.set(p + "eos_token_id", MetaValue::unsigned_integer(Type::U32, 270));
    expect_error(m, "eos_token_id");
  }
  // Unsupported vocabularies load (the model stays usable by ids) and fail when used.
  const std::vector<std::pair<std::string, std::string>> unsupported = {
      {"model", "bert"}, {"pre", "deepseek-llm"}, {"pre", "default"}};
  for (const auto& [key, value] : unsupported) {
    Metadata m = tiny_gpt2_metadata("gpt-2");
    m.set(p + key, value);
    const auto tok = tokenizer_from_gguf(m, "odd.gguf");
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->vocab_size(), 270);
    try {
      tok->encode("hi", false);
      ADD_FAILURE() << "encode with tokenizer.ggml." << key << " " << value << " did not throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sinklab
