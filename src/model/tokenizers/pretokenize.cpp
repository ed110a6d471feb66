#include "pretokenize.h"

#include "sinklab/tokenizer.h"
#include "unicode.h"

namespace sinklab::tok {
namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Code points of the text with their byte offsets; index n is past the end.
class Chars {
 public:
  explicit Chars(std::string_view text) {
    for (size_t pos = 0; pos < text.size();) {
      uint32_t cp = 0;
      const size_t len = utf8_next(text, pos, cp);
      cps_.push_back(cp);
      offsets_.push_back(pos);
      pos += len;
    }
    offsets_.push_back(text.size());
  }
  size_t size() const { return cps_.size(); }
  size_t offset(size_t i) const { return offsets_[i]; }
  // Past the end reads as a code point of no class.
  uint32_t cp(size_t i) const { return i < cps_.size() ? cps_[i] : kEnd; }
  bool letter(size_t i) const { return is_letter(cp(i)); }
  bool number(size_t i) const { return is_number(cp(i)); }
  bool space(size_t i) const { return is_whitespace(cp(i)); }
  bool newline(size_t i) const { return cp(i) == '\r' || cp(i) == '\n'; }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < size() && !space(i) && !letter(i) && !number(i); }

 private:
  static constexpr uint32_t kEnd = 0xFFFFFFFEu;
  std::vector<uint32_t> cps_;
  std::vector<size_t> offsets_;
};

uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Length in code points of 's|'t|'re|'ve|'m|'ll|'d at i, or 0.
size_t contraction(const Chars& c, size_t i, bool ignore_case) {
  if (c.cp(i) != '\'') return 0;
  const auto at = [&](size_t k) { return ignore_case ? ascii_lower(c.cp(k)) : c.cp(k); };
  const uint32_t a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const uint32_t b = at(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) falling back to \s+, at a whitespace code point i.
size_t whitespace_run(const Chars& c, size_t i) {
  size_t j = i;
  while (c.space(j)) ++j;
  if (j == c.size() || j - i < 2) return j;
  return j - 1;  // leave one space to prefix the next word
}

size_t match_gpt2(const Chars& c, size_t i) {
  if (size_t n = contraction(c, i, false)) return i + n;
  size_t j = i;
  if (c.cp(j) == ' ') ++j;
  if (c.letter(j)) {
    while (c.letter(j)) ++j;
    return j;
  }
  if (c.number(j)) {
    while (c.number(j)) ++j;
    return j;
  }
  if (c.other(j)) {
    while (c.other(j)) ++j;
    return j;
  }
  return whitespace_run(c, i);
}

size_t match_llama3(const Chars& c, size_t i, int max_digits) {
  if (size_t n = contraction(c, i, true)) return i + n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  size_t j = i;
  if (i < c.size() && !c.letter(i) && !c.number(i) && !c.newline(i) && c.letter(i + 1)) ++j;
  if (c.letter(j)) {
    while (c.letter(j)) ++j;
    return j;
  }
  // \p{N}{1,max}
  if (c.number(i)) {
    j = i;
    while (c.number(j) && (max_digits <= 0 || j - i < size_t(max_digits))) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  j = i;
  if (c.cp(j) == ' ') ++j;
  if (c.other(j)) {
    while (c.other(j)) ++j;
    while (c.newline(j)) ++j;
    return j;
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last line break
  size_t end = i;
  size_t last_newline = SIZE_MAX;
  while (c.space(end)) {
    if (c.newline(end)) last_newline = end;
    ++end;
  }
  if (last_newline != SIZE_MAX) return last_newline + 1;
  return whitespace_run(c, i);
}

}  // namespace

bool recognise_split_regex(std::string_view regex, SplitRules& rules) {
  if (regex == kGpt2Regex) {
    rules = {SplitPattern::Gpt2, 0};
    return true;
  }
  if (regex == kLlama3Regex) {
    rules = {SplitPattern::Llama3, 3};
    return true;
  }
  if (regex == kQwen2Regex) {
    rules = {SplitPattern::Llama3, 1};
    return true;
  }
  return false;
}

std::vector<std::string_view> split_words(std::string_view text, const SplitRules& rules) {
  std::vector<std::string_view> words;
  const Chars c(text);
  for (size_t i = 0; i < c.size();) {
    size_t j = rules.pattern == SplitPattern::Gpt2 ? match_gpt2(c, i)
                                                   : match_llama3(c, i, rules.max_digits);
    if (j <= i) j = i + 1;  // cannot happen for these patterns; guarantees progress
    words.push_back(text.substr(c.offset(i), c.offset(j) - c.offset(i)));
    i = j;
  }
  return words;
}

}  // namespace sinklab::tok

namespace sinklab {

std::vector<std::string_view> pretokenize(std::string_view text, PretokenizerPattern pattern) {
  tok::SplitRules rules;
  switch (pattern) {
    case PretokenizerPattern::Gpt2: rules = {tok::SplitPattern::Gpt2, 0}; break;
    case PretokenizerPattern::Llama3: rules = {tok::SplitPattern::Llama3, 3}; break;
    case PretokenizerPattern::Qwen2: rules = {tok::SplitPattern::Llama3, 1}; break;
  }
  return tok::split_words(text, rules);
}

}  // namespace sinklab
