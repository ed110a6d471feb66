// Reads a Hugging Face tokenizer.json into an HfPipeline, checking every
// field it uses; anything unsupported or malformed is an Error that names
// the file and the JSON location.
#include <nlohmann/json.hpp>

#include "sinklab/json_text.h"
#include "hf_tokenizer.h"

namespace sinklab::tok {
namespace {

using nlohmann::json;

constexpr int64_t kMaxTokenId = (int64_t(1) << 24) - 1;

class ConfigReader {
 public:
  ConfigReader(const std::string& source, const TokenizerJsonOptions& options)
      : source_(source), options_(options) {}

  HfPipeline read(const json& root, int32_t& bos_id, int32_t& eos_id) {
    if (!root.is_object()) fail("top level", "expected a JSON object");
    read_model(member(root, "model", "top level"));
    read_added_tokens(root);
    check_id_density();
    if (const json* n = optional(root, "normalizer")) read_normalizer(*n, "normalizer");
    if (const json* pre = optional(root, "pre_tokenizer")) read_pre_tokenizer(*pre, "pre_tokenizer");
    if (const json* dec = optional(root, "decoder")) read_decoder(*dec, "decoder");
    bos_id = choose_bos(root);
    eos_id = choose_eos();
    return std::move(p_);
  }

 private:
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error("tokenizer.json '" + source_ + "': " + where + ": " + what);
  }

