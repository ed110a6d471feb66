// The files of a training run's folder: checkpoints written as one set
// (checkpoints/step-N/ with weights, optimizer state, step, configs and a
// manifest of sizes and hashes; checkpoint.json points at the current set) and
// small text files written through a temporary file and a rename.
#pragma once

#include <filesystem>
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
  // Removes what an interrupted save left behind (temporary files and sets).
  void clean_leftovers() const;
  // Restores model, optimizer and the step from dir; returns the next step (0 without a checkpoint).
  int64_t restore(TrainModel& model, Optimizer& opt) const;

 private:
  // Loads weights, optimizer and step from one set's files (checked before).
  int64_t restore_set(const std::filesystem::path& set, int64_t pointer_step, TrainModel& model, Optimizer& opt) const;
};

}  // namespace sinklab::train_detail
