// OpenAI request bodies read into ApiRequest, every field checked: a wrong
// type, a value out of range or an unsupported option is a 400 naming it.
#include <cmath>

#include "serve_internal.h"
#include "sinklab/json_text.h"

namespace sinklab::serve {

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_)
    : Error(std::move(message)), status(status_), param(std::move(param_)), code(std::move(code_)) {}

std::string ApiError::type() const {
  if (status == 401) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status == 409) return "conflict_error";
  if (status == 413) return "request_too_large";
  if (status == 429 || status == 503) return "server_overloaded";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

nlohmann::json ApiError::body() const {
  nlohmann::json e = {{"message", what()}, {"type", type()}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  e["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return {{"error", e}};
}

nlohmann::json parse_body(const std::string& text) {
  nlohmann::json j;
  try {
    j = parse_json_text(text, "request body");
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  if (!j.is_object()) throw ApiError(400, "request body: expected a JSON object");
  return j;
}

namespace {

const char* type_name(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void wrong(const std::string& field, const std::string& expected, const nlohmann::json& v) {
  throw ApiError(400, "'" + field + "' must be " + expected + " (got " + type_name(v) + ")", field);
}

// Present and not null: OpenAI clients send null for "not given".
bool given(const nlohmann::json& body, const char* key) {
  return body.contains(key) && !body[key].is_null();
}

double number(const nlohmann::json& body, const char* key, double lo, double hi) {
  const nlohmann::json& v = body[key];
  if (!v.is_number()) wrong(key, "a number", v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                            std::to_string(hi) + " (got " + v.dump() + ")",
                   key);
  return x;
}

int64_t integer(const nlohmann::json& body, const char* key, int64_t lo, int64_t hi) {
  const nlohmann::json& v = body[key];
  if (!v.is_number_integer()) wrong(key, "an integer", v);
  const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v.get<int64_t>();
  if (x < lo || x > hi)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                            std::to_string(hi) + " (got " + v.dump() + ")",
                   key);
  return x;
}

bool boolean(const nlohmann::json& body, const char* key) {
  if (!body[key].is_boolean()) wrong(key, "a boolean", body[key]);
  return body[key].get<bool>();
}

std::string string_field(const nlohmann::json& body, const char* key) {
  if (!body[key].is_string()) wrong(key, "a string", body[key]);
  return body[key].get<std::string>();
}

void read_stop(const nlohmann::json& body, ApiRequest& r) {
  if (!given(body, "stop")) return;
  const nlohmann::json& v = body["stop"];
  if (v.is_string()) {
    r.stop = {v.get<std::string>()};
  } else if (v.is_array()) {
    if (v.size() > 4) throw ApiError(400, "'stop' holds at most 4 sequences (got " + std::to_string(v.size()) + ")", "stop");
    for (const auto& s : v) {
      if (!s.is_string()) wrong("stop", "a string or an array of strings", s);
      r.stop.push_back(s.get<std::string>());
    }
  } else {
    wrong("stop", "a string or an array of strings", v);
  }
  for (const std::string& s : r.stop)
    if (s.empty()) throw ApiError(400, "'stop' sequences must not be empty", "stop");
}

// Options sinklab does not implement: refused unless they ask for the default.
void refuse_unsupported(const nlohmann::json& body) {
  if (given(body, "n") && !(body["n"].is_number_integer() && body["n"].get<int64_t>() == 1))
    throw ApiError(400, "'n' must be 1 (one choice per request)", "n");
  for (const char* key : {"frequency_penalty", "presence_penalty"})
    if (given(body, key) && !(body[key].is_number() && body[key].get<double>() == 0.0))
      throw ApiError(400, std::string("'") + key + "' is not supported (must be 0)", key);
  for (const char* key : {"logprobs", "top_logprobs", "logit_bias", "tools", "functions", "suffix", "response_format"})
    if (given(body, key) && !(body[key].is_boolean() && !body[key].get<bool>()))
      throw ApiError(400, std::string("'") + key + "' is not supported", key);
  if (given(body, "echo") && !(body["echo"].is_boolean() && !body["echo"].get<bool>()))
    throw ApiError(400, "'echo' is not supported", "echo");
}

void read_sampling(const nlohmann::json& body, ApiRequest& r) {
  if (given(body, "max_tokens")) r.max_tokens = integer(body, "max_tokens", 0, int64_t(1) << 40);
  if (given(body, "max_completion_tokens"))
    r.max_tokens = integer(body, "max_completion_tokens", 0, int64_t(1) << 40);
  if (given(body, "temperature")) r.temperature = float(number(body, "temperature", 0, 2));
  if (given(body, "top_p")) r.top_p = float(number(body, "top_p", 0, 1));
  if (r.top_p <= 0.f) throw ApiError(400, "'top_p' must be above 0", "top_p");
  if (given(body, "seed")) r.seed = integer(body, "seed", INT64_MIN, INT64_MAX) & INT64_MAX;
  if (given(body, "stream")) r.stream = boolean(body, "stream");
  if (given(body, "stream_options")) {
    const nlohmann::json& o = body["stream_options"];
    if (!o.is_object()) wrong("stream_options", "an object", o);
    if (given(o, "include_usage")) r.include_usage = boolean(o, "include_usage");
  }
  if (given(body, "return_tokens")) r.return_tokens = boolean(body, "return_tokens");
  if (given(body, "observe_attention")) r.observe = boolean(body, "observe_attention");
  read_stop(body, r);
}

void read_conversation(const nlohmann::json& body, ApiRequest& r) {
  if (given(body, "conversation_id")) {
    r.conversation_id = string_field(body, "conversation_id");
    if (r.conversation_id.empty() || r.conversation_id.size() > 128)
      throw ApiError(400, "'conversation_id' must be 1 to 128 characters", "conversation_id");
  }
  if (given(body, "persist")) r.persist = boolean(body, "persist");
  if (r.persist && !r.conversation_id.empty())
    throw ApiError(400, "'persist' opens a new conversation; it cannot be given with 'conversation_id'", "persist");
}

void read_prompt(const nlohmann::json& body, ApiRequest& r) {
  if (!given(body, "prompt")) throw ApiError(400, "'prompt' is required", "prompt");
  nlohmann::json p = body["prompt"];
  // A list of one prompt is one prompt; a list of several would be several choices.
  if (p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array())) {
    if (p.size() != 1) throw ApiError(400, "'prompt' must be one prompt (batches are not supported)", "prompt");
    p = nlohmann::json(p[0]);
  }
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
    return;
  }
  if (!p.is_array()) wrong("prompt", "a string or an array of token ids", p);
  for (const auto& id : p) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      throw ApiError(400, "'prompt' token ids must be non-negative integers", "prompt");
    r.prompt_ids.push_back(int32_t(id.get<int64_t>()));
  }
  r.prompt_is_ids = true;
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string message_content(const nlohmann::json& m, size_t i) {
  const std::string field = "messages[" + std::to_string(i) + "].content";
  if (!m.contains("content") || m["content"].is_null()) throw ApiError(400, "'" + field + "' is required", field);
  const nlohmann::json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) wrong(field, "a string or an array of text parts", c);
  std::string text;
  for (const auto& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      throw ApiError(400, "'" + field + "' parts must be {\"type\": \"text\", \"text\": ...} (only text is supported)",
                     field);
    text += part["text"].get<std::string>();
  }
  return text;
}

void read_messages(const nlohmann::json& body, ApiRequest& r) {
  if (!given(body, "messages")) throw ApiError(400, "'messages' is required", "messages");
  const nlohmann::json& ms = body["messages"];
  if (!ms.is_array()) wrong("messages", "an array", ms);
  for (size_t i = 0; i < ms.size(); ++i) {
    const nlohmann::json& m = ms[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) wrong(field, "an object", m);
    if (!m.contains("role") || !m["role"].is_string())
      throw ApiError(400, "'" + field + ".role' must be a string", field + ".role");
    const std::string role = m["role"].get<std::string>();
    const std::string content = message_content(m, i);
    if (role == "system" || role == "developer") {
      if (i != 0)
        throw ApiError(400, "'" + field + "': a " + role + " message may only open the conversation", field + ".role");
      r.system = content;
    } else if (role == "user" || role == "assistant") {
      r.messages.push_back({role, content});
    } else {
      throw ApiError(400, "'" + field + ".role' must be system, developer, user or assistant (got \"" + role + "\")",
                     field + ".role");
    }
  }
  if (r.messages.empty()) throw ApiError(400, "'messages' must hold at least one user message", "messages");
}

}  // namespace

ApiRequest parse_request(const nlohmann::json& body, Endpoint endpoint) {
  ApiRequest r;
  r.endpoint = endpoint;
  if (given(body, "model")) r.model = string_field(body, "model");
  refuse_unsupported(body);
  read_sampling(body, r);
  read_conversation(body, r);
  if (endpoint == Endpoint::Completions) read_prompt(body, r);
  else read_messages(body, r);
  return r;
}

}  // namespace sinklab::serve
