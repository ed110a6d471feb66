// The decode loop (model.h, generate_tokens).
#include <chrono>
#include <random>

#include "sinklab/model.h"

namespace sinklab {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GenerateResult generate_tokens(Session& session, std::span<const int32_t> prompt, const GenerateOptions& o,
                               const std::function<bool(int32_t)>& on_token,
                               const std::function<TokenMeta(int64_t)>& meta_of) {
  check(!prompt.empty(), "generate: the prompt has no tokens (and no BOS): there is nothing to start from");
  check(o.max_tokens >= -1, "generate: max_tokens must be >= -1 (-1 = no limit)");
  check(o.history_limit >= 1, "generate: history_limit must be >= 1");
  check(session.streaming() || int64_t(prompt.size()) <= session.context(),
        "generate: the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
            std::to_string(session.context()) + " (raise the context or shorten the prompt)");
  GenerateResult r;
  r.seed = o.seed >= 0 ? uint64_t(o.seed) : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
  SamplerOptions so;
  so.temperature = o.temperature;
  so.top_k = o.top_k;
  so.top_p = o.top_p;
  so.min_p = o.min_p;
  so.repeat_penalty = o.repeat_penalty;
  so.repeat_last_n = o.repeat_last_n;
  so.seed = r.seed;
  Sampler sampler(so);
  const int32_t eos = session.model().config().eos_id;

  auto feed = [&](std::span<const int32_t> ids) {
    if (!meta_of) return session.feed(ids);
    std::vector<TokenMeta> meta;
    for (size_t i = 0; i < ids.size(); ++i) meta.push_back(meta_of(session.n_past() + int64_t(i)));
    session.feed(ids, meta);
  };
  auto t0 = std::chrono::steady_clock::now();
  feed(prompt);
  r.prefill_s = seconds_since(t0);
  r.prompt_tokens = int64_t(prompt.size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  r.stop_reason = "token limit (" + std::to_string(o.max_tokens) + ")";
  for (int64_t i = 0; o.max_tokens < 0 || i < o.max_tokens; ++i) {
    if (i > 0) {
      if (!session.streaming() && session.n_past() >= session.context()) {
        r.stop_reason = "context full (" + std::to_string(session.context()) + " tokens)";
        break;
      }
      t0 = std::chrono::steady_clock::now();
      feed(std::span<const int32_t>(&history.back(), 1));
      r.decode_s += seconds_since(t0);
      ++r.decode_steps;
    }
    const int32_t next = sampler.sample(session.logits(), history);
    if (o.stop_at_eos && next == eos) {
      r.stop_reason = "end of sequence";
      break;
    }
    history.push_back(next);
    if (int64_t(history.size()) > 2 * o.history_limit)
      history.erase(history.begin(), history.end() - o.history_limit);
    if (o.keep_ids) r.ids.push_back(next);
    ++r.generated;
    if (on_token && !on_token(next)) {
      r.stop_reason = "stopped by the caller";
      break;
    }
  }
  return r;
}

}  // namespace sinklab
