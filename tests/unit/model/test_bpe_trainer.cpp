// Byte-level BPE training: merges against a hand-worked example and a naive
// trainer written here (recount every pair, merge the best, repeat), round
// trips through sinklab's own tokenizer.json loader, special tokens, options.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

using json = nlohmann::json;

bool printable_byte(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

// GPT-2's bytes_to_unicode code point, written out independently of the library.
int byte_code_point(int b) {
  if (printable_byte(b)) return b;
  int n = 0;
  for (int k = 0; k < b; ++k)
    if (!printable_byte(k)) ++n;
  return 256 + n;
}

std::string utf8(int cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// The 256 byte symbols in vocabulary order (by code point).
std::vector<int> alphabet_bytes() {
  std::vector<int> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = b;
  std::sort(bytes.begin(), bytes.end(), [](int a, int b) { return byte_code_point(a) < byte_code_point(b); });
  return bytes;
}

std::vector<std::string> merges_of(const std::string& tokenizer_json) {
  const json j = json::parse(tokenizer_json);
  std::vector<std::string> out;
  for (const auto& m : j["model"]["merges"]) out.push_back(m.get<std::string>());
  return out;
}

// Reference trainer: recounts every pair of every word for each merge.
std::vector<std::string> naive_merges(std::string_view text, PretokenizerPattern pattern, int32_t vocab_size,
                                      int64_t min_count) {
  std::vector<std::string> tokens;
  std::map<std::string, int> ids;
  std::vector<int> id_of_byte(256);
  for (int b : alphabet_bytes()) {
    id_of_byte[size_t(b)] = int(tokens.size());
    ids[utf8(byte_code_point(b))] = int(tokens.size());
    tokens.push_back(utf8(byte_code_point(b)));
  }
  std::map<std::string, int64_t> word_counts;
  for (std::string_view w : pretokenize(text, pattern)) ++word_counts[std::string(w)];
  std::vector<std::pair<std::vector<int>, int64_t>> words;
  for (const auto& [w, n] : word_counts) {
    std::vector<int> symbols;
    for (char ch : w) symbols.push_back(id_of_byte[uint8_t(ch)]);
    words.emplace_back(symbols, n);
  }
  std::vector<std::string> merges;
  while (int32_t(tokens.size()) < vocab_size) {
    std::map<std::pair<int, int>, int64_t> counts;
    for (const auto& [symbols, n] : words)
      for (size_t i = 0; i + 1 < symbols.size(); ++i) counts[{symbols[i], symbols[i + 1]}] += n;
    std::pair<int, int> best{-1, -1};
    int64_t best_count = 0;
    for (const auto& [pair, n] : counts)  // ascending pairs: the first of equal counts wins
      if (n > best_count) best = pair, best_count = n;
    if (best_count < min_count) break;
    const std::string merged = tokens[size_t(best.first)] + tokens[size_t(best.second)];
    if (!ids.count(merged)) {
      ids[merged] = int(tokens.size());
      tokens.push_back(merged);
    }
    merges.push_back(tokens[size_t(best.first)] + " " + tokens[size_t(best.second)]);
    for (auto& [symbols, n] : words) {
      std::vector<int> out;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
          out.push_back(ids[merged]);
          ++i;
        } else {
          out.push_back(symbols[i]);
        }
      }
      symbols = out;
    }
  }
  return merges;
}

// Random text: words of one to four syllables from a small set, so that many
// pair counts tie, plus a few fixed words (contractions, digits, accents).
std::string synthetic_text(uint32_t seed, int n_words) {
  const std::vector<std::string> syllables = {"ba", "na", "an", "the", "re", "ing", "ab", "a", "st",
                                              "ou", "ch", "er", "ly", "mo", "z"};
  const std::vector<std::string> fixed = {"banana", "it's", "they're", "123", "4567", "caf\xC3\xA9",
                                          "na\xC3\xAFve", "Anna"};
  const std::vector<std::string> seps = {" ", " ", " ", ", ", ". ", "\n", "\n\n", "  ", "!\n"};
  std::mt19937 rng(seed);
  std::string text;
  for (int i = 0; i < n_words; ++i) {
    if (rng() % 4 == 0) {
      text += fixed[rng() % fixed.size()];
    } else {
      for (uint32_t k = 0, n = 1 + rng() % 4; k < n; ++k) text += syllables[rng() % syllables.size()];
    }
    text += seps[rng() % seps.size()];
  }
  return text;
}

