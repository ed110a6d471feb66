// Byte-level BPE training (GPT-2 style). The text is cut at literal special
// tokens and split into words exactly as the encoder does; each distinct word
// becomes a sequence of byte symbols with its count. Pair counts are kept up
// to date incrementally: a merge rewrites only the words that contain the
// pair (each pair remembers its words), and a max-heap with lazy
// invalidation finds the next pair.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "byte_level.h"
#include "pretokenize.h"
#include "sinklab/tokenizer.h"
#include "unicode.h"

namespace sinklab {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr int32_t kMaxVocab = 1 << 24;  // the loader's id limit

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t left_of(uint64_t key) { return int32_t(key >> 32); }
int32_t right_of(uint64_t key) { return int32_t(key & 0xFFFFFFFFu); }

void check_options(std::string_view text, const BpeTrainOptions& opts) {
  const int64_t n_special = int64_t(opts.special_tokens.size());
  if (opts.vocab_size < 256 + n_special || opts.vocab_size > kMaxVocab)
    throw Error("BPE training: vocab_size " + std::to_string(opts.vocab_size) + " must be in [" +
                std::to_string(256 + n_special) + ", " + std::to_string(kMaxVocab) +
                "] (256 byte symbols + " + std::to_string(n_special) + " special tokens at least)");
  if (opts.min_pair_count < 1)
    throw Error("BPE training: min_pair_count " + std::to_string(opts.min_pair_count) + " must be >= 1");
  if (text.empty()) throw Error("BPE training: the training text is empty");
  std::unordered_set<std::string> seen;
  for (const std::string& s : opts.special_tokens) {
    if (s.empty()) throw Error("BPE training: a special token is empty");
    if (first_invalid_utf8(s) >= 0) throw Error("BPE training: a special token is not valid UTF-8");
    if (!seen.insert(s).second) throw Error("BPE training: special token \"" + s + "\" is given twice");
    for (int b = 0; b < 256; ++b)
      if (s == tok::byte_level_char(uint8_t(b)))
        throw Error("BPE training: special token \"" + s +
                    "\" is also a byte symbol of the vocabulary; use a longer name");
  }
}

// The pieces of text between literal special tokens; at each position the
// longest special wins, as in the encoder.
std::vector<std::string_view> cut_at_specials(std::string_view text, const std::vector<std::string>& specials) {
  std::vector<std::vector<const std::string*>> by_first_byte(256);
  for (const std::string& s : specials) by_first_byte[uint8_t(s[0])].push_back(&s);
  for (auto& bucket : by_first_byte)
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  std::vector<std::string_view> pieces;
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const std::string* match = nullptr;
    for (const std::string* s : by_first_byte[uint8_t(text[pos])])
      if (text.substr(pos).starts_with(*s)) {
        match = s;
        break;
      }
    if (!match) {
      ++pos;
      continue;
    }
    if (pos > start) pieces.push_back(text.substr(start, pos - start));
    pos += match->size();
    start = pos;
  }
  if (start < text.size()) pieces.push_back(text.substr(start));
  return pieces;
}

using WordCounts = std::unordered_map<std::string, int64_t>;

void count_words(std::string_view text, const BpeTrainOptions& opts, WordCounts& counts) {
  for (std::string_view piece : cut_at_specials(text, opts.special_tokens))
    for (std::string_view w : pretokenize(piece, opts.pattern)) ++counts[std::string(w)];
}

