#include "input_files.h"
#include "sinklab/json_text.h"
#include "token_meta_args.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sinklab::cli {

namespace {

std::string trim(std::string s) {
  const char* space = " \t\r";
  s.erase(0, s.find_first_not_of(space));
  s.erase(s.find_last_not_of(space) + 1);
  return s;
}

int64_t parse_int(const std::string& text, const std::string& where) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  check(!text.empty() && ec == std::errc() && end == text.data() + text.size(),
        where + ": expected an integer, got '" + text + "'");
  return v;
}

uint8_t modality_of(const std::string& text, const std::string& where) {
  if (text == "text" || text == "0") return uint8_t(Modality::Text);
  if (text == "vision" || text == "1") return uint8_t(Modality::Vision);
  if (text == "audio" || text == "2") return uint8_t(Modality::Audio);
  throw Error(where + ": modality must be text, vision, audio or 0, 1, 2, got '" + text + "'");
}

int32_t round_of(int64_t v, const std::string& where) {
  check(v >= 0 && v <= INT32_MAX, where + ": round must be in 0.." + std::to_string(INT32_MAX) +
                                      ", got " + std::to_string(v));
  return int32_t(v);
}

}  // namespace

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
  const char* key = parsed.policy == "chunked" ? "chunk_tokens" : parsed.policy == "modal" ? "round_tokens" : nullptr;
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
  std::string line;
  int64_t number = 0;
  int32_t last_round = 0;
  while (std::getline(in, line)) {
    ++number;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = "--meta " + file_ + " line " + std::to_string(number);
    TokenMeta t;
    t.index = int64_t(rows_.size());
    bool has_round = false;
    if (line[0] == '{') {
      const nlohmann::json j = parse_json_text(line, where);
      for (const auto& [key, value] : j.items()) {
        if (key == "modality") {
          check(value.is_string() || value.is_number_integer(), where + ": modality must be a string or an integer");
          t.modality = modality_of(value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>()), where);
        } else if (key == "round" || key == "chunk") {
          check(value.is_number_integer(), where + ": " + key + " must be an integer");
          t.round = round_of(value.get<int64_t>(), where);
          has_round = true;
        } else {
          throw Error(where + ": unknown key '" + key + "' (expected modality, round or chunk)");
        }
      }
    } else {
      const size_t comma = line.find(',');
      t.modality = modality_of(trim(line.substr(0, comma)), where);
      if (comma != std::string::npos) {
        t.round = round_of(parse_int(trim(line.substr(comma + 1)), where), where);
        has_round = true;
      }
    }
    if (!has_round) t.round = group_tokens_ > 0 ? round_of(t.index / group_tokens_, where) : last_round;
    check(t.round >= last_round, where + ": round " + std::to_string(t.round) + " is below the previous row's " +
                                     std::to_string(last_round) + " (rounds must not decrease)");
    last_round = t.round;
    rows_.push_back(t);
  }
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
