// Pre-tokenisation: splitting text into words the way the Split regexes of
// GPT-2 and Llama-3 / Qwen2 tokenizers do, with a hand-written scanner.
#pragma once

#include <string_view>
#include <vector>

namespace sinklab::tok {

enum class SplitPattern {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Gpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  // (Qwen2 uses \p{N} instead of \p{N}{1,3}: max_digits = 1)
  Llama3,
};

struct SplitRules {
  SplitPattern pattern = SplitPattern::Gpt2;
  int max_digits = 0;  // longest digit group (Llama3 family); 0 = unlimited
};

// Recognises the Split regex of a tokenizer.json; false when it is not one
// of the supported patterns.
bool recognise_split_regex(std::string_view regex, SplitRules& rules);

// Splits text into consecutive, non-overlapping words that cover it exactly.
// Bytes that are not valid UTF-8 count as punctuation.
std::vector<std::string_view> split_words(std::string_view text, const SplitRules& rules);

}  // namespace sinklab::tok
