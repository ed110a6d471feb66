// JSON documents parsed with a bound on their nesting depth. nlohmann's parser
// is iterative, but copies, comparisons and destructors of a document recurse:
// a hostile file of 100k nested arrays would overflow the stack after parsing.
// Every JSON input of sinklab (config.json, tokenizer.json, safetensors
// headers, training configs, task.json, probes.json, --meta rows) goes through here.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sinklab/core.h"

namespace sinklab {

inline constexpr int kMaxJsonDepth = 256;

// Parses `text`; throws Error "<source>: not valid JSON (...)" or "<source>:
// JSON nested deeper than 256 levels". `on_event` (may be empty) sees every
// parser event as nlohmann's parser callback does and may discard values.
template <typename Json = nlohmann::json>
Json parse_json_text(std::string_view text, const std::string& source,
                     const typename Json::parser_callback_t& on_event = nullptr) {
  bool too_deep = false;
  const typename Json::parser_callback_t cb = [&](int depth, typename Json::parse_event_t event, Json& value) {
    if (depth > kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return on_event ? on_event(depth, event, value) : true;
  };
  Json j;
  try {
    j = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true);
  } catch (const typename Json::exception& e) {
    if (!too_deep) throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  if (too_deep)
    throw Error(source + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  return j;
}

}  // namespace sinklab
