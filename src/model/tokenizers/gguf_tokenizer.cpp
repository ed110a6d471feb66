// The tokenizer embedded in GGUF metadata (llama.cpp's tokenizer.ggml.* keys),
// rebuilt as the equivalent llama2.c tokenizer.bin ("llama") or Hugging Face
// tokenizer.json ("gpt2") and run by those tokenizers; and the writer of those
// keys for score-driven vocabularies and byte-level BPE tokenizer.json files.
#include <algorithm>
#include <cfloat>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "byte_level.h"
#include "hf_tokenizer.h"
#include "score_bpe.h"
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

// llama.cpp's tokenizer.ggml.pre names whose split regex is one sinklab
// scans exactly (src/llama-vocab.cpp: LLAMA3, DBRX and SMAUG share the Llama-3
// regex; QWEN2, STABLELM2, HUNYUAN and SOLAR_OPEN the Qwen2 one; GPT2, MPT,
// OLMO, JAIS, TRILLION and GRANITE_DOCLING the GPT-2 one; GPT4O, for gpt-4o
// (gpt-oss) and llama4, the o200k one), with llama.cpp's ignore_merges for each. Names that also change BOS or add a SEP token
// (chatglm-bpe, glm4, roberta-bpe, jina-v1-en, jina-v2-code) are left out.
struct PreName {
  const char* name;
  PretokenizerPattern pattern;
  bool ignore_merges;
};
constexpr PreName kPreNames[] = {
    // The names the writer uses come first in each group.
    {"gpt-2", PretokenizerPattern::Gpt2, false},
    {"phi-2", PretokenizerPattern::Gpt2, false},
    {"jina-es", PretokenizerPattern::Gpt2, false},
    {"jina-de", PretokenizerPattern::Gpt2, false},
    {"jina-v2-es", PretokenizerPattern::Gpt2, false},
    {"jina-v2-de", PretokenizerPattern::Gpt2, false},
    {"gigachat", PretokenizerPattern::Gpt2, false},
    {"a.x-4.0", PretokenizerPattern::Gpt2, false},
    {"mellum", PretokenizerPattern::Gpt2, false},
    {"modern-bert", PretokenizerPattern::Gpt2, false},
    {"exaone4", PretokenizerPattern::Gpt2, false},
    {"mpt", PretokenizerPattern::Gpt2, false},
    {"olmo", PretokenizerPattern::Gpt2, false},
    {"jais", PretokenizerPattern::Gpt2, false},
    {"trillion", PretokenizerPattern::Gpt2, false},
    {"granite-docling", PretokenizerPattern::Gpt2, false},
    {"llama-bpe", PretokenizerPattern::Llama3, true},
    {"llama3", PretokenizerPattern::Llama3, true},
    {"llama-v3", PretokenizerPattern::Llama3, true},
    {"falcon3", PretokenizerPattern::Llama3, true},
    {"falcon-h1", PretokenizerPattern::Llama3, true},
    {"pixtral", PretokenizerPattern::Llama3, true},
    {"midm-2.0", PretokenizerPattern::Llama3, true},
    {"lfm2", PretokenizerPattern::Llama3, true},
    {"jina-v5-nano", PretokenizerPattern::Llama3, true},
    {"smaug-bpe", PretokenizerPattern::Llama3, false},
    {"dbrx", PretokenizerPattern::Llama3, false},
    {"qwen2", PretokenizerPattern::Qwen2, false},
    {"deepseek-r1-qwen", PretokenizerPattern::Qwen2, false},
    {"kormo", PretokenizerPattern::Qwen2, false},
    {"f2llmv2", PretokenizerPattern::Qwen2, false},
    {"megrez", PretokenizerPattern::Qwen2, false},
    {"stablelm2", PretokenizerPattern::Qwen2, false},
    {"hunyuan", PretokenizerPattern::Qwen2, false},
    {"solar-open", PretokenizerPattern::Qwen2, false},
    {"gpt-4o", PretokenizerPattern::O200k, false},
    {"llama4", PretokenizerPattern::O200k, false},
};

