// Fuzzes the --meta reader (per-token cache metadata rows, CSV or JSON).
// Reading may fail with sinklab::Error; anything else is a bug, and the rows
// it returns must have rounds that never decrease.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "sinklab/cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int64_t group : {int64_t(0), int64_t(3)}) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
      const auto rows = sinklab::parse_token_meta(in, "fuzz.meta", group);
      for (size_t i = 1; i < rows.size(); ++i)
        if (rows[i].round < rows[i - 1].round || rows[i].index != int64_t(i)) std::abort();
    } catch (const sinklab::Error&) {
    }
  }
  return 0;
}
