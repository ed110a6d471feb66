// StreamDecoder: text comes out only when a UTF-8 sequence is complete.
#include <gtest/gtest.h>

#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

// A byte-level tokenizer (byte b = id b) built from the llama2.c format:
// pieces 0..2 are specials, 3..258 byte pieces, so byte b is id 3 + b.
std::unique_ptr<Tokenizer> byte_tokenizer() {
  std::string bin;
  const auto put_i32 = [&](int32_t v) { bin.append(reinterpret_cast<const char*>(&v), 4); };
  const auto put_token = [&](const std::string& s) {
    put_i32(0);  // score 0.0f has the same bits as integer 0
    put_i32(static_cast<int32_t>(s.size()));
    bin += s;
  };
  put_i32(8);
  put_token("<unk>");
  put_token("\n<s>\n");
  put_token("\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    put_token(name);
  }
  put_token(" ");
  put_token("ab");
  const std::vector<uint8_t> bytes(bin.begin(), bin.end());
  return llama2c_tokenizer_from_bytes(bytes, 261, "stream.bin");
}

int32_t byte(uint8_t b) { return 3 + b; }

TEST(TokenizerStream, EmojiSplitAcrossFourTokens) {
  auto tok = byte_tokenizer();
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(byte(0xF0)), "");
  EXPECT_EQ(stream.push(byte(0x9F)), "");
  EXPECT_EQ(stream.push(byte(0x98)), "");
  EXPECT_EQ(stream.push(byte(0x80)), "😀");
  EXPECT_EQ(stream.push(260), "ab");
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, MixedTextAndPartialSequences) {
  auto tok = byte_tokenizer();
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(260), "ab");
  EXPECT_EQ(stream.push(byte(0xC3)), "");
  EXPECT_EQ(stream.push(byte(0xA9)), "é");
  EXPECT_EQ(stream.push(byte(0xE4)), "");
  EXPECT_EQ(stream.push(byte(0xBD)), "");
  // A dangling partial sequence at the end becomes one U+FFFD.
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST(TokenizerStream, ImpossibleBytesBecomeReplacementAtOnce) {
  auto tok = byte_tokenizer();
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(byte(0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.push(byte(0xE4)), "");
  // 'a' cannot continue E4: the lead becomes U+FFFD and 'a' passes through.
  EXPECT_EQ(stream.push(byte('a')), "\xEF\xBF\xBD" "a");
  // Overlong and surrogate encodings are invalid from their second byte.
  EXPECT_EQ(stream.push(byte(0xE0)), "");
  EXPECT_EQ(stream.push(byte(0x80)), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(stream.push(byte(0xED)), "");
  EXPECT_EQ(stream.push(byte(0xA0)), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, MatchesDecodeForValidText) {
  auto tok = byte_tokenizer();
  const std::string text = "Grüße, Ελλάδα! 東京 😀👍🏽 नमस्ते";
  const auto ids = tok->encode(text, true);
  StreamDecoder stream(*tok);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    streamed += piece;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(TokenizerStream, ResetAndBadIds) {
  auto tok = byte_tokenizer();
  StreamDecoder stream(*tok);
  EXPECT_EQ(stream.push(byte(0xF0)), "");
  stream.reset();
  EXPECT_EQ(stream.flush(), "");
  EXPECT_THROW(stream.push(261), Error);
  EXPECT_THROW(stream.push(-1), Error);
  // Special tokens are dropped, or shown when asked.
  StreamDecoder with_specials(*tok, false);
  EXPECT_EQ(with_specials.push(1), "\n<s>\n");
}

}  // namespace
}  // namespace sinklab

TEST(TokenizerUtf8, FirstInvalidByte) {
  EXPECT_EQ(sinklab::first_invalid_utf8("plain ascii"), -1);
  EXPECT_EQ(sinklab::first_invalid_utf8("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80"), -1);  // été 😀
  EXPECT_EQ(sinklab::first_invalid_utf8("ab\xFF"), 2);
  EXPECT_EQ(sinklab::first_invalid_utf8("a\xC0\xAF"), 1);           // overlong '/'
  EXPECT_EQ(sinklab::first_invalid_utf8("x\xED\xA0\x80"), 1);       // surrogate
  EXPECT_EQ(sinklab::first_invalid_utf8("ok\xE2\x82"), 2);          // truncated
}
