// The perplexity loop (include/sinklab/perplexity.h).
#include "sinklab/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "sinklab/intervene.h"

namespace sinklab {

namespace {

double log_sum_exp(std::span<const float> logits) {
  double mx = -INFINITY;
  for (float x : logits) mx = std::max(mx, double(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(double(x) - mx);
  return mx + std::log(sum);
}

}  // namespace

// One configuration fed token by token: a Session that streams, or a dense one
// that restarts in windows of its capacity, or (recompute) a policy whose
// survivors a dense session re-encodes for every prediction.
class PerplexityRunner::Impl {
 public:
  Impl(const std::shared_ptr<const Model>& model, const std::string& cache, const PerplexityOptions& o,
       std::span<const int32_t> ids, const std::vector<std::string>& ablate)
      : ids_(ids) {
    check(model != nullptr, "perplexity: model is null");
    SessionOptions so;
    so.cache = cache;
    so.positions = o.positions;
    so.context = o.context;
    interventions_ = parse_interventions(ablate);
    prefix_ = intervention_prefix(interventions_, model->config());
    session_ = std::make_unique<Session>(model, so);
    if (o.recompute) {
      check(!kv_policy_info(session_->cache_spec().policy).needs_attention,
            "perplexity: --recompute runs the cache policy without attention, and '" +
                session_->cache_spec().policy + "' evicts by the attention it observes (stream it instead)");
      policy_ = make_kv_policy(session_->cache_spec());
      SessionOptions d;
      d.context = policy_->capacity() + int64_t(prefix_.size());
      fresh_ = std::make_unique<Session>(model, d);
      attached_ = std::make_unique<AttachedInterventions>(*fresh_, interventions_);
    } else {
      attached_ = std::make_unique<AttachedInterventions>(*session_, interventions_);
      if (!prefix_.empty()) session_->feed(prefix_);
    }
    // A dense window restarts with the stream's first token (BOS) after the prefix.
    const int32_t bos = model->config().bos_id;
    restart_with_bos_ = !ids.empty() && bos >= 0 && ids[0] == bos;
  }

  // Feeds ids[i] and returns the logits for ids[i + 1].
  std::span<const float> step(int64_t i, const TokenMeta& meta) {
    if (policy_) return recompute_step(i, meta);
    if (!session_->streaming() && session_->n_past() >= session_->context()) restart_window();
    session_->feed(std::span<const int32_t>(&ids_[size_t(i)], 1), std::span<const TokenMeta>(&meta, 1));
    return session_->logits();
  }

  // Feeds ids[0, n) as text tokens without scoring them: one batch through a
  // streaming cache, the policy alone under recompute, token by token otherwise.
  void skip(int64_t n) {
    check(n >= 0 && size_t(n) <= ids_.size(), "perplexity: cannot skip past the end of the stream");
    if (policy_) {
      for (int64_t i = 0; i < n; ++i) append_to_policy(i, TokenMeta{i, 0, 0});
    } else if (session_->streaming()) {
      session_->feed(ids_.subspan(0, size_t(n)));
    } else {
      for (int64_t i = 0; i < n; ++i) step(i, TokenMeta{i, 0, 0});
    }
  }

  const Session& session() const { return *session_; }
  int64_t windows() const { return windows_; }
  int64_t cached() const { return policy_ ? policy_->size() : session_->evict_stats().cached; }

 private:
  void append_to_policy(int64_t i, const TokenMeta& meta) {
    evicted_.clear();
    if (!session_->streaming() && policy_->size() >= policy_->capacity()) {
      // Dense past its capacity: a fresh window, BOS first, as without recompute.
      policy_ = make_kv_policy(session_->cache_spec());
      if (restart_with_bos_) policy_->append(TokenMeta{0, 0, 0}, evicted_);
      ++windows_;
    }
    policy_->append(TokenMeta{i, meta.modality, meta.round}, evicted_);
  }

  std::span<const float> recompute_step(int64_t i, const TokenMeta& meta) {
    append_to_policy(i, meta);
    policy_->survivors(alive_);
    window_ids_.assign(prefix_.begin(), prefix_.end());
    for (const TokenMeta& t : alive_) window_ids_.push_back(ids_[size_t(t.index)]);
    fresh_->reset();
    fresh_->feed(window_ids_);
    return fresh_->logits();
  }

  void restart_window() {
    const int64_t room = session_->context() - int64_t(prefix_.size()) - (restart_with_bos_ ? 1 : 0);
    check(room >= 1, "perplexity: the dense context " + std::to_string(session_->context()) +
                         " leaves no room for a window after the intervention prefix and BOS");
    session_->reset();
    if (!prefix_.empty()) session_->feed(prefix_);
    if (restart_with_bos_) session_->feed(ids_.subspan(0, 1));
    ++windows_;
  }

  std::span<const int32_t> ids_;
  std::vector<Intervention> interventions_;
  std::vector<int32_t> prefix_;
  std::unique_ptr<Session> session_, fresh_;
  std::unique_ptr<AttachedInterventions> attached_;
  std::unique_ptr<KvPolicy> policy_;
  std::vector<TokenMeta> evicted_, alive_;
  std::vector<int32_t> window_ids_;
  bool restart_with_bos_ = false;
  int64_t windows_ = 1;
};

PerplexityRunner::PerplexityRunner(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                                   const PerplexityOptions& o)
    : impl_(std::make_unique<Impl>(model, o.cache, o, ids, o.ablate)) {}
PerplexityRunner::~PerplexityRunner() = default;
std::span<const float> PerplexityRunner::step(int64_t i, const TokenMeta& meta) { return impl_->step(i, meta); }
void PerplexityRunner::skip(int64_t n) { impl_->skip(n); }
const Session& PerplexityRunner::session() const { return impl_->session(); }
int64_t PerplexityRunner::windows() const { return impl_->windows(); }
int64_t PerplexityRunner::cached() const { return impl_->cached(); }

double next_token_nll(std::span<const float> logits, int32_t target) {
  check(target >= 0 && size_t(target) < logits.size(), "perplexity: target id outside the vocabulary");
  return log_sum_exp(logits) - double(logits[size_t(target)]);
}

double next_token_kl(std::span<const float> p_logits, std::span<const float> q_logits) {
  check(p_logits.size() == q_logits.size(), "perplexity: KL of logit vectors of different sizes");
  const double zp = log_sum_exp(p_logits), zq = log_sum_exp(q_logits);
  double kl = 0;
  for (size_t v = 0; v < p_logits.size(); ++v) {
    const double lp = double(p_logits[v]) - zp, lq = double(q_logits[v]) - zq;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(kl, 0.0);
}

PerplexityResult run_perplexity(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                                std::span<const TokenMeta> meta, const PerplexityOptions& o,
                                const std::function<void(const PerplexityProgress&)>& progress) {
  check(model != nullptr, "perplexity: model is null");
  check(ids.size() >= 2, "perplexity: at least 2 tokens are needed (got " + std::to_string(ids.size()) + ")");
  check(meta.empty() || meta.size() >= ids.size(), "perplexity: meta must hold one entry per token");
  check(o.chunk >= 1, "perplexity: chunk must be >= 1");
  PerplexityRunner run(model, ids, o);
  std::unique_ptr<PerplexityRunner> base;
  if (!o.kl_base.empty()) {
    PerplexityOptions b;
    b.cache = o.kl_base;
    b.context = o.context;
    base = std::make_unique<PerplexityRunner>(model, ids, b);
  }
  PerplexityResult r;
  r.cache = cache_spec_string(run.session().cache_spec());
  r.positions = o.recompute ? "recompute" : position_contract_name(run.session().positions());
  r.capacity = run.session().context();
  r.kv_bytes = run.session().evict_stats().bytes;
  r.kv_sliding_bytes = run.session().evict_stats().local_bytes;
  const int64_t n_pred = int64_t(ids.size()) - 1;
  if (o.keep_token_nll) r.token_nll.reserve(size_t(n_pred));
  double total = 0, total_kl = 0;
  for (int64_t i = 0; i < n_pred; ++i) {
    const TokenMeta m = meta.empty() ? TokenMeta{i, 0, 0} : meta[size_t(i)];
    std::span<const float> logits;
    double kl = 0;
    try {
      const auto step_start = std::chrono::steady_clock::now();
      logits = run.step(i, m);
      r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      if (base) kl = next_token_kl(base->step(i, m), logits);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (perplexity over the first " + std::to_string(r.predicted) +
                  " predictions: " + std::to_string(std::exp(total / double(std::max<int64_t>(r.predicted, 1)))) +
                  ")");
    }
    const double nll = next_token_nll(logits, ids[size_t(i + 1)]);
    total += nll;
    total_kl += kl;
    if (o.keep_token_nll) r.token_nll.push_back(float(nll));
    if (r.chunks.empty() || r.chunks.back().count == o.chunk) r.chunks.push_back({i + 1, 0, 0, 0});
    r.chunks.back().count++;
    r.chunks.back().nll += nll;
    r.chunks.back().kl += kl;
    ++r.predicted;
    if (progress) progress({r.predicted, n_pred, total, run.cached(), r.capacity});
  }
  r.nll = total / double(r.predicted);
  r.ppl = std::exp(r.nll);
  r.kl = base ? total_kl / double(r.predicted) : 0.0;
  r.windows = run.windows();
  return r;
}

}  // namespace sinklab
