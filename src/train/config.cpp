// Training configs: JSON in, validated structs out, and back to JSON.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sinklab/json_text.h"
#include "sinklab/train.h"

namespace sinklab {

namespace {

constexpr const char* kVariantNames[] = {"vanilla", "sink-token", "sink-logit", "goat", "alibi", "softmax-off-by-one", "relu-attention"};

// Reads the keys of one JSON object into fields, rejecting unknown keys.
class Reader {
 public:
  Reader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    check(j_.is_object(), where_ + " must be a JSON object");
  }
  // Integers must be whole numbers that fit the field (n_layers 5.5 is an
  // error, not 5), booleans booleans, floats finite numbers.
  template <typename T>
  void get(const char* key, T& field) {
    seen_.push_back(key);
    if (!j_.contains(key)) return;
    const nlohmann::json& v = j_.at(key);
    const std::string name = where_ + ": '" + key + "'";
    if constexpr (std::is_same_v<T, bool>) {
      check(v.is_boolean(), name + " must be true or false");
    } else if constexpr (std::is_integral_v<T>) {
      check(v.is_number_integer(), name + " must be an integer, got " + v.dump());
      if constexpr (std::is_signed_v<T>)
        check(v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                     : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                           v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()),
              name + " = " + v.dump() + " is out of range");
      else
        check(v.is_number_unsigned() || v.get<int64_t>() >= 0, name + " must be >= 0");
    } else if constexpr (std::is_floating_point_v<T>) {
      check(v.is_number() && std::isfinite(v.get<double>()), name + " must be a finite number");
    }
    try {
      field = v.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw Error(name + " has the wrong type");
    }
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      check(std::find(seen_.begin(), seen_.end(), it.key()) != seen_.end(),
            where_ + ": unknown key '" + it.key() + "'");
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
  std::vector<std::string> seen_;
};

}  // namespace

const char* attn_variant_name(AttnVariant v) { return kVariantNames[int(v)]; }

AttnVariant attn_variant_from_name(const std::string& name) {
  for (int i = 0; i < 7; ++i)
    if (name == kVariantNames[i]) return AttnVariant(i);
  throw Error("unknown attention variant '" + name +
              "' (known: vanilla, sink-token, sink-logit, goat, alibi, softmax-off-by-one, relu-attention)");
}

