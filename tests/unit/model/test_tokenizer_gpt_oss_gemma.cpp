// The tokenizer.json layouts of gpt-oss (o200k_harmony: o200k Split + ByteLevel,
// BPE that ignores merges for whole-word tokens, specials at 199998..) and
// Gemma 2 / 3 (SentencePiece-style BPE: " " -> "▁", byte fallback, a literal
// Split on " "), each on a small hand-made file of the same structure
// (tests/data/tokenizers/*_tiny.json) with ids checked by hand.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sinklab/tokenizer.h"
#include "tokenizer_files.h"

namespace sinklab {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

using test::read_tokenizer_json;
const std::string& kDataDir = test::kTokenizerDataDir;

std::unique_ptr<Tokenizer> from_json(const json& j) { return tokenizer_from_json_string(j.dump(), "test.json"); }

// ---- gpt-oss ----------------------------------------------------------------
// Byte tokens are tiktoken's ranks: the printable bytes from '!' (0) on, so an
// ASCII character c is c - 33; then the bytes GPT-2 remaps (' ' is 220).
constexpr int32_t kHello = 259, kSpWorld = 264, kWorld = 266, k123 = 268, kUser = 269, kNi = 275, kLtBar = 276,
                  kHi = 277;
constexpr int32_t kStartOfText = 199998, kEndOfText = 199999, kReturn = 200002, kChannel = 200005, kStart = 200006,
                  kEnd = 200007, kMessage = 200008, kCall = 200012;

int32_t ascii(char c) { return int32_t(c) - 33; }

TEST(TokenizerGptOss, WordsDigitsAndCase) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  EXPECT_EQ(tok->encode("Hello world", false), (Ids{kHello, kSpWorld}));
  // The o200k split cuts "HelloWorld" at the case change; each word is one token.
  EXPECT_EQ(tok->encode("HelloWorld", false), (Ids{kHello, kWorld}));
  // Digits in groups of three: "123" is a token, "45" has no merge.
  EXPECT_EQ(tok->encode("12345", false), (Ids{k123, ascii('4'), ascii('5')}));
  EXPECT_EQ(tok->encode(" 7", false), (Ids{220, ascii('7')}));
}

TEST(TokenizerGptOss, CjkAndEmojiAsBytes) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  // "你" merges from its three bytes (E4 BD A0); "好" (E5 A5 BD) stays bytes:
  // E5 and BD are printable Latin-1 (ranks 106 + b - 0xAE), A5 is 94 + b - 0xA1.
  EXPECT_EQ(tok->encode("你好", false), (Ids{kNi, 161, 98, 121}));
  // F0 9F 98 80: F0 printable (172); 9F, 98 and 80 are remapped (188 + 33 + b - 127).
  EXPECT_EQ(tok->encode("😀", false), (Ids{172, 253, 246, 222}));
  EXPECT_EQ(tok->decode(tok->encode("你好 😀 HelloWorld\n\n12345", false)), "你好 😀 HelloWorld\n\n12345");
}

TEST(TokenizerGptOss, SpecialTokensAboveTheBpeVocabulary) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  EXPECT_EQ(tok->vocab_size(), 200019);  // the last added token is <|endofprompt|> = 200018
  EXPECT_EQ(tok->bos_id(), -1);          // the ByteLevel post-processor adds no BOS
  EXPECT_EQ(tok->eos_id(), kEndOfText);
  EXPECT_EQ(tok->special_token_id("<|startoftext|>"), kStartOfText);
  EXPECT_EQ(tok->special_token_id("<|return|>"), kReturn);
  EXPECT_EQ(tok->special_token_id("<|call|>"), kCall);
  EXPECT_EQ(tok->special_token_id("<|constrain|>"), 200003);
  EXPECT_TRUE(tok->is_special(kChannel));
  EXPECT_FALSE(tok->is_special(kHello));
  EXPECT_EQ(tok->token_text(kMessage), "<|message|>");

  const std::string text = "<|start|>user<|message|>Hi<|end|>";
  const Ids ids = tok->encode(text, true);
  EXPECT_EQ(ids, (Ids{kStart, kUser, kMessage, kHi, kEnd}));
  EXPECT_EQ(tok->decode(ids, false), text);
  EXPECT_EQ(tok->decode(ids, true), "userHi");
  EXPECT_EQ(token_display_text(*tok, kReturn), "<|return|>");
}

