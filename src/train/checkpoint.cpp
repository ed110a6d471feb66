// Checkpoints of a training run and the config.json of a trained model.
#include "checkpoint.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <cstdio>
#include <cstdlib>

#include "sinklab/formats.h"
#include "sinklab/json_text.h"

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

namespace {

constexpr const char* kPointer = "checkpoint.json";  // the one pointer to the current set
constexpr const char* kSets = "checkpoints";         // step-NNNNNNNN folders

std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// Test hook: SINKLAB_TEST_CHECKPOINT_FAIL="STEP:K" makes the save of STEP stop
// after K files, as a kill at that moment would (tests of resume).
void maybe_fail(int64_t step, int written) {
  const char* env = std::getenv("SINKLAB_TEST_CHECKPOINT_FAIL");
  if (!env) return;
  long long at = -1, k = -1;
  if (std::sscanf(env, "%lld:%lld", &at, &k) == 2 && at == step && written >= k)
    throw Error("checkpoint: interrupted after " + std::to_string(written) + " files (test hook)");
}

}  // namespace

// A checkpoint is one set: every file of a step goes into a new folder
// checkpoints/step-N.tmp, with manifest.json (sizes and hashes) last; the
// folder is renamed into place and then checkpoint.json, the one pointer, is
// replaced by a rename. A crash at any moment leaves the previous pointer and
// set intact. The files a user loads (model.safetensors, config.json, ...) are
// copied to the run folder afterwards; resume never reads those.
void Checkpointer::save(const TrainModel& model, const Optimizer& opt, int64_t step) const {
  const fs::path sets = fs::path(dir) / kSets;
  const fs::path final_dir = sets / step_name(step);
  const fs::path tmp = sets / (step_name(step) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  auto flat = [](const std::string& name, const std::vector<float>& v) {
    TensorEntry e;
    e.name = name;
    e.shape = {int64_t(v.size())};
    e.data = reinterpret_cast<const uint8_t*>(v.data());
    e.nbytes = v.size() * 4;
    return e;
  };
  std::vector<std::string> names;
  auto written = [&](const std::string& name) {
    names.push_back(name);
    maybe_fail(step, int(names.size()));
  };
  maybe_fail(step, 0);
  write_safetensors((tmp / "model.safetensors").string(), model.tensor_entries(), {{"format", "pt"}});
  written("model.safetensors");
  write_safetensors((tmp / "optimizer.safetensors").string(), {flat("adamw.m", opt.m()), flat("adamw.v", opt.v())});
  written("optimizer.safetensors");
  write_file((tmp / "trainer_state.json").string(),
             nlohmann::json({{"step", step}, {"adamw_t", opt.t()}}).dump(2) + "\n");
  written("trainer_state.json");
  write_file((tmp / "train_config.json").string(), train_config_to_json(cfg));
  written("train_config.json");
  write_file((tmp / "config.json").string(), config_json);
  written("config.json");
  const bool task = cfg.data.enabled();
  write_file((tmp / (task ? "task.json" : "tokenizer.json")).string(),
             task ? task_config_to_json(cfg.data).dump(2) + "\n" : tokenizer_json);
  written(task ? "task.json" : "tokenizer.json");
  nlohmann::json manifest = {{"step", step}, {"files", nlohmann::json::object()}};
  for (const std::string& n : names) {
    const std::string bytes = read_file((tmp / n).string());
    manifest["files"][n] = {{"bytes", bytes.size()}, {"fnv1a64", hex(fnv1a64(bytes))}};
  }
  write_file((tmp / "manifest.json").string(), manifest.dump(1) + "\n");
  written("manifest.json");
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  written("(folder renamed)");
  write_file((fs::path(dir) / kPointer).string(),
             nlohmann::json({{"step", step}, {"set", std::string(kSets) + "/" + step_name(step)}}).dump() + "\n");
  written("(pointer switched)");
  // The files users load, beside the sets, each replaced by a rename. A hard
  // link shares the set's bytes (set files are never written again); a copy
  // where the file system refuses links.
  for (const char* n : {"model.safetensors", "config.json", "train_config.json", task ? "task.json" : "tokenizer.json"}) {
    const fs::path tmp_link = fs::path(dir) / (std::string(n) + ".tmp");
    std::error_code link_error;
    fs::remove(tmp_link, link_error);
    fs::create_hard_link(final_dir / n, tmp_link, link_error);
    if (link_error) fs::copy_file(final_dir / n, tmp_link, fs::copy_options::overwrite_existing);
    fs::rename(tmp_link, fs::path(dir) / n);
  }
  // Older sets go once the pointer has moved past them.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sets, ec))
    if (e.path().filename() != final_dir.filename()) fs::remove_all(e.path(), ec);
}

void Checkpointer::clean_leftovers() const {
  std::error_code ec;
  const fs::path sets = fs::path(dir) / kSets;
  for (const auto& e : fs::directory_iterator(sets, ec))
    if (e.path().extension() == ".tmp") fs::remove_all(e.path(), ec);
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && e.path().extension() == ".tmp") fs::remove(e.path(), ec);
}

