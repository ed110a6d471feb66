// GGUF reader (v2/v3, little-endian): header, typed key/value metadata,
// tensor infos, then the tensor data at the next multiple of the alignment.
#include <algorithm>
#include <limits>
#include <set>

#include "model/formats/byte_reader.h"
#include "model/formats/gguf_common.h"
#include "sinklab/formats.h"

namespace sinklab {

namespace {
using formats::ByteReader;
using Type = MetaValue::Type;

std::string read_string(ByteReader& r, uint64_t cap, const char* what) {
  const uint64_t n = r.read<uint64_t>(what);
  if (n > cap)
    throw Error(r.source() + ": " + what + " length " + std::to_string(n) + " exceeds the cap of " +
                std::to_string(cap) + " bytes");
  if (n > r.remaining())
    throw Error(r.source() + ": " + what + " length " + std::to_string(n) + " at offset " +
                std::to_string(r.pos()) + " runs past the end of the file");
  return std::string(r.bytes(n, what));
}

Type read_type(ByteReader& r, const char* what) {
  const uint32_t t = r.read<uint32_t>(what);
  if (t > uint32_t(Type::F64)) throw Error(r.source() + ": unknown " + what + " " + std::to_string(t));
  return Type(t);
}

MetaValue read_value(ByteReader& r, Type t, int depth) {
  switch (t) {
    case Type::U8: return MetaValue::unsigned_integer(t, r.read<uint8_t>("u8 value"));
    case Type::I8: return MetaValue::integer(t, r.read<int8_t>("i8 value"));
    case Type::U16: return MetaValue::unsigned_integer(t, r.read<uint16_t>("u16 value"));
    case Type::I16: return MetaValue::integer(t, r.read<int16_t>("i16 value"));
    case Type::U32: return MetaValue::unsigned_integer(t, r.read<uint32_t>("u32 value"));
    case Type::I32: return MetaValue::integer(t, r.read<int32_t>("i32 value"));
    case Type::U64: return MetaValue::unsigned_integer(t, r.read<uint64_t>("u64 value"));
    case Type::I64: return MetaValue::integer(t, r.read<int64_t>("i64 value"));
    case Type::F32: return MetaValue(r.read<float>("f32 value"));
    case Type::F64: return MetaValue(r.read<double>("f64 value"));
    case Type::Bool: {
      const uint8_t b = r.read<uint8_t>("bool value");
      if (b > 1) throw Error(r.source() + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      return MetaValue(b == 1);
    }
    case Type::String: return MetaValue(read_string(r, ~uint64_t(0), "string value"));
    case Type::Array: {
      if (depth >= formats::kGgufMaxArrayDepth)
        throw Error(r.source() + ": arrays nested deeper than " + std::to_string(formats::kGgufMaxArrayDepth));
      const Type et = read_type(r, "array element type");
      const uint64_t n = r.read<uint64_t>("array length");
      // Each element takes at least this many bytes, so a count the rest of
      // the file cannot hold is a lie; reject it before allocating.
      if (n > r.remaining() / formats::gguf_value_min_bytes(et))
        throw Error(r.source() + ": array length " + std::to_string(n) + " of " + meta_type_name(et) +
                    " exceeds what the remaining " + std::to_string(r.remaining()) + " bytes can hold");
      MetaValue::Array items;
      items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(r, et, depth + 1));
      return MetaValue::array(et, std::move(items));
    }
  }
  throw Error(r.source() + ": unknown metadata value type");
}

struct PendingTensor {
  TensorEntry entry;
  uint64_t offset;
};

uint32_t read_version(ByteReader& r, const std::string& name) {
  const std::string_view magic = r.bytes(4, "the magic");
  if (magic != "GGUF") throw Error(name + ": not a GGUF file (magic bytes are not \"GGUF\")");
  const uint32_t version = r.read<uint32_t>("the version");
  if (version == 1) throw Error(name + ": GGUF version 1 is not supported (expected 2 or 3)");
  if (version != 2 && version != 3) {
    if ((version & 0xffffu) == 0 && (version >> 16) != 0)
      throw Error(name + ": big-endian GGUF files are not supported");
    throw Error(name + ": unsupported GGUF version " + std::to_string(version) + " (expected 2 or 3)");
  }
  return version;
}

void read_metadata(ByteReader& r, uint64_t n_kv, Metadata& meta, const std::string& name) {
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = read_string(r, formats::kGgufMaxNameBytes, "metadata key");
    try {
      if (meta.contains(key)) throw Error(name + ": duplicate metadata key");
      const Type t = read_type(r, "metadata value type");
      meta.set(key, read_value(r, t, 0));
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (metadata key '" + key + "')");
    }
  }
}

uint64_t data_alignment(const Metadata& meta, const std::string& name) {
  if (!meta.contains(formats::kGgufAlignmentKey)) return formats::kGgufDefaultAlignment;
  const uint64_t alignment = meta.get_uint(formats::kGgufAlignmentKey);
  if (!formats::is_power_of_two(alignment) || alignment > formats::kGgufMaxAlignment)
    throw Error(name + ": general.alignment " + std::to_string(alignment) +
                " must be a power of two no larger than " + std::to_string(formats::kGgufMaxAlignment));
  return alignment;
}

// One tensor info: name, dimensions (innermost first), type and data offset.
PendingTensor read_tensor_info(ByteReader& r, uint64_t alignment, std::set<std::string>& seen,
                               const std::string& name) {
  PendingTensor p;
  p.entry.name = read_string(r, formats::kGgufMaxNameBytes, "tensor name");
  const std::string what = name + ": tensor '" + p.entry.name + "'";
  if (!seen.insert(p.entry.name).second) throw Error(what + ": duplicate tensor name");
  const uint32_t n_dims = r.read<uint32_t>("tensor dimension count");
  if (n_dims < 1 || n_dims > formats::kGgufMaxDims)
    throw Error(what + ": " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
  std::vector<int64_t> ne(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t v = r.read<uint64_t>("tensor dimension");
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) throw Error(what + ": absurd dimension " + std::to_string(v));
    ne[d] = int64_t(v);
  }
  const int64_t numel = formats::checked_numel(ne.data(), ne.size(), what);
  p.entry.type = tensor_type_from_ggml_id(r.read<uint32_t>("tensor type"), what);
  const int64_t block = tensor_type_block_size(p.entry.type);
  if (ne[0] % block != 0)
    throw Error(what + ": row length " + std::to_string(ne[0]) + " is not a multiple of the " +
                tensor_type_name(p.entry.type) + " block size " + std::to_string(block));
  p.entry.nbytes = tensor_type_nbytes(p.entry.type, numel, what);
  p.entry.shape.assign(ne.rbegin(), ne.rend());  // GGUF lists the innermost dimension first
  p.offset = r.read<uint64_t>("tensor data offset");
  if (p.offset % alignment != 0)
    throw Error(what + ": data offset " + std::to_string(p.offset) + " is not a multiple of the alignment " +
                std::to_string(alignment));
  return p;
}

// Every tensor's data lies inside the data section and no two overlap.
void check_tensor_data(const std::vector<PendingTensor>& pending, uint64_t data_size, const std::string& name) {
  for (const PendingTensor& p : pending) {
    if (p.offset > data_size || p.entry.nbytes > data_size - p.offset)
      throw Error(name + ": tensor '" + p.entry.name + "': data [" + std::to_string(p.offset) + ", +" +
                  std::to_string(p.entry.nbytes) + ") runs past the end of the data section (" +
                  std::to_string(data_size) + " bytes)");
  }
  std::vector<const PendingTensor*> by_offset;
  for (const PendingTensor& p : pending) by_offset.push_back(&p);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const PendingTensor* a, const PendingTensor* b) { return a->offset < b->offset; });
  const PendingTensor* prev = nullptr;
  for (const PendingTensor* p : by_offset) {
    if (p->entry.nbytes == 0) continue;
    if (prev && p->offset < prev->offset + prev->entry.nbytes)
      throw Error(name + ": tensors '" + prev->entry.name + "' and '" + p->entry.name + "' overlap");
    prev = p;
  }
}

}  // namespace

