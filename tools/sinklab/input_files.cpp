// Input paths and text files (input_files.h).
#include "input_files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <iterator>
#include <limits>

#include "sinklab/core.h"

namespace sinklab::cli {

void check_input_path(const std::string& path, const std::string& what, bool folder_ok) {
  check(!path.empty(), what + ": no path given");
  check(path.find('\0') == std::string::npos, what + " '" + path + "' contains a NUL character");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ELOOP) throw Error(what + " '" + path + "' is a loop of symbolic links");
    if (err == ENOENT || err == ENOTDIR) throw Error(what + " '" + path + "' does not exist");
    throw Error(what + " '" + path + "' cannot be read (" + std::strerror(err) + ")");
  }
  if (S_ISDIR(st.st_mode)) {
    check(folder_ok, what + " '" + path + "' is a directory, not a file");
    return;
  }
  check(!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode),
        what + " '" + path + "' is a FIFO or socket; sinklab reads regular files (write the data to a file first)");
  check(!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode),
        what + " '" + path + "' is a device; sinklab reads regular files");
}

std::vector<int32_t> read_first_tokens(const Tokenizer& tok, const std::string& path, const std::string& what,
                                       int64_t max_tokens, bool add_bos, bool require_utf8) {
  check_input_path(path, what);
  TextFileEncoding how;
  how.max_tokens = max_tokens;
  how.add_bos = add_bos;
  how.require_utf8 = require_utf8;
  how.what = what;
  EncodedTextFile text = encode_text_file(tok, path, how);
  check(!text.blank, what + " '" + path + "' is empty (nothing but white space)");
  return std::move(text.ids);
}

}  // namespace sinklab::cli