TEST(TokenizerGptOss, SpecialTokensCanBeReadAsText) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  // "<|end|>" splits into "<|", "end", "|>" like any punctuation and word.
  const Ids as_text{kLtBar, ascii('e'), ascii('n'), ascii('d'), ascii('|'), ascii('>')};
  EXPECT_EQ(tok->encode_ignoring_special("<|end|>"), as_text);
  EXPECT_EQ(tok->encode("<|end|>", false), (Ids{kEnd}));
  EXPECT_EQ(tok->decode(as_text), "<|end|>");
}

// ---- Gemma ------------------------------------------------------------------
// <0xXX> byte tokens at 238 + XX; <start_of_turn> 105, <end_of_turn> 106 and
// "\n" 107 as in Gemma 3 (Gemma 2: 106, 107, 108).
constexpr int32_t kBos = 2, kStartOfTurn = 105, kEndOfTurn = 106, kNewline = 107, kGHello = 511,
                  kSpaceWorld = 516, kDigit0 = 517, kGNi = 527, kGUser = 533, kGModel = 537, kTwoSpaces = 538;

int32_t byte_token(uint8_t b) { return 238 + b; }

TEST(TokenizerGemma, SpacesBecomeMetaspaceWithoutADummyPrefix) {
  const auto tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  EXPECT_EQ(tok->bos_id(), kBos);  // the TemplateProcessing post-processor puts <bos> first
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{kBos, kGHello, kSpaceWorld}));
  EXPECT_EQ(tok->encode("  ", false), (Ids{kTwoSpaces}));
  EXPECT_EQ(tok->decode(Ids{kBos, kGHello, kSpaceWorld}), "Hello world");
  // No "▁" is prepended: a leading space is the text's own.
  EXPECT_EQ(tok->decode(tok->encode(" Hello", false)), " Hello");
}

TEST(TokenizerGemma, DigitsOneByOneCjkAndEmojiByByteFallback) {
  const auto tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  EXPECT_EQ(tok->encode("12345", false), (Ids{kDigit0 + 1, kDigit0 + 2, kDigit0 + 3, kDigit0 + 4, kDigit0 + 5}));
  EXPECT_EQ(tok->encode("你好", false), (Ids{kGNi, byte_token(0xE5), byte_token(0xA5), byte_token(0xBD)}));
  const Ids emoji{byte_token(0xF0), byte_token(0x9F), byte_token(0x98), byte_token(0x80)};
  EXPECT_EQ(tok->encode("😀", false), emoji);
  EXPECT_EQ(tok->decode(emoji), "😀");
  EXPECT_EQ(token_display_text(*tok, byte_token(0xF0)), "<0xF0>");
}

TEST(TokenizerGemma, TurnTokensAndTheirText) {
  const auto tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  const std::string turn = "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n";
  const Ids ids = tok->encode(turn, true);
  EXPECT_EQ(ids, (Ids{kBos, kStartOfTurn, kGUser, kNewline, kGHello, kEndOfTurn, kNewline, kStartOfTurn, kGModel,
                      kNewline}));
  EXPECT_EQ(tok->decode(ids, false), "<bos>" + turn);
  // Read as text: every character not in the vocabulary falls back to bytes.
  const Ids as_text{byte_token('<'), 501, byte_token('n'), 507, byte_token('_'), 503, byte_token('f'),
                    byte_token('_'), byte_token('t'), 528, 506, byte_token('n'), byte_token('>')};
  EXPECT_EQ(tok->encode_ignoring_special("<end_of_turn>"), as_text);
  EXPECT_EQ(tok->decode(as_text), "<end_of_turn>");
}

TEST(TokenizerGemma, Gemma2LayoutWithoutThePreTokenizerEncodesTheSame) {
  // Gemma 2's tokenizer.json has no pre_tokenizer; Gemma 3's splits on " ",
  // which the normalizer has already replaced, so both give the same ids.
  json j = read_tokenizer_json("gemma_tiny.json");
  const auto gemma3 = from_json(j);
  j["pre_tokenizer"] = nullptr;
  const auto gemma2 = from_json(j);
  for (const std::string text : {"Hello world", "  Hello  world ", "<start_of_turn>user\n12 你好😀<end_of_turn>"})
    EXPECT_EQ(gemma2->encode(text, true), gemma3->encode(text, true)) << text;
}

