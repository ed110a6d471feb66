// Unlearning by fine-tuning: forget rows pushed away (gradient ascent or NPO),
// retain rows kept, an optional value-norm alignment on the first tokens, all
// against a frozen copy of the model as it was at the start.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "sinklab/core.h"
#include "sinklab/unlearn.h"

namespace sinklab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One step's rows of one kind, gathered into [B, T] buffers.
struct RowBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;
  int64_t scored = 0;
};

RowBatch gather(const std::vector<UnlearnExample>& examples, const std::vector<size_t>& pool, int64_t count,
                uint64_t seed, int64_t step, uint64_t kind) {
  RowBatch rb;
  if (pool.empty() || count <= 0) return rb;
  rb.B = count;
  rb.T = int64_t(examples[pool[0]].inputs.size());
  for (int64_t b = 0; b < count; ++b) {
    const uint64_t h = task_sequence_seed(seed, uint64_t(step), kind, uint64_t(b));
    const UnlearnExample& e = examples[pool[size_t(h % pool.size())]];
    rb.inputs.insert(rb.inputs.end(), e.inputs.begin(), e.inputs.end());
    rb.targets.insert(rb.targets.end(), e.targets.begin(), e.targets.end());
  }
  for (int32_t t : rb.targets) rb.scored += t >= 0;
  return rb;
}

void check_examples(const std::vector<UnlearnExample>& examples, const TrainModel& model) {
  check(!examples.empty(), "unlearn: no examples");
  const size_t T = examples[0].inputs.size();
  check(T >= 2 && int64_t(T) <= model.config().seq_len,
        "unlearn: rows must have 2..seq_len (" + std::to_string(model.config().seq_len) + ") tokens");
  for (const UnlearnExample& e : examples)
    check(e.inputs.size() == T && e.targets.size() == T, "unlearn: every row must have the same length");
}

void check_options(const UnlearnOptions& o) {
  check(o.steps >= 1 && o.batch_size >= 1, "unlearn: steps and batch_size must be >= 1");
  check(o.lr > 0 && std::isfinite(o.lr) && o.weight_decay >= 0 && o.grad_clip >= 0,
        "unlearn: lr > 0, weight_decay >= 0 and grad_clip >= 0");
  check(o.npo_beta > 0 && o.forget_weight >= 0 && o.retain_weight >= 0,
        "unlearn: npo_beta > 0, forget_weight and retain_weight >= 0");
  check(o.value_norm_tokens >= 0 && o.value_norm_weight >= 0 && o.eval_every >= 0,
        "unlearn: value_norm_tokens, value_norm_weight and eval_every must be >= 0");
}

// Row sums of per-position losses.
std::vector<double> row_sums(const std::vector<double>& position_loss, int64_t B, int64_t T) {
  std::vector<double> sums(size_t(B), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) sums[size_t(b)] += position_loss[size_t(b * T + t)];
  return sums;
}

struct Unlearner {
  TrainModel& model;
  TrainModel reference;
  const UnlearnOptions& o;

  Unlearner(TrainModel& m, const UnlearnOptions& opts) : model(m), reference(m.config(), 0), o(opts) {
    std::copy(m.values().begin(), m.values().end(), reference.values().begin());
  }

  // Sets the value-norm target of this batch from the reference (or clears it).
  void align_values(const RowBatch& rb) {
    TrainModel::ValueNormPenalty p;
    if (o.value_norm_tokens > 0 && o.value_norm_weight > 0) {
      int64_t n = 0;
      reference.forward_loss(rb.inputs.data(), rb.targets.data(), rb.B, rb.T, &n);
      p.first_n = o.value_norm_tokens;
      p.weight = o.value_norm_weight;
      p.target = reference.shallow_value_norms(o.value_norm_tokens);
    }
    model.set_value_norm_penalty(std::move(p));
  }

