// llama2.c checkpoints. Legacy v0: seven int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an
// untied classifier follows), then fp32 arrays in the order token embedding,
// attention norms, wq, wk, wv, wo, ffn norms, w1, w2, w3, final norm, two
// unused RoPE tables (seq_len * head_dim / 2 floats each) and the classifier.
// v1: magic "ak42", int32 version 1, the seven int32, a shared-classifier
// byte, zero padding to 256 bytes, then all norms first (attention norms,
// ffn norms, final norm), the embedding, wq, wk, wv, wo, w1, w2, w3 and the
// classifier when not shared; no RoPE tables.
#include <string>

#include "model/formats/byte_reader.h"
#include "sinklab/formats.h"

namespace sinklab {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42" read little-endian
constexpr size_t kV1HeaderBytes = 256;

struct Hparams {
  int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;
};

void validate(const Hparams& h, const std::string& name) {
  auto in_range = [&](int64_t v, int64_t hi, const char* field) {
    if (v < 1 || v > hi)
      throw Error(name + ": llama2.c header field " + field + " = " + std::to_string(v) + " is outside [1, " +
                  std::to_string(hi) + "]");
  };
  in_range(h.dim, 1 << 16, "dim");
  in_range(h.hidden_dim, 1 << 18, "hidden_dim");
  in_range(h.n_layers, 1 << 10, "n_layers");
  in_range(h.n_heads, h.dim, "n_heads");
  in_range(h.n_kv_heads, h.n_heads, "n_kv_heads");
  in_range(h.vocab_size, 1 << 22, "vocab_size");
  in_range(h.seq_len, 1 << 24, "seq_len");
  if (h.dim % h.n_heads != 0)
    throw Error(name + ": dim " + std::to_string(h.dim) + " is not divisible by n_heads " + std::to_string(h.n_heads));
  if (h.n_heads % h.n_kv_heads != 0)
    throw Error(name + ": n_heads " + std::to_string(h.n_heads) + " is not divisible by n_kv_heads " +
                std::to_string(h.n_kv_heads));
  if ((h.dim / h.n_heads) % 2 != 0)
    throw Error(name + ": head_dim " + std::to_string(h.dim / h.n_heads) + " must be even for RoPE");
}

// Hands out consecutive fp32 arrays from the weight section.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}
  const uint8_t* take(uint64_t floats) {
    const uint64_t bytes = floats * 4;  // sizes were validated against the file size already
    if (bytes > size_ - pos_) throw Error("llama2.c: internal layout error");
    const uint8_t* p = base_ + pos_;
    pos_ += size_t(bytes);
    return p;
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

struct Layout {
  const Hparams& h;
  int64_t kv_dim() const { return h.dim / h.n_heads * h.n_kv_heads; }
};

void add(TensorFile& tf, const std::string& name, std::vector<int64_t> shape, const uint8_t* data) {
  TensorEntry e;
  e.name = name;
  e.type = TensorType::F32;
  e.shape = std::move(shape);
  e.nbytes = size_t(e.numel()) * 4;
  e.data = data;
  tf.add_tensor(std::move(e));
}

std::string layer(int64_t i, const char* suffix) { return "model.layers." + std::to_string(i) + "." + suffix; }

// Adds one per-layer tensor for every layer from a stacked [L][rows][cols] array.
void add_stacked(TensorFile& tf, Cursor& c, const Hparams& h, const char* suffix, int64_t rows, int64_t cols) {
  const uint8_t* base = c.take(uint64_t(h.n_layers) * uint64_t(rows) * uint64_t(cols));
  const size_t per_layer = size_t(rows) * size_t(cols) * 4;
  for (int64_t l = 0; l < h.n_layers; ++l) {
    std::vector<int64_t> shape = cols == 1 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
    add(tf, layer(l, suffix), std::move(shape), base + size_t(l) * per_layer);
  }
}

uint64_t expected_floats(const Hparams& h, int version, const std::string& name) {
  using formats::checked_add;
  using formats::checked_mul;
  const uint64_t D = uint64_t(h.dim), H = uint64_t(h.hidden_dim), L = uint64_t(h.n_layers);
  const uint64_t V = uint64_t(h.vocab_size), KV = uint64_t(h.dim / h.n_heads * h.n_kv_heads);
  uint64_t n = checked_mul(V, D, name);                                      // embedding
  n = checked_add(n, checked_mul(L, 2 * D, name), name);                     // two norms per layer
  n = checked_add(n, checked_mul(L, checked_mul(2 * D, D, name), name), name);    // wq, wo
  n = checked_add(n, checked_mul(L, checked_mul(2 * KV, D, name), name), name);   // wk, wv
  n = checked_add(n, checked_mul(L, checked_mul(3 * H, D, name), name), name);    // w1, w2, w3
  n = checked_add(n, D, name);                                               // final norm
  if (version == 0) n = checked_add(n, checked_mul(uint64_t(h.seq_len), D / uint64_t(h.n_heads), name), name);
  if (!h.shared_classifier) n = checked_add(n, checked_mul(V, D, name), name);
  return n;
}

// The header: v0 (7 int32, the classifier shared when vocab > 0) or v1 (magic,
// version, 7 int32, the shared flag, padded to 256 bytes).
Hparams read_header(formats::ByteReader& r, const uint8_t* data, size_t size, const std::string& name,
                    int& version) {
  version = 0;
  if (size >= 4) {
    uint32_t magic;
    std::memcpy(&magic, data, 4);
    if (magic == kMagicV1) {
      r.skip(4, "the magic");
      const int32_t v = r.read<int32_t>("the version");
      if (v != 1)
        throw Error(name + ": llama2.c version " + std::to_string(v) +
                    " is not supported (expected 1, the fp32 format; version 2 is int8-quantized)");
      version = 1;
    }
  }
  int32_t f[7];
  for (int32_t& x : f) x = r.read<int32_t>("the llama2.c header");
  Hparams h{f[0], f[1], f[2], f[3], f[4], f[5], f[6], true};
  if (version == 0) {
    h.shared_classifier = h.vocab_size > 0;
    if (h.vocab_size < 0) h.vocab_size = -int64_t(h.vocab_size);
  } else {
    const uint8_t shared = r.read<uint8_t>("the shared-classifier flag");
    if (shared > 1) throw Error(name + ": shared-classifier flag " + std::to_string(shared) + " is neither 0 nor 1");
    h.shared_classifier = shared == 1;
    r.skip(kV1HeaderBytes - r.pos(), "the 256-byte header");
  }
  validate(h, name);
  return h;
}

// The weights in the order each version writes them.
void add_weights(TensorFile& tf, Cursor& c, const Hparams& h, int version) {
  const int64_t D = h.dim, H = h.hidden_dim, V = h.vocab_size, KV = Layout{h}.kv_dim();
  if (version == 0) {
    add(tf, "model.embed_tokens.weight", {V, D}, c.take(uint64_t(V * D)));
    add_stacked(tf, c, h, "input_layernorm.weight", D, 1);
  } else {
    add_stacked(tf, c, h, "input_layernorm.weight", D, 1);
    add_stacked(tf, c, h, "post_attention_layernorm.weight", D, 1);
    add(tf, "model.norm.weight", {D}, c.take(uint64_t(D)));
    add(tf, "model.embed_tokens.weight", {V, D}, c.take(uint64_t(V * D)));
  }
  add_stacked(tf, c, h, "self_attn.q_proj.weight", D, D);
  add_stacked(tf, c, h, "self_attn.k_proj.weight", KV, D);
  add_stacked(tf, c, h, "self_attn.v_proj.weight", KV, D);
  add_stacked(tf, c, h, "self_attn.o_proj.weight", D, D);
  if (version == 0) add_stacked(tf, c, h, "post_attention_layernorm.weight", D, 1);
  add_stacked(tf, c, h, "mlp.gate_proj.weight", H, D);
  add_stacked(tf, c, h, "mlp.down_proj.weight", D, H);
  add_stacked(tf, c, h, "mlp.up_proj.weight", H, D);
  if (version == 0) {
    add(tf, "model.norm.weight", {D}, c.take(uint64_t(D)));
    c.take(uint64_t(h.seq_len) * uint64_t(D / h.n_heads));  // freq_cis real and imaginary parts (unused)
  }
  if (!h.shared_classifier) add(tf, "lm_head.weight", {V, D}, c.take(uint64_t(V * D)));
}

void set_metadata(Metadata& m, const Hparams& h, int version) {
  m.set("dim", int32_t(h.dim));
  m.set("hidden_dim", int32_t(h.hidden_dim));
  m.set("n_layers", int32_t(h.n_layers));
  m.set("n_heads", int32_t(h.n_heads));
  m.set("n_kv_heads", int32_t(h.n_kv_heads));
  m.set("vocab_size", int32_t(h.vocab_size));
  m.set("seq_len", int32_t(h.seq_len));
  m.set("shared_classifier", h.shared_classifier);
  m.set("version", int32_t(version));
  m.set("rope_interleaved", true);
}

}  // namespace

TensorFile parse_llama2c(const uint8_t* data, size_t size, const std::string& name) {
  TensorFile tf(FileFormat::Llama2c, name);
  formats::ByteReader r(data, size, name);
  int version = 0;
  const Hparams h = read_header(r, data, size, name, version);
  const uint64_t floats = expected_floats(h, version, name);
  const uint64_t need = formats::checked_add(r.pos(), formats::checked_mul(floats, 4, name), name);
  if (need != size)
    throw Error(name + ": llama2.c v" + std::to_string(version) + " file is " + std::to_string(size) +
                " bytes but its header (dim " + std::to_string(h.dim) + ", hidden_dim " + std::to_string(h.hidden_dim) +
                ", n_layers " + std::to_string(h.n_layers) + ", vocab " + std::to_string(h.vocab_size) +
                ") requires exactly " + std::to_string(need));
  Cursor c(data + r.pos(), size - r.pos());
  add_weights(tf, c, h, version);
  set_metadata(tf.metadata(), h, version);
  return tf;
}

TensorFile load_llama2c(const std::string& path) {
  auto mapped = std::make_shared<MappedFile>(path);
  TensorFile tf = parse_llama2c(mapped->data(), mapped->size(), path);
  tf.keep_alive(std::move(mapped));
  return tf;
}

}  // namespace sinklab
