// The tokenizer embedded in GGUF metadata (llama.cpp's tokenizer.ggml.* keys),
// rebuilt as the equivalent llama2.c tokenizer.bin ("llama") or Hugging Face
// tokenizer.json ("gpt2") and run by those tokenizers.
#include <cfloat>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "sinklab/formats.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxTokens = int64_t(1) << 24;
constexpr int32_t kFirstByteId = 3;  // llama2.c's byte fallback: byte b is token 3 + b
// llama.cpp's token types.
constexpr int64_t kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4;
const std::string kSpace = "\xE2\x96\x81";  // "▁", SentencePiece's escaped space

const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string byte_piece(int b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

// The tokenizer.ggml.* arrays and ids, checked against each other.
struct GgufVocab {
  std::string source;
  std::vector<std::string> tokens;
  std::vector<int64_t> types;  // 1 (normal) where the file has no token_type
  int32_t bos = -1, eos = -1;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error("GGUF tokenizer '" + source + "': tokenizer.ggml." + key + ": " + what);
  }

  GgufVocab(const Metadata& m, const std::string& src, int32_t default_bos, int32_t default_eos) : source(src) {
    const std::string p = "tokenizer.ggml.";
    if (!m.contains(p + "tokens")) fail("tokens", "missing");
    const MetaValue& list = m.at(p + "tokens");
    if (!list.is_array() || list.element_type() != MetaValue::Type::String)
      fail("tokens", "expected an array of strings");
    if (list.as_array().empty() || int64_t(list.as_array().size()) > kMaxTokens)
      fail("tokens", std::to_string(list.as_array().size()) + " tokens; expected 1 to " + std::to_string(kMaxTokens));
    tokens = m.get_string_array(p + "tokens");
    types.assign(tokens.size(), 1);
    if (m.contains(p + "token_type")) {
      types = m.get_int_array(p + "token_type");
      if (types.size() != tokens.size())
        fail("token_type", std::to_string(types.size()) + " entries for " + std::to_string(tokens.size()) + " tokens");
    }
    bos = read_id(m, "bos_token_id", default_bos);
    eos = read_id(m, "eos_token_id", default_eos);
  }

  int32_t read_id(const Metadata& m, const std::string& key, int32_t fallback) const {
    const std::string full = "tokenizer.ggml." + key;
    if (!m.contains(full)) return fallback < int64_t(tokens.size()) ? fallback : -1;
    const int64_t id = m.get_int(full);
    if (id < 0 || id >= int64_t(tokens.size()))
      fail(key, "id " + std::to_string(id) + " is outside [0, " + std::to_string(tokens.size()) + ")");
    return int32_t(id);
  }

  bool special(int32_t id) const {
    return types[size_t(id)] == kTypeUnknown || types[size_t(id)] == kTypeControl || id == bos || id == eos;
  }
};

