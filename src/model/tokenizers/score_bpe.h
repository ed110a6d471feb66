// Score-driven BPE (llama2.c's encoder: merge the adjacent pair whose
// concatenation is the vocabulary piece with the highest score, bytes of
// characters without a piece fall back to <0xXX> pieces) for vocabularies laid
// out other than llama2.c's, such as llama.cpp's SentencePiece ("llama") GGUF
// vocabularies of Gemma (byte pieces at their own ids, no dummy prefix).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sinklab/tokenizer.h"

namespace sinklab::tok {

struct ScoreBpeLayout {
  std::array<int32_t, 256> byte_ids{};  // the id of <0xXX> for byte XX
  bool dummy_prefix = true;             // encode a space before the text (SentencePiece's add_dummy_prefix)
  int32_t n_specials = 0;               // ids 0..n-1 are special (llama2.c: <unk>, <s>, </s>)
  int32_t bos_id = -1, eos_id = -1;
};

// `pieces` hold spaces as " " (not "▁"); one score per piece.
std::unique_ptr<Tokenizer> score_bpe_tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                               const ScoreBpeLayout& layout);

}  // namespace sinklab::tok
