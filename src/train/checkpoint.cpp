// Checkpoints of a training run and the config.json of a trained model.
#include "checkpoint.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sinklab/formats.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace train_detail {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  check(bool(f), path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    check(bool(f), tmp + ": cannot write");
  }
  fs::rename(tmp, path);
}

void Checkpointer::save(const TrainModel& model, const Optimizer& opt, int64_t step) const {
  write_safetensors(dir + "/model.safetensors", model.tensor_entries(), {{"format", "pt"}});
  write_file(dir + "/config.json", config_json);
  if (cfg.data.enabled())
    write_file(dir + "/task.json", task_config_to_json(cfg.data).dump(2) + "\n");
  else
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

int64_t Checkpointer::restore(TrainModel& model, Optimizer& opt) const {
  if (!fs::exists(dir + "/trainer_state.json")) return 0;
  const TrainConfig saved = load_train_config(dir + "/train_config.json");
  check(train_config_to_json(TrainConfig{saved.model, {}, saved.data}) ==
            train_config_to_json(TrainConfig{cfg.model, {}, cfg.data}),
        dir + ": holds a checkpoint of a different model or task config; use another out_dir or delete it");
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

}  // namespace train_detail

std::string trained_config_json(const TrainModelConfig& m, int32_t bos_id, int32_t eos_id) {
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
  j["bos_token_id"] = bos_id >= 0 ? nlohmann::ordered_json(bos_id) : nlohmann::ordered_json(nullptr);
  j["eos_token_id"] = eos_id >= 0 ? nlohmann::ordered_json(eos_id) : nlohmann::ordered_json(nullptr);
  if (!llama) {
    j["position_encoding"] = rc.rope.style == RopeStyle::None ? "none" : "rope";
    j["attention_sinks"] = rc.sink_logits;
    if (rc.relu_attention) j["attention_normalization"] = "relu";
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

}  // namespace sinklab
