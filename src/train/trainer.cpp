// The training loop: tokenizer and data, steps of accumulated micro-batches
// (spread over MPI ranks), AdamW, evaluation, logs and resumable checkpoints.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sinklab/formats.h"
#include "sinklab/train.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kSinkToken = "<|sink|>";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  check(bool(f), path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes through a temporary file and a rename, so a crash never leaves half a file.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    check(bool(f), tmp + ": cannot write");
  }
  fs::rename(tmp, path);
}

// The tokenizer.json a checkpoint ships: the sink-token variant gets a
// post-processor that puts <|sink|> first, which makes it the BOS every tool
// prepends; the other variants have no BOS.
std::string checkpoint_tokenizer_json(const std::string& base, AttnVariant variant, const Tokenizer& tok) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(base);
  if (variant == AttnVariant::SinkToken) {
    const int32_t id = tok.special_token_id(kSinkToken);
    check(id >= 0, std::string("tokenizer: the sink-token variant needs the special token ") + kSinkToken);
    nlohmann::ordered_json special = {{"SpecialToken", {{"id", kSinkToken}, {"type_id", 0}}}};
    nlohmann::ordered_json seq_a = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
    nlohmann::ordered_json seq_b = {{"Sequence", {{"id", "B"}, {"type_id", 0}}}};
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {special, seq_a}},
        {"pair", {special, seq_a, seq_b}},
        {"special_tokens", {{kSinkToken, {{"id", kSinkToken}, {"ids", {id}}, {"tokens", {kSinkToken}}}}}}};
  } else {
    j["post_processor"] = nullptr;
  }
  return j.dump(1) + "\n";
}

// config.json in Hugging Face form: "llama" for plain RoPE models (loadable by
// transformers), "sinklab" for sink logits, priors or no positional encoding.
std::string hf_config_json(const TrainModelConfig& m, const Tokenizer& tok) {
  const ModelConfig rc = m.runtime_config();
  nlohmann::ordered_json j;
  const bool llama = rc.arch == "llama";
  j["architectures"] = {llama ? "LlamaForCausalLM" : "SinklabForCausalLM"};
  j["model_type"] = rc.arch;
  j["vocab_size"] = m.vocab;
  j["hidden_size"] = m.dim;
  j["intermediate_size"] = m.ffn_hidden();
  j["num_hidden_layers"] = m.n_layers;
  j["num_attention_heads"] = m.n_heads;
  j["num_key_value_heads"] = m.n_kv_heads;
  j["head_dim"] = m.head_dim();
  j["max_position_embeddings"] = m.seq_len;
  j["rms_norm_eps"] = m.norm_eps;
  j["rope_theta"] = m.rope_theta;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["tie_word_embeddings"] = m.tied_embeddings;
  j["torch_dtype"] = "float32";
  j["bos_token_id"] = tok.bos_id() >= 0 ? nlohmann::ordered_json(tok.bos_id()) : nlohmann::ordered_json(nullptr);
  j["eos_token_id"] = tok.eos_id() >= 0 ? nlohmann::ordered_json(tok.eos_id()) : nlohmann::ordered_json(nullptr);
  if (!llama) {
    j["position_encoding"] = rc.rope.style == RopeStyle::None ? "none" : "rope";
    j["attention_sinks"] = rc.sink_logits;
    if (rc.prior.kind == PriorKind::Alibi) j["attention_prior"] = {{"type", "alibi"}};
    if (rc.prior.kind == PriorKind::Goat)
      j["attention_prior"] = {{"type", "goat"},
                              {"rank", rc.prior.goat_rank},
                              {"base", rc.prior.goat_base},
                              {"abs_rank", rc.prior.goat_abs_rank},
                              {"u_hidden", rc.prior.goat_u_hidden},
                              {"train_length", rc.prior.train_length}};
  }
  j["sinklab_variant"] = attn_variant_name(m.variant);
  return j.dump(2) + "\n";
}

struct Checkpointer {
  const TrainConfig& cfg;
  std::string dir;
  std::string tokenizer_json, config_json;

  void save(const TrainModel& model, AdamW& opt, int64_t step) const {
    write_safetensors(dir + "/model.safetensors", model.tensor_entries(), {{"format", "pt"}});
    write_file(dir + "/config.json", config_json);
    write_file(dir + "/tokenizer.json", tokenizer_json);
    write_file(dir + "/train_config.json", train_config_to_json(cfg));
    auto flat = [](const std::string& name, const std::vector<float>& v) {
      TensorEntry e;
      e.name = name;
      e.shape = {int64_t(v.size())};
      e.data = reinterpret_cast<const uint8_t*>(v.data());
      e.nbytes = v.size() * 4;
      return e;
    };
    write_safetensors(dir + "/optimizer.safetensors", {flat("adamw.m", opt.m()), flat("adamw.v", opt.v())});
    nlohmann::json st = {{"step", step}, {"adamw_t", opt.t()}};
    write_file(dir + "/trainer_state.json", st.dump(2) + "\n");
  }

