// Writes a file through a temporary sibling that is renamed into place on
// commit(), so readers never see (and failures never leave) a partial file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sinklab::formats {

class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path);  // throws Error naming path
  ~AtomicWriter();                                  // removes the temp file unless committed
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  template <typename T>
  void put(T v) {
    write(&v, sizeof(T));
  }
  uint64_t written() const { return written_; }
  // Flushes, fsyncs and renames the temporary file onto the destination.
  void commit();

 private:
  void flush();
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace sinklab::formats
