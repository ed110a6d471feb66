// Fuzzes the training-config parser (model, train and data/task objects) and,
// for a valid synthetic task, its generator: every generated sequence must obey
// the task's own rule. Parsing may fail with sinklab::Error; anything else
// (crash, hang, other exception, a sequence breaking the rule) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sinklab/train.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const sinklab::TrainConfig c = sinklab::parse_train_config(text, "fuzz.json");
    (void)sinklab::train_config_to_json(c);
    if (c.data.enabled()) {
      const auto task = sinklab::make_task(c.data, "fuzz");
      for (uint64_t seed = 0; seed < 3; ++seed) {
        const sinklab::TaskSequence s = task->generate(seed, 2 + int64_t(seed * 31 % 97));
        if (task->first_rule_violation(s) != -1) std::abort();
      }
    }
  } catch (const sinklab::Error&) {
  }
  return 0;
}
