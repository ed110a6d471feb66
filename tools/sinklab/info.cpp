// `sinklab info`: what a model is (architecture, attention variant of sinklab
// checkpoints, shapes, dtypes, parameters, memory), as text or JSON.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "bench_harness.h"
#include "output_guard.h"
#include "sinklab/chat.h"
#include "sinklab/tasks.h"
#include "sinklab/formats.h"
#include "model_args.h"

namespace sinklab::cli {

namespace {

struct InfoFlags {
  ModelArgs model;
  std::string json;  // a file, or "-" for stdout
  int threads = 0;
  OutputGuard guard;
};

// Every tensor as stored in the checkpoint: name, stored type, shape.
nlohmann::json file_tensors_json(const std::string& path) {
  const TensorFile file = load_tensor_file(path);
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& name : file.names()) {
    const TensorEntry& e = file.tensor(name);
    list.push_back({{"name", name}, {"type", tensor_type_name(e.type)}, {"shape", e.shape}});
  }
  return list;
}

nlohmann::json model_json(const Model& model) {
  const ModelConfig& c = model.config();
  static const char* rope_names[] = {"none", "rotate-half", "interleaved"};
  nlohmann::json j = {
      {"path", model.path()},
      {"format", model.format()},
      {"arch", c.arch},
      {"vocab", c.vocab},
      {"dim", c.dim},
      {"n_layers", c.n_layers},
      {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"hidden", c.hidden},
      {"max_seq", c.max_seq},
      {"norm_eps", c.norm_eps},
      {"rope", {{"style", rope_names[int(c.rope.style)]}, {"theta", c.rope.theta}}},
      {"tied_embeddings", c.tied_embeddings},
      {"qkv_bias", c.qkv_bias},
      {"qk_norm", c.qk_norm || c.qk_norm_full},
      {"sink_logits", c.sink_logits},
      {"layer_window", c.layer_window},
      {"bos_id", c.bos_id},
      {"eos_id", c.eos_id},
      {"n_params", model.n_params()},
      {"weight_bytes", model.weight_bytes()},
      {"kv_bytes_per_token", 2 * c.n_layers * c.n_kv_heads * c.head_dim * 4},
      {"post_norms", c.post_norms},
      {"attn_softcap", c.attn_softcap},
      {"final_softcap", c.final_softcap},
      {"tokenizer_vocab", model.tokenizer() ? model.tokenizer()->vocab_size() : 0},
      {"chat_format", model.tokenizer() ? ChatFormat::for_model_or_plain(c.arch, *model.tokenizer(), c.chat_template).name() : ""},
  };
  // Sliding layers of a model that also has full layers keep their own window
  // cache (window + one forward's 256 tokens) whatever the context.
  int64_t sliding = 0, wmax = 0;
  for (int32_t w : c.layer_window) {
    sliding += w > 0;
    wmax = std::max<int64_t>(wmax, w);
  }
  const int64_t layer_token = 2 * c.n_kv_heads * c.head_dim * 4;
  if (sliding > 0 && sliding < c.n_layers) {
    j["kv_bytes_per_token"] = layer_token * (c.n_layers - sliding);
    j["kv_sliding"] = {{"layers", sliding}, {"tokens", wmax + 255}, {"bytes", layer_token * sliding * (wmax + 255)}};
  }
  // sinklab-trained checkpoints name their attention variant (config.json sinklab_variant).
  const char* variant = attention_variant_description(c.variant);
  j["attention_variant"] = variant ? nlohmann::json({{"name", c.variant}, {"description", variant}}) : nlohmann::json();
  // A model trained on a synthetic task carries it in task.json.
  const TaskConfig task = load_task_config_beside(model.path());
  j["task"] = task.enabled() ? task_config_to_json(task) : nlohmann::json();
  static const char* prior_names[] = {"none", "goat", "alibi"};
  j["prior"] = {{"kind", prior_names[int(c.prior.kind)]}};
  if (c.prior.kind == PriorKind::Goat)
    j["prior"].update({{"rank", c.prior.goat_rank},
                       {"base", c.prior.goat_base},
                       {"abs_rank", c.prior.goat_abs_rank},
                       {"u_hidden", c.prior.goat_u_hidden},
                       {"train_length", c.prior.train_length}});
  if (c.moe.n_experts > 0)
    j["moe"] = {{"n_experts", c.moe.n_experts},
                {"n_used", c.moe.n_used},
                {"expert_hidden", c.moe.expert_hidden},
                {"shared_hidden", c.moe.shared_hidden}};
  const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  j["shapes"] = {{"embedding", {c.vocab, c.dim}},
                 {"output", {c.vocab, c.dim}},
                 {"attn_q", {qd, c.dim}},
                 {"attn_k", {kvd, c.dim}},
                 {"attn_v", {kvd, c.dim}},
                 {"attn_out", {c.dim, qd}}};
  if (c.moe.n_experts == 0) {
    j["shapes"]["ffn_gate"] = {c.hidden, c.dim};
    j["shapes"]["ffn_up"] = {c.hidden, c.dim};
    j["shapes"]["ffn_down"] = {c.dim, c.hidden};
  }
  j["file_tensors"] = file_tensors_json(model.path());
  return j;
}

}  // namespace

Command info_command() {
  auto f = std::make_shared<InfoFlags>();
  Command c;
  c.add = [f](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "info", "Describe a model: architecture, tensor shapes and dtypes, parameters, memory");
    add_model_flags(*sub, f->model, /*with_dtype=*/true);
    sub->add_option("--json", f->json, "Write the description as one JSON object to this file ('-': stdout, "
                                       "instead of the text)");
    add_threads_flag(*sub, f->threads);
    f->guard.add_force_flag(*sub);
    return sub;
  };
  c.run = [f]() -> int {
    bench::set_threads(f->threads);
    if (!f->json.empty()) {
      f->guard.input(resolve_model_path(f->model.model_path));
      f->guard.check_file(f->json, "--json");
    }
    const std::shared_ptr<const Model> model = load_model(f->model);
    if (!f->json.empty()) write_output_text(f->json, model_json(*model).dump(2) + "\n", "--json");
    if (f->json == kStdoutPath) return 0;
    std::string text = model->describe();
    if (const Tokenizer* tok = model->tokenizer()) {
      std::string why;
      const ChatFormat format = ChatFormat::for_model_or_plain(model->config().arch, *tok, model->config().chat_template, &why);
      text += "chat format:  " + format.name() + " (from " + why + "; `generate --chat`, `serve`)\n";
    }
    const TaskConfig task = load_task_config_beside(model->path());
    if (task.enabled())
      text += "task:         " + task.task + " over " + std::to_string(task.vocab) +
              " tokens (task.json; `sinklab inspect -m` and `ppl --task-stream` use it)\n";
    std::fputs(text.c_str(), stdout);
    return 0;
  };
  return c;
}

}  // namespace sinklab::cli
