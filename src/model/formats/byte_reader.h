// Bounds-checked little-endian reading and overflow-checked size arithmetic
// shared by the checkpoint parsers.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "sinklab/core.h"

namespace sinklab::formats {

// a * b, throwing Error(what + ": size overflows") on overflow.
inline uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(what + ": size overflows 64 bits");
  return r;
}
inline uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Error(what + ": size overflows 64 bits");
  return r;
}
// Product of dims (each >= 0) as int64, throwing on negative dims or overflow.
int64_t checked_numel(const int64_t* dims, size_t n, const std::string& what);

// Sequential reader over [data, data + size). Every read checks the remaining
// length first and throws Error naming the source and the field.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string source)
      : data_(data), size_(size), source_(std::move(source)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& source() const { return source_; }
  const uint8_t* data() const { return data_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      throw Error(source_ + ": truncated while reading " + what + " at offset " +
                  std::to_string(pos_) + " (need " + std::to_string(n) + " bytes, " +
                  std::to_string(remaining()) + " left)");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes(uint64_t n, const char* what) {
    need(n, what);
    std::string_view v(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return v;
  }
  void skip(uint64_t n, const char* what) {
    need(n, what);
    pos_ += size_t(n);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string source_;
};

}  // namespace sinklab::formats
