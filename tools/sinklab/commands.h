#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
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

// -t/--threads, the same in every command: 0 = every hardware thread; the
// help shows `threads`' current value as the default. `extra` adds a note.
inline CLI::Option* add_threads_flag(CLI::App& sub, int& threads, const std::string& extra = "") {
  return sub
      .add_option("-t,--threads", threads,
                  "Threads for sinklab and OpenBLAS; 0 = every hardware thread" + extra + " (default " +
                      std::to_string(threads) + ")")
      ->check(CLI::Range(0, 4096));
}

}  // namespace sinklab::cli
