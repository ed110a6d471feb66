// Shared helpers of the cache tests: random streams and brute-force models
// of every built-in policy, written from the policy descriptions only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sinklab/cache.h"

namespace cache_test {

using sinklab::CacheOptions;
using sinklab::Modality;
using sinklab::TokenMeta;

// Random stream: index gaps of 1..3, random modality, rounds that advance
// every few tokens; `group_max` bounds the non-text tokens of one round
// (modal) or all tokens of one chunk (chunked, where every token is counted).
inline std::vector<TokenMeta> random_stream(std::mt19937& rng, int n, int group_max,
                                            bool count_all_tokens, double text_share) {
  std::vector<TokenMeta> out;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int64_t index = std::uniform_int_distribution<int64_t>(0, 5)(rng);
  int32_t round = 0;
  int in_group = 0;
  int group_size = std::uniform_int_distribution<int>(1, group_max)(rng);
  for (int i = 0; i < n; ++i) {
    const bool text = u(rng) < text_share;
    const bool counted = count_all_tokens || !text;
    if (counted && in_group == group_size) {
      round += std::uniform_int_distribution<int32_t>(1, 2)(rng);
      in_group = 0;
      group_size = std::uniform_int_distribution<int>(1, group_max)(rng);
    }
    out.push_back(TokenMeta{index, uint8_t(text ? Modality::Text
                                                : (u(rng) < 0.8 ? Modality::Vision : Modality::Audio)),
                            round});
    if (counted) ++in_group;
    index += std::uniform_int_distribution<int64_t>(1, 3)(rng);
  }
  return out;
}

// Keeps the members of `history` whose positions are in `keep` (ascending).
inline std::vector<TokenMeta> select(const std::vector<TokenMeta>& history, const std::vector<bool>& keep) {
  std::vector<TokenMeta> out;
  for (size_t i = 0; i < history.size(); ++i)
    if (keep[i]) out.push_back(history[i]);
  return out;
}

// The first `head` members of `ids` plus the last `tail` of the rest.
inline std::set<int64_t> head_and_tail(const std::vector<int64_t>& ids, int64_t head, int64_t tail) {
  std::set<int64_t> keep;
  const int64_t n = int64_t(ids.size());
  for (int64_t i = 0; i < n; ++i)
    if (i < head || i >= std::max(head, n - tail)) keep.insert(ids[size_t(i)]);
  return keep;
}

// Survivors the named policy must hold after `history`, from scratch.
inline std::vector<TokenMeta> brute_force(const std::string& policy, const CacheOptions& o,
                                          const std::vector<TokenMeta>& history) {
  std::vector<bool> keep(history.size(), false);
  std::vector<int64_t> positions(history.size());
  for (size_t i = 0; i < history.size(); ++i) positions[i] = int64_t(i);
  if (policy == "dense") {
    keep.assign(history.size(), true);
  } else if (policy == "window" || policy == "sink-logit" || policy == "sink") {
    const int64_t s = policy == "sink" ? o.sink : 0;
    const int64_t w = policy == "sink" && o.budget > 0 ? o.budget - o.sink : o.window;
    for (int64_t p : head_and_tail(positions, s, w)) keep[size_t(p)] = true;
  } else if (policy == "modal") {
    std::vector<int64_t> text;
    std::vector<int32_t> rounds;  // distinct rounds of non-text tokens, in order
    for (size_t i = 0; i < history.size(); ++i) {
      if (history[i].modality == uint8_t(Modality::Text)) {
        text.push_back(int64_t(i));
      } else if (rounds.empty() || rounds.back() != history[i].round) {
        rounds.push_back(history[i].round);
      }
    }
    for (int64_t p : head_and_tail(text, o.text_sink, o.text_window)) keep[size_t(p)] = true;
    const size_t first_round = rounds.size() > size_t(o.vision_rounds) ? rounds.size() - size_t(o.vision_rounds) : 0;
    const std::set<int32_t> kept_rounds(rounds.begin() + std::ptrdiff_t(first_round), rounds.end());
    for (size_t i = 0; i < history.size(); ++i)
      if (history[i].modality != uint8_t(Modality::Text) && kept_rounds.count(history[i].round))
        keep[i] = true;
  } else if (policy == "chunked") {
    std::vector<int64_t> chunks;
    for (const TokenMeta& t : history)
      if (chunks.empty() || chunks.back() != t.round) chunks.push_back(t.round);
    const std::set<int64_t> kept = head_and_tail(chunks, o.sink_chunks, o.window_chunks);
    for (size_t i = 0; i < history.size(); ++i) keep[i] = kept.count(history[i].round) > 0;
  } else {
    throw std::runtime_error("no brute-force model for " + policy);
  }
  return select(history, keep);
}

inline std::vector<int64_t> indices(const std::vector<TokenMeta>& v) {
  std::vector<int64_t> out;
  for (const TokenMeta& t : v) out.push_back(t.index);
  return out;
}

// One policy configuration with the stream shape it needs.
struct PolicyCase {
  std::string policy;
  CacheOptions options;
  int group_max = 8;            // most tokens per round/chunk in the stream
  bool count_all_tokens = false;  // chunked: every token belongs to the chunk
  double text_share = 0.5;
};

inline std::vector<PolicyCase> policy_cases() {
  std::vector<PolicyCase> cases;
  auto add = [&](std::string name, auto set, int group_max = 8, bool all = false, double text = 0.5) {
    PolicyCase c;
    c.policy = std::move(name);
    set(c.options);
    c.group_max = group_max;
    c.count_all_tokens = all;
    c.text_share = text;
    cases.push_back(c);
  };
  add("dense", [](CacheOptions& o) { o.limit = 100000; });
  add("window", [](CacheOptions& o) { o.window = 1; });
  add("window", [](CacheOptions& o) { o.window = 37; });
  add("sink-logit", [](CacheOptions& o) { o.window = 64; });
  add("sink", [](CacheOptions& o) { o.sink = 4; o.window = 28; });
  add("sink", [](CacheOptions& o) { o.sink = 0; o.window = 5; });
  add("sink", [](CacheOptions& o) { o.sink = 1; o.budget = 16; o.window = 0; });
  add("modal", [](CacheOptions& o) { o.text_sink = 6; o.text_window = 10; o.vision_rounds = 3; o.round_tokens = 8; });
  add("modal", [](CacheOptions& o) { o.text_sink = 0; o.text_window = 1; o.vision_rounds = 1; o.round_tokens = 5; }, 5, false, 0.3);
  add("modal", [](CacheOptions&) {}, 256, false, 0.4);  // defaults 512/512/16
  add("chunked", [](CacheOptions& o) { o.sink_chunks = 1; o.window_chunks = 3; o.chunk_tokens = 9; }, 9, true);
  add("chunked", [](CacheOptions& o) { o.sink_chunks = 0; o.window_chunks = 1; o.chunk_tokens = 4; }, 4, true);
  add("chunked", [](CacheOptions& o) { o.sink_chunks = 3; o.window_chunks = 2; o.chunk_tokens = 12; }, 12, true);
  return cases;
}

}  // namespace cache_test
