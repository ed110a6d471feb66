// config.json values that are not what they must be are errors naming the
// field, never silently truncated: fractional counts, token ids past int32,
// non-positive RoPE scaling factors, layer counts out of range (checked before
// anything is sized by them).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sinklab/formats.h"
#include "sinklab/model.h"

namespace fs = std::filesystem;
using namespace sinklab;

namespace {

std::string base_config(const std::string& extra) {
  return R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 16)" +
         extra + "}";
}

std::string load_error(const std::string& config) {
  const fs::path dir = fs::temp_directory_path() / ("sinklab_cfgval_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<float> w(4, 0.f);
  TensorEntry e;
  e.name = "unused";
  e.shape = {4};
  e.data = reinterpret_cast<const uint8_t*>(w.data());
  e.nbytes = 16;
  write_safetensors((dir / "model.safetensors").string(), {e});
  std::ofstream(dir / "config.json") << config;
  std::string what = "no error";
  try {
    Model::load(dir.string());
  } catch (const Error& err) {
    what = err.what();
  }
  fs::remove_all(dir);
  return what;
}

TEST(ConfigValues, WrongValuesAreErrorsNamingTheField) {
  const std::string c55 = R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 5.5,
                             "num_attention_heads": 2})";
  EXPECT_NE(load_error(c55).find("'num_hidden_layers' must be an integer"), std::string::npos) << load_error(c55);
  const std::string big = R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1000000000,
                             "num_attention_heads": 2})";
  EXPECT_NE(load_error(big).find("layer count = 1000000000 is out of range"), std::string::npos) << load_error(big);
  const std::string bos = base_config(R"(, "bos_token_id": 1000000000000)");
  EXPECT_NE(load_error(bos).find("'bos_token_id' = 1000000000000 is not a valid token id"), std::string::npos)
      << load_error(bos);
  const std::string yarn = base_config(R"(, "rope_scaling": {"rope_type": "yarn", "factor": -4.0})");
  EXPECT_NE(load_error(yarn).find("rope_scaling factor must be > 0"), std::string::npos) << load_error(yarn);
  const std::string flag = base_config(R"(, "tie_word_embeddings": 1)");
  EXPECT_NE(load_error(flag).find("'tie_word_embeddings' must be true or false"), std::string::npos)
      << load_error(flag);
  const std::string inf = base_config(R"(, "rope_theta": 1e400)");
  EXPECT_NE(load_error(inf).find("not valid JSON"), std::string::npos) << load_error(inf);
}

}  // namespace

namespace {

// Architecture rows read their own fields through the same checked reader: a
// wrong type is an Error naming the field, never a raw JSON exception.
TEST(ConfigValues, ArchitectureFieldsAreCheckedToo) {
  const std::string moe = R"({"model_type": "mixtral", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "intermediate_size": 16, "num_local_experts": "four"})";
  EXPECT_NE(load_error(moe).find("'num_local_experts' must be an integer"), std::string::npos) << load_error(moe);
  const std::string bias = base_config(R"(, "attention_bias": "yes")");
  EXPECT_NE(load_error(bias).find("'attention_bias' must be true or false"), std::string::npos) << load_error(bias);
  const std::string window = R"({"model_type": "mistral", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
                                "num_attention_heads": 2, "intermediate_size": 16, "sliding_window": 100000000000})";
  EXPECT_NE(load_error(window).find("'sliding_window' = 100000000000 is too large"), std::string::npos)
      << load_error(window);
  const std::string qwen = R"({"model_type": "qwen2", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "intermediate_size": 16, "use_sliding_window": true,
                              "sliding_window": 4, "max_window_layers": 0.5})";
  EXPECT_NE(load_error(qwen).find("'max_window_layers' must be an integer"), std::string::npos) << load_error(qwen);
}

}  // namespace
