// Sink probes during training: the SinkEmergence probe of sinklab/probe.h run
// on the current weights at chosen steps, kept in out_dir/probes.json and drawn
// as emergence curves in out_dir/probes.html.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sinklab/train.h"

namespace sinklab::train_detail {

class ProbeRecorder {
 public:
  // The probe set: the task's fixed probe sequences, or for text the first
  // windows of `valid` (each led by `first_token` when >= 0).
  ProbeRecorder(const TrainConfig& cfg, const SyntheticTask* task, int32_t first_token,
                const std::vector<int32_t>& valid, std::string config_json);
  bool enabled() const { return every_ > 0; }
  // True for step 0 (before training), every probe_every steps and the last step.
  bool due(int64_t steps_done, int64_t total) const;
  // Keeps the records of an earlier run of this folder up to `start` steps.
  void resume(int64_t start);
  // Probes the model after `steps_done` steps and rewrites probes.json and probes.html.
  void record(const TrainModel& model, int64_t steps_done, double train_loss, double tokens_seen);

 private:
  std::string dir_, config_json_;
  int64_t every_ = 0, count_ = 0;
  TaskConfig task_;                                // a synthetic task, or
  std::vector<std::vector<int32_t>> sequences_;  // text windows (every query free)
  nlohmann::json doc_;
};

}  // namespace sinklab::train_detail