// Whether a special token occurs across position p of text.
bool special_crosses(std::string_view text, size_t p, const std::vector<std::string>& specials) {
  for (const std::string& s : specials) {
    const size_t from = p >= s.size() ? p - s.size() + 1 : 0;
    const size_t at = text.substr(0, std::min(text.size(), p + s.size() - 1)).find(s, from);
    if (at != std::string_view::npos && at < p) return true;
  }
  return false;
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

struct PairStats {
  int64_t count = 0;
  std::vector<int32_t> words;  // indices of words that contain (or contained) the pair
};

struct HeapEntry {
  int64_t count;
  uint64_t pair;
};
// Most frequent first; on ties the smaller (left, right) pair.
struct HeapOrder {
  bool operator()(const HeapEntry& x, const HeapEntry& y) const {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  }
};

class BpeTrainer {
 public:
  BpeTrainer(const WordCounts& counts, const BpeTrainOptions& opts) : opts_(opts) {
    // Symbol ids 0..255: the byte alphabet in code point order (GPT-2's vocab order).
    std::vector<int> bytes(256);
    for (int b = 0; b < 256; ++b) bytes[size_t(b)] = b;
    std::sort(bytes.begin(), bytes.end(),
              [](int a, int b) { return byte_code_point(a) < byte_code_point(b); });
    for (int i = 0; i < 256; ++i) {
      symbol_of_byte_[size_t(bytes[size_t(i)])] = i;
      add_token(tok::byte_level_char(uint8_t(bytes[size_t(i)])));
    }
    for (const std::string& s : opts.special_tokens) specials_.insert(s);
    add_words(counts);
  }

  void train() {
    for (auto& [key, stats] : pairs_) heap_.push({stats.count, key});
    const int64_t target = opts_.vocab_size - int64_t(opts_.special_tokens.size());
    while (int64_t(tokens_.size()) < target && !heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const auto it = pairs_.find(top.pair);
      const int64_t actual = it == pairs_.end() ? 0 : it->second.count;
      if (actual != top.count) {  // counts of old pairs only fall: re-queue with the true count
        if (actual > 0) heap_.push({actual, top.pair});
        continue;
      }
      if (actual < opts_.min_pair_count) break;
      const int32_t a = left_of(top.pair), b = right_of(top.pair);
      std::string merged = tokens_[size_t(a)] + tokens_[size_t(b)];
      if (specials_.count(merged)) continue;  // a special token is never produced by merging
      const auto existing = token_ids_.find(merged);
      const int32_t c = existing != token_ids_.end() ? existing->second : add_token(merged);
      merges_.emplace_back(a, b);
      apply_merge(top.pair, c);
    }
  }

  // Written by hand rather than through ordered_json, whose object insertion
  // is a linear search (quadratic in the vocabulary size).
  std::string to_json() const {
    const int32_t n_special = int32_t(opts_.special_tokens.size());
    std::string out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
    out += "  \"added_tokens\": [";
    for (int32_t i = 0; i < n_special; ++i) {
      const ordered_json t = {{"id", i},          {"content", opts_.special_tokens[size_t(i)]},
                              {"single_word", false}, {"lstrip", false},
                              {"rstrip", false},      {"normalized", false},
                              {"special", true}};
      out += (i ? ",\n    " : "\n    ") + t.dump();
    }
    out += n_special ? "\n  ],\n" : "],\n";
    out += "  \"normalizer\": null,\n";
    out += "  \"pre_tokenizer\": " + pre_tokenizer_json().dump() + ",\n";
    out += "  \"post_processor\": null,\n";
    out += R"(  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},)";
    out += "\n  \"model\": {\n";
    out += R"(    "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,)";
    out += "\n";
    out += R"(    "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,)";
    out += "\n    \"vocab\": {";
    for (int32_t i = 0; i < n_special; ++i)
      out += (i ? ",\n      " : "\n      ") + quoted(opts_.special_tokens[size_t(i)]) + ": " + std::to_string(i);
    for (size_t i = 0; i < tokens_.size(); ++i)
      out += (i + size_t(n_special) ? ",\n      " : "\n      ") + quoted(tokens_[i]) + ": " +
             std::to_string(n_special + int32_t(i));
    out += "\n    },\n    \"merges\": [";
    for (size_t i = 0; i < merges_.size(); ++i)
      out += (i ? ",\n      " : "\n      ") +
             quoted(tokens_[size_t(merges_[i].first)] + " " + tokens_[size_t(merges_[i].second)]);
    out += merges_.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
    return out;
  }

 private:
  static std::string quoted(const std::string& s) { return ordered_json(s).dump(); }

  static uint32_t byte_code_point(int b) {
    uint32_t cp = 0;
    tok::utf8_next(tok::byte_level_char(uint8_t(b)), 0, cp);
    return cp;
  }

  int32_t add_token(const std::string& text) {
    const int32_t id = int32_t(tokens_.size());
    tokens_.push_back(text);
    token_ids_.emplace(text, id);
    return id;
  }

  void add_words(const WordCounts& counts) {
    // Sorted words make every later step independent of hash order.
    std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    words_.reserve(sorted.size());
    for (const auto& [text_of_word, count] : sorted) {
      Word w;
      w.count = count;
      for (char ch : text_of_word) w.symbols.push_back(symbol_of_byte_[uint8_t(ch)]);
      const int32_t index = int32_t(words_.size());
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
        PairStats& p = pairs_[pair_key(w.symbols[i], w.symbols[i + 1])];
        p.count += count;
        if (p.words.empty() || p.words.back() != index) p.words.push_back(index);
      }
      words_.push_back(std::move(w));
    }
  }

  // Replaces (a, b) by c in every word that holds it, left to right, and
  // updates the pair counts by the difference between old and new pairs.
  void apply_merge(uint64_t pair, int32_t c) {
    const int32_t a = left_of(pair), b = right_of(pair);
    std::vector<int32_t> word_ids = std::move(pairs_[pair].words);
    std::sort(word_ids.begin(), word_ids.end());
    word_ids.erase(std::unique(word_ids.begin(), word_ids.end()), word_ids.end());
    std::vector<uint64_t> touched;
    std::vector<int32_t> merged;
    for (int32_t index : word_ids) {
      Word& w = words_[size_t(index)];
      merged.clear();
      bool changed = false;
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == a && w.symbols[i + 1] == b) {
          merged.push_back(c);
          ++i;
          changed = true;
        } else {
          merged.push_back(w.symbols[i]);
        }
      }
      if (!changed) continue;  // the word lost the pair in an earlier merge
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i)
        pairs_[pair_key(w.symbols[i], w.symbols[i + 1])].count -= w.count;
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t key = pair_key(merged[i], merged[i + 1]);
        PairStats& p = pairs_[key];
        p.count += w.count;
        if (merged[i] == c || merged[i + 1] == c) {  // only pairs with c are new
          if (p.words.empty() || p.words.back() != index) p.words.push_back(index);
          touched.push_back(key);
        }
      }
      w.symbols.swap(merged);
    }
    pairs_.erase(pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t key : touched) heap_.push({pairs_[key].count, key});
  }

  ordered_json pre_tokenizer_json() const {
    if (opts_.pattern == PretokenizerPattern::Gpt2)
      return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    // The loader's own spelling of the pattern (the tests load every pattern's output back).
    const std::string regex(tok::split_regex_text(tok::split_rules_of(opts_.pattern)));
    ordered_json split = {{"type", "Split"},
                          {"pattern", {{"Regex", regex}}},
                          {"behavior", "Isolated"},
                          {"invert", false}};
    ordered_json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
    return {{"type", "Sequence"}, {"pretokenizers", ordered_json::array({split, byte_level})}};
  }

  const BpeTrainOptions& opts_;
  std::array<int32_t, 256> symbol_of_byte_{};
  std::vector<std::string> tokens_;  // byte-level text of each symbol id
  std::unordered_map<std::string, int32_t> token_ids_;
  std::unordered_set<std::string> specials_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, PairStats> pairs_;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
};

}  // namespace

