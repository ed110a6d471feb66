#include "commands.h"

namespace sinklab::cli {

Command bench_command();     // bench_attention.cpp
Command info_command();      // info.cpp
Command generate_command();  // generate.cpp
Command convert_command();   // convert.cpp
Command ppl_command();       // ppl.cpp
Command stream_command();    // stream.cpp
Command inspect_command();   // inspect.cpp
Command litm_command();      // litm.cpp
Command train_tokenizer_command();  // train_tokenizer.cpp
Command train_command();     // train.cpp
Command audit_command();     // audit.cpp
Command serve_command();     // serve.cpp
Command train_vit_command();  // train_vit.cpp

// One row per subcommand.
std::vector<Command> all_commands() {
  return {
      bench_command(),
      info_command(),
      generate_command(),
      convert_command(),
      ppl_command(),
      stream_command(),
      inspect_command(),
      litm_command(),
      train_tokenizer_command(),
      train_command(),
      audit_command(),
      serve_command(),
      train_vit_command(),
  };
}

}  // namespace sinklab::cli
