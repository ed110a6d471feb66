// Training-time sink probes and the runtime view of a TrainModel.
#include "train_probes.h"

#include <filesystem>

#include "checkpoint.h"
#include "sinklab/formats.h"
#include "sinklab/json_text.h"
#include "sinklab/probe.h"
#include "sinklab/report.h"

namespace sinklab {

std::shared_ptr<const Model> runtime_model(const TrainModel& model, const std::string& config_json,
                                           const std::string& name) {
  auto values = std::make_shared<std::vector<float>>(model.values().begin(), model.values().end());
  auto file = std::make_unique<TensorFile>(FileFormat::Safetensors, name);
  for (TensorEntry e : model.tensor_entries()) {
    e.data = reinterpret_cast<const uint8_t*>(values->data() + model.param(e.name).offset);
    file->add_tensor(std::move(e));
  }
  file->keep_alive(values);
  file->set_config(nlohmann::json::parse(config_json));
  return Model::from_tensor_file(std::move(file), name);
}

SinkEmergence task_sink_emergence(const std::shared_ptr<const Model>& model, const TaskConfig& task,
                                  int64_t sequences) {
  check(model != nullptr, "task_sink_emergence: model is null");
  const auto t = make_task(task, "task");
  const ModelConfig& mc = model->config();
  check(mc.vocab == t->vocab_size() || mc.vocab == t->vocab_size() + 1,
        model->path() + ": the model's vocabulary (" + std::to_string(mc.vocab) + ") does not fit the task's (" +
            std::to_string(t->vocab_size()) + " tokens with BOS)");
  const int32_t first = mc.vocab == t->vocab_size() + 1 ? int32_t(t->vocab_size()) : -1;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<uint8_t>> kinds;
  for (TaskSequence& s : task_probe_sequences(*t, sequences, std::max<int64_t>(mc.max_seq, 2), first)) {
    std::vector<uint8_t> kind(s.kind.size());
    for (size_t i = 0; i < kind.size(); ++i) kind[i] = s.kind[i] == QueryKind::Rule ? 1 : 0;
    kinds.push_back(std::move(kind));
    ids.push_back(std::move(s.tokens));
  }
  return sink_emergence(model, ids, kinds);
}

namespace train_detail {

ProbeRecorder::ProbeRecorder(const TrainConfig& cfg, const SyntheticTask* task, int32_t first_token,
                             const std::vector<int32_t>& valid, std::string config_json)
    : dir_(cfg.train.out_dir), config_json_(std::move(config_json)), every_(cfg.train.probe_every),
      count_(cfg.train.probe_sequences) {
  if (every_ <= 0) return;
  const int64_t T = cfg.model.seq_len, count = cfg.train.probe_sequences;
  if (task) {
    task_ = cfg.data;
  } else {
    const int64_t lead = first_token >= 0 ? 1 : 0;
    for (int64_t i = 0; i < count && (i + 1) * (T - lead) <= int64_t(valid.size()); ++i) {
      std::vector<int32_t> ids;
      if (lead) ids.push_back(first_token);
      ids.insert(ids.end(), valid.begin() + i * (T - lead), valid.begin() + (i + 1) * (T - lead));
      sequences_.push_back(std::move(ids));
    }
    check(!sequences_.empty(), "train: the validation text is too short for one probe window of " +
                                   std::to_string(T) + " tokens");
  }
  doc_ = {{"format", "sinklab-train-probes"},
          {"version", 1},
          {"variant", attn_variant_name(cfg.model.variant)},
          {"n_layers", cfg.model.n_layers},
          {"n_heads", cfg.model.n_heads},
          {"task", cfg.data.enabled() ? task_config_to_json(cfg.data) : nlohmann::json(nullptr)},
          {"probe", {{"sequences", task ? count : int64_t(sequences_.size())}, {"length", T}, {"first_token", first_token},
                     {"query_kinds", task ? "rule/free from the task" : "every query free (text)"}}},
          {"records", nlohmann::json::array()}};
}

bool ProbeRecorder::due(int64_t steps_done, int64_t total) const {
  return every_ > 0 && (steps_done == 0 || steps_done % every_ == 0 || steps_done == total);
}

void ProbeRecorder::resume(int64_t start) {
  if (every_ <= 0 || start == 0) return;
  const std::string path = dir_ + "/probes.json";
  if (!std::filesystem::exists(path)) return;
  const nlohmann::json old = parse_json_text(read_file(path), path + " (delete it to start the probe record anew)");
  check(old.is_object() && old.contains("records") && old["records"].is_array(),
        path + ": not a probe record (no 'records' array)");
  for (const auto& r : old["records"])
    if (r.is_object() && r.contains("step") && r["step"].is_number_integer() && r["step"].get<int64_t>() <= start)
      doc_["records"].push_back(r);
}

void ProbeRecorder::record(const TrainModel& model, int64_t steps_done, double train_loss, double tokens_seen) {
  const auto rt = runtime_model(model, config_json_, dir_ + "/step-" + std::to_string(steps_done));
  const SinkEmergence e = task_.enabled() ? task_sink_emergence(rt, task_, count_) : sink_emergence(rt, sequences_, {});
  nlohmann::json rec = {{"step", steps_done}, {"tokens", tokens_seen}, {"emergence", e}};
  rec["loss"] = steps_done > 0 ? nlohmann::json(train_loss) : nlohmann::json(nullptr);
  auto& records = doc_["records"];
  while (!records.empty() && records.back()["step"].get<int64_t>() >= steps_done) records.erase(records.size() - 1);
  records.push_back(std::move(rec));
  write_file(dir_ + "/probes.json", doc_.dump(1) + "\n");
  write_file(dir_ + "/probes.html", emergence_html(doc_));
}

}  // namespace train_detail

}  // namespace sinklab
