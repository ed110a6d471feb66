// Checkpoint file formats (safetensors, GGUF, llama2.c) read into one tensor
// representation. Loaders memory-map the file and hand out zero-copy entries
// that point into the mapping; every header field is validated before use, so
// a corrupt or hostile file raises sinklab::Error and never reads out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sinklab/core.h"

namespace sinklab {

// ---------------------------------------------------------- tensor types ----
// Element encodings of checkpoint tensors. Quantized types are GGUF/ggml
// block formats: a block of block_size() elements stored in block_bytes()
// (layouts in src/model/quant/block_layout.h).
// U8: raw bytes (safetensors "U8": the mxfp4 blocks and scales of gpt-oss
// checkpoints), decoded as their values.
enum class TensorType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q5_K, MXFP4, U8 };

const char* tensor_type_name(TensorType t);        // "F32", "Q4_K", ...
int64_t tensor_type_block_size(TensorType t);      // elements per block (1 for floats)
size_t tensor_type_block_bytes(TensorType t);      // bytes per block
bool tensor_type_is_quantized(TensorType t);
// Bytes that `numel` elements take; throws Error naming `what` when numel is
// negative, not a multiple of the block size, or the size overflows.
size_t tensor_type_nbytes(TensorType t, int64_t numel, const std::string& what);
// ggml type ids as stored in GGUF tensor infos (F32=0, F16=1, Q4_0=2, Q8_0=8,
// Q4_K=12, Q5_K=13, Q6_K=14, BF16=30, MXFP4=39).
uint32_t tensor_type_ggml_id(TensorType t);
// Throws Error naming `what` and the id (and the ggml name if known) when
// the id is not one of the supported types.
TensorType tensor_type_from_ggml_id(uint32_t id, const std::string& what);

// One tensor of a checkpoint. `data` points into memory owned by the
// TensorFile it came from (or by the caller, for entries handed to writers);
// it is not necessarily aligned to the element size.
struct TensorEntry {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> shape;  // row-major, outermost dimension first (like PyTorch)
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;  // product of shape (1 for a scalar)
};

// Decodes all numel() elements of `t` into float32 at `out`. Throws Error if
// t.nbytes does not match its type and shape.
void dequantize(const TensorEntry& t, float* out);
// Same, rounding to bfloat16.
void dequantize_to_bf16(const TensorEntry& t, bf16* out);
// Decodes n elements (a multiple of the block size) of raw `type` data.
void dequantize_row(TensorType type, const uint8_t* src, float* dst, int64_t n);

// -------------------------------------------------------------- metadata ----
// A typed metadata value. The type tags use GGUF's numbering so that values
// read from a GGUF file are written back with the same type.
class MetaValue {
 public:
  enum class Type : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
  };
  using Array = std::vector<MetaValue>;

  MetaValue() : MetaValue(false) {}
  MetaValue(bool v) : type_(Type::Bool), value_(v) {}
  MetaValue(int32_t v) : type_(Type::I32), value_(int64_t(v)) {}
  MetaValue(uint32_t v) : type_(Type::U32), value_(uint64_t(v)) {}
  MetaValue(int64_t v) : type_(Type::I64), value_(v) {}
  MetaValue(uint64_t v) : type_(Type::U64), value_(v) {}
  MetaValue(float v) : type_(Type::F32), value_(double(v)) {}
  MetaValue(double v) : type_(Type::F64), value_(v) {}
  MetaValue(std::string v) : type_(Type::String), value_(std::move(v)) {}
  MetaValue(const char* v) : MetaValue(std::string(v)) {}

  // Integer of an explicit width: `type` must be one of U8..I64 (not F32/Bool).
  static MetaValue integer(Type type, int64_t v);
  static MetaValue unsigned_integer(Type type, uint64_t v);
  // An array whose elements all have `element_type` (checked).
  static MetaValue array(Type element_type, Array items);

  Type type() const { return type_; }
  Type element_type() const { return element_type_; }  // for arrays
  bool is_integer() const;
  bool is_float() const { return type_ == Type::F32 || type_ == Type::F64; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }

  // Accessors throw Error when the value has another type (or, for
  // as_int, a u64 above INT64_MAX). as_double also accepts integers.
  int64_t as_int() const;
  uint64_t as_uint() const;  // rejects negative values
  double as_double() const;
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;

  bool operator==(const MetaValue& o) const;

 private:
  struct ArrayTag {};
  struct IntTag {};
  MetaValue(IntTag, Type type, int64_t v) : type_(type), value_(v) {}
  MetaValue(IntTag, Type type, uint64_t v) : type_(type), value_(v) {}
  MetaValue(ArrayTag, Type element_type, Array items)
      : type_(Type::Array), element_type_(element_type), value_(std::move(items)) {}
  Type type_;
  Type element_type_ = Type::U8;
  std::variant<bool, int64_t, uint64_t, double, std::string, Array> value_;
};

const char* meta_type_name(MetaValue::Type t);  // "u32", "string", "array", ...

// Key/value metadata of a checkpoint. Getters throw Error naming the source
// file and the key when it is missing or has the wrong type.
class Metadata {
 public:
  explicit Metadata(std::string source = "") : source_(std::move(source)) {}