const std::string kMultilingual =
    "The quick brown fox jumps over the lazy dog. Elizabeth Bennet walked to Netherfield.\n"
    "Gr\xC3\xBC\xC3\x9F" "e aus K\xC3\xB6ln! \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0. "
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! \xF0\x9F\x98\x80 emoji\r\n"
    "\ttabs   and    spaces 3.14159 it's they'll we've\n";

std::string training_text() {
  std::string text;
  for (int i = 0; i < 20; ++i) text += kMultilingual;
  return text + synthetic_text(7, 3000);
}

std::string train(std::string_view text, int32_t vocab, std::vector<std::string> specials = {},
                  PretokenizerPattern pattern = PretokenizerPattern::Gpt2, int64_t min_count = 2) {
  BpeTrainOptions opts;
  opts.vocab_size = vocab;
  opts.special_tokens = std::move(specials);
  opts.pattern = pattern;
  opts.min_pair_count = min_count;
  return train_bpe_tokenizer_json(text, opts);
}

TEST(BpeTrainer, ClassicExampleMergesByHand) {
  // One word: pairs aa:4 ab:2 bd:1 da:1 ba:1 ac:1 -> "a a"; then (aa,a) and
  // (a,b) tie at 2 and the smaller ids ('a' < "aa") win -> "a b"; then
  // (aa,ab) occurs twice -> "aa ab"; every other pair occurs once.
  EXPECT_EQ(merges_of(train("aaabdaaabac", 1000)), (std::vector<std::string>{"a a", "a b", "aa ab"}));
  // With min count 1 single pairs follow, smallest ids first: (a,c), then (d,aaab).
  EXPECT_EQ(merges_of(train("aaabdaaabac", 256 + 5, {}, PretokenizerPattern::Gpt2, 1)),
            (std::vector<std::string>{"a a", "a b", "aa ab", "a c", "d aaab"}));
}

TEST(BpeTrainer, MergesMatchNaiveTrainer) {
  const std::string text = synthetic_text(1, 2500);
  for (auto pattern : {PretokenizerPattern::Gpt2, PretokenizerPattern::Llama3, PretokenizerPattern::O200k}) {
    const auto expected = naive_merges(text, pattern, 500, 2);
    ASSERT_GT(expected.size(), 200u);
    EXPECT_EQ(merges_of(train(text, 500, {}, pattern)), expected);
  }
}

TEST(BpeTrainer, VocabularyLayoutIsHuggingFaceByteLevel) {
  const std::string text = training_text();
  const json j = json::parse(train(text, 400, {"<|endoftext|>", "<pad>"}));
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_TRUE(j["post_processor"].is_null());
  EXPECT_EQ(j["decoder"]["type"], "ByteLevel");
  ASSERT_EQ(j["added_tokens"].size(), 2u);
  EXPECT_EQ(j["added_tokens"][0]["content"], "<|endoftext|>");
  EXPECT_EQ(j["added_tokens"][0]["id"], 0);
  EXPECT_EQ(j["added_tokens"][1]["id"], 1);
  EXPECT_TRUE(j["added_tokens"][1]["special"].get<bool>());
  const auto& vocab = j["model"]["vocab"];
  ASSERT_EQ(vocab.size(), 400u);
  EXPECT_EQ(vocab["<pad>"], 1);
  const auto bytes = alphabet_bytes();
  for (int i = 0; i < 256; ++i)
    EXPECT_EQ(vocab[utf8(byte_code_point(bytes[size_t(i)]))], 2 + i) << "byte " << bytes[size_t(i)];
  EXPECT_EQ(vocab["!"], 2);  // the alphabet starts at '!' as in GPT-2's vocab.json
}

TEST(BpeTrainer, RoundTripsThroughLoaderForEveryPattern) {
  const std::string text = training_text();
  std::string invalid = "bad \xFF\xFE bytes \xC3 and \xE6\x97 cut, \xED\xA0\x80 surrogate";
  invalid += std::string("\0nul\0", 5);
  const std::vector<std::string> samples = {kMultilingual, invalid, " leading space", "trailing  \n\n",
                                            "\r\n\r\n", "x", "unseen words: zyzzyva quixotic"};
  for (auto pattern : {PretokenizerPattern::Gpt2, PretokenizerPattern::Llama3, PretokenizerPattern::Qwen2,
                       PretokenizerPattern::O200k}) {
    const auto tok = tokenizer_from_json_string(train(text, 600, {"<|endoftext|>"}, pattern), "trained");
    EXPECT_EQ(tok->vocab_size(), 600);
    for (const std::string& s : samples) {
      const std::vector<int32_t> ids = tok->encode(s, false);
      EXPECT_EQ(tok->decode(ids), s) << "pattern " << int(pattern);
    }
  }
}

