// Tensor types, typed metadata and the TensorFile container.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <limits>

#include "model/formats/byte_reader.h"
#include "sinklab/formats.h"

namespace sinklab {

// ---------------------------------------------------------- tensor types ----
namespace {
struct TypeInfo {
  const char* name;
  int64_t block_size;
  size_t block_bytes;
  uint32_t ggml_id;
};
constexpr uint32_t kNoGgmlId = 0xffffffffu;  // a type GGUF files do not carry
// Indexed by TensorType. Block layouts: Q8_0 = f16 scale + 32 int8;
// Q4_0 = f16 scale + 16 bytes of nibbles; Q4_K = 2 f16 + 12 bytes of 6-bit
// scales/mins + 128 bytes of nibbles; Q6_K = 128 + 64 + 16 bytes + f16;
// Q5_K = Q4_K + 32 bytes of fifth bits; MXFP4 = exponent byte + 16 bytes of nibbles.
constexpr TypeInfo kTypes[] = {
    {"F32", 1, 4, 0},       {"F16", 1, 2, 1},        {"BF16", 1, 2, 30}, {"Q8_0", 32, 34, 8},
    {"Q4_0", 32, 18, 2},    {"Q4_K", 256, 144, 12},  {"Q6_K", 256, 210, 14}, {"Q5_K", 256, 176, 13},
    {"MXFP4", 32, 17, 39},  {"U8", 1, 1, kNoGgmlId},
};
const TypeInfo& info(TensorType t) {
  const size_t i = size_t(t);
  if (i >= std::size(kTypes)) throw Error("invalid TensorType value " + std::to_string(i));
  return kTypes[i];
}

// ggml type names for ids this library does not decode, for clearer errors.
const char* ggml_type_name(uint32_t id) {
  static const char* const names[] = {
      "F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
      "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
      "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
      "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4",
      "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  return id < std::size(names) ? names[id] : nullptr;
}
}  // namespace

const char* tensor_type_name(TensorType t) { return info(t).name; }
int64_t tensor_type_block_size(TensorType t) { return info(t).block_size; }
size_t tensor_type_block_bytes(TensorType t) { return info(t).block_bytes; }
bool tensor_type_is_quantized(TensorType t) { return info(t).block_size > 1; }
uint32_t tensor_type_ggml_id(TensorType t) { return info(t).ggml_id; }

size_t tensor_type_nbytes(TensorType t, int64_t numel, const std::string& what) {
  const TypeInfo& ti = info(t);
  if (numel < 0) throw Error(what + ": negative element count " + std::to_string(numel));
  if (numel % ti.block_size != 0)
    throw Error(what + ": " + std::to_string(numel) + " elements is not a multiple of the " +
                ti.name + " block size " + std::to_string(ti.block_size));
  const uint64_t bytes = formats::checked_mul(uint64_t(numel / ti.block_size), ti.block_bytes, what);
  if (bytes > std::numeric_limits<size_t>::max()) throw Error(what + ": size overflows size_t");
  return size_t(bytes);
}

TensorType tensor_type_from_ggml_id(uint32_t id, const std::string& what) {
  for (size_t i = 0; i < std::size(kTypes); ++i)
    if (kTypes[i].ggml_id == id) return TensorType(i);
  const char* n = ggml_type_name(id);
  throw Error(what + ": unsupported ggml type id " + std::to_string(id) +
              (n ? std::string(" (") + n + ")" : std::string(" (unknown)")) +
              "; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, MXFP4");
}

namespace formats {
int64_t checked_numel(const int64_t* dims, size_t n, const std::string& what) {
  int64_t p = 1;
  for (size_t i = 0; i < n; ++i) {
    if (dims[i] < 0) throw Error(what + ": negative dimension " + std::to_string(dims[i]));
    if (__builtin_mul_overflow(p, dims[i], &p))
      throw Error(what + ": element count overflows (absurd dimensions)");
  }
  return p;
}
}  // namespace formats

int64_t TensorEntry::numel() const {
  return formats::checked_numel(shape.data(), shape.size(), "tensor '" + name + "'");
}

// -------------------------------------------------------------- MetaValue ----
const char* meta_type_name(MetaValue::Type t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const size_t i = size_t(t);
  return i < std::size(names) ? names[i] : "invalid";
}

namespace {
bool is_signed_int(MetaValue::Type t) {
  using T = MetaValue::Type;
  return t == T::I8 || t == T::I16 || t == T::I32 || t == T::I64;
}
bool is_unsigned_int(MetaValue::Type t) {
  using T = MetaValue::Type;
  return t == T::U8 || t == T::U16 || t == T::U32 || t == T::U64;
}
// Largest magnitude an integer type holds (for signed: the positive limit).
uint64_t int_type_max(MetaValue::Type t) {
  using T = MetaValue::Type;
  switch (t) {
    case T::U8: return 0xffu;
    case T::I8: return 0x7fu;
    case T::U16: return 0xffffu;
    case T::I16: return 0x7fffu;
    case T::U32: return 0xffffffffu;
    case T::I32: return 0x7fffffffu;
    case T::I64: return uint64_t(std::numeric_limits<int64_t>::max());
    default: return std::numeric_limits<uint64_t>::max();
  }
}
[[noreturn]] void out_of_range(MetaValue::Type t, const std::string& v) {
  throw Error("metadata: value " + v + " out of range for type " + meta_type_name(t));
}
}  // namespace

MetaValue MetaValue::integer(Type type, int64_t v) {
  if (is_unsigned_int(type)) {
    if (v < 0) throw Error("metadata: negative value for unsigned type " + std::string(meta_type_name(type)));
    return unsigned_integer(type, uint64_t(v));
  }
  if (!is_signed_int(type)) throw Error(std::string("metadata: ") + meta_type_name(type) + " is not an integer type");
  const uint64_t limit = int_type_max(type);
  if ((v >= 0 && uint64_t(v) > limit) || (v < 0 && uint64_t(-(v + 1)) > limit)) out_of_range(type, std::to_string(v));
  return MetaValue(IntTag{}, type, v);
}

MetaValue MetaValue::unsigned_integer(Type type, uint64_t v) {
  if (is_signed_int(type)) {
    if (v > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error("metadata: value too large for signed type " + std::string(meta_type_name(type)));
    return integer(type, int64_t(v));
  }
  if (!is_unsigned_int(type)) throw Error(std::string("metadata: ") + meta_type_name(type) + " is not an integer type");
  if (v > int_type_max(type)) out_of_range(type, std::to_string(v));
  return MetaValue(IntTag{}, type, v);
}

MetaValue MetaValue::array(Type element_type, Array items) {
  if (size_t(element_type) > size_t(Type::F64))
    throw Error("metadata: invalid array element type " + std::to_string(uint32_t(element_type)));
  for (const MetaValue& v : items) {
    const bool same = v.type_ == element_type ||
                      (element_type == Type::F32 && v.type_ == Type::F64) ||
                      (element_type == Type::F64 && v.type_ == Type::F32);
    if (!same)
      throw Error(std::string("metadata: array of ") + meta_type_name(element_type) + " holds a " +
                  meta_type_name(v.type_));
  }
  return MetaValue(ArrayTag{}, element_type, std::move(items));
}

bool MetaValue::is_integer() const { return is_signed_int(type_) || is_unsigned_int(type_); }

int64_t MetaValue::as_int() const {
  if (is_signed_int(type_)) return std::get<int64_t>(value_);
  if (is_unsigned_int(type_)) {
    const uint64_t u = std::get<uint64_t>(value_);
    if (u > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error("metadata value " + std::to_string(u) + " does not fit in int64");
    return int64_t(u);
  }
  throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected an integer");
}

uint64_t MetaValue::as_uint() const {
  if (is_unsigned_int(type_)) return std::get<uint64_t>(value_);
  if (is_signed_int(type_)) {
    const int64_t v = std::get<int64_t>(value_);
    if (v < 0) throw Error("metadata value " + std::to_string(v) + " is negative, expected unsigned");
    return uint64_t(v);
  }
  throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected an integer");
}

double MetaValue::as_double() const {
  if (is_float()) return std::get<double>(value_);
  if (is_signed_int(type_)) return double(std::get<int64_t>(value_));
  if (is_unsigned_int(type_)) return double(std::get<uint64_t>(value_));
  throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected a number");
}

bool MetaValue::as_bool() const {
  if (!is_bool()) throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected bool");
  return std::get<bool>(value_);
}

const std::string& MetaValue::as_string() const {
  if (!is_string()) throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected string");
  return std::get<std::string>(value_);
}

const MetaValue::Array& MetaValue::as_array() const {
  if (!is_array()) throw Error(std::string("metadata value is a ") + meta_type_name(type_) + ", expected array");
  return std::get<Array>(value_);
}

bool MetaValue::operator==(const MetaValue& o) const {
  if (type_ != o.type_) return false;
  if (is_array() && element_type_ != o.element_type_) return false;
  return value_ == o.value_;
}

// --------------------------------------------------------------- Metadata ----
const MetaValue& Metadata::at(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end())
    throw Error((source_.empty() ? std::string("metadata") : source_) + ": metadata key '" + key + "' is missing");
  return it->second;
}

void Metadata::wrong_type(const std::string& key, const char* expected) const {
  throw Error((source_.empty() ? std::string("metadata") : source_) + ": metadata key '" + key + "' is a " +
              meta_type_name(at(key).type()) + ", expected " + expected);
}

int64_t Metadata::get_int(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_integer()) wrong_type(key, "an integer");
  try {
    return v.as_int();
  } catch (const Error& e) {
    throw Error(source_ + ": metadata key '" + key + "': " + e.what());
  }
}

uint64_t Metadata::get_uint(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_integer()) wrong_type(key, "an unsigned integer");
  try {
    return v.as_uint();
  } catch (const Error& e) {
    throw Error(source_ + ": metadata key '" + key + "': " + e.what());
  }
}

double Metadata::get_double(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_float() && !v.is_integer()) wrong_type(key, "a number");
  return v.as_double();
}

