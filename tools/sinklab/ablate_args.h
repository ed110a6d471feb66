// The --ablate flag shared by ppl, inspect and litm (grammar: sinklab/intervene.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace sinklab::cli {

inline void add_ablate_flag(CLI::App& sub, std::vector<std::string>& specs) {
  sub.add_option("--ablate", specs,
                 "Intervention, repeatable, applied in order: sink[:keys=K,layers=L,heads=H] | "
                 "reset:layer=L|tap=NAME,dims=D[,tokens=T,mode=zero|mean] | prune:layer=L,expert=E | "
                 "prepend[:token=ID|bos]; lists use ';' and a..b (see include/sinklab/intervene.h)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace sinklab::cli
