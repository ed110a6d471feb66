// The training loop: tokenizer and data, steps of accumulated micro-batches
// (spread over MPI ranks), the optimizer, evaluation, sink probes, logs and resumable checkpoints.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint.h"
#include "sinklab/formats.h"
#include "sinklab/train.h"
#include "train_probes.h"

namespace sinklab {

namespace fs = std::filesystem;
using train_detail::Checkpointer;
using train_detail::ProbeRecorder;
using train_detail::read_file;

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kSinkToken = "<|sink|>";

// The tokenizer.json a checkpoint ships: when every training window began with
// one fixed token (the sink-token variant's <|sink|>, or <|endoftext|> under
// fixed_first_token) a post-processor puts it first, which makes it the BOS
// every tool prepends; otherwise there is no BOS.
std::string checkpoint_tokenizer_json(const std::string& base, const char* first_token, const Tokenizer& tok) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(base);
  if (first_token) {
    const int32_t id = tok.special_token_id(first_token);
    check(id >= 0, std::string("tokenizer: needs the special token ") + first_token);
    nlohmann::ordered_json special = {{"SpecialToken", {{"id", first_token}, {"type_id", 0}}}};
    nlohmann::ordered_json seq_a = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
    nlohmann::ordered_json seq_b = {{"Sequence", {{"id", "B"}, {"type_id", 0}}}};
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {special, seq_a}},
        {"pair", {special, seq_a, seq_b}},
        {"special_tokens", {{first_token, {{"id", first_token}, {"ids", {id}}, {"tokens", {first_token}}}}}}};
  } else {
    j["post_processor"] = nullptr;
  }
  return j.dump(1) + "\n";
}

// What the training data is: a tokenized text, or a synthetic task.
struct RunData {
  std::unique_ptr<Tokenizer> tokenizer;  // text only
  std::unique_ptr<SyntheticTask> task;   // task only
  TokenData tokens;                      // text only
  int32_t first_token = -1;              // the token at position 0 of every window, or -1
  std::string tokenizer_json, config_json;
};

RunData prepare_data(TrainConfig& cfg) {
  const TrainOptions& o = cfg.train;
  RunData d;
  const bool sink_variant = cfg.model.variant == AttnVariant::SinkToken;
  if (cfg.data.enabled()) {
    d.task = make_task(cfg.data, "data");
    // The sink-token variant gets one extra id after the task's vocabulary.
    const int64_t vocab = d.task->vocab_size() + (sink_variant ? 1 : 0);
    if (cfg.model.vocab == 0) cfg.model.vocab = vocab;
    check(cfg.model.vocab == vocab, "train config: model.vocab " + std::to_string(cfg.model.vocab) +
                                        " differs from the task's " + std::to_string(vocab) + " (leave it 0)");
    if (sink_variant) d.first_token = int32_t(d.task->vocab_size());
    d.config_json = trained_config_json(cfg.model, sink_variant ? d.first_token : SyntheticTask::kBos, -1);
    return d;
  }
  // Tokenizer: given, kept from an earlier run of this out_dir, or trained now.
  std::string base_json;
  const std::string kept = o.out_dir + "/tokenizer.json";
  if (!o.tokenizer.empty()) {
    base_json = read_file(o.tokenizer);
  } else if (fs::exists(kept)) {
    base_json = read_file(kept);
  } else {
    BpeTrainOptions bo;
    bo.vocab_size = o.tokenizer_vocab;
    bo.special_tokens = {kEndOfText, kSinkToken};
    base_json = train_bpe_tokenizer_json_from_file(o.train_text, bo);
  }
  d.tokenizer = tokenizer_from_json_string(base_json, o.tokenizer.empty() ? kept : o.tokenizer);
  const Tokenizer& tok = *d.tokenizer;
  if (cfg.model.vocab == 0) cfg.model.vocab = tok.vocab_size();
  check(cfg.model.vocab >= tok.vocab_size(), "train config: model.vocab " + std::to_string(cfg.model.vocab) +
                                                 " is smaller than the tokenizer's " +
                                                 std::to_string(tok.vocab_size()));
  const char* first = sink_variant ? kSinkToken : o.fixed_first_token ? kEndOfText : nullptr;
  if (first) {
    d.first_token = tok.special_token_id(first);
    check(d.first_token >= 0, std::string("tokenizer: ") +
                                  (sink_variant ? "the sink-token variant" : "fixed_first_token") +
                                  " needs the special token " + first);
  }
  d.tokenizer_json = checkpoint_tokenizer_json(base_json, first, tok);
  const auto shipped = tokenizer_from_json_string(d.tokenizer_json, kept);
  d.config_json = trained_config_json(cfg.model, shipped->bos_id(), shipped->eos_id());
  d.tokens = load_token_data(o, tok);
  return d;
}

