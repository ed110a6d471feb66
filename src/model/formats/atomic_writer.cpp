#include "model/formats/atomic_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "sinklab/core.h"

namespace sinklab::formats {

namespace {
constexpr size_t kBufferBytes = size_t(1) << 20;
std::string errno_text() { return std::strerror(errno); }
}  // namespace

AtomicWriter::AtomicWriter(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  fs::path dest(path);
  if (dest.filename().empty()) throw Error(path + ": not a file path");
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::string tmpl = dir.string();
  tmpl.append("/.");
  tmpl.append(dest.filename().string());
  tmpl.append(".tmp.XXXXXX");
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) throw Error(path + ": cannot create a temporary file in " + dir.string() + " (" + errno_text() + ")");
  tmp_path_ = name.data();
  buf_.reserve(kBufferBytes);
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

void AtomicWriter::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed (" + errno_text() + ")");
    }
    off += size_t(n);
  }
  buf_.clear();
}

void AtomicWriter::write(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  written_ += n;
  while (n > 0) {
    const size_t take = std::min(n, kBufferBytes - buf_.size());
    buf_.insert(buf_.end(), p, p + take);
    p += take;
    n -= take;
    if (buf_.size() == kBufferBytes) flush();
  }
}

void AtomicWriter::write_zeros(size_t n) {
  static const uint8_t zeros[256] = {};
  while (n > 0) {
    const size_t take = std::min(n, sizeof(zeros));
    write(zeros, take);
    n -= take;
  }
}

void AtomicWriter::commit() {
  flush();
  // mkstemp creates 0600; give the result the usual permissions.
  ::fchmod(fd_, 0644);
  if (::fsync(fd_) != 0) throw Error(path_ + ": fsync failed (" + errno_text() + ")");
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw Error(path_ + ": close failed (" + errno_text() + ")");
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": cannot rename the temporary file into place (" + errno_text() + ")");
  committed_ = true;
}

}  // namespace sinklab::formats
