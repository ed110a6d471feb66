// Files a command reads: one clear message for what is wrong with a path
// (missing, a symlink loop, a folder where a file is wanted, a FIFO or device
// that would hang or never end), and text files read in full only when they
// are regular files.
#pragma once

#include <string>

namespace sinklab::cli {

// Throws Error "<what> '<path>' <problem>" unless the path names an existing
// regular file (or, with folder_ok, a folder).
void check_input_path(const std::string& path, const std::string& what, bool folder_ok = false);

// The bytes of a regular text file (checked as above).
std::string read_text_file(const std::string& path, const std::string& what);

}  // namespace sinklab::cli