bool Metadata::get_bool(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_bool()) wrong_type(key, "bool");
  return v.as_bool();
}

const std::string& Metadata::get_string(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_string()) wrong_type(key, "string");
  return v.as_string();
}

const MetaValue::Array& Metadata::get_array(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_array()) wrong_type(key, "array");
  return v.as_array();
}

std::vector<std::string> Metadata::get_string_array(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_array() || v.element_type() != MetaValue::Type::String) wrong_type(key, "array of string");
  std::vector<std::string> out;
  out.reserve(v.as_array().size());
  for (const MetaValue& e : v.as_array()) out.push_back(e.as_string());
  return out;
}

std::vector<int64_t> Metadata::get_int_array(const std::string& key) const {
  const MetaValue& v = at(key);
  if (!v.is_array() || !(is_signed_int(v.element_type()) || is_unsigned_int(v.element_type())))
    wrong_type(key, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v.as_array().size());
  try {
    for (const MetaValue& e : v.as_array()) out.push_back(e.as_int());
  } catch (const Error& e) {
    throw Error(source_ + ": metadata key '" + key + "': " + e.what());
  }
  return out;
}

std::vector<double> Metadata::get_double_array(const std::string& key) const {
  const MetaValue& v = at(key);
  const MetaValue::Type et = v.element_type();
  if (!v.is_array() || !(et == MetaValue::Type::F32 || et == MetaValue::Type::F64 || is_signed_int(et) ||
                         is_unsigned_int(et)))
    wrong_type(key, "array of numbers");
  std::vector<double> out;
  out.reserve(v.as_array().size());
  for (const MetaValue& e : v.as_array()) out.push_back(e.as_double());
  return out;
}

