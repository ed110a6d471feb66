// safetensors: 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the data section.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "sinklab/json_text.h"
#include "model/formats/atomic_writer.h"
#include "model/formats/byte_reader.h"
#include "sinklab/formats.h"

namespace sinklab {

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;  // same cap as the reference implementation
constexpr uintmax_t kMaxConfigBytes = uintmax_t(64) << 20;

TensorType safetensors_dtype(const std::string& dtype, const std::string& what) {
  if (dtype == "F32") return TensorType::F32;
  if (dtype == "F16") return TensorType::F16;
  if (dtype == "BF16") return TensorType::BF16;
  if (dtype == "U8") return TensorType::U8;
  throw Error(what + ": unsupported dtype '" + dtype + "' (supported: F32, F16, BF16, U8)");
}

const char* safetensors_dtype_name(TensorType t, const std::string& what) {
  switch (t) {
    case TensorType::F32: return "F32";
    case TensorType::F16: return "F16";
    case TensorType::BF16: return "BF16";
    case TensorType::U8: return "U8";
    default: throw Error(what + ": safetensors cannot store " + tensor_type_name(t) + " (only F32, F16, BF16, U8)");
  }
}

uint64_t json_uint(const json& v, const std::string& what) {
  if (!v.is_number_unsigned()) throw Error(what + " must be a non-negative integer, got " + v.dump());
  return v.get<uint64_t>();
}

json parse_json_rejecting_duplicate_keys(std::string_view text, const std::string& what) {
  std::set<std::string> keys;
  std::string duplicate;
  // The callback sees every object key with the depth of its object; only
  // the top-level keys (tensor names) must be unique.
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!keys.insert(parsed.get<std::string>()).second && duplicate.empty()) duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json j = parse_json_text(text, what + " header", cb);
  if (!duplicate.empty()) throw Error(what + ": duplicate tensor name '" + duplicate + "' in header");
  return j;
}

struct Span {
  uint64_t begin, end;
  const std::string* name;
};

// Parses one safetensors buffer, adding its tensors to `out` and its
// "__metadata__" strings to `meta` (first value wins for repeated keys).
void parse_into(const uint8_t* data, size_t size, const std::string& name, TensorFile& out, Metadata& meta,
                std::vector<std::string>* added = nullptr) {
  formats::ByteReader r(data, size, name);
  const uint64_t header_len = r.read<uint64_t>("the 8-byte header length");
  if (header_len > kMaxHeaderBytes)
    throw Error(name + ": header length " + std::to_string(header_len) + " exceeds the " +
                std::to_string(kMaxHeaderBytes) + "-byte cap");
  if (header_len > r.remaining())
    throw Error(name + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                std::to_string(size));
  const std::string_view text = r.bytes(header_len, "the JSON header");
  const json header = parse_json_rejecting_duplicate_keys(text, name);
  if (!header.is_object()) throw Error(name + ": header must be a JSON object");

  const uint8_t* section = data + r.pos();
  const uint64_t section_size = r.remaining();
  std::vector<TensorEntry> entries;
  std::vector<Span> spans;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw Error(name + ": __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw Error(name + ": __metadata__ value for '" + mk + "' must be a string");
        if (!meta.contains(mk)) meta.set(mk, mv.get<std::string>());
      }
      continue;
    }
    const std::string what = name + ": tensor '" + key + "'";
    if (!value.is_object()) throw Error(what + ": entry must be an object");
    if (!value.contains("dtype") || !value["dtype"].is_string()) throw Error(what + ": missing string 'dtype'");
    if (!value.contains("shape") || !value["shape"].is_array()) throw Error(what + ": missing array 'shape'");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() || value["data_offsets"].size() != 2)
      throw Error(what + ": 'data_offsets' must be an array [begin, end]");

    TensorEntry e;
    e.name = key;
    e.type = safetensors_dtype(value["dtype"].get<std::string>(), what);
    for (const json& d : value["shape"]) {
      const uint64_t dim = json_uint(d, what + ": shape entry");
      if (dim > uint64_t(std::numeric_limits<int64_t>::max())) throw Error(what + ": shape entry too large");
      e.shape.push_back(int64_t(dim));
    }
    const int64_t numel = formats::checked_numel(e.shape.data(), e.shape.size(), what);
    const uint64_t begin = json_uint(value["data_offsets"][0], what + ": data_offsets[0]");
    const uint64_t end = json_uint(value["data_offsets"][1], what + ": data_offsets[1]");
    if (begin > end)
      throw Error(what + ": data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end > section_size)
      throw Error(what + ": data_offsets end " + std::to_string(end) + " is past the data section (" +
                  std::to_string(section_size) + " bytes)");
    e.nbytes = tensor_type_nbytes(e.type, numel, what);
    if (end - begin != e.nbytes)
      throw Error(what + ": data_offsets span " + std::to_string(end - begin) + " bytes but shape and dtype need " +
                  std::to_string(e.nbytes));
    e.data = section + begin;
    entries.push_back(std::move(e));
    spans.push_back({begin, end, &entries.back().name});  // name pointer fixed below
  }
  for (size_t i = 0; i < spans.size(); ++i) spans[i].name = &entries[i].name;
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* prev = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;  // empty tensors occupy no bytes
    if (prev && s.begin < prev->end)
      throw Error(name + ": tensors '" + *prev->name + "' and '" + *s.name + "' overlap in the data section");
    prev = &s;
  }
  for (TensorEntry& e : entries) {
    if (added) added->push_back(e.name);
    out.add_tensor(std::move(e));
  }
}