std::string train_bpe_tokenizer_json(std::string_view text, const BpeTrainOptions& opts) {
  check_options(text, opts);
  WordCounts counts;
  count_words(text, opts, counts);
  BpeTrainer trainer(counts, opts);
  trainer.train();
  return trainer.to_json();
}

std::string train_bpe_tokenizer_json_from_file(const std::string& path, const BpeTrainOptions& opts) {
  check_options("-", opts);
  check_regular_file(path, "BPE training text");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the training text");
  constexpr size_t kBlock = size_t(1) << 20;
  WordCounts counts;
  std::string buffer, block(kBlock, '\0');
  int64_t total = 0;
  for (;;) {
    in.read(block.data(), std::streamsize(kBlock));
    const size_t got = size_t(in.gcount());
    if (in.bad()) throw Error(path + ": read error in the training text");
    total += int64_t(got);
    buffer.append(block.data(), got);
    const bool at_end = got < kBlock;
    if (at_end) break;
    // Count up to the last word cut no special token crosses; a text without
    // one for 16 blocks is cut where it stands (a word may split there).
    size_t cut = buffer.size();
    for (size_t p = buffer.size(); (p = last_word_cut(buffer, 0, p)) != std::string_view::npos;)
      if (!special_crosses(buffer, p, opts.special_tokens)) {
        cut = p;
        break;
      }
    if (cut == buffer.size() && buffer.size() < 16 * kBlock) continue;
    count_words(std::string_view(buffer).substr(0, cut), opts, counts);
    buffer.erase(0, cut);
  }
  if (total == 0) throw Error("BPE training: the training text " + path + " is empty");
  count_words(buffer, opts, counts);
  BpeTrainer trainer(counts, opts);
  trainer.train();
  return trainer.to_json();
}

}  // namespace sinklab
