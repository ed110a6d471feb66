// The o200k split (GPT-4o, gpt-oss): hand-derived matches of its Split regex,
// and, where /usr/bin/python3 has the `regex` module, the scanner against that
// backtracking engine on generated texts.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

using Words = std::vector<std::string>;

Words split(std::string_view text, PretokenizerPattern p = PretokenizerPattern::O200k) {
  Words out;
  for (std::string_view w : pretokenize(text, p)) out.emplace_back(w);
  return out;
}

// The Split regex of gpt-oss's tokenizer.json (tiktoken's o200k_base pat_str).
constexpr const char* kO200kRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(TokenizerPretokenizeO200k, CaseChangesSplitWords) {
  EXPECT_EQ(split("HelloWorld"), (Words{"Hello", "World"}));
  // Upper-case runs stay whole and keep their contraction.
  EXPECT_EQ(split("CamelCaseWORDS's"), (Words{"Camel", "Case", "WORDS's"}));
  EXPECT_EQ(split("abc123def"), (Words{"abc", "123", "def"}));
  // Title case (U+01C5) leads a word like upper case.
  EXPECT_EQ(split("ǅemal aǅb"), (Words{"ǅemal", " a", "ǅb"}));
  // A combining acute (a mark) belongs to both classes.
  EXPECT_EQ(split("E\xCC\x81" "cole \xC3\x89" "COLE"), (Words{"E\xCC\x81" "cole", " \xC3\x89" "COLE"}));
}

TEST(TokenizerPretokenizeO200k, ContractionsStayOnTheirWord) {
  EXPECT_EQ(split("don't"), (Words{"don't"}));
  EXPECT_EQ(split("I'M"), (Words{"I'M"}));
  EXPECT_EQ(split("I'M we'll they'd WE'LL"), (Words{"I'M", " we'll", " they'd", " WE'LL"}));
  // A quote leads a word like any punctuation; "'sup" is not 's + up as in Llama-3.
  EXPECT_EQ(split("'sup"), (Words{"'sup"}));
  EXPECT_EQ(split("'sup", PretokenizerPattern::Llama3), (Words{"'s", "up"}));
}

TEST(TokenizerPretokenizeO200k, DigitsInGroupsOfThree) {
  EXPECT_EQ(split("12345678"), (Words{"123", "456", "78"}));
  EXPECT_EQ(split("Hello world's 12345 !!"), (Words{"Hello", " world's", " ", "123", "45", " !!"}));
  // Arabic-Indic digits are \p{N}.
  EXPECT_EQ(split("٣٤٥٦"), (Words{"٣٤٥", "٦"}));
}

TEST(TokenizerPretokenizeO200k, ScriptsAndEmoji) {
  EXPECT_EQ(split("你好世界"), (Words{"你好世界"}));
  EXPECT_EQ(split("你好，世界"), (Words{"你好", "，世界"}));
  // Devanagari vowel signs and virama are marks, which o200k keeps in the word.
  EXPECT_EQ(split("नमस्ते"), (Words{"नमस्ते"}));
  EXPECT_EQ(split("नमस्ते", PretokenizerPattern::Llama3), (Words{"नमस", "्त", "े"}));
  EXPECT_EQ(split("hi 😀👍"), (Words{"hi", " 😀👍"}));
  EXPECT_EQ(split("😀hello"), (Words{"😀hello"}));
}

TEST(TokenizerPretokenizeO200k, LineBreaksAndSlashes) {
  EXPECT_EQ(split("a\n  b"), (Words{"a", "\n", " ", " b"}));
  EXPECT_EQ(split("a  b"), (Words{"a", " ", " b"}));
  EXPECT_EQ(split("ok!!\n\nnext"), (Words{"ok", "!!\n\n", "next"}));
  // A punctuation run takes the line breaks and slashes after it.
  EXPECT_EQ(split("x=1;\n//note"), (Words{"x", "=", "1", ";\n//", "note"}));
  EXPECT_EQ(split("path/to/file"), (Words{"path", "/to", "/file"}));
  EXPECT_EQ(split("a/b//c\n//d"), (Words{"a", "/b", "//", "c", "\n", "//", "d"}));
}

TEST(TokenizerPretokenizeO200k, CutsAfterNewlinesSkipSlashes) {
  // "!\n//x" is one word in o200k, so the newline is no cut there.
  const std::string text = "one!\n//two and three\nfour";
  EXPECT_EQ(last_word_cut(text, 0, 7), std::string_view::npos);
  EXPECT_EQ(last_word_cut(text, 0, text.size()), text.find("four"));
}

// Deterministic texts over characters whose categories agree between Unicode
// versions (the tables and the regex module may differ in version): cased
// and uncased letters, marks, digits, punctuation, emoji, white space.
std::vector<std::string> generated_texts(int count) {
  const std::vector<std::string> pool = {
      "a", "b", "s", "t", "d", "l", "m", "e", "A", "B", "S", "T", "M", "L", "Z", "'", "'", "/", "/", "!", ".",
      ",", "-", "$", "0", "1", "9", " ", " ", " ", "  ", "\n", "\r\n", "\t", "\xC2\xA0", "\xE3\x80\x80",
      "é", "É", "σ", "Σ", "ж", "Ж", "ǅ", "ʰ", "中", "文", "か", "ナ", "न", "्", "ा", "\xCC\x81", "\xE2\x83\x9D",
      "😀", "👍", "\xE2\x80\x8D", "٣", "Ⅻ", "½", "，"};
  std::vector<std::string> texts;
  uint64_t state = 12345;
  const auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int i = 0; i < count; ++i) {
    std::string t;
    const uint64_t len = 1 + next(i % 10 == 0 ? 200 : 24);
    for (uint64_t k = 0; k < len; ++k) t += pool[size_t(next(pool.size()))];
    texts.push_back(std::move(t));
  }
  return texts;
}

TEST(TokenizerPretokenizeO200k, MatchesTheRegexModuleOnGeneratedTexts) {
  if (std::system("/usr/bin/python3 -c 'import regex' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no `regex` module (Debian: python3-regex)";
  const std::string dir = ::testing::TempDir() + "/sinklab_o200k_" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
  const std::vector<std::string> texts = generated_texts(3000);
  std::ofstream(dir + "/regex.txt") << kO200kRegex;
  std::ofstream(dir + "/texts.json") << nlohmann::json(texts).dump();
  const std::string script = SINKLAB_SOURCE_DIR "/tests/unit/model/split_regex_reference.py";
  const std::string cmd = "/usr/bin/python3 '" + script + "' '" + dir + "/regex.txt' '" + dir + "/texts.json' '" +
                          dir + "/words.json'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir + "/words.json");
  const nlohmann::json expected = nlohmann::json::parse(in);
  ASSERT_EQ(expected.size(), texts.size());
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const Words want = expected[i].get<Words>();
    if (split(texts[i]) != want && ++mismatches <= 5) {
      ADD_FAILURE() << "text " << nlohmann::json(texts[i]).dump() << "\n  scanner: " << nlohmann::json(split(texts[i]))
                    << "\n  regex:   " << nlohmann::json(want);
    }
  }
  EXPECT_EQ(mismatches, 0);
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sinklab
