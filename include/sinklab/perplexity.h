// Perplexity of a token stream through a KV cache policy: the evaluation loop
// behind `sinklab ppl`, `sinklab bench stream` and Python `Model.perplexity`.
//
// Every token is fed one at a time through a Session with the given cache and
// the next token is scored (NLL in nats). Three ways to run it:
//  - streaming (any policy): the cache evicts as the policy says;
//  - recompute: the policy decides which tokens survive, and a dense session
//    re-encodes the survivors at positions 0..n-1 for every prediction (the
//    StreamingLLM baseline);
//  - dense past its capacity: the stream is cut into windows of the capacity,
//    each scored from a fresh cache that starts with the stream's first token
//    (BOS), as llama-perplexity does; `windows` says how many.
// With a base spec, the stream also runs through that configuration (no
// interventions) and the KL(base || this) of each next-token distribution is
// summed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sinklab/cache.h"
#include "sinklab/model.h"

namespace sinklab {

struct PerplexityOptions {
  std::string cache = "dense";   // cache spec (parse_cache_spec); sizes left out follow `context`
  std::string positions;         // position contract; "" = the model's default
  int64_t context = 0;           // SessionOptions::context (0 = the model's training context)
  bool recompute = false;
  std::string kl_base;           // cache spec of the base run; "" = no KL
  std::vector<std::string> ablate;  // interventions of this run (intervene.h); never of the base
  int64_t chunk = 1024;          // tokens per reported chunk
  bool keep_token_nll = false;   // fill PerplexityResult::token_nll
};

struct PerplexityChunk {
  int64_t start = 0, count = 0;  // predicted tokens start..start+count-1 (the index of the target)
  double nll = 0, kl = 0;        // sums over the chunk
};

struct PerplexityResult {
  std::string cache;             // the spec in use, sizes filled in (cache_spec_string)
  std::string positions;         // "reindex", "shift", "absolute" or "recompute"
  int64_t capacity = 0;          // most tokens the cache holds
  int64_t predicted = 0;
  double nll = 0;                // mean NLL per predicted token
  double ppl = 0;                // exp(nll)
  double kl = 0;                 // mean KL(base || this); 0 without a base
  int64_t windows = 1;           // dense past its capacity: fresh windows used
  double seconds = 0;            // spent in this run's steps (the base run's excluded)
  size_t kv_bytes = 0;           // KV memory of this run's cache (every layer)
  size_t kv_sliding_bytes = 0;   // of which the sliding layers' own window cache
  std::vector<PerplexityChunk> chunks;
  std::vector<float> token_nll;  // per predicted token (keep_token_nll)
};

struct PerplexityProgress {
  int64_t predicted = 0, total = 0;
  double nll_sum = 0;
  int64_t cached = 0, capacity = 0;
};

// `meta` holds one entry per token of `ids` (empty = text tokens at their
// indices). Throws Error for fewer than 2 tokens, a bad spec, or a failure of
// the cache, adding the perplexity over the predictions made so far.
PerplexityResult run_perplexity(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                                std::span<const TokenMeta> meta, const PerplexityOptions& options,
                                const std::function<void(const PerplexityProgress&)>& progress = {});

// The loop's inner step, for callers that time or drive steps themselves
// (`sinklab bench stream`): one configuration of `options` (its kl_base and
// chunk are not used) fed token by token over `ids`, which must outlive it.
class PerplexityRunner {
 public:
  PerplexityRunner(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                   const PerplexityOptions& options);
  ~PerplexityRunner();
  PerplexityRunner(const PerplexityRunner&) = delete;
  PerplexityRunner& operator=(const PerplexityRunner&) = delete;

  // Feeds ids[i] and returns the logits that predict ids[i + 1].
  std::span<const float> step(int64_t i, const TokenMeta& meta);
  // Feeds ids[0, n) as text tokens without scoring them (a warm-up): one batch
  // through a streaming cache, the policy alone under recompute.
  void skip(int64_t n);
  const Session& session() const;
  int64_t windows() const;  // dense windows used so far
  int64_t cached() const;   // tokens the cache (or the recompute policy) holds

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// NLL of `target` under the logits, and KL(p || q) of two next-token distributions (nats).
double next_token_nll(std::span<const float> logits, int32_t target);
double next_token_kl(std::span<const float> p_logits, std::span<const float> q_logits);

}  // namespace sinklab

#include <nlohmann/json_fwd.hpp>

namespace sinklab {

// One result as JSON (cache, positions, capacity, predicted, nll, ppl, kl,
// windows, tokens_per_s, kv_bytes, chunks; token_nll when kept).
nlohmann::json perplexity_json(const PerplexityResult& r);
// A self-contained HTML page comparing runs over one stream ({"model",
// "text", "runs": [perplexity_json...]}): the running mean of the NLL against
// the position for every run, and the table.
std::string perplexity_compare_html(const nlohmann::json& comparison);

}  // namespace sinklab
