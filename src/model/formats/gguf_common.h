// Constants shared by the GGUF reader and writer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sinklab/formats.h"

namespace sinklab::formats {

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr uint64_t kGgufMaxAlignment = uint64_t(1) << 20;
constexpr uint32_t kGgufMaxDims = 4;             // GGML_MAX_DIMS
constexpr uint64_t kGgufMaxNameBytes = 1 << 16;  // keys and tensor names
constexpr int kGgufMaxArrayDepth = 8;
inline const char* const kGgufAlignmentKey = "general.alignment";

inline bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Bytes of one value of `t` in the file (minimum, for strings and arrays).
inline size_t gguf_value_min_bytes(MetaValue::Type t) {
  using T = MetaValue::Type;
  switch (t) {
    case T::U8: case T::I8: case T::Bool: return 1;
    case T::U16: case T::I16: return 2;
    case T::U32: case T::I32: case T::F32: return 4;
    case T::U64: case T::I64: case T::F64: return 8;
    case T::String: return 8;  // length prefix
    case T::Array: return 12;  // element type + count
  }
  return 1;
}

}  // namespace sinklab::formats