// ---- the literal Split pre-tokenizer ----------------------------------------

TEST(TokenizerJsonSplit, LiteralDelimiterBehaviors) {
  // a=0, -=1, a-=2, -a=3, --=4; merges a+- before -+a before -+-.
  json j = json::parse(R"({"model":{"type":"BPE","vocab":{"a":0,"-":1,"a-":2,"-a":3,"--":4},)"
                       R"("merges":["a -","- a","- -"]}})");
  const std::string text = "a-a--a";
  EXPECT_EQ(from_json(j)->encode(text, false), (Ids{2, 2, 3}));  // no split: merges cross every "-"
  const std::pair<const char*, Ids> cases[] = {
      {"MergedWithPrevious", {2, 2, 1, 0}},  // a- a- - a
      {"MergedWithNext", {0, 3, 1, 3}},      // a -a - -a
      {"Isolated", {0, 1, 0, 1, 1, 0}},      // a - a - - a
      {"Contiguous", {0, 1, 0, 4, 0}},       // a - a -- a
      {"Removed", {0, 0, 0}},                // a a a
  };
  for (const auto& [behavior, want] : cases) {
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}};
    EXPECT_EQ(from_json(j)->encode(text, false), want) << behavior;
  }
}

TEST(TokenizerJsonSplit, RegexSplitsKeepOrDropTheirMatches) {
  // Hugging Face writes some o200k / cl100k files as "Removed" + invert: the
  // same words, since the patterns match every character.
  json j = read_tokenizer_json("harmony_tiny.json");
  const auto isolated = from_json(j);
  json& split = j["pre_tokenizer"]["pretokenizers"][0];
  split["behavior"] = "Removed";
  split["invert"] = true;
  const auto removed_inverted = from_json(j);
  for (const std::string text : {"HelloWorld 12345 你好!\n//x", "don't  stop"})
    EXPECT_EQ(removed_inverted->encode(text, false), isolated->encode(text, false)) << text;
}

void expect_json_error(const json& j, const std::string& what) {
  try {
    from_json(j);
    ADD_FAILURE() << "no error for " << j.dump().substr(0, 200);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(TokenizerJsonSplit, BadSplitsAreNamedErrors) {
  json j = json::parse(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]}})");
  const auto with_split = [&](json split) {
    json k = j;
    k["pre_tokenizer"] = std::move(split);
    return k;
  };
  expect_json_error(with_split({{"type", "Split"}, {"pattern", {{"String", ""}}}}), "empty delimiter");
  expect_json_error(with_split({{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}}),
                    "unknown behavior \"Sideways\"");
  expect_json_error(with_split({{"type", "Split"}, {"pattern", {{"String", " "}}}, {"invert", true}}), "invert");
  expect_json_error(with_split({{"type", "Split"}, {"pattern", {{"Other", " "}}}}), "pre_tokenizer.pattern");
  json o200k = read_tokenizer_json("harmony_tiny.json")["pre_tokenizer"]["pretokenizers"][0];
  o200k["behavior"] = "MergedWithNext";
  expect_json_error(with_split(o200k), "only \"Isolated\"");
  const json twice = {{"type", "Sequence"},
                      {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"String", " "}}}},
                                         {{"type", "Split"}, {"pattern", {{"String", "-"}}}}}}};
  expect_json_error(with_split(twice), "a second split");
}

TEST(TokenizerJson, SparseIdsUpToTheLimitLoad) {
  // A small vocabulary with specials at the ids of a real one loads; ids far
  // beyond every table still do not.
  json j = json::parse(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]},)"
                       R"("added_tokens":[{"id":262143,"content":"<x>","special":true}]})");
  EXPECT_EQ(from_json(j)->vocab_size(), 262144);
  j["added_tokens"][0]["id"] = 262145;
  expect_json_error(j, "too sparse");
}

}  // namespace
}  // namespace sinklab