  // Gradient of the forget term (added to the model's gradients); returns the mean token loss.
  double forget(const RowBatch& rb, double* penalty) {
    if (rb.B == 0 || rb.scored == 0) return kNaN;
    std::vector<float> scale(size_t(rb.B * rb.T));
    int64_t n = 0;
    if (o.objective == ForgetObjective::GradientAscent) {
      std::fill(scale.begin(), scale.end(), -o.forget_weight / float(rb.scored));
    } else {
      std::vector<double> cur, ref;
      reference.forward_loss(rb.inputs.data(), rb.targets.data(), rb.B, rb.T, &n, {nullptr, &ref});
      model.forward_loss(rb.inputs.data(), rb.targets.data(), rb.B, rb.T, &n, {nullptr, &cur});
      const std::vector<double> cur_rows = row_sums(cur, rb.B, rb.T), ref_rows = row_sums(ref, rb.B, rb.T);
      for (int64_t b = 0; b < rb.B; ++b) {
        const double r = ref_rows[size_t(b)] - cur_rows[size_t(b)];  // log pi - log pi_ref
        const double w = -2.0 * double(o.forget_weight) / (1.0 + std::exp(-double(o.npo_beta) * r)) / double(rb.B);
        std::fill(scale.begin() + b * rb.T, scale.begin() + (b + 1) * rb.T, float(w));
      }
    }
    align_values(rb);
    const double loss = model.forward_backward(rb.inputs.data(), rb.targets.data(), rb.B, rb.T, 1.f, &n,
                                               {scale.data(), nullptr});
    *penalty += model.last_value_norm_penalty();
    return loss / double(std::max<int64_t>(n, 1));
  }

  double retain(const RowBatch& rb, double* penalty) {
    if (rb.B == 0 || rb.scored == 0) return kNaN;
    align_values(rb);
    int64_t n = 0;
    const double loss = model.forward_backward(rb.inputs.data(), rb.targets.data(), rb.B, rb.T,
                                               o.retain_weight / float(rb.scored), &n);
    *penalty += model.last_value_norm_penalty();
    return loss / double(std::max<int64_t>(n, 1));
  }
};

}  // namespace

ForgetObjective forget_objective_from_name(const std::string& name) {
  if (name == "ga") return ForgetObjective::GradientAscent;
  if (name == "npo") return ForgetObjective::Npo;
  throw Error("unknown unlearning objective '" + name + "' (known: ga, npo)");
}

const char* forget_objective_name(ForgetObjective o) { return o == ForgetObjective::Npo ? "npo" : "ga"; }

std::string checkpoint_weights_path(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return (std::filesystem::path(path) / "model.safetensors").string();
  return path;
}

std::vector<UnlearnStep> unlearn(TrainModel& model, const std::vector<UnlearnExample>& examples,
                                 const UnlearnOptions& o, const UnlearnHook& on_eval) {
  check_options(o);
  check_examples(examples, model);
  std::vector<size_t> forget_pool, retain_pool;
  for (size_t i = 0; i < examples.size(); ++i) (examples[i].forget ? forget_pool : retain_pool).push_back(i);
  TrainOptions adam;
  adam.lr = o.lr;
  adam.weight_decay = o.weight_decay;
  Optimizer opt(model, adam);
  Unlearner u(model, o);
  std::vector<UnlearnStep> steps;
  for (int64_t step = 0; step < o.steps; ++step) {
    const RowBatch f = gather(examples, forget_pool, o.batch_size, o.seed, step, 1);
    const RowBatch r = gather(examples, retain_pool, o.batch_size, o.seed, step, 2);
    model.zero_grad();
    UnlearnStep s;
    s.step = step + 1;
    s.forget_loss = u.forget(f, &s.value_norm_penalty);
    s.retain_loss = u.retain(r, &s.value_norm_penalty);
    const double norm = clip_grad_norm(model.grads(), o.grad_clip);
    check(std::isfinite(norm), "unlearn: the gradient became non-finite at step " + std::to_string(step + 1) +
                                   " (try a lower lr)");
    opt.step(model, o.lr);
    steps.push_back(s);
    const bool last = step + 1 == o.steps;
    if (on_eval && (last || (o.eval_every > 0 && (step + 1) % o.eval_every == 0))) on_eval(model, s);
  }
  model.set_value_norm_penalty({});
  return steps;
}

}  // namespace sinklab