// The batches of one step or evaluation: B windows of T tokens, from the
// task generator or the token stream.
struct Batches {
  const RunData& data;
  const TrainOptions& o;
  int64_t B, T;
  std::vector<int32_t> inputs, targets;

  Batches(const RunData& d, const TrainOptions& opts, int64_t b, int64_t t)
      : data(d), o(opts), B(b), T(t), inputs(size_t(b * t)), targets(size_t(b * t)) {}
  void training(int64_t step, int64_t micro) {
    if (data.task)
      sample_task_batch(*data.task, o.seed, step, micro, B, T, data.first_token, inputs.data(), targets.data());
    else
      sample_batch(data.tokens.train, o.seed, step, micro, B, T, data.first_token, inputs.data(), targets.data());
  }
  void evaluation(int64_t i) {
    if (data.task)
      sample_task_batch(*data.task, o.seed, -1 - i, 0, B, T, data.first_token, inputs.data(), targets.data());
    else
      eval_batch(data.tokens.valid, i, B, T, data.first_token, inputs.data(), targets.data());
  }
};

// Mean loss per scored token over the evaluation batches, shared by the ranks.
double evaluate(TrainModel& model, Batches& batches, const World& world) {
  double sums[2] = {0, 0};
  for (int64_t i = world.rank; i < batches.o.eval_batches; i += world.size) {
    batches.evaluation(i);
    int64_t n = 0;
    sums[0] += model.forward_loss(batches.inputs.data(), batches.targets.data(), batches.B, batches.T, &n);
    sums[1] += double(n);
  }
  world_allreduce_sum(std::span<double>(sums, 2));
  return sums[1] > 0 ? sums[0] / sums[1] : -1.0;
}

struct StepGradients {
  double loss = 0, grad_norm = 0;
};

// The gradients of one step: this rank's micro-batches, summed over ranks,
// scaled to the mean over scored tokens (a task's loss "rule" scores only
// some) and clipped. A diverged run stops here, before it updates or saves
// anything non-finite.
StepGradients step_gradients(TrainModel& model, Batches& batches, const World& world, int64_t step,
                             int64_t saved_step) {
  const TrainOptions& o = batches.o;
  const double tokens_per_step = double(batches.B * batches.T * o.grad_accum);
  model.zero_grad();
  double sums[2] = {0, 0};  // loss, scored tokens
  for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
    if (micro % world.size != world.rank) continue;
    batches.training(step, micro);
    int64_t n = 0;
    sums[0] += model.forward_backward(batches.inputs.data(), batches.targets.data(), batches.B, batches.T,
                                      float(1.0 / tokens_per_step), &n);
    sums[1] += double(n);
  }
  world_allreduce_sum(model.grads());
  world_allreduce_sum(std::span<double>(sums, 2));
  const double scored = std::max(sums[1], 1.0);
  if (scored != tokens_per_step)
    for (float& g : model.grads()) g = float(double(g) * tokens_per_step / scored);
  const double norm = clip_grad_norm(model.grads(), o.grad_clip);
  check(std::isfinite(sums[0]) && std::isfinite(norm),
        "train: the loss or its gradient became non-finite at step " + std::to_string(step + 1) + " (loss " +
            std::to_string(sums[0] / scored) + ", gradient norm " + std::to_string(norm) + "); stopped: " +
            (saved_step >= 0 ? "the checkpoint of step " + std::to_string(saved_step) + " in " + o.out_dir +
                                   " is kept"
                             : std::string("no checkpoint was written")) +
            " (try a lower train.lr)");
  return {sums[0] / scored, norm};
}

