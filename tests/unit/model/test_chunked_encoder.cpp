// Encoding a text in pieces (ChunkedEncoder) gives the ids of the whole text
// on real tokenizers, and BPE training from a file equals training on the text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "assets.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Feeds `text` in uneven pieces through a small chunk size.
std::vector<int32_t> encode_in_pieces(const Tokenizer& tok, const std::string& text, size_t chunk) {
  ChunkedEncoder enc(tok, chunk);
  std::vector<int32_t> ids;
  std::mt19937 rng(7);
  for (size_t at = 0; at < text.size();) {
    const size_t n = std::min(text.size() - at, size_t(1 + rng() % 3000));
    enc.feed(std::string_view(text).substr(at, n), ids);
    EXPECT_LT(enc.buffered_bytes(), 16 * chunk + 3000);
    at += n;
  }
  enc.finish(ids);
  return ids;
}

std::string book_text(size_t bytes) {
  const std::string path = test::asset("text/frankenstein.txt");
  if (!std::filesystem::exists(path)) return "";
  return read_all(path).substr(0, bytes);
}

TEST(ChunkedEncoder, ByteLevelBpeMatchesWholeText) {
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  std::string text = book_text(120000);
  if (text.empty()) GTEST_SKIP() << "shared/assets/text/frankenstein.txt is absent";
  text += "\n\n  indented\u3000 wide\u00a0space\ttab\r\nend \n";
  const auto whole = tok->encode(text, false);
  for (size_t chunk : {1024, 4096, 65536}) EXPECT_EQ(encode_in_pieces(*tok, text, chunk), whole) << chunk;
}

TEST(ChunkedEncoder, Llama2cDummyPrefixMatchesWholeText) {
  if (!test::have_asset("models/stories260K/tok512.bin")) GTEST_SKIP() << "stories260K is absent";
  const auto tok = load_llama2c_tokenizer(test::asset("models/stories260K/tok512.bin"), 512);
  std::string text = book_text(60000);
  if (text.empty()) GTEST_SKIP() << "shared/assets/text/frankenstein.txt is absent";
  const auto whole = tok->encode(text, false);
  EXPECT_EQ(encode_in_pieces(*tok, text, 1024), whole);
}

// A Llama-2 style SentencePiece tokenizer.json: Prepend + Replace normalizer.
TEST(ChunkedEncoder, SentencePieceJsonMatchesWholeText) {
  const std::string json =
      R"({"model":{"type":"BPE","unk_token":"<unk>","byte_fallback":false,)"
      R"("vocab":{"<unk>":0,"▁":1,"a":2,"b":3,"c":4,"▁a":5,"▁b":6,"ab":7,"▁ab":8,"bc":9},)"
      R"("merges":["▁ a","▁ b","a b","▁ ab","b c"]},)"
      R"("normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},)"
      R"({"type":"Replace","pattern":{"String":" "},"content":"▁"}]}})";
  const auto tok = tokenizer_from_json_string(json);
  std::mt19937 rng(3);
  std::string text;
  while (text.size() < 40000) {
    const int len = 1 + int(rng() % 6);
    for (int i = 0; i < len; ++i) text += char('a' + rng() % 3);
    text += rng() % 9 == 0 ? "\n" : " ";
  }
  EXPECT_EQ(encode_in_pieces(*tok, text, 1024), tok->encode(text, false));
}

