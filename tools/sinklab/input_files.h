// Files a command reads: one clear message for what is wrong with a path
// (missing, a symlink loop, a folder where a file is wanted, a FIFO or device
// that would hang or never end), and text files read in full only when they
// are regular files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sinklab/tokenizer.h"

namespace sinklab::cli {

// Throws Error "<what> '<path>' <problem>" unless the path names an existing
// regular file (or, with folder_ok, a folder).
void check_input_path(const std::string& path, const std::string& what, bool folder_ok = false);

// The first `max_tokens` token ids of a text file (all of them when
// max_tokens <= 0), read and encoded in blocks (encode_text_file): only the
// blocks those ids need are read, and the ids are those of the whole text. Throws Error for an empty text
// or (with require_utf8) one that is not valid UTF-8, naming `what`.
std::vector<int32_t> read_first_tokens(const Tokenizer& tok, const std::string& path, const std::string& what,
                                       int64_t max_tokens, bool add_bos, bool require_utf8 = true);

}  // namespace sinklab::cli