namespace {

void read_model_section(const nlohmann::json& model, const std::string& source, TrainModelConfig& m) {
  Reader mr(model, source + ": model");
  std::string variant = "vanilla";
  mr.get("vocab", m.vocab);
  mr.get("dim", m.dim);
  mr.get("n_layers", m.n_layers);
  mr.get("n_heads", m.n_heads);
  mr.get("n_kv_heads", m.n_kv_heads);
  mr.get("hidden", m.hidden);
  mr.get("seq_len", m.seq_len);
  mr.get("norm_eps", m.norm_eps);
  mr.get("rope_theta", m.rope_theta);
  mr.get("rope", m.rope);
  mr.get("variant", variant);
  mr.get("goat_rank", m.goat_rank);
  mr.get("goat_abs_rank", m.goat_abs_rank);
  mr.get("goat_u_hidden", m.goat_u_hidden);
  mr.get("goat_base", m.goat_base);
  mr.get("tied_embeddings", m.tied_embeddings);
  mr.get("init_std", m.init_std);
  mr.finish();
  if (!model.contains("n_kv_heads")) m.n_kv_heads = m.n_heads;
  m.variant = attn_variant_from_name(variant);
  if (m.variant == AttnVariant::Goat || m.variant == AttnVariant::Alibi) m.rope = false;
}

void read_train_section(const nlohmann::json& train, const std::string& source, TrainOptions& t) {
  Reader tr(train, source + ": train");
  tr.get("train_text", t.train_text);
  tr.get("valid_text", t.valid_text);
  tr.get("tokenizer", t.tokenizer);
  tr.get("tokenizer_vocab", t.tokenizer_vocab);
  tr.get("batch_size", t.batch_size);
  tr.get("grad_accum", t.grad_accum);
  tr.get("steps", t.steps);
  tr.get("lr", t.lr);
  tr.get("min_lr_ratio", t.min_lr_ratio);
  tr.get("warmup_steps", t.warmup_steps);
  tr.get("weight_decay", t.weight_decay);
  tr.get("beta1", t.beta1);
  tr.get("beta2", t.beta2);
  tr.get("adam_eps", t.adam_eps);
  tr.get("grad_clip", t.grad_clip);
  tr.get("seed", t.seed);
  tr.get("eval_every", t.eval_every);
  tr.get("eval_batches", t.eval_batches);
  tr.get("log_every", t.log_every);
  tr.get("checkpoint_every", t.checkpoint_every);
  tr.get("out_dir", t.out_dir);
  tr.get("threads", t.threads);
  tr.get("optimizer", t.optimizer);
  tr.get("momentum", t.momentum);
  tr.get("lr_schedule", t.lr_schedule);
  tr.get("fixed_first_token", t.fixed_first_token);
  tr.get("probe_every", t.probe_every);
  tr.get("probe_sequences", t.probe_sequences);
  tr.get("init_from", t.init_from);
  tr.finish();
}

// Ranges and caps, checked before anything is sized by a value.
void check_model_values(const TrainModelConfig& m, const std::string& source) {
  auto positive = [&](bool ok, const char* what) { check(ok, source + ": " + what); };
  positive(m.vocab >= 0, "model.vocab must be >= 0 (0 = the tokenizer's size)");
  positive(m.dim > 0 && m.n_layers > 0 && m.n_heads > 0 && m.n_kv_heads > 0 && m.seq_len > 1,
           "model.dim, n_layers, n_heads, n_kv_heads must be > 0 and seq_len > 1");
  // Caps checked before anything is sized by them.
  positive(m.n_layers <= 1024 && m.dim <= 65536 && m.n_heads <= 1024 && m.hidden <= (1 << 20) &&
               m.seq_len <= (1 << 20) && m.vocab <= (1 << 24),
           "model: n_layers <= 1024, dim <= 65536, n_heads <= 1024, hidden <= 1048576, seq_len <= 1048576, "
           "vocab <= 16777216");
  positive(m.dim % m.n_heads == 0, "model.dim must be a multiple of n_heads");
  positive(m.n_heads % m.n_kv_heads == 0, "model.n_kv_heads must divide n_heads");
  positive(m.dim / m.n_heads <= 256, "model.dim / n_heads (the head dim) must be <= 256");
  positive(m.goat_rank >= 1 && m.goat_rank <= 64 && m.goat_abs_rank >= 0 && m.goat_abs_rank <= 64 &&
               m.goat_u_hidden >= 1 && m.goat_u_hidden <= 1024 && m.goat_base > 1.f,
           "model.goat_rank in 1..64, goat_abs_rank in 0..64, goat_u_hidden in 1..1024, goat_base > 1");
}

void check_train_values(const TrainConfig& c, const std::string& source) {
  const TrainModelConfig& m = c.model;
  const TrainOptions& t = c.train;
  auto positive = [&](bool ok, const char* what) { check(ok, source + ": " + what); };
  positive(!t.train_text.empty() || c.data.enabled(),
           "train.train_text (a text file) or data.task (a synthetic task) is required");
  positive(t.train_text.empty() || !c.data.enabled(), "train.train_text and data.task exclude each other");
  positive(t.optimizer == "adamw" || t.optimizer == "sgd", "train.optimizer must be \"adamw\" or \"sgd\"");
  positive(t.momentum >= 0 && t.momentum < 1, "train.momentum must be in [0, 1)");
  positive(t.lr_schedule == "cosine" || t.lr_schedule == "constant",
           "train.lr_schedule must be \"cosine\" or \"constant\"");
  positive(!t.fixed_first_token || !c.data.enabled(),
           "train.fixed_first_token is for text data (a synthetic task starts every sequence with BOS)");
  positive(t.probe_every >= 0 && t.probe_sequences >= 1 && t.probe_sequences <= 4096,
           "train.probe_every must be >= 0 and probe_sequences in 1..4096");
  positive(!t.out_dir.empty(), "train.out_dir is required");
  positive(t.batch_size > 0 && t.grad_accum > 0 && t.steps > 0, "train.batch_size, grad_accum and steps must be > 0");
  positive(t.batch_size <= (1 << 20) && t.grad_accum <= (1 << 20) && t.batch_size * m.seq_len <= (int64_t(1) << 28),
           "train.batch_size and grad_accum <= 1048576, batch_size * seq_len <= 268435456 tokens per micro-batch");
  positive(std::isfinite(t.lr) && t.lr < 1e3f, "train.lr must be a finite number below 1000");
  positive(t.lr > 0 && t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1 && t.warmup_steps >= 0,
           "train.lr > 0, min_lr_ratio in [0, 1], warmup_steps >= 0");
  positive(t.weight_decay >= 0 && t.beta1 >= 0 && t.beta1 < 1 && t.beta2 >= 0 && t.beta2 < 1 && t.adam_eps > 0 &&
               t.grad_clip >= 0,
           "train: weight_decay >= 0, beta1/beta2 in [0, 1), adam_eps > 0, grad_clip >= 0");
  positive(t.eval_every >= 0 && t.eval_batches >= 0 && t.log_every > 0 && t.checkpoint_every >= 0,
           "train: eval_every, eval_batches, checkpoint_every >= 0 and log_every > 0");
  positive(t.tokenizer_vocab >= 260 && t.tokenizer_vocab <= 1 << 20, "train.tokenizer_vocab must be in 260..1048576");
  positive(t.threads >= 0, "train.threads must be >= 0");
}

}  // namespace

