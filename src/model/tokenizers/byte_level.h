// The GPT-2 ByteLevel mapping: every byte is shown as a printable code point
// (printable Latin-1 bytes as themselves, the rest as U+0100 onwards).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sinklab::tok {

// UTF-8 text of the code point that stands for `byte`.
const std::string& byte_level_char(uint8_t byte);

// Maps raw bytes to their ByteLevel text.
std::string byte_level_encode(std::string_view bytes);

// Maps ByteLevel text back to raw bytes; false (out untouched) when some code
// point is not in the mapping.
bool byte_level_decode(std::string_view text, std::string& out);

}  // namespace sinklab::tok
