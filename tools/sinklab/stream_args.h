// Cache flags shared by `sinklab ppl` and `sinklab stream`: --cache, --sink,
// --window, --positions and -c, turned into SessionOptions; plus the resident
// memory of this process for progress lines.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
#include <unistd.h>

#include "sinklab/model.h"

namespace sinklab::cli {

struct CacheArgs {
  std::string cache;           // as given; empty = default_policy
  std::string default_policy;  // the command's default (set by add_cache_flags)
  int64_t sink = -1;
  int64_t window = -1;
  std::string positions;
  int64_t context = 0;
};

// With cache_list, --cache may be repeated or hold a comma list of specs (compared in one run).
inline void add_cache_flags(CLI::App& sub, CacheArgs& a, const std::string& default_policy,
                            std::vector<std::string>* cache_list = nullptr) {
  a.default_policy = default_policy;
  std::string names;  // from the registry, so a new policy is listed without touching this
  for (const KvPolicyInfo& p : kv_policies()) names += std::string(names.empty() ? "" : ", ") + p.name;
  const std::string help =
      std::string("KV cache policy or spec: ") + names +
      ", or e.g. 'sink:sink=4,window=252', 'chunked:window_chunks=4', 'adaptive:sink=4,budget=64'. Sizes left out follow the "
      "context (-c, default the model's): window W = context, sink 4 + (context - 4) (default " +
      default_policy + ")" +
      (cache_list ? ". Several (repeat --cache or list them: dense,window,sink) are compared on the same "
                    "tokens in one table, with the KL of each to the first"
                  : "");
  if (cache_list)
    sub.add_option("--cache", *cache_list, help)->take_all()->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  else
    sub.add_option("--cache", a.cache, help);
  sub.add_option("--sink", a.sink, "Sink tokens S (policy sink)")->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  sub.add_option("--window", a.window, "Window tokens W (policies window, sink, sink-logit)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  sub.add_option("--positions", a.positions,
                 "Positions of cached keys: reindex, shift or absolute (default reindex; absolute "
                 "for models with neither RoPE nor a GOAT/ALiBi prior)")
      ->check(CLI::IsMember({"reindex", "shift", "absolute"}));
  sub.add_option("-c,--ctx-size", a.context,
                 "Context the cache sizes left out follow (default the model's training context): dense "
                 "limit; window and sink-logit W; sink S + W")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
}

// The spec string for SessionOptions::cache: --cache plus --sink and --window,
// each allowed only for a policy that reads it (the registry says which).
inline std::string cache_spec_from_flags(const CacheArgs& a) {
  const std::string given = a.cache.empty() ? a.default_policy : a.cache;
  const CacheSpec base = parse_cache_spec(given);
  std::string spec = given;
  auto add = [&](const char* key, int64_t v) {
    if (v < 0) return;
    check(kv_policy_reads(base.policy, key),
          std::string("--") + key + " applies to a cache that has a '" + key + "' size (got --cache " + given + ")");
    spec += (spec.find(':') == std::string::npos ? ":" : ",") + std::string(key) + "=" + std::to_string(v);
  };
  add("sink", a.sink);
  add("window", a.window);
  return spec;
}

// -c is the context every size left out follows (with_default_sizes).
inline SessionOptions session_options(const CacheArgs& a) {
  SessionOptions o;
  o.cache = cache_spec_from_flags(a);
  o.positions = a.positions;
  o.context = a.context;
  return o;
}

// Resident set size in MiB (0 when /proc is unavailable).
inline double resident_mib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long long total = 0, resident = 0;
  const int got = std::fscanf(f, "%lld %lld", &total, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

}  // namespace sinklab::cli
