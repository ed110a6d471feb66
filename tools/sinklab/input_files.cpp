// Input paths and text files (input_files.h).
#include "input_files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

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

}  // namespace sinklab::cli