int64_t Checkpointer::restore(TrainModel& model, Optimizer& opt) const {
  const fs::path pointer = fs::path(dir) / kPointer;
  if (!fs::exists(pointer)) {
    // An older run folder keeps its checkpoint files beside each other (no set, no manifest).
    if (fs::exists(fs::path(dir) / "trainer_state.json")) return restore_set(fs::path(dir), -1, model, opt);
    return 0;
  }
  const nlohmann::json p = parse_json_text(read_file(pointer.string()), pointer.string());
  check(p.is_object() && p.contains("set") && p["set"].is_string() && p.contains("step"),
        pointer.string() + ": not a checkpoint pointer");
  const fs::path set = fs::path(dir) / p["set"].get<std::string>();
  const std::string where = set.string();
  check(fs::is_regular_file(set / "manifest.json"), where + ": the checkpoint set has no manifest.json");
  const nlohmann::json manifest = parse_json_text(read_file((set / "manifest.json").string()), where + "/manifest.json");
  check(manifest.contains("files") && manifest["files"].is_object(), where + "/manifest.json: no 'files'");
  for (const auto& [name, facts] : manifest["files"].items()) {
    std::error_code ec;
    check(fs::is_regular_file(set / name, ec), where + ": '" + name + "' is missing; the checkpoint is incomplete");
    const std::string bytes = read_file((set / name).string());
    check(facts.is_object() && facts.value("bytes", uint64_t(0)) == bytes.size() &&
              facts.value("fnv1a64", std::string()) == hex(fnv1a64(bytes)),
          where + ": '" + name + "' does not match manifest.json (damaged or half written); refusing to resume");
  }
  return restore_set(set, p["step"].get<int64_t>(), model, opt);
}

int64_t Checkpointer::restore_set(const std::filesystem::path& set, int64_t pointer_step, TrainModel& model,
                                  Optimizer& opt) const {
  const std::string where = set.string();
  const TrainConfig saved = load_train_config((set / "train_config.json").string());
  check(train_config_to_json(TrainConfig{saved.model, {}, saved.data}) ==
            train_config_to_json(TrainConfig{cfg.model, {}, cfg.data}),
        dir + ": holds a checkpoint of a different model or task config; use another out_dir or delete it");
  model.load_values((set / "model.safetensors").string());
  const TensorFile f = load_safetensors((set / "optimizer.safetensors").string());
  for (auto [name, vec] : {std::pair{"adamw.m", &opt.m()}, std::pair{"adamw.v", &opt.v()}}) {
    const TensorEntry& e = f.tensor(name);
    check(e.numel() == int64_t(vec->size()), where + "/optimizer.safetensors: '" + name + "' has the wrong size");
    dequantize(e, vec->data());
  }
  const nlohmann::json st = parse_json_text(read_file((set / "trainer_state.json").string()), where);
  opt.set_t(st.at("adamw_t").get<int64_t>());
  const int64_t step = st.at("step").get<int64_t>();
  check(pointer_step < 0 || step == pointer_step, where + ": the pointer and the set disagree on the step");
  return step;
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
