// Small-model training (llm.c style): a Llama-shaped decoder whose layers have
// their forward and backward side by side, cross-entropy, AdamW with warm-up +
// cosine decay, gradient clipping and accumulation, deterministic data order,
// resumable checkpoints that the runtime (Model::load) reads, and optional
// data parallelism over MPI ranks.
//
// Attention variants (TrainModelConfig::variant):
//   vanilla     plain softmax attention (RoPE, or none with rope=false)
//   sink-token  a dedicated token (the tokenizer's BOS) prepended to every sample
//   sink-logit  a learned per-head sink logit in the softmax denominator
//   goat        GOAT prior (relative Fourier kappa + key-only u), no RoPE
//   alibi       ALiBi slopes, no RoPE
//   softmax-off-by-one  a sink logit fixed at 0 in every head (a zero key and value; not learnt)
//   relu-attention      weights max(z, 0) without a softmax (a control: no sink needed); RoPE
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sinklab/core.h"
#include "sinklab/model.h"
#include "sinklab/probe.h"
#include "sinklab/tasks.h"

namespace sinklab {

enum class AttnVariant : uint8_t { Vanilla, SinkToken, SinkLogit, Goat, Alibi, OffByOne, ReluAttention };
const char* attn_variant_name(AttnVariant v);
AttnVariant attn_variant_from_name(const std::string& name);  // throws Error listing the known ones

struct TrainModelConfig {
  int64_t vocab = 0;  // 0 = the tokenizer's size
  int64_t dim = 256, n_layers = 4, n_heads = 4, n_kv_heads = 4;
  int64_t hidden = 0;     // SwiGLU width; 0 = 8/3 dim rounded up to a multiple of 32
  int64_t seq_len = 256;  // training length T
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  bool rope = true;       // goat and alibi force false
  AttnVariant variant = AttnVariant::Vanilla;
  int goat_rank = 8, goat_abs_rank = 8, goat_u_hidden = 16;
  float goat_base = 1e4f;
  bool tied_embeddings = true;
  float init_std = 0.02f;

  int64_t head_dim() const { return dim / n_heads; }
  int64_t ffn_hidden() const;
  // The runtime's view of the same model (arch "llama" or "sinklab").
  ModelConfig runtime_config() const;
};

struct TrainOptions {
  std::string train_text;   // UTF-8 text file
  std::string valid_text;   // optional; empty = the last 2% of train_text
  std::string tokenizer;    // tokenizer.json; empty = train one (tokenizer_vocab)
  int32_t tokenizer_vocab = 4096;
  int64_t batch_size = 8;   // sequences per micro-batch
  int64_t grad_accum = 1;   // micro-batches per step (the global batch)
  int64_t steps = 1000;
  float lr = 1e-3f, min_lr_ratio = 0.1f;
  int64_t warmup_steps = 100;
  float weight_decay = 0.1f, beta1 = 0.9f, beta2 = 0.95f, adam_eps = 1e-8f, grad_clip = 1.f;
  uint64_t seed = 1;
  int64_t eval_every = 100, eval_batches = 8, log_every = 10;
  int64_t checkpoint_every = 0;  // steps; 0 = only at the end
  std::string out_dir;
  int threads = 0;  // 0 = all
  // The levers of sink formation (Gu et al. 2025, "When Attention Sink Emerges in Language Models").
  std::string optimizer = "adamw";    // "adamw", or "sgd" (with momentum; weight_decay is L2 added to the gradient)
  float momentum = 0.9f;              // sgd
  std::string lr_schedule = "cosine"; // "cosine" (to lr * min_lr_ratio) or "constant", after the warm-up
  bool fixed_first_token = false;     // text data: <|endoftext|> at position 0 of every training window
  // Training-time sink probes (sinklab/probe.h SinkEmergence): every probe_every
  // steps (and before the first and after the last), on probe_sequences
  // sequences; written to out_dir/probes.json and out_dir/probes.html.
  int64_t probe_every = 0;
  int64_t probe_sequences = 8;
  // Fine-tuning: a checkpoint (a run's folder or its model.safetensors) whose
  // weights replace the fresh initialisation (names and shapes must match the
  // model config); the optimizer and step count start afresh. A run that
  // resumes from its own checkpoint in out_dir ignores it.
  std::string init_from;
};

struct TrainConfig {
  TrainModelConfig model;
  TrainOptions train;
  TaskConfig data;  // a synthetic task instead of train_text ("data": {"task": ...})
};
// Parses the JSON text of a training config ({"model": {...}, "train": {...}, "data": {...}});
// unknown keys and bad values throw Error naming `source` and the key.
TrainConfig parse_train_config(const std::string& json_text, const std::string& source);
// Reads a config file; relative paths in it (train_text, valid_text,
// tokenizer, out_dir) are taken relative to the file's folder.
TrainConfig load_train_config(const std::string& path);
std::string train_config_to_json(const TrainConfig& c);

// Parameters, gradients and the forward/backward of the decoder. Parameters
// and gradients each live in one flat buffer (for AdamW and all-reduce).
class TrainModel {
 public:
  struct Param {
    std::string name;             // Hugging Face name, e.g. model.layers.0.self_attn.q_proj.weight
    std::vector<int64_t> shape;
    int64_t offset = 0, size = 0; // into the flat buffers
    bool decay = false;           // AdamW weight decay applies (matrices and embeddings)
  };

