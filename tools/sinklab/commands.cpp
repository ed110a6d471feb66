#include "commands.h"

namespace sinklab::cli {

Command bench_command();     // bench_attention.cpp
Command info_command();      // info.cpp
Command generate_command();  // generate.cpp
Command convert_command();   // convert.cpp

// One row per subcommand.
std::vector<Command> all_commands() {
  return {
      bench_command(),
      info_command(),
      generate_command(),
      convert_command(),
  };
}

}  // namespace sinklab::cli
