// tokenizer.json: tiny byte-level (GPT-2 / Llama-3 style) and SentencePiece
// style (Llama 2 style) tokenizers whose expected ids are derived by hand,
// special tokens, and hostile files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

const std::string kDataDir = SINKLAB_SOURCE_DIR "/tests/data/tokenizers/";

// GPT-2's bytes_to_unicode, written out here independently of the library.
std::string byte_char(int b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int k = 0; k < b; ++k)
      if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE)) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// Byte b has id b; then these merges, in rank order, each adding one token.
// Merge results get ids 256, 257, ... in the order listed.
const std::vector<std::pair<std::string, std::string>> kByteMerges = {
    {"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"l", "l"}, {"ll", "o"},
    {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"Ġwor", "ld"}};
constexpr int32_t kHe = 257, kGThe = 258, kLlo = 260, kGWorld = 265, kXyz = 266;
constexpr int32_t kEndOfText = 300, kImStart = 301, kImPrefix = 302;

json byte_level_json(const json& pre_tokenizer, bool ignore_merges = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  json merges = json::array();
  int32_t next = 256;
  for (const auto& [a, b] : kByteMerges) {
    merges.push_back(a + " " + b);
    vocab[a + b] = next++;
  }
  vocab["xyz"] = next;  // reachable only without merges (ignore_merges)
  json added = json::array();
  added.push_back({{"id", kEndOfText}, {"content", "<|endoftext|>"}, {"special", true}});
  added.push_back({{"id", kImStart}, {"content", "<|im_start|>"}, {"special", true}});
  added.push_back({{"id", kImPrefix}, {"content", "<|im"}, {"special", false}});
  return {{"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", {{"type", "ByteLevel"}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", ignore_merges}}}};
}

json gpt2_pre() {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
}
json llama3_pre() {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern",
              {{"Regex",
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

std::unique_ptr<Tokenizer> from_json(const json& j, const std::string& name = "test.json") {
  return tokenizer_from_json_string(j.dump(), name);
}

TEST(TokenizerJson, ByteLevelMergesByRank) {
  auto tok = from_json(byte_level_json(gpt2_pre()));
  EXPECT_EQ(tok->bos_id(), -1);
  EXPECT_EQ(tok->eos_id(), kEndOfText);
  // "the" -> [t, he] ("Ġt he" needs the space); " the" -> [Ġt, he] -> Ġthe.
  EXPECT_EQ(tok->encode("the", true), (Ids{'t', kHe}));
  EXPECT_EQ(tok->encode(" the", false), (Ids{kGThe}));
  // "hello" -> he, ll, then llo; " world" -> Ġw, or, Ġwor, ld, Ġworld.
  EXPECT_EQ(tok->encode("hello world", false), (Ids{kHe, kLlo, kGWorld}));
  EXPECT_EQ(tok->decode(Ids{kHe, kLlo, kGWorld}), "hello world");
  EXPECT_EQ(tok->token_text(kGWorld), "Ġworld");
  // GPT-2 splits "the12" into "the" and "12".
  EXPECT_EQ(tok->encode("the12", false), (Ids{'t', kHe, '1', '2'}));
}

TEST(TokenizerJson, IgnoreMergesUsesWholeWords) {
  auto plain = from_json(byte_level_json(gpt2_pre(), false));
  auto whole = from_json(byte_level_json(gpt2_pre(), true));
  EXPECT_EQ(plain->encode("xyz", false), (Ids{'x', 'y', 'z'}));
  EXPECT_EQ(whole->encode("xyz", false), (Ids{kXyz}));
  EXPECT_EQ(whole->encode("hello", false), (Ids{kHe, kLlo}));
}

TEST(TokenizerJson, Llama3SplitChangesDigitGroups) {
  auto gpt2 = from_json(byte_level_json(gpt2_pre()));
  auto llama3 = from_json(byte_level_json(llama3_pre()));
  // Same bytes, but merges cannot cross word boundaries: "Ġ" stays alone
  // before digits in Llama-3 and merges with nothing in either.
  EXPECT_EQ(gpt2->encode(" the 12345", false), (Ids{kGThe, ' ', '1', '2', '3', '4', '5'}));
  EXPECT_EQ(llama3->encode(" the 12345", false), (Ids{kGThe, ' ', '1', '2', '3', '4', '5'}));
  // The split itself is visible through "$the": Llama-3 keeps "$the" together,
  // which still merges "he".
  EXPECT_EQ(llama3->encode("$the", false), (Ids{'$', 't', kHe}));
}

TEST(TokenizerJson, ByteLevelRoundTripsAnyBytes) {
  auto tok = from_json(byte_level_json(llama3_pre()));
  const std::vector<std::string> texts = {
      "English text, with punctuation!", "Ça déjà vu, naïve façade", "Καλημέρα κόσμε",
      "Привет, мир",                     "你好，世界",               "こんにちは世界",
      "مرحبا بالعالم",                   "नमस्ते दुनिया",           "emoji 😀👍🏽 done\r\n",
      std::string("bad \xff\xfe bytes \xc3"), std::string("nul\0byte", 8)};
  for (const auto& text : texts) {
    const auto ids = tok->encode(text, false);
    EXPECT_EQ(tok->decode(ids), text) << text;
  }
  EXPECT_EQ(tok->encode("\xff\xc3", false), (Ids{0xFF, 0xC3}));
}

TEST(TokenizerJson, AddedTokensLongestMatchAndSkipping) {
  auto tok = from_json(byte_level_json(gpt2_pre()));
  // "<|im_start|>" beats its prefix "<|im" (also an added token).
  EXPECT_EQ(tok->encode("<|im_start|>the<|im<|endoftext|>", false),
            (Ids{kImStart, 't', kHe, kImPrefix, kEndOfText}));
  const Ids ids{kImStart, 't', kHe, kImPrefix, kEndOfText};
  EXPECT_EQ(tok->decode(ids), "the<|im");
  EXPECT_EQ(tok->decode(ids, false), "<|im_start|>the<|im<|endoftext|>");
  EXPECT_TRUE(tok->is_special(kEndOfText));
  EXPECT_FALSE(tok->is_special(kImPrefix));
  EXPECT_FALSE(tok->is_special(kHe));
  EXPECT_EQ(tok->special_token_id("<|im_start|>"), kImStart);
  EXPECT_EQ(tok->special_token_id("<|nope|>"), -1);
  // Ids 267..299 are unused holes; 303 is past the end.
  EXPECT_EQ(tok->vocab_size(), 303);
  EXPECT_THROW(tok->decode(Ids{303}), Error);
  EXPECT_THROW(tok->token_text(-2), Error);
}

TEST(TokenizerJson, BosAndEosFromOptions) {
  TokenizerJsonOptions opt;
  opt.bos_token = "<|im_start|>";
  opt.eos_token = "<|im";
  auto tok = tokenizer_from_json_string(byte_level_json(gpt2_pre()).dump(), "t.json", opt);
  EXPECT_EQ(tok->bos_id(), kImStart);
  EXPECT_EQ(tok->eos_id(), kImPrefix);
  EXPECT_EQ(tok->encode("the", true), (Ids{kImStart, 't', kHe}));
  opt.bos_token = "<missing>";
  EXPECT_THROW(tokenizer_from_json_string(byte_level_json(gpt2_pre()).dump(), "t.json", opt), Error);
}

// tests/data/tokenizers/tiny_llama_sp.json: <unk> <s> </s>, <0x00>..<0xFF>
// at 3..258, then these pieces; merges "▁ h", "l l", "▁h e", "ll o",
// "▁he llo", "▁ w" in rank order.
constexpr int32_t kSp = 259, kH = 260, kO = 263, kSpH = 265, kSpHello = 269, kSpW = 270;

std::unique_ptr<Tokenizer> tiny_sp() { return load_tokenizer_json(kDataDir + "tiny_llama_sp.json"); }

TEST(TokenizerJson, SentencePieceStyleBpe) {
  auto tok = tiny_sp();
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  // "▁hello▁who": ▁h, ll, ▁he, llo, ▁hello, ▁w; "▁w h" is not a merge.
  EXPECT_EQ(tok->encode("hello who", true), (Ids{1, kSpHello, kSpW, kH, kO}));
  EXPECT_EQ(tok->decode(Ids{1, kSpHello, kSpW, kH, kO}), "hello who");
  EXPECT_EQ(tok->decode(Ids{1, kSpHello, kSpW, kH, kO}, false), "<s> hello who");
  // A leading space survives: only the dummy prefix is stripped.
  const auto ids = tok->encode(" hello", false);
  EXPECT_EQ(ids, (Ids{kSp, kSpHello}));
  EXPECT_EQ(tok->decode(ids), " hello");
}

TEST(TokenizerJson, SentencePieceByteFallback) {
  auto tok = tiny_sp();
  // é is not a piece: <0xC3> <0xA9>.
  EXPECT_EQ(tok->encode("hé", false), (Ids{kSpH, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tok->decode(Ids{kSpH, 3 + 0xC3, 3 + 0xA9}), "hé");
  for (const std::string text : {"Привет, 世界 😀!", "bad \xff\xfe\xc3", "  two  spaces  "}) {
    EXPECT_EQ(tok->decode(tok->encode(text, true)), text) << text;
  }
  // Special-token text inside the input is split out first; the normalizer
  // prepends "▁" to each piece of text between added tokens.
  EXPECT_EQ(tok->encode("<s>hello</s>", false), (Ids{1, kSpHello, 2}));
}

TEST(TokenizerJson, UnknownCharactersFuseWithoutByteFallback) {
  json j = json::parse(std::string(
      R"({"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":false,)"
      R"("vocab":{"<unk>":0,"▁":1,"h":2,"▁h":3},"merges":["▁ h"]},)"
      R"("normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},)"
      R"({"type":"Replace","pattern":{"String":" "},"content":"▁"}]}})"));
  auto tok = from_json(j);
  EXPECT_EQ(tok->encode("hé😀h", false), (Ids{3, 0, 2}));
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(from_json(j)->encode("hé😀h", false), (Ids{3, 0, 0, 2}));
  j["model"]["unk_token"] = nullptr;
  EXPECT_EQ(from_json(j)->encode("hé😀h", false), (Ids{3, 2}));  // dropped
}

TEST(TokenizerJson, MetaspacePrependFirst) {
  json j = json::parse(R"({"model":{"type":"BPE","vocab":{"<s>":0,"▁":1,"a":2,"▁a":3},)"
                       R"("merges":[["▁","a"]]},"added_tokens":[{"id":0,"content":"<s>","special":true}],)"
                       R"("pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},)"
                       R"("decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}})");
  auto tok = from_json(j);
  EXPECT_EQ(tok->encode("a a", false), (Ids{3, 3}));
  // Only the text at the very start gets the prefix.
  EXPECT_EQ(tok->encode("<s>a a", false), (Ids{0, 2, 3}));
  EXPECT_EQ(tok->decode(Ids{3, 3}), "a a");
  EXPECT_EQ(tok->bos_id(), 0);  // no post-processor: known name
}

void expect_json_error(const std::string& text, const std::string& needle) {
  try {
    tokenizer_from_json_string(text, "hostile.json");
    FAIL() << "expected an Error mentioning " << needle << " for " << text.substr(0, 200);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("hostile.json"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(TokenizerJson, HostileJson) {
  expect_json_error("", "not valid JSON");
  expect_json_error("{\"model\": ", "not valid JSON");
  expect_json_error("[1, 2]", "expected a JSON object");
  expect_json_error("{}", "missing \"model\"");
  expect_json_error(R"({"model": 5})", "expected a JSON object");
  expect_json_error(R"({"model": {"type": "BPE", "merges": []}})", "missing \"vocab\"");
  expect_json_error(R"({"model": {"vocab": [], "merges": []}})", "model.vocab");
  expect_json_error(R"({"model": {"vocab": {"a": -1}, "merges": []}})", "outside");
  expect_json_error(R"({"model": {"vocab": {"a": "0"}, "merges": []}})", "integer");
  expect_json_error(R"({"model": {"vocab": {"a": 0.5}, "merges": []}})", "integer");
  expect_json_error(R"({"model": {"vocab": {"a": 18446744073709551615}, "merges": []}})", "outside");
  expect_json_error(R"({"model": {"vocab": {"a": 0, "b": 0}, "merges": []}})", "used twice");
  expect_json_error(R"({"model": {"vocab": {"a": 15000000}, "merges": []}})", "too sparse");
  expect_json_error(R"({"model": {"vocab": {}, "merges": []}})", "no tokens");
  expect_json_error(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "unsupported model");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": {}}})", "model.merges");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": ["a"]}})", "exactly one space");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": [["a"]]}})", "model.merges[0]");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": [[1, 2]]}})", "expected a string");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": ["a q"]}})", "\"q\" is not in the vocabulary");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": ["a a"]}})", "merged token \"aa\"");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}})", "unk_token");
  expect_json_error(R"({"model": {"vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"}})", "true or false");
  const std::string ok_model = R"("model": {"vocab": {"a": 0}, "merges": []})";
  expect_json_error("{" + ok_model + R"(, "added_tokens": {}})", "added_tokens");
  expect_json_error("{" + ok_model + R"(, "added_tokens": [{"id": 1}]})", "content");
  expect_json_error("{" + ok_model + R"(, "added_tokens": [{"id": 1, "content": ""}]})", "empty");
  expect_json_error("{" + ok_model + R"(, "normalizer": {"type": "NFKD"}})", "unsupported normalizer");
  expect_json_error("{" + ok_model + R"(, "normalizer": {"no_type": 1}})", "missing \"type\"");
  expect_json_error("{" + ok_model + R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}}})",
                    "unsupported split regex");
  expect_json_error("{" + ok_model + R"(, "pre_tokenizer": {"type": "Whitespace"}})", "unsupported pre_tokenizer");
  expect_json_error("{" + ok_model + R"(, "decoder": {"type": "WordPiece"}})", "unsupported decoder");
  expect_json_error("{" + ok_model + R"(, "decoder": {"type": "Strip", "content": " ", "start": -1}})", "start");
  expect_json_error("{" + ok_model + R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}]}})",
                    "\"<s>\" is not in the vocabulary");
  // Deep nesting is rejected while parsing, before anything recursive sees it.
  expect_json_error(std::string(100000, '[') + std::string(100000, ']'), "nested deeper than 256 levels");
  expect_json_error(std::string(200, '[') + std::string(200, ']'), "expected a JSON object");
}

TEST(TokenizerJson, HostileFilesNameThePath) {
  for (const std::string name : {"bad_merge_unknown_token.json", "bad_truncated.json", "missing.json"}) {
    const std::string path = kDataDir + name;
    try {
      load_tokenizer_json(path);
      FAIL() << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sinklab
