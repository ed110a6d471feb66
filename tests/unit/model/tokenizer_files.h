// The hand-made tokenizer.json files of the tests (tests/data/tokenizers/).
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace sinklab::test {

inline const std::string kTokenizerDataDir = SINKLAB_SOURCE_DIR "/tests/data/tokenizers/";

inline nlohmann::json read_tokenizer_json(const std::string& name) {
  std::ifstream in(kTokenizerDataDir + name);
  return nlohmann::json::parse(in);
}

}  // namespace sinklab::test