  TrainModel(const TrainModelConfig& config, uint64_t seed);
  ~TrainModel();
  TrainModel(const TrainModel&) = delete;
  TrainModel& operator=(const TrainModel&) = delete;

  const TrainModelConfig& config() const { return config_; }
  const std::vector<Param>& params() const { return params_; }
  const Param& param(const std::string& name) const;  // throws Error when unknown
  std::span<float> values() { return {values_.data(), values_.size()}; }
  std::span<const float> values() const { return {values_.data(), values_.size()}; }
  std::span<float> grads() { return {grads_.data(), grads_.size()}; }
  int64_t n_params() const { return int64_t(values_.size()); }
  // Parameters touched by every token (all but the embedding rows): for FLOP counts.
  int64_t n_matmul_params() const;

  void zero_grad();
  // Forward and backward over a [B, T] batch: targets[i] < 0 is not scored.
  // Gradients of (sum of token losses) * grad_scale are ADDED to grads().
  // Returns the sum of the token losses and sets *n_scored.
  double forward_backward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                          float grad_scale, int64_t* n_scored);
  // Forward only (evaluation): sum of token losses and the count scored.
  double forward_loss(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                      int64_t* n_scored);

  // Per-position extras of one pass (fine-tuning, unlearning): the gradient of
  // position i's loss is multiplied by position_scale[i] (negative: gradient
  // ascent), and every position's loss is written to position_loss (0 where
  // not scored).
  struct PassExtras {
    const float* position_scale = nullptr;         // [B * T] or null (1)
    std::vector<double>* position_loss = nullptr;  // resized to B * T, or null
  };
  double forward_backward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                          float grad_scale, int64_t* n_scored, const PassExtras& extras);
  double forward_loss(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T,
                      int64_t* n_scored, const PassExtras& extras);
  // Logits [B * T, vocab] of the last forward_loss (overwritten by a backward pass).
  std::span<const float> last_logits() const;

  // Value-norm alignment: while set (first_n > 0, weight > 0), forward_backward
  // adds to the gradient that of weight * mean over layers, rows, kv heads and
  // positions t < first_n of (||v_t|| - target)^2, target laid out as
  // shallow_value_norms gives it for the same batch shape.
  struct ValueNormPenalty {
    int64_t first_n = 0;
    float weight = 0;
    std::vector<float> target;  // [n_layers, B, n_kv_heads, min(first_n, T)]
  };
  void set_value_norm_penalty(ValueNormPenalty penalty);
  // The penalty's value in the last forward_backward (0 when unset).
  double last_value_norm_penalty() const { return last_penalty_; }
  // ||v_t|| of positions t < first_n after the last forward: [n_layers, B, n_kv_heads, min(first_n, T)].
  std::vector<float> shallow_value_norms(int64_t first_n) const;

  // Safetensors entries of every parameter (pointing into values()).
  std::vector<struct TensorEntry> tensor_entries() const;
  // Copies parameter values from a checkpoint (names and shapes must match).
  void load_values(const std::string& safetensors_path);

 private:
  struct Workspace;
  struct Pass;
  double run(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T, float grad_scale,
             int64_t* n_scored, bool backward, const PassExtras& extras);
  void add_param(const std::string& name, std::vector<int64_t> shape, bool decay);
  float* value(const std::string& name);

  TrainModelConfig config_;
  std::vector<Param> params_;
  std::vector<float> values_, grads_;
  std::unique_ptr<Workspace> ws_;
  ValueNormPenalty penalty_;
  double last_penalty_ = 0;
  int64_t last_B_ = 0, last_T_ = 0;
};

// AdamW (decoupled weight decay on params with decay = true), or SGD with
// momentum (opts.optimizer "sgd": m is the momentum buffer, v stays zero).
class Optimizer {
 public:
  Optimizer(const TrainModel& model, const TrainOptions& opts);
  // One update with learning rate lr; grads already clipped/averaged.
  void step(TrainModel& model, float lr);
  int64_t t() const { return t_; }
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_t(int64_t t) { t_ = t; }

