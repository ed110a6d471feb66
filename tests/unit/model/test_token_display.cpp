// token_display_text: tokens as a person reads them, not as the vocabulary stores them.
#include <gtest/gtest.h>

#include "assets.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

TEST(TokenDisplay, ByteLevelBpeShowsSpacesAndWholeCharacters) {
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  const std::string text = "It is a truth universally acknowledged, that a man\nin possession";
  std::string joined;
  for (int32_t id : tok->encode(text, false)) {
    const std::string shown = token_display_text(*tok, id);
    EXPECT_EQ(shown.find("\xC4\xA0"), std::string::npos) << shown;  // no "Ġ"
    EXPECT_EQ(shown.find("\xC4\x8A"), std::string::npos) << shown;  // no "Ċ"
    joined += shown;
  }
  EXPECT_EQ(joined, text);
  // One byte of a three-byte character is shown as that byte.
  const auto ids = tok->encode("\xE2\x80\x9C", false);  // a curly quote; maybe one token, maybe bytes
  std::string all;
  for (int32_t id : ids) all += token_display_text(*tok, id);
  EXPECT_TRUE(all == "\xE2\x80\x9C" || all.find("<0xE2>") != std::string::npos) << all;
  const int32_t special = tok->special_token_id("<|endoftext|>");
  if (special >= 0) {
    EXPECT_EQ(token_display_text(*tok, special), "<|endoftext|>");
  }
  EXPECT_THROW(token_display_text(*tok, tok->vocab_size()), Error);
}

TEST(TokenDisplay, SentencePieceShowsSpacesNotMetaspace) {
  if (!test::have_asset("models/stories260K/tok512.bin")) GTEST_SKIP() << "stories260K is absent";
  const auto tok = load_llama2c_tokenizer(test::asset("models/stories260K/tok512.bin"), 512);
  std::string joined;
  for (int32_t id : tok->encode("Once upon a time", false)) {
    const std::string shown = token_display_text(*tok, id);
    EXPECT_EQ(shown.find("\xE2\x96\x81"), std::string::npos) << shown;  // no "▁"
    joined += shown;
  }
  EXPECT_EQ(joined, " Once upon a time");  // the dummy-prefix space is part of the first piece
}

}  // namespace
}  // namespace sinklab
