// Sampling flags shared by `sinklab generate` and `sinklab stream`, written
// into GenerateOptions (whose defaults the help shows).
#pragma once

#include <CLI/CLI.hpp>
#include <limits>
#include <string>

#include "sinklab/model.h"

namespace sinklab::cli {

inline void add_sampling_flags(CLI::App& sub, GenerateOptions& o) {
  auto dflt = [](auto v) { return " (default " + CLI::detail::to_string(v) + ")"; };
  sub.add_option("--temp", o.temperature, "Temperature; 0 = greedy" + dflt(o.temperature))
      ->check(CLI::Range(0.0f, 1e6f));
  sub.add_option("--top-k", o.top_k, "Keep the k most likely tokens; 0 = off" + dflt(o.top_k))
      ->check(CLI::Range(0, 1 << 30));
  sub.add_option("--top-p", o.top_p, "Nucleus sampling: keep the smallest set with this mass; 1 = off" + dflt(o.top_p))
      ->check(CLI::Range(1e-6f, 1.0f));
  sub.add_option("--min-p", o.min_p, "Drop tokens below min-p times the top probability; 0 = off" + dflt(o.min_p))
      ->check(CLI::Range(0.0f, 0.999999f));
  sub.add_option("--repeat-penalty", o.repeat_penalty,
                 "Penalty for tokens among the last repeat-last-n; 1 = off" + dflt(o.repeat_penalty))
      ->check(CLI::Range(1e-6f, 1e6f));
  sub.add_option("--repeat-last-n", o.repeat_last_n,
                 "Tokens the repeat penalty looks back on; 0 = off, -1 = all kept" + dflt(o.repeat_last_n))
      ->check(CLI::Range(-1, 1 << 30));
  sub.add_option("-s,--seed", o.seed, "Random seed; -1 = a random one (printed at the end)" + dflt(o.seed))
      ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  sub.add_flag("--ignore-eos", [&o](int64_t) { o.stop_at_eos = false; },
               "Keep generating after the end-of-sequence token");
}

}  // namespace sinklab::cli
