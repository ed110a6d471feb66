// The --meta reader: CSV and JSON rows, rounds from the file or from the group
// size, and one clear error per bad row.
#include <gtest/gtest.h>

#include <sstream>

#include "sinklab/cache.h"

using namespace sinklab;

namespace {

std::vector<TokenMeta> parse(const std::string& text, int64_t group = 0) {
  std::istringstream in(text);
  return parse_token_meta(in, "m.csv", group);
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TokenMetaFile, CsvAndJsonRows) {
  const auto rows = parse("text\n# note\n\nvision,2\n{\"modality\": \"audio\", \"chunk\": 3}\n1\n");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].modality, uint8_t(Modality::Text));
  EXPECT_EQ(rows[1].modality, uint8_t(Modality::Vision));
  EXPECT_EQ(rows[1].round, 2);
  EXPECT_EQ(rows[2].modality, uint8_t(Modality::Audio));
  EXPECT_EQ(rows[2].round, 3);
  EXPECT_EQ(rows[3].round, 3) << "a row without a round keeps the previous one";
  EXPECT_EQ(rows[3].index, 3);
  const auto grouped = parse("text\ntext\ntext\ntext\n", 2);
  EXPECT_EQ(grouped[3].round, 1) << "index / group size";
}

TEST(TokenMetaFile, BadRowsNameTheLine) {
  EXPECT_NE(error_of("text\nsmell\n").find("m.csv line 2: modality must be"), std::string::npos);
  EXPECT_NE(error_of("text,5\ntext,4\n").find("line 2: round 4 is below"), std::string::npos);
  EXPECT_NE(error_of("text,x\n").find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of("{\"modality\": \"text\", \"extra\": 1}\n").find("unknown key 'extra'"), std::string::npos);
  EXPECT_NE(error_of("{\"round\": 99999999999}\n").find("round must be in"), std::string::npos);
  EXPECT_NE(error_of("{\"modality\": " + std::string(1000, '[') + "\n").find("nested deeper"), std::string::npos);
}

}  // namespace
