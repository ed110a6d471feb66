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

std::string read_text_file(const std::string& path, const std::string& what) {
  check_input_path(path, what);
  std::ifstream in(path, std::ios::binary);
  check(in.good(), what + " '" + path + "' cannot be opened");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(!in.bad(), what + " '" + path + "' could not be read to the end");
  return text;
}

namespace {

// Up to `bytes` bytes from the start of the file, cut back to a UTF-8 boundary
// when the file goes on; *whole is set when the file ended.
std::string read_prefix(const std::string& path, const std::string& what, int64_t bytes, bool* whole) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), what + " '" + path + "' cannot be opened");
  std::string text(size_t(bytes), '\0');
  in.read(text.data(), std::streamsize(bytes));
  text.resize(size_t(in.gcount()));
  check(!in.bad(), what + " '" + path + "' could not be read");
  *whole = in.eof() || in.peek() == std::char_traits<char>::eof();
  if (!*whole) {
    size_t cut = text.size();
    while (cut > 0 && (static_cast<unsigned char>(text[cut - 1]) & 0xC0) == 0x80) --cut;  // continuation bytes
    if (cut > 0 && static_cast<unsigned char>(text[cut - 1]) >= 0xC0) --cut;               // a lead byte
    text.resize(cut);
  }
  return text;
}

}  // namespace

std::vector<int32_t> read_first_tokens(const Tokenizer& tok, const std::string& path, const std::string& what,
                                       int64_t max_tokens, bool add_bos, bool require_utf8) {
  check_input_path(path, what);
  // Margin of tokens past the kept ones: the cut can only change the piece it falls in.
  constexpr int64_t kMargin = 64;
  int64_t bytes = max_tokens > 0 ? std::max<int64_t>(int64_t(1) << 16, (max_tokens + kMargin) * 16)
                                 : std::numeric_limits<int64_t>::max() / 2;
  for (;;) {
    bool whole = false;
    const std::string text =
        max_tokens > 0 ? read_prefix(path, what, bytes, &whole) : (whole = true, read_text_file(path, what));
    check(!whole || text.find_first_not_of(" \t\r\n") != std::string::npos,
          what + " '" + path + "' is empty (nothing but white space)");
    const int64_t bad = first_invalid_utf8(text);
    check(bad < 0 || !require_utf8,
          what + " '" + path + "' is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
    std::vector<int32_t> ids = tok.encode(text, add_bos);
    if (whole || int64_t(ids.size()) > max_tokens + kMargin) {
      if (max_tokens > 0 && int64_t(ids.size()) > max_tokens) ids.resize(size_t(max_tokens));
      return ids;
    }
    check(bytes < (int64_t(1) << 40), what + " '" + path + "': too few tokens in its first terabyte");
    bytes *= 4;
  }
}

}  // namespace sinklab::cli