  bool contains(const std::string& key) const { return values_.count(key) != 0; }
  const MetaValue& at(const std::string& key) const;
  void set(const std::string& key, MetaValue value) { values_[key] = std::move(value); }
  size_t size() const { return values_.size(); }
  const std::map<std::string, MetaValue>& values() const { return values_; }
  const std::string& source() const { return source_; }
  void set_source(std::string s) { source_ = std::move(s); }

  int64_t get_int(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const MetaValue::Array& get_array(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_double_array(const std::string& key) const;

  // Defaults apply only when the key is missing; a wrong type still throws.
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

 private:
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;
  std::string source_;
  std::map<std::string, MetaValue> values_;
};

// ------------------------------------------------------------ tensor file ----
enum class FileFormat : uint8_t { Safetensors, Gguf, Llama2c };
const char* file_format_name(FileFormat f);

// A loaded checkpoint: the tensors (zero-copy views into the mapped files it
// keeps alive), their metadata and, for safetensors, config.json.
// Move-only; entries stay valid as long as the TensorFile lives.
class TensorFile {
 public:
  TensorFile(FileFormat format, std::string path);
  ~TensorFile();
  TensorFile(TensorFile&&) noexcept;
  TensorFile& operator=(TensorFile&&) noexcept;

  FileFormat format() const { return format_; }
  const std::string& path() const { return path_; }

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws Error naming the file and the tensor when it is absent.
  const TensorEntry& tensor(const std::string& name) const;
  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }
  // Tensor names in file order.
  const std::vector<std::string>& names() const { return order_; }
  size_t size() const { return tensors_.size(); }

  // GGUF key/values; safetensors "__metadata__" (strings); llama2.c
  // hyperparameters (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
  // vocab_size, seq_len as i32, shared_classifier as bool, version).
  const Metadata& metadata() const { return metadata_; }
  Metadata& metadata() { return metadata_; }
  // config.json found beside a safetensors checkpoint (null json otherwise).
  bool has_config() const;
  const nlohmann::json& config() const;

  uint32_t gguf_version() const { return gguf_version_; }  // 0 unless GGUF
  size_t gguf_alignment() const { return gguf_alignment_; }

  // Building (used by the loaders).
  void add_tensor(TensorEntry entry);  // throws Error on a duplicate name
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
  void set_config(const nlohmann::json& config);
  void set_gguf_layout(uint32_t version, size_t alignment) {
    gguf_version_ = version;
    gguf_alignment_ = alignment;
  }

 private:
  FileFormat format_;
  std::string path_;
  std::map<std::string, TensorEntry> tensors_;
  std::vector<std::string> order_;
  Metadata metadata_;
  std::unique_ptr<nlohmann::json> config_;
  std::vector<std::shared_ptr<const void>> owners_;
  uint32_t gguf_version_ = 0;
  size_t gguf_alignment_ = 0;
};

// --------------------------------------------------------------- loaders ----
// A `.safetensors` file, or a directory with `model.safetensors` or
// `model.safetensors.index.json` plus its shards. Dtypes F32, F16, BF16.
// config.json beside the file (or in the directory) is parsed when present.
TensorFile load_safetensors(const std::string& path);
// GGUF v2 or v3; tensor shapes are converted to outermost-first.
TensorFile load_gguf(const std::string& path);
// llama2.c checkpoints (legacy v0 and v1 "ak42"), exposed with Hugging Face
// Llama tensor names: model.embed_tokens.weight, model.layers.N.
// {input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
// mlp.{gate,up,down}_proj}.weight, model.norm.weight and, only when the
// classifier is untied, lm_head.weight. The q/k projection rows keep
// llama2.c's RoPE convention (rotation of adjacent pairs), which differs from
// Hugging Face's half-split rotation; metadata "rope_interleaved" is true.
TensorFile load_llama2c(const std::string& path);
// Auto-detects the format from the path (directory or .safetensors,
// .gguf) or the file's magic; anything else is tried as llama2.c.
TensorFile load_tensor_file(const std::string& path);

// From-memory parsers (used by fuzzers and tests). The returned entries point
// into `data`, which must outlive the TensorFile. `name` appears in errors.
TensorFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name);
TensorFile parse_gguf(const uint8_t* data, size_t size, const std::string& name);
TensorFile parse_llama2c(const uint8_t* data, size_t size, const std::string& name);

// --------------------------------------------------------------- writers ----
// Both writers write to a temporary file in the destination's directory and
// rename it into place, so a failure never leaves a half-written file.
// Entries must have a consistent nbytes and unique names.

// F32/F16/BF16 entries; `metadata` becomes "__metadata__".
void write_safetensors(const std::string& path, const std::vector<TensorEntry>& entries,
                       const std::map<std::string, std::string>& metadata = {});
// Any TensorType; alignment from metadata "general.alignment" (u32, power of
// two) or 32. version is 2 or 3 (same layout for little-endian files).
void write_gguf(const std::string& path, const Metadata& metadata,
                const std::vector<TensorEntry>& entries, uint32_t version = 3);

}  // namespace sinklab