  const json& member(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object()) fail(where, "expected a JSON object");
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) fail(where, std::string("missing \"") + key + "\"");
    return *it;
  }
  // Null when absent or null.
  static const json* optional(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  std::string string_of(const json& j, const std::string& where) const {
    if (!j.is_string()) fail(where, "expected a string");
    return j.get<std::string>();
  }
  bool bool_field(const json& obj, const char* key, bool fallback, const std::string& where) const {
    const json* j = optional(obj, key);
    if (!j) return fallback;
    if (!j->is_boolean()) fail(where + "." + key, "expected true or false");
    return j->get<bool>();
  }
  std::string type_of(const json& obj, const std::string& where) const {
    return string_of(member(obj, "type", where), where + ".type");
  }
  int32_t id_of(const json& j, const std::string& where) const {
    if (!j.is_number_integer()) fail(where, "expected an integer token id");
    const int64_t id = j.get<int64_t>();
    if (id < 0 || id > kMaxTokenId || (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(kMaxTokenId)))
      fail(where, "token id " + j.dump() + " is outside [0, " + std::to_string(kMaxTokenId) + "]");
    return static_cast<int32_t>(id);
  }
  // Id of a vocabulary or added token by its text; -1 if none.
  int32_t find_token(const std::string& text) const {
    for (const auto& t : p_.added)
      if (t.content == text) return t.id;
    const auto it = p_.vocab.find(text);
    return it == p_.vocab.end() ? -1 : it->second;
  }

  void read_model(const json& model) {
    const std::string where = "model";
    if (const json* type = optional(model, "type")) {
      const std::string t = string_of(*type, "model.type");
      if (t != "BPE") fail("model.type", "unsupported model \"" + t + "\" (only BPE)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json* j = optional(model, key);
      if (j && string_of(*j, std::string("model.") + key) != "")
        fail(std::string("model.") + key, "not supported");
    }
    p_.byte_fallback = bool_field(model, "byte_fallback", false, where);
    p_.fuse_unk = bool_field(model, "fuse_unk", false, where);
    p_.ignore_merges = bool_field(model, "ignore_merges", false, where);

    const json& vocab = member(model, "vocab", where);
    if (!vocab.is_object()) fail("model.vocab", "expected an object of token -> id");
    std::vector<char> seen;
    for (const auto& [text, id_json] : vocab.items()) {
      const int32_t id = id_of(id_json, "model.vocab[\"" + text + "\"]");
      if (size_t(id) >= seen.size()) seen.resize(size_t(id) + 1, 0);
      if (seen[size_t(id)]) fail("model.vocab[\"" + text + "\"]", "id " + std::to_string(id) + " used twice");
      seen[size_t(id)] = 1;
      p_.vocab.emplace(text, id);
    }
    read_merges(member(model, "merges", where));
    if (const json* unk = optional(model, "unk_token")) {
      const std::string name = string_of(*unk, "model.unk_token");
      const auto it = p_.vocab.find(name);
      if (it == p_.vocab.end()) fail("model.unk_token", "\"" + name + "\" is not in the vocabulary");
      p_.unk_id = it->second;
    }
  }

  void read_merges(const json& merges) {
    if (!merges.is_array()) fail("model.merges", "expected an array");
    p_.merges.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& m = merges[rank];
      const std::string where = "model.merges[" + std::to_string(rank) + "]";
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          fail(where, "expected \"left right\" with exactly one space, got \"" + s + "\"");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = string_of(m[0], where + "[0]");
        b = string_of(m[1], where + "[1]");
      } else {
        fail(where, "expected \"left right\" or [left, right]");
      }
      const auto left = p_.vocab.find(a), right = p_.vocab.find(b), merged = p_.vocab.find(a + b);
      if (left == p_.vocab.end()) fail(where, "token \"" + a + "\" is not in the vocabulary");
      if (right == p_.vocab.end()) fail(where, "token \"" + b + "\" is not in the vocabulary");
      if (merged == p_.vocab.end()) fail(where, "merged token \"" + a + b + "\" is not in the vocabulary");
      p_.merges.emplace(pair_key(left->second, right->second),
                        std::make_pair(static_cast<int32_t>(rank), merged->second));
    }
  }

  void read_added_tokens(const json& root) {
    const json* list = optional(root, "added_tokens");
    if (!list) return;
    if (!list->is_array()) fail("added_tokens", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const json& t = (*list)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      HfAddedToken token;
      token.id = id_of(member(t, "id", where), where + ".id");
      token.content = string_of(member(t, "content", where), where + ".content");
      if (token.content.empty()) fail(where + ".content", "empty token text");
      token.special = bool_field(t, "special", false, where);
      token.lstrip = bool_field(t, "lstrip", false, where);
      token.rstrip = bool_field(t, "rstrip", false, where);
      p_.added.push_back(std::move(token));
    }
  }

  // Ids index dense tables, so a few huge ids must not allocate gigabytes;
  // ids up to kSparseIdLimit are always allowed (a small test vocabulary with
  // the specials of a real one, such as gpt-oss's <|start|> = 200006).
  void check_id_density() const {
    constexpr int64_t kSparseIdLimit = int64_t(1) << 18;
    int64_t max_id = -1;
    for (const auto& [text, id] : p_.vocab) max_id = std::max<int64_t>(max_id, id);
    for (const auto& t : p_.added) max_id = std::max<int64_t>(max_id, t.id);
    if (max_id < 0) fail("model.vocab", "no tokens");
    const int64_t count = int64_t(p_.vocab.size() + p_.added.size());
    if (max_id > std::max(2 * count + 1024, kSparseIdLimit))
      fail("model.vocab", "token ids are too sparse (largest id " + std::to_string(max_id) +
                              " for " + std::to_string(count) + " tokens)");
  }

  void read_normalizer(const json& n, const std::string& where) {
    const std::string type = type_of(n, where);
    if (type == "Sequence") {
      const json& list = member(n, "normalizers", where);
      if (!list.is_array()) fail(where + ".normalizers", "expected an array");
      for (size_t i = 0; i < list.size(); ++i)
        read_normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]");
    } else if (type == "Prepend") {
      p_.normalizer.push_back({true, "", string_of(member(n, "prepend", where), where + ".prepend")});
    } else if (type == "Replace") {
      p_.normalizer.push_back({false, string_pattern(n, where),
                               string_of(member(n, "content", where), where + ".content")});
    } else if (type == "NFC") {
      // Treated as identity: text given to models is nearly always NFC already.
    } else {
      fail(where, "unsupported normalizer \"" + type + "\"");
    }
  }

  std::string string_pattern(const json& obj, const std::string& where) const {
    const json& pattern = member(obj, "pattern", where);
    if (const json* s = optional(pattern, "String")) return string_of(*s, where + ".pattern.String");
    fail(where + ".pattern", "only {\"String\": ...} patterns are supported here");
  }

  void read_pre_tokenizer(const json& pre, const std::string& where) {
    const std::string type = type_of(pre, where);
    if (type == "Sequence") {
      const json& list = member(pre, "pretokenizers", where);
      if (!list.is_array()) fail(where + ".pretokenizers", "expected an array");
      for (size_t i = 0; i < list.size(); ++i)
        read_pre_tokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
    } else if (type == "ByteLevel") {
      p_.byte_level = true;
      p_.byte_level_prefix_space = bool_field(pre, "add_prefix_space", true, where);
      if (bool_field(pre, "use_regex", true, where)) {
        if (p_.split || !p_.split_delimiter.empty()) fail(where, "a second split is not supported");
        p_.split = true;
        p_.split_rules = SplitRules{SplitPattern::Gpt2, 0};
      }
    } else if (type == "Split") {
      read_split(pre, where);
    } else if (type == "Metaspace") {
      p_.metaspace = true;
      read_metaspace(pre, where, p_.metaspace_replacement, p_.metaspace_prepend);
      p_.metaspace_split = bool_field(pre, "split", true, where);
    } else {
      fail(where, "unsupported pre_tokenizer \"" + type + "\"");
    }
    if (p_.metaspace && (p_.byte_level || p_.split || !p_.split_delimiter.empty()))
      fail(where, "Metaspace combined with ByteLevel or Split is not supported");
  }

  void read_split(const json& pre, const std::string& where) {
    if (p_.split || !p_.split_delimiter.empty()) fail(where, "a second split is not supported");
    const json& pattern = member(pre, "pattern", where);
    const json* b = optional(pre, "behavior");
    const std::string behavior = b ? string_of(*b, where + ".behavior") : "Isolated";
    const bool invert = bool_field(pre, "invert", false, where);
    if (const json* literal = optional(pattern, "String")) {
      p_.split_delimiter = string_of(*literal, where + ".pattern.String");
      if (p_.split_delimiter.empty()) fail(where + ".pattern.String", "empty delimiter");
      if (invert) fail(where + ".invert", "not supported for a String pattern");
      p_.split_behavior = split_behavior(behavior, where + ".behavior");
      return;
    }
    const json* regex = optional(pattern, "Regex");
    if (!regex) fail(where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    const std::string r = string_of(*regex, where + ".pattern.Regex");
    if (!recognise_split_regex(r, p_.split_rules))
      fail(where + ".pattern.Regex", "unsupported split regex \"" + r +
                                         "\" (supported: the GPT-2, Llama-3, Qwen2 and o200k patterns)");
    // The supported regexes match every character, so keeping the matches
    // and dropping the rest (Removed + invert) splits as Isolated does.
    if (!(behavior == "Isolated" && !invert) && !(behavior == "Removed" && invert))
      fail(where + ".behavior", "only \"Isolated\" (or \"Removed\" with invert) is supported for a regex");
    p_.split = true;
  }

  HfPipeline::SplitBehavior split_behavior(const std::string& name, const std::string& where) const {
    using B = HfPipeline::SplitBehavior;
    if (name == "Removed") return B::Removed;
    if (name == "Isolated") return B::Isolated;
    if (name == "MergedWithPrevious") return B::MergedWithPrevious;
    if (name == "MergedWithNext") return B::MergedWithNext;
    if (name == "Contiguous") return B::Contiguous;
    fail(where, "unknown behavior \"" + name + "\"");
  }

  void read_metaspace(const json& obj, const std::string& where, std::string& replacement,
                      HfPipeline::Prepend& prepend) const {
    if (const json* r = optional(obj, "replacement")) replacement = string_of(*r, where + ".replacement");
    prepend = bool_field(obj, "add_prefix_space", true, where) ? HfPipeline::Prepend::Always
                                                               : HfPipeline::Prepend::Never;
    if (const json* scheme = optional(obj, "prepend_scheme")) {
      const std::string s = string_of(*scheme, where + ".prepend_scheme");
      if (s == "always") prepend = HfPipeline::Prepend::Always;
      else if (s == "first") prepend = HfPipeline::Prepend::First;
      else if (s == "never") prepend = HfPipeline::Prepend::Never;
      else fail(where + ".prepend_scheme", "expected always, first or never");
    }
  }

  void read_decoder(const json& dec, const std::string& where) {
    const std::string type = type_of(dec, where);
    if (type == "ByteLevel") {
      p_.decoder = HfPipeline::Decoder::ByteLevel;
      return;
    }
    if (p_.decoder == HfPipeline::Decoder::Plain) p_.decoder = HfPipeline::Decoder::Pieces;
    if (type == "Sequence") {
      const json& list = member(dec, "decoders", where);
      if (!list.is_array()) fail(where + ".decoders", "expected an array");
      for (size_t i = 0; i < list.size(); ++i)
        read_decoder(list[i], where + ".decoders[" + std::to_string(i) + "]");
    } else if (type == "Replace") {
      p_.decoder_replace.emplace_back(string_pattern(dec, where),
                                      string_of(member(dec, "content", where), where + ".content"));
    } else if (type == "ByteFallback") {
      p_.decoder_byte_fallback = true;
    } else if (type == "Fuse") {
      // Joining the pieces is what decoding does anyway.
    } else if (type == "Strip") {
      const std::string content = string_of(member(dec, "content", where), where + ".content");
      const json& start = member(dec, "start", where);
      const json* stop = optional(dec, "stop");
      if (content != " ") fail(where + ".content", "only \" \" is supported");
      if (!start.is_number_integer() || start.get<int64_t>() < 0 || start.get<int64_t>() > 16)
        fail(where + ".start", "expected a small non-negative integer");
      if (stop && !(stop->is_number_integer() && stop->get<int64_t>() == 0))
        fail(where + ".stop", "only 0 is supported");
      p_.decoder_strip_leading_spaces = static_cast<int>(start.get<int64_t>());
    } else if (type == "Metaspace") {
      std::string replacement = "\xE2\x96\x81";
      HfPipeline::Prepend prepend = HfPipeline::Prepend::Always;
      read_metaspace(dec, where, replacement, prepend);
      p_.decoder_replace.emplace_back(replacement, " ");
      if (prepend != HfPipeline::Prepend::Never) p_.decoder_strip_leading_spaces = 1;
    } else {
      fail(where, "unsupported decoder \"" + type + "\"");
    }
  }

  // BOS: options, else the special token the TemplateProcessing post-processor
  // puts first, else (no post-processor at all) a well-known name. Records
  // whether the post-processor adds a BOS.
  int32_t choose_bos(const json& root) {
    const json* post = optional(root, "post_processor");
    const json* tp = post ? find_template(*post) : nullptr;
    const json* single = tp ? optional(*tp, "single") : nullptr;
    const json* special = single && single->is_array() && !single->empty()
                              ? optional((*single)[0], "SpecialToken")
                              : nullptr;
    p_.post_processor_adds_bos = special != nullptr;
    if (!options_.bos_token.empty()) return named_token(options_.bos_token, "bos_token option");
    if (!post) return first_known({"<s>", "<|begin_of_text|>"});
    if (!special) return -1;
    const std::string name = string_of(member(*special, "id", "post_processor.single[0]"),
                                       "post_processor.single[0].SpecialToken.id");
    if (const json* map = optional(*tp, "special_tokens")) {
      if (const json* entry = optional(*map, name.c_str())) {
        const json* ids = optional(*entry, "ids");
        if (ids && ids->is_array() && ids->size() == 1)
          return checked_existing(id_of((*ids)[0], "post_processor.special_tokens." + name));
      }
    }
    const int32_t id = find_token(name);
    if (id < 0) fail("post_processor", "special token \"" + name + "\" is not in the vocabulary");
    return id;
  }

  const json* find_template(const json& post) const {
    const json* type = optional(post, "type");
    if (!type || !type->is_string()) return nullptr;
    if (*type == "TemplateProcessing") return &post;
    if (*type == "Sequence") {
      const json* list = optional(post, "processors");
      if (!list || !list->is_array()) return nullptr;
      for (const json& p : *list)
        if (const json* t = find_template(p)) return t;
    }
    return nullptr;
  }

  int32_t checked_existing(int32_t id) const {
    for (const auto& t : p_.added)
      if (t.id == id) return id;
    for (const auto& [text, vid] : p_.vocab)
      if (vid == id) return id;
    fail("post_processor", "token id " + std::to_string(id) + " is not in the vocabulary");
  }

  int32_t choose_eos() const {
    if (!options_.eos_token.empty()) return named_token(options_.eos_token, "eos_token option");
    return first_known({"</s>", "<|end_of_text|>", "<|endoftext|>"});
  }

  int32_t named_token(const std::string& name, const std::string& what) const {
    const int32_t id = find_token(name);
    if (id < 0) fail(what, "\"" + name + "\" is not in the vocabulary");
    return id;
  }

  int32_t first_known(std::initializer_list<const char*> names) const {
    for (const char* name : names)
      if (int32_t id = find_token(name); id >= 0) return id;
    return -1;
  }

  std::string source_;
  TokenizerJsonOptions options_;
  HfPipeline p_;
};

}  // namespace

HfPipeline parse_tokenizer_json(std::string_view text, const std::string& source,
                                const TokenizerJsonOptions& options, int32_t& bos_id,
                                int32_t& eos_id) {
  const json root = parse_json_text(text, "tokenizer.json '" + source + "'");
  try {
    return ConfigReader(source, options).read(root, bos_id, eos_id);
  } catch (const json::exception& e) {
    throw Error("tokenizer.json '" + source + "': unexpected JSON shape (" + e.what() + ")");
  }
}

}  // namespace sinklab::tok

namespace sinklab {

std::unique_ptr<Tokenizer> tokenizer_from_json_string(std::string_view json,
                                                      const std::string& source_name,
                                                      const TokenizerJsonOptions& options) {
  int32_t bos = -1, eos = -1;
  tok::HfPipeline pipeline = tok::parse_tokenizer_json(json, source_name, options, bos, eos);
  return std::make_unique<tok::HfTokenizer>(std::move(pipeline), bos, eos);
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path,
                                               const TokenizerJsonOptions& options) {
  const MappedFile file(path);
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  return tokenizer_from_json_string(text, path, options);
}

}  // namespace sinklab