// "llama": llama2.c's encoder and decoder on the same pieces and scores, with
// the special tokens and BOS/EOS of the metadata.
class SentencePieceGgufTokenizer final : public Tokenizer {
 public:
  SentencePieceGgufTokenizer(const Metadata& m, const std::string& source) : vocab_(m, source, 1, 2) {
    const std::string key = "tokenizer.ggml.scores";
    if (!m.contains(key)) vocab_.fail("scores", "missing (a \"llama\" vocabulary needs scores)");
    const std::vector<double> scores = m.get_double_array(key);
    const size_t n = vocab_.tokens.size();
    if (scores.size() != n)
      vocab_.fail("scores", std::to_string(scores.size()) + " entries for " + std::to_string(n) + " tokens");
    for (int b = 0; b < 256; ++b)
      if (size_t(kFirstByteId + b) >= n || vocab_.tokens[size_t(kFirstByteId + b)] != byte_piece(b))
        vocab_.fail("tokens", "byte tokens <0x00>..<0xFF> must sit at ids 3..258 (id " +
                                  std::to_string(kFirstByteId + b) + " is not " + byte_piece(b) + ")");
    std::vector<uint8_t> bytes(4, 0);
    for (size_t id = 0; id < n; ++id) {
      const std::string piece = replace_all(vocab_.tokens[id], kSpace, " ");
      // f64 scores beyond float's range are clamped (the conversion would overflow).
      const double d = scores[id];
      const float score = d > FLT_MAX ? FLT_MAX : d < -FLT_MAX ? -FLT_MAX : float(d);
      const int32_t len = int32_t(piece.size());
      const size_t at = bytes.size();
      bytes.resize(at + 8 + piece.size());
      std::memcpy(bytes.data() + at, &score, 4);
      std::memcpy(bytes.data() + at + 4, &len, 4);
      std::memcpy(bytes.data() + at + 8, piece.data(), piece.size());
    }
    inner_ = llama2c_tokenizer_from_bytes(bytes, int32_t(n), source);
    bos_id_ = vocab_.bos;
    eos_id_ = vocab_.eos;
    for (size_t id = 0; id < n; ++id)
      if (vocab_.special(int32_t(id))) specials_.emplace(vocab_.tokens[id], int32_t(id));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids = inner_->encode(text, false);
    if (add_bos && bos_id_ >= 0) ids.insert(ids.begin(), bos_id_);
    return ids;
  }
  void decode_append(int32_t id, bool skip_special, DecodeState& state, std::string& out) const override {
    check_id(id);
    if (!is_special(id)) return inner_->decode_append(id, false, state, out);
    if (!skip_special) out += vocab_.tokens[size_t(id)];
    state.at_start = id == bos_id_;
  }
  std::string token_text(int32_t id) const override {
    check_id(id);
    return vocab_.tokens[size_t(id)];
  }
  int32_t vocab_size() const override { return inner_->vocab_size(); }
  int32_t special_token_id(std::string_view text) const override {
    const auto it = specials_.find(std::string(text));
    return it == specials_.end() ? -1 : it->second;
  }
  bool is_special(int32_t id) const override { return id >= 0 && id < vocab_size() && vocab_.special(id); }
  std::span<const float> piece_scores() const override { return inner_->piece_scores(); }

 private:
  GgufVocab vocab_;
  std::unique_ptr<Tokenizer> inner_;
  std::unordered_map<std::string, int32_t> specials_;
};

// "gpt2": the equivalent tokenizer.json text.
std::unique_ptr<Tokenizer> byte_level_bpe_from_gguf(const Metadata& m, const std::string& source,
                                                    const std::string& pre) {
  const GgufVocab vocab(m, source, -1, -1);
  json vocab_json = json::object();
  json added = json::array();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    const std::string& t = vocab.tokens[id];
    if (t.empty() || first_invalid_utf8(t) >= 0)
      vocab.fail("tokens", "token " + std::to_string(id) + " is empty or not valid UTF-8");
    if (vocab_json.contains(t))
      vocab.fail("tokens", "token \"" + t + "\" appears twice (ids " + std::to_string(vocab_json[t].get<int64_t>()) +
                               " and " + std::to_string(id) + ")");
    vocab_json[t] = id;
    const int64_t type = vocab.types[id];
    if (type == kTypeControl || type == kTypeUserDefined)
      added.push_back({{"id", id}, {"content", t}, {"special", type == kTypeControl}});
  }
  const std::string merges_key = "tokenizer.ggml.merges";
  if (!m.contains(merges_key)) vocab.fail("merges", "missing (a \"gpt2\" vocabulary needs merges)");
  json merges = json::array();
  for (const std::string& merge : m.get_string_array(merges_key)) {
    if (first_invalid_utf8(merge) >= 0) vocab.fail("merges", "merge \"" + merge + "\" is not valid UTF-8");
    merges.push_back(merge);
  }
  json model = {{"type", "BPE"}, {"vocab", std::move(vocab_json)}, {"merges", std::move(merges)}};
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  json pre_tokenizer;
  if (pre == "llama-bpe" || pre == "qwen2") {
    model["ignore_merges"] = pre == "llama-bpe";  // as llama.cpp's Llama-3 vocabulary
    const json split = {{"type", "Split"},
                        {"pattern", {{"Regex", pre == "qwen2" ? kQwen2Regex : kLlama3Regex}}},
                        {"behavior", "Isolated"}};
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level})}};
  } else {
    byte_level["use_regex"] = true;  // the GPT-2 split
    pre_tokenizer = byte_level;
  }
  const json root = {{"model", std::move(model)},
                     {"pre_tokenizer", std::move(pre_tokenizer)},
                     {"decoder", {{"type", "ByteLevel"}}},
                     {"added_tokens", std::move(added)}};
  TokenizerJsonOptions options;
  if (vocab.bos >= 0) options.bos_token = vocab.tokens[size_t(vocab.bos)];
  if (vocab.eos >= 0) options.eos_token = vocab.tokens[size_t(vocab.eos)];
  return tokenizer_from_json_string(root.dump(), source + " (tokenizer.ggml.*)", options);
}

