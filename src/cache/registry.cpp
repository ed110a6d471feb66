// The policy registry (one row per policy), the base-class helpers and the
// "name:key=value,..." spec parser.
#include <algorithm>
#include <charconv>
#include <string>

#include "policies.h"

namespace sinklab {

namespace {

using namespace cache_detail;

void dense_defaults(CacheOptions& o, int64_t context) {
  if (o.limit == 0) o.limit = context;
}
void window_defaults(CacheOptions& o, int64_t context) {
  if (o.window == 0) o.window = context;
}
// StreamingLLM's layout: 4 sinks and the rest of the context as the window.
void sinks_and_window(const char* policy, CacheOptions& o, int64_t context) {
  if (o.window != 0 || o.budget != 0) return;
  check(o.sink < context, std::string(policy) + " cache: sink=" + std::to_string(o.sink) +
                              " leaves no window in a context of " + std::to_string(context) +
                              " tokens (sink must be below the context)");
  o.window = context - o.sink;
}
void sink_defaults(CacheOptions& o, int64_t context) { sinks_and_window("sink", o, context); }
void adaptive_defaults(CacheOptions& o, int64_t context) { sinks_and_window("adaptive", o, context); }
void adaptive_layer_defaults(CacheOptions& o, int64_t context) { sinks_and_window("adaptive-layer", o, context); }
// H2O: a budget of the context, half heavy hitters and half recent tokens.
void heavy_defaults(CacheOptions& o, int64_t context) {
  if (o.budget == 0 && (o.heavy == 0 || o.window == 0)) o.budget = context;
}
// SnapKV's observation window of 32 (the whole prompt when shorter).
void snapkv_defaults(CacheOptions& o, int64_t) {
  if (o.window == 0) o.window = o.prompt > 0 ? std::min<int64_t>(32, o.prompt) : 32;
}

constexpr KvPolicyInfo kPolicies[] = {
    {"dense", "keep every token up to a hard 'limit' (no streaming; default the context)", make_dense_policy, "limit",
     dense_defaults, false, true, false, false, nullptr, false, false},
    {"window", "the last 'window' tokens (0+W; default W = the context)", make_window_policy, "window",
     window_defaults, true, true, false, false, nullptr, false, false},
    {"sink",
     "StreamingLLM: the first 'sink' tokens + the last 'window' (or 'budget' - 'sink'); default 4 + the "
     "context - 4",
     make_sink_policy, "sink,window,budget", sink_defaults, true, true, false, false, nullptr, false, false},
    {"sink-logit", "the last 'window' tokens, for models with learned sink logits (default W = the context)",
     make_sink_logit_policy, "window", window_defaults, true, true, false, true, nullptr, false, false},
    {"modal",
     "StreamingVLM: 'text_sink' + 'text_window' text tokens + the last 'vision_rounds' rounds of "
     "other tokens (at most 'round_tokens' per round)",
     make_modal_policy, "text_sink,text_window,vision_rounds,round_tokens", nullptr, true, false, true, false,
     "round_tokens", false, false},
    {"chunked",
     "chunked video: the first 'sink_chunks' chunks + the last 'window_chunks' chunks (at most "
     "'chunk_tokens' each), evicted whole",
     make_chunked_policy, "sink_chunks,window_chunks,chunk_tokens", nullptr, true, false, true, false,
     "chunk_tokens", false, false},
    {"heavy",
     "H2O heavy hitters: the last 'window' tokens + the 'heavy' older ones with the most attention received "
     "(or 'budget' = heavy + window; default half each of the context)",
     make_heavy_policy, "heavy,window,budget", heavy_defaults, true, true, false, false, nullptr, true, false},
    {"adaptive",
     "adaptive sinks: the last 'window' tokens + the 'sink' older tokens this model parks the most attention "
     "on, measured online (or 'budget' = sink + window); default 4 + the context - 4",
     make_adaptive_policy, "sink,window,budget", adaptive_defaults, true, true, false, false, nullptr, true, false},
    {"adaptive-layer",
     "adaptive sinks per layer: each layer sees the last 'window' tokens + its own 'sink' older tokens it parks "
     "the most attention on (or 'budget' = sink + window); the storage holds 'layers' x sink + window "
     "('layers' = the model's); default 4 + the context - 4",
     make_adaptive_layer_policy, "sink,window,budget,layers", adaptive_layer_defaults, true, true, false, false,
     nullptr, true, true},
    {"snapkv",
     "SnapKV prompt compression: of the first 'prompt' tokens keep the 'budget' - 'window' keys its last "
     "'window' tokens (default 32) attend to most (max-pooled over 'pool'), then the latest tokens up to 'budget'",
     make_snapkv_policy, "prompt,budget,window,pool", snapkv_defaults, true, true, false, false, nullptr, true, false},
};

struct OptionField {
  const char* key;
  int64_t CacheOptions::*member;
};
constexpr OptionField kOptionFields[] = {
    {"limit", &CacheOptions::limit},
    {"sink", &CacheOptions::sink},
    {"window", &CacheOptions::window},
    {"budget", &CacheOptions::budget},
    {"text_sink", &CacheOptions::text_sink},
    {"text_window", &CacheOptions::text_window},
    {"vision_rounds", &CacheOptions::vision_rounds},
    {"round_tokens", &CacheOptions::round_tokens},
    {"sink_chunks", &CacheOptions::sink_chunks},
    {"window_chunks", &CacheOptions::window_chunks},
    {"chunk_tokens", &CacheOptions::chunk_tokens},
    {"heavy", &CacheOptions::heavy},
    {"prompt", &CacheOptions::prompt},
    {"pool", &CacheOptions::pool},
    {"layers", &CacheOptions::layers},
};

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

std::string known_policy_names() {
  std::string names;
  for (const auto& p : kPolicies) names += std::string(names.empty() ? "" : ", ") + p.name;
  return names;
}

}  // namespace

namespace cache_detail {

void require_at_least(const char* policy, const char* option, int64_t value, int64_t min) {
  if (value < min)
    throw Error(std::string(policy) + " cache: option '" + option + "' must be >= " +
                std::to_string(min) + " (got " + std::to_string(value) + ")");
}

void StreamOrder::check(const char* policy, const TokenMeta& t) const {
  if (!started_) return;
  if (t.index <= last_index_)
    throw Error(std::string(policy) + " cache: token index " + std::to_string(t.index) +
                " does not follow " + std::to_string(last_index_) +
                " (stream indices must strictly increase)");
  if (t.round < last_round_)
    throw Error(std::string(policy) + " cache: round " + std::to_string(t.round) +
                " of token " + std::to_string(t.index) + " is below the previous round " +
                std::to_string(last_round_) + " (round ids must not decrease)");
}

}  // namespace cache_detail

void KvPolicy::append(std::span<const TokenMeta> tokens, std::vector<TokenMeta>& evicted) {
  for (const TokenMeta& t : tokens) append(t, evicted);
}

std::vector<TokenMeta> KvPolicy::survivors() const {
  std::vector<TokenMeta> out;
  survivors(out);
  return out;
}

std::span<const KvPolicyInfo> kv_policies() { return kPolicies; }

const KvPolicyInfo& kv_policy_info(std::string_view name) {
  for (const auto& p : kPolicies)
    if (name == p.name) return p;
  throw Error("unknown cache policy '" + std::string(name) + "' (known: " + known_policy_names() +
              ")");
}

std::unique_ptr<KvPolicy> make_kv_policy(std::string_view name, const CacheOptions& options) {
  return kv_policy_info(name).make(options);
}

bool kv_policy_reads(std::string_view policy, std::string_view option) {
  std::string_view keys = kv_policy_info(policy).option_keys;
  while (!keys.empty()) {
    const size_t comma = keys.find(',');
    if (keys.substr(0, comma) == option) return true;
    keys = comma == std::string_view::npos ? std::string_view{} : keys.substr(comma + 1);
  }
  return false;
}

CacheSpec with_default_sizes(CacheSpec spec, int64_t context) {
  check(context > 0, "cache defaults: the context must be > 0 (got " + std::to_string(context) + ")");
  const KvPolicyInfo& info = kv_policy_info(spec.policy);
  if (info.fill_defaults) info.fill_defaults(spec.options, context);
  return spec;
}

std::string cache_spec_string(const CacheSpec& spec) {
  std::string out = spec.policy;
  bool first = true;
  for (const auto& f : kOptionFields) {
    const int64_t v = spec.options.*(f.member);
    if (v == 0 || !kv_policy_reads(spec.policy, f.key)) continue;
    out += std::string(first ? ":" : ",") + f.key + "=" + std::to_string(v);
    first = false;
  }
  return out;
}

std::unique_ptr<KvPolicy> make_kv_policy(const CacheSpec& spec) {
  return make_kv_policy(spec.policy, spec.options);
}

CacheSpec parse_cache_spec(std::string_view text) {
  CacheSpec spec;
  const size_t colon = text.find(':');
  spec.policy = trim(text.substr(0, colon));
  if (spec.policy.empty())
    throw Error("cache spec '" + std::string(text) + "': missing policy name (known: " +
                known_policy_names() + ")");
  if (colon == std::string_view::npos) return spec;
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string::npos)
      throw Error("cache spec '" + std::string(text) + "': expected key=value, got '" + item + "'");
    const std::string key = trim(std::string_view(item).substr(0, eq));
    const std::string value = trim(std::string_view(item).substr(eq + 1));
    const auto* field = std::find_if(std::begin(kOptionFields), std::end(kOptionFields),
                                     [&](const OptionField& f) { return key == f.key; });
    if (field == std::end(kOptionFields)) {
      std::string keys;
      for (const auto& f : kOptionFields) keys += std::string(keys.empty() ? "" : ", ") + f.key;
      throw Error("cache spec '" + std::string(text) + "': unknown option '" + key +
                  "' (known: " + keys + ")");
    }
    int64_t number = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty())
      throw Error("cache spec '" + std::string(text) + "': option '" + key +
                  "' needs an integer, got '" + value + "'");
    spec.options.*(field->member) = number;
  }
  return spec;
}

}  // namespace sinklab
