// Task configs (JSON in and out, validation), the registry of tasks and the
// seeding shared by every generator.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "sinklab/json_text.h"
#include "sinklab/core.h"
#include "sinklab/tasks.h"

namespace sinklab {

namespace {

const char* const kTaskNames[] = {"bigram-backcopy", "assoc-recall", "kv-facts"};

template <typename T>
void read_integer(const nlohmann::json& j, const char* key, T& field, const std::string& where) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j.at(key);
  check(v.is_number_integer() || v.is_number_unsigned(), where + ": '" + key + "' must be an integer");
  if constexpr (std::is_unsigned_v<T>) {
    check(v.is_number_unsigned() || v.get<int64_t>() >= 0, where + ": '" + key + "' must be >= 0");
    field = v.get<T>();
  } else {
    field = v.get<T>();
  }
}

void read_number(const nlohmann::json& j, const char* key, double& field, const std::string& where) {
  if (!j.contains(key)) return;
  check(j.at(key).is_number(), where + ": '" + key + "' must be a number");
  field = j.at(key).get<double>();
}

void read_string(const nlohmann::json& j, const char* key, std::string& field, const std::string& where) {
  if (!j.contains(key)) return;
  check(j.at(key).is_string(), where + ": '" + key + "' must be a string");
  field = j.at(key).get<std::string>();
}

}  // namespace

uint64_t task_sequence_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = splitmix64(seed ^ 0x7a5b1e5eedull);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ b * 0x100000001b3ull);
  return splitmix64(h ^ c * 0xc2b2ae3d27d4eb4full);
}

std::string SyntheticTask::token_text(int32_t id) const {
  if (id == kBos) return "<bos>";
  std::string s = "t";
  s += std::to_string(id);
  return s;
}

TaskConfig task_config_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object(), where + " must be a JSON object");
  static const char* const kKeys[] = {"task", "vocab", "triggers", "chain_seed", "chain_sharpness",
                                      "pair_share", "keys", "loss"};
  for (auto it = j.begin(); it != j.end(); ++it)
    check(std::find(std::begin(kKeys), std::end(kKeys), it.key()) != std::end(kKeys),
          where + ": unknown key '" + it.key() + "'");
  TaskConfig c;
  read_string(j, "task", c.task, where);
  check(!c.task.empty(), where + ": 'task' is required (bigram-backcopy, assoc-recall or kv-facts)");
  read_integer(j, "vocab", c.vocab, where);
  read_integer(j, "triggers", c.triggers, where);
  read_integer(j, "chain_seed", c.chain_seed, where);
  read_number(j, "chain_sharpness", c.chain_sharpness, where);
  read_number(j, "pair_share", c.pair_share, where);
  read_integer(j, "keys", c.keys, where);
  read_string(j, "loss", c.loss, where);
  make_task(c, where);  // validates
  return c;
}

nlohmann::json task_config_to_json(const TaskConfig& c) {
  nlohmann::ordered_json j;
  j["task"] = c.task;
  j["vocab"] = c.vocab;
  if (c.task == "bigram-backcopy") {
    j["triggers"] = c.triggers;
    j["chain_seed"] = c.chain_seed;
    j["chain_sharpness"] = c.chain_sharpness;
  } else if (c.task == "kv-facts") {
    j["keys"] = c.keys;
    j["chain_seed"] = c.chain_seed;
  } else {
    j["keys"] = c.keys;
    j["pair_share"] = c.pair_share;
  }
  j["loss"] = c.loss;
  return nlohmann::json::parse(j.dump());
}

std::unique_ptr<SyntheticTask> make_task(const TaskConfig& c, const std::string& where) {
  check(std::find(std::begin(kTaskNames), std::end(kTaskNames), c.task) != std::end(kTaskNames),
        where + ": unknown task '" + c.task + "' (known: bigram-backcopy, assoc-recall, kv-facts)");
  // The bigram chain is a dense vocab x vocab table: 1024 keeps it at 16 MB.
  check(c.vocab >= 2 && c.vocab <= 1024, where + ": 'vocab' must be in 2..1024");
  check(c.loss == "all" || c.loss == "rule", where + ": 'loss' must be \"all\" or \"rule\"");
  if (c.task == "bigram-backcopy") {
    check(c.triggers >= 1 && c.triggers < c.vocab, where + ": 'triggers' must be in 1..vocab-1");
    check(c.chain_sharpness >= 0 && c.chain_sharpness <= 10, where + ": 'chain_sharpness' must be in [0, 10]");
    return std::make_unique<BigramBackcopy>(c);
  }
  if (c.task == "kv-facts") {
    check(c.keys >= 1 && c.keys + KvFacts::kSpare < c.vocab,
          where + ": 'keys' must be >= 1 with keys + " + std::to_string(KvFacts::kSpare) +
              " spare ids < vocab (room for values)");
    return std::make_unique<KvFacts>(c);
  }
  check(c.keys >= 1 && 2 * c.keys < c.vocab, where + ": 'keys' must be >= 1 with 2 * keys < vocab (fillers)");
  check(c.pair_share > 0 && c.pair_share < 1, where + ": 'pair_share' must be in (0, 1)");
  return std::make_unique<AssocRecall>(c);
}

TaskConfig load_task_config_beside(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::is_directory(model_path, ec) ? fs::path(model_path) : fs::path(model_path).parent_path();
  const fs::path file = dir / "task.json";
  if (!fs::is_regular_file(file, ec)) return {};
  std::ifstream in(file);
  check(bool(in), file.string() + ": cannot read");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return task_config_from_json(parse_json_text(text, file.string()), file.string());
}

}  // namespace sinklab
