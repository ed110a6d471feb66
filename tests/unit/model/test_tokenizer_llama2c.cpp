// llama2.c tokenizer.bin: hand-checked merges on a tiny vocabulary, the real
// stories260K tok512.bin against llama2.c's golden output, hostile files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

std::string assets_dir() {
  const char* env = std::getenv("SINKLAB_ASSETS");
  return env && *env ? env : SINKLAB_SOURCE_DIR "/../shared/assets";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes a llama2.c tokenizer.bin image.
struct BinWriter {
  std::vector<uint8_t> bytes;
  void i32(int32_t v) { append(&v, 4); }
  void f32(float v) { append(&v, 4); }
  void append(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void token(float score, const std::string& piece) {
    f32(score);
    i32(static_cast<int32_t>(piece.size()));
    append(piece.data(), piece.size());
  }
};

// <unk>, BOS, EOS, 256 byte pieces, then the given pieces.
std::vector<uint8_t> tiny_vocab(const std::vector<std::pair<std::string, float>>& extra) {
  BinWriter w;
  w.i32(8);
  w.token(0, "<unk>");
  w.token(0, "\n<s>\n");
  w.token(0, "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    w.token(0, name);
  }
  for (const auto& [piece, score] : extra) w.token(score, piece);
  return w.bytes;
}

constexpr int32_t kSpace = 259, kB = 261, kC = 262, kAB = 263, kBC = 264, kSpaceA = 265,
                  kABC = 266;

std::unique_ptr<Tokenizer> tiny() {
  const auto bytes = tiny_vocab({{" ", -1000}, {"a", -1000}, {"b", -1000}, {"c", -1000},
                                 {"ab", -1}, {"bc", -0.5f}, {" a", -2}, {"abc", -3}});
  return llama2c_tokenizer_from_bytes(bytes, 267, "tiny.bin");
}

TEST(TokenizerLlama2c, MergesFollowScoresNotPosition) {
  auto tok = tiny();
  // [" ", a, b, c]: "bc" (-0.5) beats "ab" (-1) and " a" (-2); then " a"
  // (-2) beats "abc" (-3); " abc" is not a token.
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{kSpaceA, kBC}));
  EXPECT_EQ(tok->encode("abc", true), (std::vector<int32_t>{1, kSpaceA, kBC}));
  // [" ", b, a, b, c]: "bc" first; then "abc" (-3) is the only merge left
  // (" b" and "ba" are not tokens).
  EXPECT_EQ(tok->encode("babc", false), (std::vector<int32_t>{kSpace, kB, kABC}));
  EXPECT_EQ(tok->decode(tok->encode("babc", false)), "babc");
  // [" ", a, b]: "ab" (-1) beats " a" (-2).
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{kSpace, kAB}));
  EXPECT_EQ(tok->encode("c", false), (std::vector<int32_t>{kSpace, kC}));
  EXPECT_EQ(tok->encode("a", false), (std::vector<int32_t>{kSpaceA}));
}

TEST(TokenizerLlama2c, EmptyTextHasNoDummyPrefix) {
  auto tok = tiny();
  EXPECT_TRUE(tok->encode("", false).empty());
  EXPECT_EQ(tok->encode("", true), std::vector<int32_t>{1});
}

TEST(TokenizerLlama2c, ByteFallbackAndInvalidUtf8) {
  auto tok = tiny();
  // "é" is not a piece: its two bytes become <0xC3> <0xA9> (ids 3 + byte).
  EXPECT_EQ(tok->encode("é", false), (std::vector<int32_t>{kSpace, 3 + 0xC3, 3 + 0xA9}));
  const std::string invalid = "a\xff\xc3(b\x80";
  const auto ids = tok->encode(invalid, false);
  EXPECT_EQ(tok->decode(ids), invalid);
}

TEST(TokenizerLlama2c, DecodeStripsSpaceOnlyAfterBos) {
  auto tok = tiny();
  EXPECT_EQ(tok->decode(std::vector<int32_t>{kSpaceA, kSpaceA}), "a a");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, kSpaceA, 2, kSpaceA}), "a a");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, kSpaceA, 1, kSpaceA}), "aa");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, kSpaceA}, false), "\n<s>\na");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{3 + 'Z', 3 + '\n'}), "Z\n");
  EXPECT_THROW(tok->decode(std::vector<int32_t>{267}), Error);
  EXPECT_THROW(tok->decode(std::vector<int32_t>{-1}), Error);
}

TEST(TokenizerLlama2c, SpecialTokens) {
  auto tok = tiny();
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->special_token_id("<s>"), 1);
  EXPECT_EQ(tok->special_token_id("</s>"), 2);
  EXPECT_EQ(tok->special_token_id("<0x00>"), -1);
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_FALSE(tok->is_special(kSpaceA));
  EXPECT_EQ(tok->token_text(kSpaceA), " a");
  EXPECT_EQ(tok->vocab_size(), 267);
}

