// Per-token cache metadata for `sinklab ppl` and `sinklab stream`, what the
// modal and chunked policies read (TokenMeta: modality, round or chunk id):
//   --chunk-tokens N (alias --round-tokens)  round/chunk id = token index / N
//   --meta FILE   one row per token, in stream order (BOS first when the
//                 tokenizer adds one): CSV "modality[,round]" or a JSON object
//                 {"modality": "vision", "round": 3} ("chunk" is an alias of
//                 "round"); modality is text, vision, audio or 0, 1, 2; blank
//                 lines and lines starting with '#' are skipped.
// A row without a round takes index / N with --chunk-tokens, else the previous
// row's round. Tokens after the last row are text, with index / N or the last
// row's round.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "sinklab/cache.h"

namespace sinklab::cli {

struct MetaArgs {
  std::string file;
  int64_t group_tokens = 0;
};

void add_meta_flags(CLI::App& sub, MetaArgs& a);

// `spec` plus chunk_tokens=N (chunked) or round_tokens=N (modal) from
// --chunk-tokens when the spec does not set it. Other policies are returned
// unchanged, or (strict) are an Error when --chunk-tokens was given.
std::string with_group_size(const std::string& spec, const MetaArgs& a, bool strict);

class TokenMetaSource {
 public:
  // Reads --meta; Error naming the file and line for a bad row.
  explicit TokenMetaSource(const MetaArgs& a);
  bool active() const { return group_tokens_ > 0 || !rows_.empty(); }
  int64_t rows() const { return int64_t(rows_.size()); }
  const std::string& file() const { return file_; }
  TokenMeta at(int64_t index) const;
  std::vector<TokenMeta> range(int64_t first, int64_t count) const;

 private:
  std::string file_;
  int64_t group_tokens_ = 0;
  std::vector<TokenMeta> rows_;
};

}  // namespace sinklab::cli
