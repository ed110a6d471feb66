#include "unicode.h"

#include <algorithm>

namespace sinklab::tok {
namespace {

bool in_ranges(const CodepointRange* ranges, size_t count, uint32_t cp) {
  const CodepointRange* end = ranges + count;
  const CodepointRange* it = std::upper_bound(
      ranges, end, cp, [](uint32_t v, const CodepointRange& r) { return v < r.lo; });
  if (it == ranges) return false;
  --it;
  return cp <= it->hi;
}

// Allowed range of the second byte for each lead byte (RFC 3629 table).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}

size_t expected_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;  // continuation byte, C0, C1, F5..FF
}

}  // namespace

bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return cp != kInvalidCodepoint && in_ranges(kLetterRanges, kLetterRanges_count, cp);
}

bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return cp != kInvalidCodepoint && in_ranges(kNumberRanges, kNumberRanges_count, cp);
}

bool is_upper_or_title(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  return cp != kInvalidCodepoint && in_ranges(kUpperTitleRanges, kUpperTitleRanges_count, cp);
}

bool is_lowercase(uint32_t cp) {
  if (cp < 0x80) return cp >= 'a' && cp <= 'z';
  return cp != kInvalidCodepoint && in_ranges(kLowercaseRanges, kLowercaseRanges_count, cp);
}

bool is_mark(uint32_t cp) {
  return cp >= 0x300 && cp != kInvalidCodepoint && in_ranges(kMarkRanges, kMarkRanges_count, cp);
}

bool is_whitespace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

int utf8_sequence_status(std::string_view text, size_t pos, size_t& invalid_len) {
  const auto lead = static_cast<uint8_t>(text[pos]);
  const size_t n = expected_length(lead);
  invalid_len = 1;
  if (n == 0) return -1;
  for (size_t k = 1; k < n; ++k) {
    if (pos + k >= text.size()) return 0;
    const auto b = static_cast<uint8_t>(text[pos + k]);
    const bool ok = k == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      invalid_len = k;
      return -1;
    }
  }
  return static_cast<int>(n);
}

size_t utf8_next(std::string_view text, size_t pos, uint32_t& cp) {
  size_t invalid_len = 0;
  const int n = utf8_sequence_status(text, pos, invalid_len);
  if (n <= 0) {
    cp = kInvalidCodepoint;
    return 1;
  }
  const auto* s = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  switch (n) {
    case 1: cp = s[0]; break;
    case 2: cp = (uint32_t(s[0] & 0x1F) << 6) | (s[1] & 0x3F); break;
    case 3: cp = (uint32_t(s[0] & 0x0F) << 12) | (uint32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F); break;
    default:
      cp = (uint32_t(s[0] & 0x07) << 18) | (uint32_t(s[1] & 0x3F) << 12) |
           (uint32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
  }
  return static_cast<size_t>(n);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace sinklab::tok