void expect_error(const std::vector<uint8_t>& bytes, int32_t vocab, const std::string& needle) {
  try {
    llama2c_tokenizer_from_bytes(bytes, vocab, "bad.bin");
    FAIL() << "expected an Error mentioning " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.bin"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(TokenizerLlama2c, HostileFiles) {
  const auto good = tiny_vocab({{" ", 0}});
  expect_error({}, 260, "max_token_length");
  expect_error(std::vector<uint8_t>(good.begin(), good.begin() + 2), 260, "max_token_length");
  expect_error(std::vector<uint8_t>(good.begin(), good.end() - 1), 260, "past the end");
  expect_error(good, 261, "token 260");
  expect_error(good, 0, "vocab size");
  expect_error(good, -5, "vocab size");
  BinWriter negative;
  negative.i32(-1);
  expect_error(negative.bytes, 1, "negative max_token_length");
  BinWriter neg_len;
  neg_len.i32(4);
  neg_len.f32(0);
  neg_len.i32(-7);
  expect_error(neg_len.bytes, 1, "negative length");
  BinWriter huge;
  huge.i32(4);
  huge.f32(0);
  huge.i32(0x7fffffff);
  huge.append("abc", 3);
  expect_error(huge.bytes, 1, "past the end");
  EXPECT_NO_THROW(llama2c_tokenizer_from_bytes(good, 260, "good.bin"));
}

TEST(TokenizerLlama2c, MissingFileNamesPath) {
  try {
    load_llama2c_tokenizer("/nonexistent/tok.bin", 512);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tok.bin"), std::string::npos);
  }
}

TEST(TokenizerLlama2c, TruncatedFileOnDiskNamesPath) {
  const auto bytes = tiny_vocab({{" ", 0}});
  const std::string path =
      (std::filesystem::temp_directory_path() / "sinklab_test_truncated_tok.bin").string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() / 2));
  }
  try {
    load_llama2c_tokenizer(path, 260);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = assets_dir();
    if (!std::filesystem::exists(dir_ + "/models/stories260K/tok512.bin"))
      GTEST_SKIP() << "stories260K assets not found under " << dir_
                   << " (set SINKLAB_ASSETS to the shared assets folder)";
    tok_ = load_llama2c_tokenizer(dir_ + "/models/stories260K/tok512.bin", 512);
  }
  std::string dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Stories260K, GoldenGreedyDecode) {
  std::ifstream in(dir_ + "/golden/stories260K_greedy200_ids.txt");
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  ASSERT_EQ(ids.size(), 200u);
  const std::string expected = read_file(dir_ + "/golden/stories260K_greedy200_expected.txt");
  ASSERT_FALSE(expected.empty());
  // The ids follow an implicit BOS (generation starts from it).
  EXPECT_EQ(tok_->decode(ids), expected);
  std::vector<int32_t> with_bos{1};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  EXPECT_EQ(tok_->decode(with_bos), expected);

  // The greedy output happens to be the canonical encoding of its text, so
  // encoding the text reproduces the ids exactly.
  EXPECT_EQ(tok_->encode(expected, false), ids);

  // Streaming gives the same text.
  StreamDecoder stream(*tok_);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  EXPECT_EQ(streamed, expected);
}

TEST_F(Stories260K, EncodeRoundTrips) {
  const std::string text = read_file(dir_ + "/golden/stories260K_greedy200_expected.txt");
  const auto ids = tok_->encode(text, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_LT(ids.size(), 260u);  // merges happened: far fewer tokens than bytes
  EXPECT_EQ(tok_->decode(ids), text);
  // The first words are single pieces: " Once" 403, " upon" 407, " a" 261.
  const auto head = tok_->encode("Once upon a", false);
  EXPECT_EQ(head, (std::vector<int32_t>{403, 407, 261}));
}

TEST_F(Stories260K, LongTextRoundTrips) {
  const std::string path = dir_ + "/text/tinystories_valid_excerpt.txt";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  const std::string text = read_file(path);
  const auto ids = tok_->encode(text, true);
  EXPECT_LT(ids.size(), text.size());  // merges happened (about 2 bytes per token at vocab 512)
  EXPECT_EQ(tok_->decode(ids), text);
}

TEST_F(Stories260K, MultilingualAndInvalidBytesRoundTrip) {
  const std::vector<std::string> texts = {
      "Hello, world!",     "Ça déjà vu, naïve façade", "Καλημέρα κόσμε",
      "Привет, мир",       "你好，世界",               "こんにちは世界",
      "مرحبا بالعالم",     "नमस्ते दुनिया",           "emoji 😀👍🏽 done",
      "tab\tnew\nline  ", std::string("bad \xff\xfe bytes \xc3"), std::string("nul\0byte", 8)};
  for (const auto& text : texts) {
    const auto ids = tok_->encode(text, true);
    EXPECT_EQ(tok_->decode(ids), text) << text;
  }
}

}  // namespace
}  // namespace sinklab