TEST(BpeTrainer, TrainingWordsCompress) {
  const std::string text = training_text();
  const auto tok = tokenizer_from_json_string(train(text, 600), "trained");
  for (std::string word : {" Elizabeth", " banana", " Netherfield"}) {
    const auto ids = tok->encode(word, false);
    EXPECT_LT(ids.size(), word.size()) << word;
  }
  EXPECT_EQ(tok->encode(" banana", false).size(), 1u);  // thousands of occurrences: one token
  EXPECT_LT(tok->encode(text, false).size(), text.size() / 2);  // at least two bytes a token
}

TEST(BpeTrainer, SpecialTokensTakeFirstIdsAndOnlyMatchLiterally) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += synthetic_text(uint32_t(i), 40) + "<|endoftext|>";
  const auto tok = tokenizer_from_json_string(train(text, 500, {"<|endoftext|>", "<pad>"}), "trained");
  EXPECT_EQ(tok->special_token_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok->special_token_id("<pad>"), 1);
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_EQ(tok->eos_id(), 0);  // the loader recognises <|endoftext|> as EOS
  for (int32_t id : tok->encode(synthetic_text(99, 500) + " <| endoftext |> pad>", false)) EXPECT_GE(id, 2);
  const auto ids = tok->encode("banana<|endoftext|>nab", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 1);
  EXPECT_EQ(tok->decode(ids, false), "banana<|endoftext|>nab");
  // The training text never merged across or into the special token.
  for (const std::string& m : merges_of(train(text, 500, {"<|endoftext|>"}))) {
    EXPECT_EQ(m.find("|>"), std::string::npos) << m;
    EXPECT_EQ(m.find("<|"), std::string::npos) << m;
  }
}

TEST(BpeTrainer, MergeThatWouldSpellASpecialTokenIsSkipped) {
  // " x" is "\u0120x" in the byte-level alphabet; a special token with that text
  // must not be produced by merging "\u0120" and "x".
  const std::string special = "\xC4\xA0x";
  std::string text;
  for (int i = 0; i < 100; ++i) text += " x y";
  const std::string j = train(text, 300, {special});
  for (const std::string& m : merges_of(j)) EXPECT_NE(m, "\xC4\xA0 x");
  EXPECT_FALSE(merges_of(j).empty());
  const auto tok = tokenizer_from_json_string(j, "trained");
  for (int32_t id : tok->encode(" x y x", false)) EXPECT_NE(id, 0);
  EXPECT_EQ(tok->decode(tok->encode(" x y x", false)), " x y x");
}

TEST(BpeTrainer, Deterministic) {
  const std::string text = training_text();
  EXPECT_EQ(train(text, 700, {"<s>", "</s>"}), train(text, 700, {"<s>", "</s>"}));
}

TEST(BpeTrainer, StopsWhenPairsRunOut) {
  const auto tok = tokenizer_from_json_string(train("abab", 10000), "trained");
  EXPECT_EQ(tok->vocab_size(), 257);  // only "a b" occurs twice
  EXPECT_EQ(tok->encode("abab", false).size(), 2u);
}

TEST(BpeTrainer, BadOptionsThrow) {
  EXPECT_THROW(train("hello", 255), Error);
  EXPECT_THROW(train("hello", 257, {"<a>", "<b>"}), Error);  // 256 bytes + 2 specials > 257
  EXPECT_NO_THROW(train("hello", 258, {"<a>", "<b>"}));
  EXPECT_THROW(train("", 300), Error);
  EXPECT_THROW(train("hello", 300, {""}), Error);
  EXPECT_THROW(train("hello", 300, {"<a>", "<a>"}), Error);
  EXPECT_THROW(train("hello", 300, {"a"}), Error);              // a byte symbol already
  EXPECT_THROW(train("hello", 300, {"\xC4\xA0"}), Error);       // the byte symbol of ' '
  EXPECT_THROW(train("hello", 300, {"<\xFF>"}), Error);         // not UTF-8
  EXPECT_THROW(train("hello", 300, {}, PretokenizerPattern::Gpt2, 0), Error);
  try {
    train("", 300);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sinklab