TrainConfig parse_train_config(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = parse_json_text(text, source);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  check(j.is_object(), source + ": a training config is a JSON object with 'model' and 'train'");
  TrainConfig c;
  Reader top(j, source);
  nlohmann::json model = nlohmann::json::object(), train = nlohmann::json::object();
  top.get("model", model);
  top.get("train", train);
  nlohmann::json data;
  top.get("data", data);
  std::string comment;
  top.get("comment", comment);
  top.finish();
  read_model_section(model, source, c.model);
  read_train_section(train, source, c.train);
  if (!data.is_null()) c.data = task_config_from_json(data, source + ": data");
  check_model_values(c.model, source);
  check_train_values(c, source);
  return c;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream f(path);
  check(bool(f), path + ": cannot open the training config");
  std::stringstream ss;
  ss << f.rdbuf();
  TrainConfig c = parse_train_config(ss.str(), path);
  // Paths written in the file are relative to the file's folder, wherever the command runs.
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  for (std::string* p :
       {&c.train.train_text, &c.train.valid_text, &c.train.tokenizer, &c.train.out_dir, &c.train.init_from})
    if (!p->empty() && std::filesystem::path(*p).is_relative()) *p = (folder / *p).lexically_normal().string();
  return c;
}

std::string train_config_to_json(const TrainConfig& c) {
  const TrainModelConfig& m = c.model;
  const TrainOptions& t = c.train;
  nlohmann::ordered_json j;
  j["model"] = {{"vocab", m.vocab},          {"dim", m.dim},
                {"n_layers", m.n_layers},    {"n_heads", m.n_heads},
                {"n_kv_heads", m.n_kv_heads}, {"hidden", m.hidden},
                {"seq_len", m.seq_len},      {"norm_eps", m.norm_eps},
                {"rope_theta", m.rope_theta}, {"rope", m.rope},
                {"variant", attn_variant_name(m.variant)}, {"goat_rank", m.goat_rank},
                {"goat_abs_rank", m.goat_abs_rank}, {"goat_u_hidden", m.goat_u_hidden},
                {"goat_base", m.goat_base},  {"tied_embeddings", m.tied_embeddings},
                {"init_std", m.init_std}};
  j["train"] = {{"train_text", t.train_text},   {"valid_text", t.valid_text},
                {"tokenizer", t.tokenizer},     {"tokenizer_vocab", t.tokenizer_vocab},
                {"batch_size", t.batch_size},   {"grad_accum", t.grad_accum},
                {"steps", t.steps},             {"lr", t.lr},
                {"min_lr_ratio", t.min_lr_ratio}, {"warmup_steps", t.warmup_steps},
                {"weight_decay", t.weight_decay}, {"beta1", t.beta1},
                {"beta2", t.beta2},             {"adam_eps", t.adam_eps},
                {"grad_clip", t.grad_clip},     {"seed", t.seed},
                {"eval_every", t.eval_every},   {"eval_batches", t.eval_batches},
                {"log_every", t.log_every},     {"checkpoint_every", t.checkpoint_every},
                {"out_dir", t.out_dir},         {"threads", t.threads},
                {"optimizer", t.optimizer},     {"momentum", t.momentum},
                {"lr_schedule", t.lr_schedule}, {"fixed_first_token", t.fixed_first_token},
                {"probe_every", t.probe_every}, {"probe_sequences", t.probe_sequences}};
  if (!t.init_from.empty()) j["train"]["init_from"] = t.init_from;
  if (c.data.enabled()) j["data"] = task_config_to_json(c.data);
  return j.dump(2) + "\n";
}

}  // namespace sinklab
