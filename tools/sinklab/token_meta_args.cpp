#include "input_files.h"
#include "token_meta_args.h"

#include <algorithm>
#include <cstdint>
#include <fstream>

namespace sinklab::cli {

void add_meta_flags(CLI::App& sub, MetaArgs& a) {
  sub.add_option("--meta", a.file,
                 "Per-token cache metadata for the modal / chunked policies: one row per token, "
                 "CSV 'modality[,round]' or JSON {\"modality\": \"vision\", \"round\": 3}");
  sub.add_option("--chunk-tokens,--round-tokens", a.group_tokens,
                 "Round / chunk id = token index / N (and chunk_tokens or round_tokens = N for a "
                 "chunked or modal cache that does not set it)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
}

std::string with_group_size(const std::string& spec, const MetaArgs& a, bool strict) {
  if (a.group_tokens <= 0) return spec;
  const CacheSpec parsed = parse_cache_spec(spec);
  const char* key = kv_policy_info(parsed.policy).group_size_option;
  check(key != nullptr || !strict, "--chunk-tokens applies to --cache chunked or modal only (got --cache " + spec + ")");
  if (key == nullptr) return spec;
  if (spec.find(std::string(key) + "=") != std::string::npos) return spec;
  return spec + (spec.find(':') == std::string::npos ? ":" : ",") + key + "=" + std::to_string(a.group_tokens);
}

TokenMetaSource::TokenMetaSource(const MetaArgs& a) : file_(a.file), group_tokens_(a.group_tokens) {
  if (file_.empty()) return;
  check_input_path(file_, "--meta: file");
  std::ifstream in(file_);
  check(in.good(), "--meta: cannot read file '" + file_ + "'");
  rows_ = parse_token_meta(in, "--meta " + file_, group_tokens_);
  check(!rows_.empty(), "--meta: file '" + file_ + "' has no rows");
}

TokenMeta TokenMetaSource::at(int64_t index) const {
  if (index < int64_t(rows_.size())) return rows_[size_t(index)];
  TokenMeta t;
  t.index = index;
  const int64_t round = group_tokens_ > 0 ? index / group_tokens_ : (rows_.empty() ? 0 : rows_.back().round);
  check(round <= INT32_MAX, "token " + std::to_string(index) + ": its round id does not fit in int32");
  t.round = std::max(int32_t(round), rows_.empty() ? 0 : rows_.back().round);
  return t;
}

std::vector<TokenMeta> TokenMetaSource::range(int64_t first, int64_t count) const {
  std::vector<TokenMeta> out;
  out.reserve(size_t(count));
  for (int64_t i = 0; i < count; ++i) out.push_back(at(first + i));
  return out;
}

}  // namespace sinklab::cli
