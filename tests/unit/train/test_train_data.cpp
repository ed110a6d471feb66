// The trainer's text loader: read and encoded in blocks, it gives the ids of
// the whole text, checks UTF-8 across block ends and names the byte at fault.
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "sinklab/tokenizer.h"
#include "sinklab/train.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

// One folder per test process: ctest runs these tests in parallel.
struct TextDir {
  fs::path dir = fs::path(testing::TempDir()) / ("train_data_test_" + std::to_string(::getpid()));
  TextDir() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TextDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream((dir / name).string(), std::ios::binary) << bytes;
    return (dir / name).string();
  }
};

// About 2.5 MiB of words whose first read block (1 MiB) ends inside "é".
std::string text_with_split_character() {
  const size_t block = size_t(1) << 20;
  std::string text;
  const char* words[] = {"the ", "café ", "naïve\n", "déjà vu ", "x "};
  for (size_t i = 0; text.size() < block - 8; ++i) text += words[i % 5];
  text += std::string(block - 1 - text.size(), 'a') + "é rest";
  EXPECT_EQ(text.substr(block - 1, 2), "é");
  for (size_t i = 0; text.size() < 5 * block / 2; ++i) text += words[i % 5];
  return text;
}

TEST(TrainData, BlockwiseEncodingEqualsWholeText) {
  TextDir d;
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  const std::string text = text_with_split_character();
  TrainOptions o;
  o.train_text = d.write("train.txt", text);
  o.valid_text = d.write("valid.txt", "a short valid text");
  o.out_dir = (d.dir / "out").string();
  const TokenData data = load_token_data(o, *tok);
  EXPECT_EQ(data.train, tok->encode(text, false));
  // The cached ids are read back the same.
  EXPECT_EQ(load_token_data(o, *tok).train, data.train);
}

TEST(TrainData, InvalidUtf8IsNamedByItsByteOffset) {
  TextDir d;
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  std::string text = text_with_split_character();
  const size_t bad = 3 * (size_t(1) << 19) + 1;  // 1.5 MiB + 1, in the second block
  text[bad] = char(0xFF);
  TrainOptions o;
  o.train_text = d.write("train.txt", text);
  o.out_dir = (d.dir / "out").string();
  try {
    load_token_data(o, *tok);
    FAIL() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at byte " + std::to_string(bad)), std::string::npos) << e.what();
  }
  // A character cut by the end of the file is invalid too.
  o.train_text = d.write("cut.txt", "abc \xC3");
  EXPECT_THROW(load_token_data(o, *tok), Error);
}

TEST(TrainData, FoldersAndFifosAreRefused) {
  TextDir d;
  const auto tok = load_tokenizer_json(SINKLAB_SOURCE_DIR "/models/default/tokenizer.json");
  TrainOptions o;
  o.out_dir = (d.dir / "out").string();
  o.train_text = d.dir.string();
  try {
    load_token_data(o, *tok);
    FAIL() << "a folder accepted as training text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  const std::string fifo = (d.dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  o.train_text = fifo;
  EXPECT_THROW(load_token_data(o, *tok), Error);  // refused at once, never a hang
}

}  // namespace
}  // namespace sinklab
