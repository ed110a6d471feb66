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
  const std::string help =
      "KV cache policy or spec: dense, window, sink, sink-logit, modal, chunked, or e.g. "
      "'sink:sink=4,window=252', 'chunked:window_chunks=4'. Sizes left out follow the "
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
                 "dense: context limit (default the model's training context); sink: budget S+W "
                 "when --window is not given; window, sink-logit: W when --window is not given")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
}

// The spec string for SessionOptions::cache: --cache plus the flags that apply.
inline std::string cache_spec_from_flags(const CacheArgs& a) {
  const std::string given = a.cache.empty() ? a.default_policy : a.cache;
  const CacheSpec base = parse_cache_spec(given);
  std::string spec = given;
  auto add = [&](const std::string& key, int64_t v) {
    spec += (spec.find(':') == std::string::npos ? ":" : ",") + key + "=" + std::to_string(v);
  };
  const std::string& p = base.policy;
  if (p == "sink") {
    if (a.sink >= 0) add("sink", a.sink);
    if (a.window > 0) {
      add("window", a.window);
    } else if (a.context > 0) {
      const int64_t s = a.sink >= 0 ? a.sink : base.options.sink;
      check(s < a.context, "--sink " + std::to_string(s) + " must be smaller than the budget -c " +
                               std::to_string(a.context) + " so that the window keeps at least one token");
      add("budget", a.context);
    }
  } else {
    check(a.sink < 0, "--sink applies to --cache sink only (got --cache " + given + ")");
    if (p == "window" || p == "sink-logit") {
      if (a.window > 0) add("window", a.window);
      else if (a.context > 0) add("window", a.context);
    } else {
      check(a.window <= 0, "--window applies to --cache window, sink or sink-logit only (got --cache " + given + ")");
      if (p == "dense" && a.context > 0) add("limit", a.context);
    }
  }
  return spec;
}

inline SessionOptions session_options(const CacheArgs& a) {
  SessionOptions o;
  o.cache = cache_spec_from_flags(a);
  o.positions = a.positions;
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