nlohmann::json log_line(const TrainEvent& ev) {
  nlohmann::json line = {{"step", ev.step},         {"loss", ev.train_loss},          {"lr", ev.lr},
                         {"grad_norm", ev.grad_norm}, {"tokens_per_s", ev.tokens_per_s}, {"seconds", ev.seconds}};
  if (ev.is_eval) line["eval_loss"] = ev.eval_loss;
  return line;
}

void check_weights_finite(const TrainModel& model, int64_t step) {
  for (float w : model.values())
    check(std::isfinite(w), "train: a weight became non-finite after step " + std::to_string(step) +
                                "; stopped without saving it (try a lower train.lr)");
}

}  // namespace

TrainResult train(const TrainConfig& config_in, const std::function<void(const TrainEvent&)>& on_event) {
  TrainConfig cfg = config_in;
  const TrainOptions& o = cfg.train;
  const World world = world_init();
  if (o.threads > 0) set_num_threads(o.threads);
  fs::create_directories(o.out_dir);

  RunData data = prepare_data(cfg);
  Checkpointer ckpt{cfg, o.out_dir, data.tokenizer_json, data.config_json};
  TrainModel model(cfg.model, o.seed);
  Optimizer opt(model, o);
  if (world.rank == 0) ckpt.clean_leftovers();
  const int64_t start = ckpt.restore(model, opt);
  if (start == 0 && !o.init_from.empty()) {
    try {
      model.load_values(checkpoint_weights_path(o.init_from));
    } catch (const Error& e) {
      throw Error(std::string("train.init_from: ") + e.what());
    }
  }
  int64_t saved_step = start > 0 ? start : -1;  // the last checkpoint on disk
  ProbeRecorder probes(cfg, data.task.get(), data.first_token, data.tokens.valid, data.config_json);
  probes.resume(start);

  const int64_t B = o.batch_size, T = cfg.model.seq_len;
  Batches batches(data, o, B, T);
  const double tokens_per_step = double(B * T * o.grad_accum);
  TrainResult result;
  std::ofstream log;
  if (world.rank == 0) log.open(o.out_dir + "/log.jsonl", start == 0 ? std::ios::trunc : std::ios::app);

  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  double window_tokens = 0;
  auto window_start = clock::now();
  if (world.rank == 0 && start == 0 && probes.due(0, o.steps)) probes.record(model, 0, 0.0, 0.0);
  for (int64_t step = start; step < o.steps; ++step) {
    const StepGradients g = step_gradients(model, batches, world, step, saved_step);
    const double loss = g.loss, norm = g.grad_norm;
    const float lr = learning_rate(o, step);
    opt.step(model, lr);
    result.losses.push_back(loss);
    result.steps_done = step + 1;
    window_tokens += tokens_per_step;

    const bool last = step + 1 == o.steps;
    TrainEvent ev;
    ev.step = step + 1;
    ev.steps = o.steps;
    ev.train_loss = loss;
    ev.lr = lr;
    ev.grad_norm = norm;
    ev.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
    const double dt = std::chrono::duration<double>(clock::now() - window_start).count();
    ev.tokens_per_s = dt > 0 ? window_tokens / dt : 0;
    if ((o.eval_every > 0 && (step + 1) % o.eval_every == 0) || last) {
      if (o.eval_batches > 0) {
        ev.eval_loss = evaluate(model, batches, world);
        ev.is_eval = true;
        result.final_eval_loss = ev.eval_loss;
      }
    }
    if (world.rank == 0) {
      if ((step + 1) % o.log_every == 0 || ev.is_eval || last) {
        log << log_line(ev).dump() << "\n" << std::flush;
      }
      if ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || last) {
        check_weights_finite(model, step + 1);
        ckpt.save(model, opt, step + 1);
        saved_step = step + 1;
      }
      if (probes.due(step + 1, o.steps)) probes.record(model, step + 1, loss, double(step + 1) * tokens_per_step);
      if ((step + 1) % o.log_every == 0 || ev.is_eval || last) {
        if (on_event) on_event(ev);
        result.tokens_per_s = ev.tokens_per_s;
        window_tokens = 0;
        window_start = clock::now();
      }
    }
  }
  if (start >= o.steps && world.rank == 0 && !fs::exists(o.out_dir + "/model.safetensors"))
    ckpt.save(model, opt, start);
  return result;
}

}  // namespace sinklab