TEST(ChunkedEncoder, TextWithoutSpacesIsCutAndKeepsItsBytes) {
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  const std::string text(100000, 'a');
  const auto ids = encode_in_pieces(*tok, text, 1024);
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(ChunkedEncoder, LastWordCut) {
  EXPECT_EQ(last_word_cut("ab cd", 0, 5), 2u);
  EXPECT_EQ(last_word_cut("ab  cd", 0, 6), std::string_view::npos);  // a space run is one word
  EXPECT_EQ(last_word_cut("ab\ncd", 0, 5), 3u);                      // after the newline
  EXPECT_EQ(last_word_cut("ab\u3000 cd", 0, 9), std::string_view::npos);  // ideographic space before
  EXPECT_EQ(last_word_cut("ab cd ef", 0, 5), 2u);
}

TEST(EncodeTextFile, MaxTokensReadsOnlyWhatItNeedsAndKeepsWholeTextIds) {
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  std::string text = book_text(400000);
  if (text.empty()) GTEST_SKIP() << "shared/assets/text/frankenstein.txt is absent";
  while (text.size() < (size_t(4) << 20)) text += text.substr(0, 400000);  // 4 MiB
  const std::string path = testing::TempDir() + "/encode_text_file.txt";
  std::ofstream(path, std::ios::binary) << text;
  const auto whole = tok->encode(text, true);
  TextFileEncoding how;
  how.add_bos = true;
  const EncodedTextFile all = encode_text_file(*tok, path, how);
  EXPECT_EQ(all.ids, whole);
  EXPECT_EQ(all.bytes_read, int64_t(text.size()));
  EXPECT_FALSE(all.blank);
  how.max_tokens = 1000;
  const EncodedTextFile first = encode_text_file(*tok, path, how);
  EXPECT_EQ(first.ids, std::vector<int32_t>(whole.begin(), whole.begin() + 1000));
  EXPECT_LE(first.bytes_read, int64_t(3) << 20) << "read more blocks than 1000 tokens need";
  std::filesystem::remove(path);
}

TEST(Utf8StreamCheck, FindsTheFirstBadByteAcrossBlocks) {
  const std::string text = "ab\xC3\xA9" "cd\xE2\x82\xAC e";  // é and € cut by every block split
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8StreamCheck c;
    EXPECT_EQ(c.feed(std::string_view(text).substr(0, cut)), -1) << cut;
    EXPECT_EQ(c.feed(std::string_view(text).substr(cut)), -1) << cut;
    EXPECT_EQ(c.finish(), -1) << cut;
  }
  Utf8StreamCheck bad;
  EXPECT_EQ(bad.feed("abc"), -1);
  EXPECT_EQ(bad.feed("d\xFF"), 4);
  Utf8StreamCheck cut_at_end;
  EXPECT_EQ(cut_at_end.feed("ab\xE2\x82"), -1);
  EXPECT_EQ(cut_at_end.finish(), 2);
}

TEST(BpeTraining, FromFileEqualsFromText) {
  // More than two read blocks, with a special token that holds a space (a
  // word cut inside it would split it) and multi-byte letters everywhere.
  std::mt19937 rng(11);
  const std::vector<std::string> words = {"the", "cat", "sat", "über", "naïve", "mat", "on", "日本", "x1", "--"};
  const std::string special = "<|end of text|>";
  std::string text;
  auto add_words = [&](size_t until) {
    while (text.size() < until) {
      text += words[rng() % words.size()];
      const unsigned r = rng() % 23;
      text += r == 0 ? special : r == 1 ? "\n" : " ";
    }
  };
  // At the end of the first read block the last word cut is inside the special.
  const size_t block = size_t(1) << 20, pad = 5;
  add_words(block - special.size() - pad - 20);
  text += std::string(block - special.size() - pad - text.size(), 'y') + special + std::string(pad, ' ');
  ASSERT_EQ(text.size(), block);
  // At the end of the second, the last newline is followed by a slash: "~~\n//" is one
  // o200k word, so that newline is no cut.
  add_words(2 * block - 40);
  text += "~~\n//" + std::string(2 * block - 5 - text.size(), 'y');
  ASSERT_EQ(text.size(), 2 * block);
  add_words(2'600'000);
  const std::string path = testing::TempDir() + "/bpe_from_file.txt";
  std::ofstream(path, std::ios::binary) << text;
  BpeTrainOptions opts;
  opts.vocab_size = 5000;  // merges every pair: a word miscounted at a cut changes the vocabulary
  opts.min_pair_count = 1;
  opts.special_tokens = {"<|end of text|>"};
  for (auto pattern : {PretokenizerPattern::Gpt2, PretokenizerPattern::O200k}) {
    opts.pattern = pattern;
    EXPECT_EQ(train_bpe_tokenizer_json_from_file(path, opts), train_bpe_tokenizer_json(text, opts)) << int(pattern);
  }
  std::filesystem::remove(path);
  EXPECT_THROW(train_bpe_tokenizer_json_from_file(testing::TempDir(), opts), Error);  // a folder
}

}  // namespace
}  // namespace sinklab