// A vocabulary sinklab cannot run: loading the model still works, using the
// tokenizer throws.
class UnsupportedGgufTokenizer final : public Tokenizer {
 public:
  UnsupportedGgufTokenizer(int32_t n_tokens, std::string why) : n_(n_tokens), why_(std::move(why)) {}
  std::vector<int32_t> encode(std::string_view, bool) const override { throw Error(why_); }
  void decode_append(int32_t, bool, DecodeState&, std::string&) const override { throw Error(why_); }
  std::string token_text(int32_t) const override { throw Error(why_); }
  int32_t vocab_size() const override { return n_; }
  int32_t special_token_id(std::string_view) const override { throw Error(why_); }
  bool is_special(int32_t) const override { throw Error(why_); }

 private:
  int32_t n_;
  std::string why_;
};

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const Metadata& m, const std::string& source) {
  const std::string key = "tokenizer.ggml.model";
  if (!m.contains(key)) return nullptr;
  const std::string model = m.get_string(key);
  if (model == "llama") return std::make_unique<SentencePieceGgufTokenizer>(m, source);
  std::string why;
  if (model == "gpt2") {
    // llama.cpp's "default" (also used when the key is missing) splits
    // punctuation and digit groups apart, unlike GPT-2's own pattern.
    const std::string pre = m.get_string("tokenizer.ggml.pre", "default");
    if (pre == "gpt-2" || pre == "llama-bpe" || pre == "qwen2") return byte_level_bpe_from_gguf(m, source, pre);
    why = "GGUF tokenizer '" + source + "': tokenizer.ggml.pre \"" + pre +
          "\" is not supported (expected gpt-2, llama-bpe or qwen2); pass --tokenizer";
  } else {
    why = "GGUF tokenizer '" + source + "': tokenizer.ggml.model \"" + model +
          "\" is not supported (expected llama or gpt2); pass --tokenizer";
  }
  const std::string tokens_key = "tokenizer.ggml.tokens";
  int64_t n = 0;
  if (m.contains(tokens_key) && m.at(tokens_key).is_array()) n = int64_t(m.at(tokens_key).as_array().size());
  if (n > kMaxTokens) throw Error("GGUF tokenizer '" + source + "': " + tokens_key + " holds too many tokens");
  return std::make_unique<UnsupportedGgufTokenizer>(int32_t(n), why);
}

bool write_gguf_tokenizer(const Tokenizer& tokenizer, Metadata& m) {
  const std::span<const float> scores = tokenizer.piece_scores();
  const int32_t n = tokenizer.vocab_size();
  if (scores.empty() || int64_t(scores.size()) != n) return false;
  using Type = MetaValue::Type;
  const int32_t unk = tokenizer.special_token_id("<unk>");
  MetaValue::Array tokens, score_values, types;
  for (int32_t id = 0; id < n; ++id) {
    const std::string text = tokenizer.token_text(id);
    tokens.emplace_back(replace_all(text, " ", kSpace));
    score_values.emplace_back(scores[size_t(id)]);
    int64_t type = 1;
    if (id == unk) type = kTypeUnknown;
    else if (tokenizer.is_special(id)) type = kTypeControl;
    else if (id >= kFirstByteId && id < kFirstByteId + 256 && text == byte_piece(id - kFirstByteId)) type = 6;
    types.push_back(MetaValue::integer(Type::I32, type));
  }
  m.set("tokenizer.ggml.model", "llama");
  m.set("tokenizer.ggml.tokens", MetaValue::array(Type::String, std::move(tokens)));
  m.set("tokenizer.ggml.scores", MetaValue::array(Type::F32, std::move(score_values)));
  m.set("tokenizer.ggml.token_type", MetaValue::array(Type::I32, std::move(types)));
  const auto set_id = [&](const char* key, int32_t id) {
    if (id >= 0 && !m.contains(key)) m.set(key, MetaValue::unsigned_integer(Type::U32, uint64_t(id)));
  };
  set_id("tokenizer.ggml.bos_token_id", tokenizer.bos_id());
  set_id("tokenizer.ggml.eos_token_id", tokenizer.eos_id());
  return true;
}

}  // namespace sinklab
