// Pre-tokenisation: splitting text into words the way the Split regexes of
// GPT-2, Llama-3 / Qwen2 and o200k (GPT-4o, gpt-oss) tokenizers do, with a
// hand-written scanner.
#pragma once

#include <string_view>
#include <vector>

#include "sinklab/tokenizer.h"

namespace sinklab::tok {

enum class SplitPattern {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Gpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  // (Qwen2 uses \p{N} instead of \p{N}{1,3}: max_digits = 1)
  Llama3,
  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
  // [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
  // \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
  // (words split before an upper-case letter that follows a lower-case one;
  // contractions stay on their word)
  O200k,
};

struct SplitRules {
  SplitPattern pattern = SplitPattern::Gpt2;
  int max_digits = 0;  // longest digit group (Llama3 family, O200k); 0 = unlimited
};

// Recognises the Split regex of a tokenizer.json; false when it is not one
// of the supported patterns. Besides the Hugging Face spellings, tiktoken's
// cl100k_base spelling (possessive quantifiers, the same words as Llama-3) is
// recognised.
bool recognise_split_regex(std::string_view regex, SplitRules& rules);

// The rules of a public PretokenizerPattern.
SplitRules split_rules_of(PretokenizerPattern pattern);

// The Hugging Face tokenizer.json spelling of a Llama3-family or O200k split
// (what the BPE trainer and the GGUF reader write); empty for Gpt2, whose split
// is ByteLevel's use_regex.
std::string_view split_regex_text(const SplitRules& rules);

// Splits text into consecutive, non-overlapping words that cover it exactly.
// Bytes that are not valid UTF-8 count as punctuation.
std::vector<std::string_view> split_words(std::string_view text, const SplitRules& rules);

}  // namespace sinklab::tok