const PreName* find_pre_name(const std::string& name) {
  for (const PreName& p : kPreNames)
    if (name == p.name) return &p;
  return nullptr;
}

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
// the special tokens and BOS/EOS of the metadata, the byte pieces wherever the
// vocabulary has them (Llama 2: ids 3..258; Gemma: elsewhere) and the dummy
// prefix of tokenizer.ggml.add_space_prefix (Gemma: none).
class SentencePieceGgufTokenizer final : public Tokenizer {
 public:
  SentencePieceGgufTokenizer(const Metadata& m, const std::string& source) : vocab_(m, source, 1, 2) {
    const std::string key = "tokenizer.ggml.scores";
    if (!m.contains(key)) vocab_.fail("scores", "missing (a \"llama\" vocabulary needs scores)");
    const std::vector<double> scores = m.get_double_array(key);
    const size_t n = vocab_.tokens.size();
    if (scores.size() != n)
      vocab_.fail("scores", std::to_string(scores.size()) + " entries for " + std::to_string(n) + " tokens");
    tok::ScoreBpeLayout layout;
    layout.byte_ids.fill(-1);
    std::vector<std::string> pieces(n);
    std::vector<float> piece_scores(n);
    for (size_t id = 0; id < n; ++id) {
      const std::string& t = vocab_.tokens[id];
      if (t.size() == 6 && t.starts_with("<0x") && t.back() == '>')
        for (int b = 0; b < 256; ++b)
          if (layout.byte_ids[size_t(b)] < 0 && t == byte_piece(b)) layout.byte_ids[size_t(b)] = int32_t(id);
      pieces[id] = replace_all(t, kSpace, " ");
      // f64 scores beyond float's range are clamped (the conversion would overflow).
      const double d = scores[id];
      piece_scores[id] = d > FLT_MAX ? FLT_MAX : d < -FLT_MAX ? -FLT_MAX : float(d);
    }
    for (int b = 0; b < 256; ++b)
      if (layout.byte_ids[size_t(b)] < 0)
        vocab_.fail("tokens", "byte token " + byte_piece(b) + " is missing (byte fallback needs <0x00>..<0xFF>)");
    layout.dummy_prefix = m.get_bool("tokenizer.ggml.add_space_prefix", true);
    inner_ = tok::score_bpe_tokenizer(std::move(pieces), std::move(piece_scores), layout);
    bos_id_ = vocab_.bos;
    eos_id_ = vocab_.eos;
    // Found by special_token_id: control tokens and user-defined ones (Gemma's
    // <start_of_turn> and <end_of_turn> are user-defined in its SentencePiece model).
    for (size_t id = 0; id < n; ++id)
      if (vocab_.special(int32_t(id)) || vocab_.types[id] == kTypeUserDefined)
        specials_.emplace(vocab_.tokens[id], int32_t(id));
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
std::unique_ptr<Tokenizer> byte_level_bpe_from_gguf(const Metadata& m, const std::string& source, const PreName& pre) {
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
  model["ignore_merges"] = pre.ignore_merges;
  if (pre.pattern != PretokenizerPattern::Gpt2) {
    const std::string regex(tok::split_regex_text(tok::split_rules_of(pre.pattern)));
    const json split = {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}};
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

// BOS/EOS ids, unless the caller (the model's configuration) set them already.
void write_special_ids(const Tokenizer& tokenizer, Metadata& m) {
  const auto set_id = [&](const char* key, int32_t id) {
    if (id >= 0 && !m.contains(key)) m.set(key, MetaValue::unsigned_integer(MetaValue::Type::U32, uint64_t(id)));
  };
  set_id("tokenizer.ggml.bos_token_id", tokenizer.bos_id());
  set_id("tokenizer.ggml.eos_token_id", tokenizer.eos_id());
}

// The tokenizer.ggml.pre name whose split and ignore_merges rule are those of
// a byte-level pipeline; nullptr when llama.cpp has none.
const char* pre_name_for(const tok::HfPipeline& p) {
  if (!p.split) return nullptr;
  PretokenizerPattern pattern = PretokenizerPattern::Gpt2;
  if (p.split_rules.pattern == tok::SplitPattern::Llama3) {
    if (p.split_rules.max_digits != 3 && p.split_rules.max_digits != 1) return nullptr;
    pattern = p.split_rules.max_digits == 3 ? PretokenizerPattern::Llama3 : PretokenizerPattern::Qwen2;
  } else if (p.split_rules.pattern == tok::SplitPattern::O200k) {
    pattern = PretokenizerPattern::O200k;
  }
  for (const PreName& name : kPreNames)  // the first of each group is the one written
    if (name.pattern == pattern && name.ignore_merges == p.ignore_merges) return name.name;
  return nullptr;
}

// Whether the rebuilt "gpt2" tokenizer (byte_level_bpe_from_gguf) encodes and
// decodes exactly as the pipeline: no normalizer, no prefix space, ByteLevel
// decoding, no byte fallback, no white-space stripping around added tokens,
// and an unknown token that can never be produced (all 256 byte symbols in
// the vocabulary).
bool gpt2_expresses(const tok::HfPipeline& p) {
  if (!p.byte_level || p.metaspace || !p.normalizer.empty() || p.byte_level_prefix_space || p.byte_fallback)
    return false;
  if (p.decoder != tok::HfPipeline::Decoder::ByteLevel) return false;
  for (const tok::HfAddedToken& t : p.added)
    if (t.lstrip || t.rstrip) return false;
  if (p.unk_id >= 0)
    for (int b = 0; b < 256; ++b)
      if (!p.vocab.contains(tok::byte_level_char(uint8_t(b)))) return false;
  return true;
}

bool write_byte_level_bpe(const tok::HfTokenizer& tokenizer, Metadata& m) {
  using Type = MetaValue::Type;
  const tok::HfPipeline& p = tokenizer.pipeline();
  const char* pre = pre_name_for(p);
  if (!pre || !gpt2_expresses(p)) return false;
  const int32_t n = tokenizer.vocab_size();
  MetaValue::Array tokens, types;
  std::unordered_map<std::string, int32_t> seen;
  for (int32_t id = 0; id < n; ++id) {
    std::string text = tokenizer.token_text(id);
    if (text.empty())
      throw Error("GGUF export: the tokenizer has no token for id " + std::to_string(id) +
                  " (a GGUF vocabulary needs one for every id from 0 to " + std::to_string(n - 1) + ")");
    if (!seen.emplace(text, id).second) return false;  // llama.cpp rejects duplicate token texts
    int64_t type = 1;
    if (tokenizer.is_special(id)) type = kTypeControl;
    else if (tokenizer.special_token_id(text) == id) type = kTypeUserDefined;
    tokens.emplace_back(std::move(text));
    types.push_back(MetaValue::integer(Type::I32, type));
  }
  // Merges in rank order (ranks may have gaps where tokenizer.json repeats a pair).
  std::vector<std::pair<int32_t, uint64_t>> ranked;
  ranked.reserve(p.merges.size());
  for (const auto& [pair, rank_and_merged] : p.merges) ranked.emplace_back(rank_and_merged.first, pair);
  std::sort(ranked.begin(), ranked.end());
  MetaValue::Array merges;
  merges.reserve(ranked.size());
  for (const auto& [rank, pair] : ranked)
    merges.emplace_back(tokenizer.token_text(int32_t(pair >> 32)) + " " +
                        tokenizer.token_text(int32_t(pair & 0xFFFFFFFFu)));
  m.set("tokenizer.ggml.model", "gpt2");
  m.set("tokenizer.ggml.pre", pre);
  m.set("tokenizer.ggml.tokens", MetaValue::array(Type::String, std::move(tokens)));
  m.set("tokenizer.ggml.token_type", MetaValue::array(Type::I32, std::move(types)));
  m.set("tokenizer.ggml.merges", MetaValue::array(Type::String, std::move(merges)));
  write_special_ids(tokenizer, m);
  // Explicit either way: llama.cpp's Llama-3 names add a BOS unless told not to.
  m.set("tokenizer.ggml.add_bos_token", p.post_processor_adds_bos && tokenizer.bos_id() >= 0);
  return true;
}

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
    if (const PreName* known = find_pre_name(pre)) return byte_level_bpe_from_gguf(m, source, *known);
    why = "GGUF tokenizer '" + source + "': tokenizer.ggml.pre \"" + pre +
          "\" is not supported (expected a name with the GPT-2, Llama-3 or Qwen2 split, e.g. gpt-2, "
          "llama-bpe, qwen2); give a tokenizer file (--tokenizer, or tokenizer= in Python)";
  } else {
    why = "GGUF tokenizer '" + source + "': tokenizer.ggml.model \"" + model +
          "\" is not supported (expected llama or gpt2); give a tokenizer file (--tokenizer, or tokenizer= in Python)";
  }
  const std::string tokens_key = "tokenizer.ggml.tokens";
  int64_t n = 0;
  if (m.contains(tokens_key) && m.at(tokens_key).is_array()) n = int64_t(m.at(tokens_key).as_array().size());
  if (n > kMaxTokens) throw Error("GGUF tokenizer '" + source + "': " + tokens_key + " holds too many tokens");
  return std::make_unique<UnsupportedGgufTokenizer>(int32_t(n), why);
}

bool write_gguf_tokenizer(const Tokenizer& tokenizer, Metadata& m) {
  if (const auto* hf = dynamic_cast<const tok::HfTokenizer*>(&tokenizer)) return write_byte_level_bpe(*hf, m);
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
  write_special_ids(tokenizer, m);
  return true;
}

}  // namespace sinklab
