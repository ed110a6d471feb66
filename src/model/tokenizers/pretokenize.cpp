#include "pretokenize.h"

#include <cstdint>

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
// tiktoken's cl100k_base: the Llama-3 words written with possessive quantifiers
// (which give nothing back that the pattern could use) and \s*[\r\n], which
// ends at the run's last line break as \s*[\r\n]+ does.
constexpr std::string_view kCl100kTiktokenRegex =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
// o200k_base (GPT-4o) and o200k_harmony (gpt-oss), as tiktoken and the
// tokenizer.json files write it.
constexpr std::string_view kO200kRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr size_t kNoMatch = SIZE_MAX;

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
  // [^\r\n\p{L}\p{N}]: the one character that may lead a word
  bool word_lead(size_t i) const { return i < size() && !letter(i) && !number(i) && !newline(i); }
  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]: letters that are not lower case, and marks
  bool upper_class(size_t i) const { return is_mark(cp(i)) || (letter(i) && !is_lowercase(cp(i))); }
  // [\p{Ll}\p{Lm}\p{Lo}\p{M}]: letters that are not upper or title case, and marks
  bool lower_class(size_t i) const { return is_mark(cp(i)) || (letter(i) && !is_upper_or_title(cp(i))); }

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

//  ?[^\s\p{L}\p{N}]+ followed by line breaks (and slashes, in o200k), or kNoMatch.
size_t symbol_run(const Chars& c, size_t i, bool slash_after) {
  size_t j = i;
  if (c.cp(j) == ' ') ++j;
  if (!c.other(j)) return kNoMatch;
  while (c.other(j)) ++j;
  while (c.newline(j) || (slash_after && c.cp(j) == '/')) ++j;
  return j;
}

// \s*[\r\n]+ (the white-space run up to and including its last line break),
// else \s+(?!\S) falling back to \s+.
size_t line_break_or_whitespace(const Chars& c, size_t i) {
  size_t end = i;
  size_t last_newline = kNoMatch;
  while (c.space(end)) {
    if (c.newline(end)) last_newline = end;
    ++end;
  }
  if (last_newline != kNoMatch) return last_newline + 1;
  return whitespace_run(c, i);
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
  if (size_t end = symbol_run(c, i, /*slash_after=*/false); end != kNoMatch) return end;
  return line_break_or_whitespace(c, i);
}

// [^\r\n\p{L}\p{N}]?[U]*[L]+ followed by an optional contraction, where U and
// L are the upper and lower classes of o200k, which share Lm, Lo and marks.
// As a backtracking engine does: the lead character is tried first, then
// not; U* gives characters back until [L]+ can start.
size_t o200k_lower_word(const Chars& c, size_t i) {
  for (const size_t start : {i + 1, i}) {
    if (start > i && !c.word_lead(i)) continue;
    size_t upper_end = start;
    while (c.upper_class(upper_end)) ++upper_end;
    for (size_t j = upper_end + 1; j-- > start;) {
      if (!c.lower_class(j)) continue;
      size_t end = j;
      while (c.lower_class(end)) ++end;
      return end + contraction(c, end, true);
    }
  }
  return kNoMatch;
}

// [^\r\n\p{L}\p{N}]?[U]+[L]* followed by an optional contraction.
size_t o200k_upper_word(const Chars& c, size_t i) {
  for (const size_t start : {i + 1, i}) {
    if (start > i && !c.word_lead(i)) continue;
    size_t end = start;
    while (c.upper_class(end)) ++end;
    if (end == start) continue;
    while (c.lower_class(end)) ++end;
    return end + contraction(c, end, true);
  }
  return kNoMatch;
}

size_t match_o200k(const Chars& c, size_t i) {
  if (size_t end = o200k_lower_word(c, i); end != kNoMatch) return end;
  if (size_t end = o200k_upper_word(c, i); end != kNoMatch) return end;
  if (c.number(i)) {  // \p{N}{1,3}
    size_t j = i;
    while (c.number(j) && j - i < 3) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n/]*
  if (size_t end = symbol_run(c, i, /*slash_after=*/true); end != kNoMatch) return end;
  return line_break_or_whitespace(c, i);
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
  if (regex == kCl100kTiktokenRegex) {
    rules = {SplitPattern::Llama3, 3};
    return true;
  }
  if (regex == kO200kRegex) {
    rules = {SplitPattern::O200k, 3};
    return true;
  }
  return false;
}

SplitRules split_rules_of(PretokenizerPattern pattern) {
  switch (pattern) {
    case PretokenizerPattern::Gpt2: return {SplitPattern::Gpt2, 0};
    case PretokenizerPattern::Llama3: return {SplitPattern::Llama3, 3};
    case PretokenizerPattern::Qwen2: return {SplitPattern::Llama3, 1};
    case PretokenizerPattern::O200k: return {SplitPattern::O200k, 3};
  }
  return {};
}

std::string_view split_regex_text(const SplitRules& rules) {
  switch (rules.pattern) {
    case SplitPattern::Gpt2: return {};
    case SplitPattern::Llama3: return rules.max_digits == 1 ? kQwen2Regex : kLlama3Regex;
    case SplitPattern::O200k: return kO200kRegex;
  }
  return {};
}

std::vector<std::string_view> split_words(std::string_view text, const SplitRules& rules) {
  std::vector<std::string_view> words;
  const Chars c(text);
  for (size_t i = 0; i < c.size();) {
    size_t j = 0;
    switch (rules.pattern) {
      case SplitPattern::Gpt2: j = match_gpt2(c, i); break;
      case SplitPattern::Llama3: j = match_llama3(c, i, rules.max_digits); break;
      case SplitPattern::O200k: j = match_o200k(c, i); break;
    }
    if (j <= i) j = i + 1;  // cannot happen for these patterns; guarantees progress
    words.push_back(text.substr(c.offset(i), c.offset(j) - c.offset(i)));
    i = j;
  }
  return words;
}

}  // namespace sinklab::tok

namespace sinklab {

std::vector<std::string_view> pretokenize(std::string_view text, PretokenizerPattern pattern) {
  return tok::split_words(text, tok::split_rules_of(pattern));
}

}  // namespace sinklab
