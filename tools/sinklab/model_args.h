// Flags and loading shared by the subcommands that take a model (-m, --tokenizer,
// --dtype): the default model location and clear errors for missing files.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "sinklab/model.h"

namespace sinklab::cli {

struct ModelArgs {
  std::string model_path;      // empty: the default model
  std::string tokenizer_path;  // empty: look beside the model
  std::string dtype = "native";
  bool no_mmap = false;
};

// Adds -m/--model, --tokenizer and --no-mmap (and --dtype when with_dtype) to `app`.
void add_model_flags(CLI::App& app, ModelArgs& args, bool with_dtype);

// `models/default` in the source tree when -m was not given; throws Error
// saying -m is required when there is no default model.
std::string resolve_model_path(const std::string& given);

// Loads the model, with errors that name the missing file or the bad flag.
std::shared_ptr<const Model> load_model(const ModelArgs& args);

// The model's tokenizer; throws Error naming the model and --tokenizer when none was found.
const Tokenizer& require_tokenizer(const Model& model);

}  // namespace sinklab::cli