std::shared_ptr<MappedFile> map_file(const std::string& path) { return std::make_shared<MappedFile>(path); }

void add_file(const std::string& path, TensorFile& out, std::vector<std::string>* added = nullptr) {
  auto mapped = map_file(path);
  out.keep_alive(mapped);
  parse_into(mapped->data(), mapped->size(), path, out, out.metadata(), added);
}

json read_json_file(const fs::path& p) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) throw Error(p.string() + ": cannot read (" + ec.message() + ")");
  if (size > kMaxConfigBytes) throw Error(p.string() + ": larger than the 64 MiB cap for JSON files");
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  std::string text(size_t(size), '\0');
  in.read(text.data(), std::streamsize(size));
  if (!in) throw Error(p.string() + ": read failed");
  json j = parse_json_text(text, p.string());
  return j;
}

void load_sharded(const fs::path& dir, const fs::path& index_path, TensorFile& out) {
  const json index = read_json_file(index_path);
  const std::string where = index_path.string();
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(where + ": expected an object with a 'weight_map' object");
  std::map<std::string, std::string> wanted;  // tensor -> shard
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) throw Error(where + ": shard for tensor '" + tensor + "' must be a string");
    const std::string s = shard.get<std::string>();
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos)
      throw Error(where + ": shard name '" + s + "' for tensor '" + tensor + "' must be a plain file name");
    wanted[tensor] = s;
    shards.insert(s);
  }
  if (shards.empty()) throw Error(where + ": weight_map is empty");
  std::map<std::string, std::string> found;  // tensor -> shard
  for (const std::string& s : shards) {
    std::vector<std::string> added;
    add_file((dir / s).string(), out, &added);
    for (const std::string& t : added) found[t] = s;
  }
  for (const auto& [tensor, shard] : wanted) {
    auto it = found.find(tensor);
    if (it == found.end()) throw Error(where + ": tensor '" + tensor + "' is not in shard " + shard);
    if (it->second != shard)
      throw Error(where + ": tensor '" + tensor + "' is listed in shard " + shard + " but stored in " + it->second);
  }
}

}  // namespace

TensorFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  TensorFile tf(FileFormat::Safetensors, name);
  parse_into(data, size, name, tf, tf.metadata());
  return tf;
}

TensorFile load_safetensors(const std::string& path) {
  TensorFile tf(FileFormat::Safetensors, path);
  std::error_code ec;
  fs::path config_path;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    const fs::path index = dir / "model.safetensors.index.json";
    const fs::path single = dir / "model.safetensors";
    if (fs::exists(index, ec)) {
      load_sharded(dir, index, tf);
    } else if (fs::exists(single, ec)) {
      add_file(single.string(), tf);
    } else {
      throw Error(path + ": directory holds neither model.safetensors nor model.safetensors.index.json");
    }
    config_path = dir / "config.json";
  } else {
    add_file(path, tf);
    const fs::path p(path);
    config_path = (p.has_parent_path() ? p.parent_path() : fs::path(".")) / "config.json";
  }
  if (fs::is_regular_file(config_path, ec)) tf.set_config(read_json_file(config_path));
  return tf;
}

void write_safetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const TensorEntry& e : entries) {
    const std::string what = path + ": tensor '" + e.name + "'";
    if (e.name.empty() || e.name == "__metadata__") throw Error(what + ": invalid tensor name");
    if (header.contains(e.name)) throw Error(what + ": duplicate tensor name");
    const char* dtype = safetensors_dtype_name(e.type, what);
    const size_t nbytes = tensor_type_nbytes(e.type, e.numel(), what);
    if (nbytes != e.nbytes)
      throw Error(what + ": nbytes " + std::to_string(e.nbytes) + " does not match shape and dtype (" +
                  std::to_string(nbytes) + ")");
    if (nbytes > 0 && !e.data) throw Error(what + ": null data");
    const uint64_t end = formats::checked_add(offset, nbytes, what);
    header[e.name] = {{"dtype", dtype}, {"shape", e.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  formats::AtomicWriter w(path);
  w.put<uint64_t>(text.size());
  w.write(text.data(), text.size());
  for (const TensorEntry& e : entries) w.write(e.data, e.nbytes);
  w.commit();
}

}  // namespace sinklab
