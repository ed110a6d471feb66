#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <vector>

namespace sinklab::cli {

// A subcommand: `add` registers it (and its flags) on the app and returns it;
// `run` executes it after parsing. Options live in state the two lambdas share.
struct Command {
  std::function<CLI::App*(CLI::App&)> add;
  std::function<int()> run;
  CLI::App* sub = nullptr;
};

std::vector<Command> all_commands();

}  // namespace sinklab::cli
