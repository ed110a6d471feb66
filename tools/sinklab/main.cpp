// sinklab CLI: each subcommand lives in its own file and registers itself here.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.h"
#include "sinklab/core.h"

int main(int argc, char** argv) {
  CLI::App app{"sinklab: attention sinks, observable and controllable"};
  app.set_version_flag("--version", std::string("sinklab ") + sinklab::version());
  app.require_subcommand(0, 1);
  // Flag errors are one line, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("sinklab: error: ") + e.what() + " (see --help)\n";
  });
  std::vector<sinklab::cli::Command> commands = sinklab::cli::all_commands();
  for (auto& c : commands) c.sub = c.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& c : commands)
      if (c.sub && c.sub->parsed()) return c.run();
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const sinklab::Error& e) {
    std::fprintf(stderr, "sinklab: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sinklab: error: %s\n", e.what());
    return 1;
  }
}
