// The files of a training run's folder: checkpoints (weights, optimizer state,
// step, the configs and tokenizer or task beside them) and small text files
// written through a temporary file and a rename.
#pragma once

#include <string>

#include "sinklab/train.h"

namespace sinklab::train_detail {

std::string read_file(const std::string& path);
// Writes through a temporary file and a rename, so a crash never leaves half a file.
void write_file(const std::string& path, const std::string& text);

struct Checkpointer {
  const TrainConfig& cfg;
  std::string dir;
  std::string tokenizer_json;  // empty for a synthetic task (task.json instead)
  std::string config_json;

  void save(const TrainModel& model, const Optimizer& opt, int64_t step) const;
  // Restores model, optimizer and the step from dir; returns the next step (0 without a checkpoint).
  int64_t restore(TrainModel& model, Optimizer& opt) const;
};

}  // namespace sinklab::train_detail