TensorFile parse_gguf(const uint8_t* data, size_t size, const std::string& name) {
  TensorFile tf(FileFormat::Gguf, name);
  ByteReader r(data, size, name);
  const uint32_t version = read_version(r, name);
  const uint64_t n_tensors = r.read<uint64_t>("the tensor count");
  const uint64_t n_kv = r.read<uint64_t>("the metadata count");
  // Minimum sizes: a key/value is a string length, a type and one byte; a
  // tensor info is a name length, n_dims, one dim, a type and an offset.
  if (n_kv > r.remaining() / 13)
    throw Error(name + ": metadata count " + std::to_string(n_kv) + " is more than the file can hold");
  if (n_tensors > r.remaining() / 32)
    throw Error(name + ": tensor count " + std::to_string(n_tensors) + " is more than the file can hold");
  read_metadata(r, n_kv, tf.metadata(), name);
  const uint64_t alignment = data_alignment(tf.metadata(), name);

  std::vector<PendingTensor> pending;
  std::set<std::string> seen;
  for (uint64_t i = 0; i < n_tensors; ++i) pending.push_back(read_tensor_info(r, alignment, seen, name));

  const uint64_t data_start = formats::checked_add(r.pos(), alignment - 1, name) / alignment * alignment;
  check_tensor_data(pending, data_start < size ? size - data_start : 0, name);
  for (PendingTensor& p : pending) {
    // Empty tensors may sit at the very end; never form a pointer past it.
    p.entry.data = data_start + p.offset < size ? data + data_start + p.offset : nullptr;
    tf.add_tensor(std::move(p.entry));
  }
  tf.set_gguf_layout(version, size_t(alignment));
  return tf;
}

TensorFile load_gguf(const std::string& path) {
  auto mapped = std::make_shared<MappedFile>(path);
  TensorFile tf = parse_gguf(mapped->data(), mapped->size(), path);
  tf.keep_alive(std::move(mapped));
  return tf;
}

}  // namespace sinklab
