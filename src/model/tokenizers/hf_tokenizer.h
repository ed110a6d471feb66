// The parts of a Hugging Face tokenizer.json that sinklab supports, as plain
// data (filled by hf_config.cpp) and the tokenizer that runs them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pretokenize.h"
#include "sinklab/tokenizer.h"

namespace sinklab::tok {

struct HfAddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;  // swallow white space before the token
  bool rstrip = false;  // swallow white space after the token
};

struct HfPipeline {
  // normalizer: applied in order to each piece of text between added tokens
  struct NormStep {
    bool prepend = false;  // prepend `to` to non-empty text; else replace `from` by `to`
    std::string from, to;
  };
  std::vector<NormStep> normalizer;

  // pre-tokenizer
  bool byte_level = false;  // map bytes through the ByteLevel alphabet
  bool byte_level_prefix_space = false;
  bool split = false;  // split into words by `split_rules`
  SplitRules split_rules;
  // Split on a literal string instead (Gemma 3: " ", merged with the previous
  // piece); empty = none.
  enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  std::string split_delimiter;
  SplitBehavior split_behavior = SplitBehavior::Isolated;
  bool metaspace = false;
  std::string metaspace_replacement = "\xE2\x96\x81";  // "▁"
  enum class Prepend { Always, First, Never } metaspace_prepend = Prepend::Always;
  bool metaspace_split = false;

  // model (BPE)
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a,b) -> (rank, merged)
  int32_t unk_id = -1;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;

  // decoder
  enum class Decoder { Plain, ByteLevel, Pieces } decoder = Decoder::Plain;
  std::vector<std::pair<std::string, std::string>> decoder_replace;  // Pieces only
  bool decoder_byte_fallback = false;                                // "<0xXX>" -> byte
  int decoder_strip_leading_spaces = 0;  // spaces stripped from the start of the text

  std::vector<HfAddedToken> added;

  // post-processor: a TemplateProcessing that puts a special token first
  bool post_processor_adds_bos = false;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

// Pieces of `text` split on each occurrence of `delimiter` (the literal
// Split pre-tokenizer), with the delimiter removed, alone, merged with the
// piece before or after it, or (Contiguous) alone with its repeats.
std::vector<std::string_view> split_on_literal(std::string_view text, std::string_view delimiter,
                                               HfPipeline::SplitBehavior behavior);

// Parses tokenizer.json text; throws Error naming `source`.
HfPipeline parse_tokenizer_json(std::string_view json, const std::string& source,
                                const TokenizerJsonOptions& options, int32_t& bos_id,
                                int32_t& eos_id);

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(HfPipeline pipeline, int32_t bos_id, int32_t eos_id);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  std::vector<int32_t> encode_ignoring_special(std::string_view text) const override;
  void decode_append(int32_t id, bool skip_special, DecodeState& state,
                     std::string& out) const override;
  std::string token_text(int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }
  int32_t special_token_id(std::string_view text) const override;
  bool is_special(int32_t id) const override;

  // The parsed tokenizer.json (read by the GGUF writer).
  const HfPipeline& pipeline() const { return p_; }

 private:
  std::vector<int32_t> encode_text(std::string_view text, bool add_bos, bool match_special) const;
  void encode_segment(std::string_view text, bool at_text_start, std::vector<int32_t>& ids) const;
  void encode_pieces(std::string_view text, std::vector<int32_t>& ids) const;
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

  HfPipeline p_;
  std::vector<std::string> id_to_token_;
  std::vector<int8_t> added_kind_;  // 0 = model token, 1 = added, 2 = added special
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::array<std::vector<int32_t>, 256> added_by_first_byte_;  // indices into p_.added, longest first
  std::array<int32_t, 256> byte_ids_;                          // "<0xXX>" ids or -1
};

}  // namespace sinklab::tok