  // Restores model, optimizer and the step from dir; returns the next step (0 without a checkpoint).
  int64_t restore(TrainModel& model, AdamW& opt) const {
    if (!fs::exists(dir + "/trainer_state.json")) return 0;
    const TrainConfig saved = load_train_config(dir + "/train_config.json");
    check(train_config_to_json(TrainConfig{saved.model, {}}) == train_config_to_json(TrainConfig{cfg.model, {}}),
          dir + ": holds a checkpoint of a different model config; use another out_dir or delete it");
    model.load_values(dir + "/model.safetensors");
    const TensorFile f = load_safetensors(dir + "/optimizer.safetensors");
    for (auto [name, vec] : {std::pair{"adamw.m", &opt.m()}, std::pair{"adamw.v", &opt.v()}}) {
      const TensorEntry& e = f.tensor(name);
      check(e.numel() == int64_t(vec->size()), dir + "/optimizer.safetensors: '" + name + "' has the wrong size");
      dequantize(e, vec->data());
    }
    const nlohmann::json st = nlohmann::json::parse(read_file(dir + "/trainer_state.json"));
    opt.set_t(st.at("adamw_t").get<int64_t>());
    return st.at("step").get<int64_t>();
  }
};

}  // namespace

TrainResult train(const TrainConfig& config_in, const std::function<void(const TrainEvent&)>& on_event) {
  TrainConfig cfg = config_in;
  const TrainOptions& o = cfg.train;
  const World world = world_init();
  if (o.threads > 0) set_num_threads(o.threads);
  fs::create_directories(o.out_dir);

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
    base_json = train_bpe_tokenizer_json(read_file(o.train_text), bo);
  }
  const std::unique_ptr<Tokenizer> tok = tokenizer_from_json_string(base_json, o.tokenizer.empty() ? kept : o.tokenizer);
  if (cfg.model.vocab == 0) cfg.model.vocab = tok->vocab_size();
  check(cfg.model.vocab >= tok->vocab_size(), "train config: model.vocab " + std::to_string(cfg.model.vocab) +
                                                  " is smaller than the tokenizer's " +
                                                  std::to_string(tok->vocab_size()));
  const int32_t sink = cfg.model.variant == AttnVariant::SinkToken ? tok->special_token_id(kSinkToken) : -1;
  check(cfg.model.variant != AttnVariant::SinkToken || sink >= 0,
        std::string("tokenizer: the sink-token variant needs the special token ") + kSinkToken);
  Checkpointer ckpt{cfg, o.out_dir, checkpoint_tokenizer_json(base_json, cfg.model.variant, *tok), ""};
  ckpt.config_json = hf_config_json(cfg.model, *tokenizer_from_json_string(ckpt.tokenizer_json, kept));

  const TokenData data = load_token_data(o, *tok);
  TrainModel model(cfg.model, o.seed);
  AdamW opt(model, o);
  const int64_t start = ckpt.restore(model, opt);

  const int64_t B = o.batch_size, T = cfg.model.seq_len;
  std::vector<int32_t> inputs(size_t(B * T)), targets(size_t(B * T));
  const double tokens_per_step = double(B * T * o.grad_accum);
  const float grad_scale = float(1.0 / tokens_per_step);
  TrainResult result;
  std::ofstream log;
  if (world.rank == 0) log.open(o.out_dir + "/log.jsonl", start == 0 ? std::ios::trunc : std::ios::app);

  auto evaluate = [&]() {
    double sums[2] = {0, 0};
    for (int64_t i = world.rank; i < o.eval_batches; i += world.size) {
      eval_batch(data.valid, i, B, T, sink, inputs.data(), targets.data());
      int64_t n = 0;
      sums[0] += model.forward_loss(inputs.data(), targets.data(), B, T, &n);
      sums[1] += double(n);
    }
    world_allreduce_sum(std::span<double>(sums, 2));
    return sums[1] > 0 ? sums[0] / sums[1] : -1.0;
  };

  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  double window_tokens = 0;
  auto window_start = clock::now();
  for (int64_t step = start; step < o.steps; ++step) {
    model.zero_grad();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      if (micro % world.size != world.rank) continue;
      sample_batch(data.train, o.seed, step, micro, B, T, sink, inputs.data(), targets.data());
      int64_t n = 0;
      loss_sum += model.forward_backward(inputs.data(), targets.data(), B, T, grad_scale, &n);
    }
    world_allreduce_sum(model.grads());
    world_allreduce_sum(std::span<double>(&loss_sum, 1));
    const double norm = clip_grad_norm(model.grads(), o.grad_clip);
    const float lr = learning_rate(o, step);
    opt.step(model, lr);
    const double loss = loss_sum / tokens_per_step;
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
        ev.eval_loss = evaluate();
        ev.is_eval = true;
        result.final_eval_loss = ev.eval_loss;
      }
    }
    if (world.rank == 0) {
      if ((step + 1) % o.log_every == 0 || ev.is_eval || last) {
        nlohmann::json line = {{"step", ev.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", norm},
                               {"tokens_per_s", ev.tokens_per_s}, {"seconds", ev.seconds}};
        if (ev.is_eval) line["eval_loss"] = ev.eval_loss;
        log << line.dump() << "\n" << std::flush;
      }
      if ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || last) ckpt.save(model, opt, step + 1);
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
