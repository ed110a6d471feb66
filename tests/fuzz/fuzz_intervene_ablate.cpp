// Fuzzes the --ablate / ablate= spec parser: each input line is one spec.
// Parsing may fail with sinklab::Error; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "sinklab/intervene.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  std::vector<std::string> specs;
  while (std::getline(in, line) && specs.size() < 16) {
    specs.push_back(line);
    try {
      (void)sinklab::parse_intervention(line);
    } catch (const sinklab::Error&) {
    }
  }
  try {
    (void)sinklab::parse_interventions(specs);
  } catch (const sinklab::Error&) {
  }
  return 0;
}
