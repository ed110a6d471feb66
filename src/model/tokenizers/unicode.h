// Unicode helpers for the tokenizers: general-category lookups (letters,
// numbers, cased letters, marks, white space) and a UTF-8 decoder that never fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sinklab::tok {

struct CodepointRange {
  uint32_t lo, hi;
};

extern const CodepointRange kLetterRanges[];
extern const size_t kLetterRanges_count;
extern const CodepointRange kNumberRanges[];
extern const size_t kNumberRanges_count;
extern const CodepointRange kUpperTitleRanges[];
extern const size_t kUpperTitleRanges_count;
extern const CodepointRange kLowercaseRanges[];
extern const size_t kLowercaseRanges_count;
extern const CodepointRange kMarkRanges[];
extern const size_t kMarkRanges_count;

// Marks a byte that is not part of a valid UTF-8 sequence; it belongs to no
// category (not a letter, number or space), like punctuation.
constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;

bool is_letter(uint32_t cp);      // \p{L}
bool is_number(uint32_t cp);      // \p{N}
bool is_whitespace(uint32_t cp);  // \s (Unicode White_Space)
bool is_upper_or_title(uint32_t cp);  // \p{Lu} or \p{Lt}
bool is_lowercase(uint32_t cp);       // \p{Ll}
bool is_mark(uint32_t cp);            // \p{M}

// Decodes one code point at text[pos]. Returns its byte length (1..4) and
// sets cp; an invalid or truncated sequence yields length 1 and
// kInvalidCodepoint, so any byte string can be walked.
size_t utf8_next(std::string_view text, size_t pos, uint32_t& cp);

// Length of the valid UTF-8 sequence starting at text[pos]: 1..4 when
// complete, 0 when the bytes so far are a valid but incomplete prefix that
// reaches the end of `text`, -1 (as a negative) when invalid; for invalid
// input `invalid_len` is set to the length of the maximal invalid subpart.
int utf8_sequence_status(std::string_view text, size_t pos, size_t& invalid_len);

void append_utf8(std::string& out, uint32_t cp);

}  // namespace sinklab::tok
