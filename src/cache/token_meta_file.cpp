// Per-token cache metadata files (`--meta`): one row per token, CSV
// "modality[,round]" or JSON {"modality": ..., "round"|"chunk": ...}.
#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <istream>
#include <nlohmann/json.hpp>

#include "sinklab/cache.h"
#include "sinklab/json_text.h"

namespace sinklab {

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

std::vector<TokenMeta> parse_token_meta(std::istream& in, const std::string& source, int64_t group_tokens) {
  std::vector<TokenMeta> rows;
  std::string line;
  int64_t number = 0;
  int32_t last_round = 0;
  while (std::getline(in, line)) {
    ++number;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = source + " line " + std::to_string(number);
    TokenMeta t;
    t.index = int64_t(rows.size());
    bool has_round = false;
    if (line[0] == '{') {
      const nlohmann::json j = parse_json_text(line, where);
      check(j.is_object(), where + ": expected a JSON object");
      for (const auto& [key, value] : j.items()) {
        if (key == "modality") {
          check(value.is_string() || value.is_number_integer(), where + ": modality must be a string or an integer");
          t.modality = modality_of(value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>()), where);
        } else if (key == "round" || key == "chunk") {
          check(value.is_number_integer(), where + ": " + key + " must be an integer");
          t.round = round_of(value.is_number_unsigned() ? int64_t(std::min<uint64_t>(value.get<uint64_t>(), uint64_t(INT64_MAX)))
                                                        : value.get<int64_t>(),
                             where);
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
    if (!has_round) t.round = group_tokens > 0 ? round_of(t.index / group_tokens, where) : last_round;
    check(t.round >= last_round, where + ": round " + std::to_string(t.round) + " is below the previous row's " +
                                     std::to_string(last_round) + " (rounds must not decrease)");
    last_round = t.round;
    rows.push_back(t);
  }
  return rows;
}

}  // namespace sinklab