int64_t Metadata::get_int(const std::string& key, int64_t fallback) const {
  return contains(key) ? get_int(key) : fallback;
}
double Metadata::get_double(const std::string& key, double fallback) const {
  return contains(key) ? get_double(key) : fallback;
}
bool Metadata::get_bool(const std::string& key, bool fallback) const {
  return contains(key) ? get_bool(key) : fallback;
}
std::string Metadata::get_string(const std::string& key, const std::string& fallback) const {
  return contains(key) ? get_string(key) : fallback;
}

// ------------------------------------------------------------- TensorFile ----
const char* file_format_name(FileFormat f) {
  switch (f) {
    case FileFormat::Safetensors: return "safetensors";
    case FileFormat::Gguf: return "gguf";
    case FileFormat::Llama2c: return "llama2c";
  }
  return "unknown";
}

TensorFile::TensorFile(FileFormat format, std::string path)
    : format_(format), path_(std::move(path)), metadata_(path_) {}
TensorFile::~TensorFile() = default;
TensorFile::TensorFile(TensorFile&&) noexcept = default;
TensorFile& TensorFile::operator=(TensorFile&&) noexcept = default;

const TensorEntry& TensorFile::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error(path_ + ": no tensor named '" + name + "' (" + std::to_string(tensors_.size()) +
                " tensors in the " + file_format_name(format_) + " file)");
  return it->second;
}

void TensorFile::add_tensor(TensorEntry entry) {
  if (tensors_.count(entry.name)) throw Error(path_ + ": duplicate tensor name '" + entry.name + "'");
  order_.push_back(entry.name);
  std::string name = entry.name;
  tensors_.emplace(std::move(name), std::move(entry));
}

bool TensorFile::has_config() const { return config_ && !config_->is_null(); }

const nlohmann::json& TensorFile::config() const {
  static const nlohmann::json null_json;
  return config_ ? *config_ : null_json;
}

void TensorFile::set_config(const nlohmann::json& config) {
  config_ = std::make_unique<nlohmann::json>(config);
}

// ---------------------------------------------------------- auto-detection ----
TensorFile load_tensor_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_safetensors(path);
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".safetensors") return load_safetensors(path);
  if (ext == ".gguf") return load_gguf(path);
  {
    MappedFile probe(path);
    if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0) return load_gguf(path);
  }
  return load_llama2c(path);
}

}  // namespace sinklab
