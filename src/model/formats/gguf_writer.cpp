// GGUF writer: metadata in key order, tensors in the given order, each at an
// aligned offset of the data section.
#include <set>

#include "model/formats/atomic_writer.h"
#include "model/formats/byte_reader.h"
#include "model/formats/gguf_common.h"
#include "sinklab/formats.h"

namespace sinklab {

namespace {
using formats::AtomicWriter;
using Type = MetaValue::Type;

void put_string(AtomicWriter& w, const std::string& s) {
  w.put<uint64_t>(s.size());
  w.write(s.data(), s.size());
}

// Writes the payload of `v` as type `t` (the tag itself is written by the caller).
void put_payload(AtomicWriter& w, Type t, const MetaValue& v, const std::string& key) {
  try {
    switch (t) {
      case Type::U8: w.put<uint8_t>(uint8_t(MetaValue::unsigned_integer(t, v.as_uint()).as_uint())); return;
      case Type::I8: w.put<int8_t>(int8_t(MetaValue::integer(t, v.as_int()).as_int())); return;
      case Type::U16: w.put<uint16_t>(uint16_t(MetaValue::unsigned_integer(t, v.as_uint()).as_uint())); return;
      case Type::I16: w.put<int16_t>(int16_t(MetaValue::integer(t, v.as_int()).as_int())); return;
      case Type::U32: w.put<uint32_t>(uint32_t(MetaValue::unsigned_integer(t, v.as_uint()).as_uint())); return;
      case Type::I32: w.put<int32_t>(int32_t(MetaValue::integer(t, v.as_int()).as_int())); return;
      case Type::U64: w.put<uint64_t>(v.as_uint()); return;
      case Type::I64: w.put<int64_t>(v.as_int()); return;
      case Type::F32: w.put<float>(float(v.as_double())); return;
      case Type::F64: w.put<double>(v.as_double()); return;
      case Type::Bool: w.put<uint8_t>(v.as_bool() ? 1 : 0); return;
      case Type::String: put_string(w, v.as_string()); return;
      case Type::Array: {
        const MetaValue::Array& items = v.as_array();
        w.put<uint32_t>(uint32_t(v.element_type()));
        w.put<uint64_t>(items.size());
        for (const MetaValue& e : items) put_payload(w, v.element_type(), e, key);
        return;
      }
    }
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (writing metadata key '" + key + "')");
  }
  throw Error("invalid metadata type for key '" + key + "'");
}

uint64_t align_up(uint64_t v, uint64_t a) { return formats::checked_add(v, a - 1, "gguf offset") / a * a; }

}  // namespace

void write_gguf(const std::string& path, const Metadata& metadata, const std::vector<TensorEntry>& entries,
                uint32_t version) {
  if (version != 2 && version != 3)
    throw Error(path + ": cannot write GGUF version " + std::to_string(version) + " (expected 2 or 3)");
  uint64_t alignment = formats::kGgufDefaultAlignment;
  if (metadata.contains(formats::kGgufAlignmentKey)) {
    if (metadata.at(formats::kGgufAlignmentKey).type() != Type::U32)
      throw Error(path + ": metadata key 'general.alignment' must be a u32");
    alignment = metadata.get_uint(formats::kGgufAlignmentKey);
    if (!formats::is_power_of_two(alignment) || alignment > formats::kGgufMaxAlignment)
      throw Error(path + ": general.alignment " + std::to_string(alignment) + " must be a power of two");
  }

  // Validate every entry and lay out the data section before creating the file.
  std::vector<uint64_t> offsets;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorEntry& e : entries) {
    const std::string what = path + ": tensor '" + e.name + "'";
    if (!names.insert(e.name).second) throw Error(what + ": duplicate tensor name");
    if (e.name.size() > formats::kGgufMaxNameBytes) throw Error(what + ": name too long");
    if (e.shape.empty() || e.shape.size() > formats::kGgufMaxDims)
      throw Error(what + ": GGUF tensors need 1 to 4 dimensions, got " + std::to_string(e.shape.size()));
    const int64_t block = tensor_type_block_size(e.type);
    if (e.shape.back() % block != 0)
      throw Error(what + ": innermost dimension " + std::to_string(e.shape.back()) + " is not a multiple of the " +
                  tensor_type_name(e.type) + " block size " + std::to_string(block));
    const size_t nbytes = tensor_type_nbytes(e.type, e.numel(), what);
    if (nbytes != e.nbytes)
      throw Error(what + ": nbytes " + std::to_string(e.nbytes) + " does not match shape and type (" +
                  std::to_string(nbytes) + ")");
    if (nbytes > 0 && !e.data) throw Error(what + ": null data");
    offset = align_up(offset, alignment);
    offsets.push_back(offset);
    offset = formats::checked_add(offset, nbytes, what);
  }

  AtomicWriter w(path);
  w.write("GGUF", 4);
  w.put<uint32_t>(version);
  w.put<uint64_t>(entries.size());
  w.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata.values()) {
    if (key.size() > formats::kGgufMaxNameBytes) throw Error(path + ": metadata key too long");
    put_string(w, key);
    w.put<uint32_t>(uint32_t(value.type()));
    put_payload(w, value.type(), value, key);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorEntry& e = entries[i];
    put_string(w, e.name);
    w.put<uint32_t>(uint32_t(e.shape.size()));
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it) w.put<uint64_t>(uint64_t(*it));
    w.put<uint32_t>(tensor_type_ggml_id(e.type));
    w.put<uint64_t>(offsets[i]);
  }
  const uint64_t data_start = align_up(w.written(), alignment);
  w.write_zeros(size_t(data_start - w.written()));
  for (size_t i = 0; i < entries.size(); ++i) {
    w.write_zeros(size_t(data_start + offsets[i] - w.written()));
    w.write(entries[i].data, entries[i].nbytes);
  }
  w.commit();
}

}  // namespace sinklab
