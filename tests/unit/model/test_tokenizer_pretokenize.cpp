// Pre-tokenizer splits, checked against hand-derived matches of the GPT-2,
// Llama-3 and Qwen2 Split regexes (see tokenizer.h for the patterns).
#include <gtest/gtest.h>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

using Words = std::vector<std::string>;

Words split(std::string_view text, PretokenizerPattern p) {
  Words out;
  for (std::string_view w : pretokenize(text, p)) out.emplace_back(w);
  return out;
}

constexpr auto kGpt2 = PretokenizerPattern::Gpt2;
constexpr auto kLlama3 = PretokenizerPattern::Llama3;
constexpr auto kQwen2 = PretokenizerPattern::Qwen2;

TEST(TokenizerPretokenize, DigitsAndSpacesDifferByFamily) {
  const std::string text = "Hello world's 12345 !!";
  EXPECT_EQ(split(text, kGpt2), (Words{"Hello", " world", "'s", " 12345", " !!"}));
  // Llama-3: digits never take a leading space, so the space stands alone
  // (\s+ after \s+(?!\S) fails on a single space before a non-space).
  EXPECT_EQ(split(text, kLlama3), (Words{"Hello", " world", "'s", " ", "123", "45", " !!"}));
  EXPECT_EQ(split(text, kQwen2),
            (Words{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " !!"}));
}

TEST(TokenizerPretokenize, Contractions) {
  EXPECT_EQ(split("I'M we'll they'd", kGpt2),
            (Words{"I", "'", "M", " we", "'ll", " they", "'d"}));
  EXPECT_EQ(split("I'M we'll they'd", kLlama3),
            (Words{"I", "'M", " we", "'ll", " they", "'d"}));
  // 's wins over the longer letter run at the quote.
  EXPECT_EQ(split("'sup", kLlama3), (Words{"'s", "up"}));
  EXPECT_EQ(split("'hello", kLlama3), (Words{"'hello"}));
  EXPECT_EQ(split("'hello", kGpt2), (Words{"'", "hello"}));
}

TEST(TokenizerPretokenize, Whitespace) {
  EXPECT_EQ(split("a  b", kGpt2), (Words{"a", " ", " b"}));
  EXPECT_EQ(split("a  b", kLlama3), (Words{"a", " ", " b"}));
  EXPECT_EQ(split("hi  ", kGpt2), (Words{"hi", "  "}));
  EXPECT_EQ(split("hi  ", kLlama3), (Words{"hi", "  "}));
  EXPECT_EQ(split("a \n\nb", kGpt2), (Words{"a", " \n", "\n", "b"}));
  // \s*[\r\n]+ takes the run up to its last line break.
  EXPECT_EQ(split("a \n\nb", kLlama3), (Words{"a", " \n\n", "b"}));
  EXPECT_EQ(split("a \n  b", kLlama3), (Words{"a", " \n", " ", " b"}));
  EXPECT_EQ(split("ok!!\n\nnext", kLlama3), (Words{"ok", "!!\n\n", "next"}));
  EXPECT_EQ(split("ok!!\n\nnext", kGpt2), (Words{"ok", "!!", "\n", "\n", "next"}));
  EXPECT_EQ(split("\tx", kLlama3), (Words{"\tx"}));
  EXPECT_EQ(split("\tx", kGpt2), (Words{"\t", "x"}));
}

TEST(TokenizerPretokenize, LettersTakeOneLeadingSymbolInLlama3) {
  EXPECT_EQ(split("$hello", kLlama3), (Words{"$hello"}));
  EXPECT_EQ(split("$hello", kGpt2), (Words{"$", "hello"}));
  // "=" cannot prefix "$", so the symbol run "=$" is one word.
  EXPECT_EQ(split("x=$y", kLlama3), (Words{"x", "=$", "y"}));
  EXPECT_EQ(split("x= $y", kLlama3), (Words{"x", "=", " $", "y"}));
}

TEST(TokenizerPretokenize, Scripts) {
  EXPECT_EQ(split("Καλημέρα κόσμε", kGpt2), (Words{"Καλημέρα", " κόσμε"}));
  EXPECT_EQ(split("Привет, мир", kGpt2), (Words{"Привет", ",", " мир"}));
  EXPECT_EQ(split("Ça déjà", kGpt2), (Words{"Ça", " déjà"}));
  // U+FF0C (fullwidth comma) is punctuation; Han is a letter.
  EXPECT_EQ(split("你好，世界", kGpt2), (Words{"你好", "，", "世界"}));
  EXPECT_EQ(split("你好，世界", kLlama3), (Words{"你好", "，世界"}));
  EXPECT_EQ(split("こんにちは世界", kGpt2), (Words{"こんにちは世界"}));
  EXPECT_EQ(split("مرحبا بالعالم", kGpt2), (Words{"مرحبا", " بالعالم"}));
  // Arabic-Indic digits are \p{N}.
  EXPECT_EQ(split("٣٤٥٦", kLlama3), (Words{"٣٤٥", "٦"}));
  // Devanagari vowel signs and virama are marks (Mn), not letters.
  EXPECT_EQ(split("नमस्ते", kGpt2), (Words{"नमस", "्", "त", "े"}));
  EXPECT_EQ(split("नमस्ते", kLlama3), (Words{"नमस", "्त", "े"}));
  EXPECT_EQ(split("hi 😀👍", kGpt2), (Words{"hi", " 😀👍"}));
  EXPECT_EQ(split("½ ²", kGpt2), (Words{"½", " ²"}));  // No category
}

TEST(TokenizerPretokenize, InvalidBytesArePunctuation) {
  EXPECT_EQ(split("a\xff" "b", kGpt2), (Words{"a", "\xff", "b"}));
  EXPECT_EQ(split("a\xff" "b", kLlama3), (Words{"a", "\xff" "b"}));
  EXPECT_EQ(split("\xe4\xbd", kGpt2), (Words{"\xe4\xbd"}));  // truncated sequence
}

TEST(TokenizerPretokenize, WordsCoverTheText) {
  const std::string texts[] = {"",
                               " ",
                               "  leading and trailing  ",
                               "mixed: 3.14159, x_y, 'quoted' (parens)\r\n\ttabs",
                               std::string("\0\x01\x80\xc0\xf5\xff", 6),
                               "Grüße, Ελλάδα! 東京 12:30 — done…"};
  for (const auto& text : texts) {
    for (auto p : {kGpt2, kLlama3, kQwen2}) {
      std::string joined;
      for (std::string_view w : pretokenize(text, p)) {
        EXPECT_FALSE(w.empty());
        joined += w;
      }
      EXPECT_EQ(joined, text);
    }
  }
}

}  // namespace
}  // namespace sinklab
