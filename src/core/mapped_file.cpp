#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "sinklab/core.h"

namespace sinklab {

void check_regular_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw Error(what + " " + path + ": not a regular file (" +
                (S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket") + ")");
}

void read_file_blocks(const std::string& path, const std::string& what, size_t block_bytes,
                      const std::function<bool(std::string_view)>& fn) {
  check_regular_file(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what + " " + path + ": cannot open");
  std::string block(block_bytes, '\0');
  for (;;) {
    in.read(block.data(), std::streamsize(block_bytes));
    if (in.bad()) throw Error(what + " " + path + ": read error");
    const size_t got = size_t(in.gcount());
    if (got > 0 && !fn(std::string_view(block.data(), got))) return;
    if (got < block_bytes) return;
  }
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw Error(path + ": mmap failed (" + std::strerror(e) + ")");
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace sinklab