 private:
  TrainOptions opts_;
  std::vector<uint8_t> decay_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// Linear warm-up to lr, then cosine decay to lr * min_lr_ratio at `steps`
// (or a constant lr under lr_schedule "constant").
float learning_rate(const TrainOptions& opts, int64_t step);
// Scales grads so that their global L2 norm is at most max_norm (0 = off); returns the norm before.
double clip_grad_norm(std::span<float> grads, double max_norm);

// The token stream of a text and the deterministic sampling of training windows.
struct TokenData {
  std::vector<int32_t> train, valid;
};
// Encodes the texts of `opts` with `tokenizer` (cached beside out_dir).
TokenData load_token_data(const TrainOptions& opts, const Tokenizer& tokenizer);

// Fills inputs/targets [B, T] for micro-batch `micro` of step `step`: windows
// start at offsets drawn from (seed, step, micro, row), so the data a step sees
// does not depend on how micro-batches are spread over ranks. With a sink token
// id >= 0, position 0 holds it and the window is one token shorter.
void sample_batch(std::span<const int32_t> stream, uint64_t seed, int64_t step, int64_t micro,
                  int64_t B, int64_t T, int32_t sink_token, int32_t* inputs, int32_t* targets);
// The same for a synthetic task: row b is a fresh sequence seeded by (seed, step,
// micro, b); step < 0 draws evaluation batches. With a sink token id >= 0 it
// comes first and the task's BOS second (unscored). Under the task's loss
// "rule", only rule queries are scored.
void sample_task_batch(const SyntheticTask& task, uint64_t seed, int64_t step, int64_t micro, int64_t B, int64_t T,
                       int32_t sink_token, int32_t* inputs, int32_t* targets);
// The fixed probe sequences of a task (the same for training-time probes and
// `sinklab inspect`): `count` sequences of `length` tokens, the sink token first when >= 0.
std::vector<TaskSequence> task_probe_sequences(const SyntheticTask& task, int64_t count, int64_t length,
                                               int32_t sink_token);
// Evaluation batch `index`: consecutive non-overlapping windows from the start.
void eval_batch(std::span<const int32_t> stream, int64_t index, int64_t B, int64_t T,
                int32_t sink_token, int32_t* inputs, int32_t* targets);

// Data parallelism. Without MPI (or outside mpirun) the world has one rank.
struct World {
  int rank = 0, size = 1;
};
World world_init();
void world_finalize();
// Sums `data` over all ranks in place (no-op for one rank).
void world_allreduce_sum(std::span<double> data);
void world_allreduce_sum(std::span<float> data);

// One line per log event; the trainer calls it on rank 0 only.
struct TrainEvent {
  int64_t step = 0, steps = 0;
  double train_loss = 0, eval_loss = -1, lr = 0, grad_norm = 0;
  double tokens_per_s = 0, seconds = 0;
  bool is_eval = false;
};

struct TrainResult {
  std::vector<double> losses;  // training loss per step (this run's steps)
  double final_eval_loss = -1;
  double tokens_per_s = 0;
  int64_t steps_done = 0;
};

// config.json of a trained model in Hugging Face form ("llama" for plain RoPE
// models, "sinklab" otherwise; "sinklab_variant" names the attention variant).
std::string trained_config_json(const TrainModelConfig& m, int32_t bos_id, int32_t eos_id);
// The runtime Model of the current weights (a copy), for probes during training.
std::shared_ptr<const Model> runtime_model(const TrainModel& model, const std::string& config_json,
                                           const std::string& name);

// The SinkEmergence probe (sinklab/probe.h) of a model trained on a synthetic
// task, on the task's fixed probe sequences of the model's training length:
// what training-time probes record and what `sinklab inspect` reports. A model
// whose vocabulary has one id past the task's (the sink-token variant) gets
// that token first.
SinkEmergence task_sink_emergence(const std::shared_ptr<const Model>& model, const TaskConfig& task,
                                  int64_t sequences = 8);

// The weights file of a checkpoint: DIR/model.safetensors for a run's folder, else the path itself.
std::string checkpoint_weights_path(const std::string& path);

// Runs (or resumes, when out_dir holds a checkpoint) the training that
// `config` describes. Writes out_dir/{model.safetensors, config.json,
// tokenizer.json (text data) or task.json (a synthetic task), train_config.json,
// optimizer.safetensors, trainer_state.json, log.jsonl, and with probes
// probes.json + probes.html}.
TrainResult train(const TrainConfig& config, const std::function<void(const TrainEvent&)>& on_event = {});

}  // namespace sinklab
