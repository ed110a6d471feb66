#include "commands.h"

namespace sinklab::cli {

Command bench_command();  // bench_attention.cpp

// One row per subcommand.
std::vector<Command> all_commands() {
  return {
      bench_command(),
  };
}

}  // namespace sinklab::cli
