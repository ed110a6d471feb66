#include "commands.h"

namespace sinklab::cli {

// One row per subcommand.
std::vector<Command> all_commands() { return {}; }

}  // namespace sinklab::cli
