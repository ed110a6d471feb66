#include "byte_level.h"

#include <array>

#include "unicode.h"

namespace sinklab::tok {
namespace {

struct ByteLevelTables {
  std::array<std::string, 256> to_text;
  std::array<int16_t, 324> from_cp;  // code points used are < 0x144

  ByteLevelTables() {
    from_cp.fill(-1);
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? b : 256 + extra++;
      append_utf8(to_text[b], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

const std::string& byte_level_char(uint8_t byte) { return tables().to_text[byte]; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) out += tables().to_text[static_cast<uint8_t>(ch)];
  return out;
}

bool byte_level_decode(std::string_view text, std::string& out) {
  const auto& t = tables();
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    pos += utf8_next(text, pos, cp);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return false;
    bytes += static_cast<char>(t.from_cp[cp]);
  }
  out += bytes;
  return true;
}

}  // namespace sinklab::tok
