// Fuzzes config.json: the input is the JSON text beside a one-tensor
// safetensors checkpoint, loaded through the architecture registry (config
// parsing, validation, weight binding). Loading may fail with sinklab::Error;
// anything else (crash, huge allocation, other exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/json_text.h"
#include "sinklab/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<float> weights(64, 0.5f);
  try {
    const nlohmann::json cfg =
        sinklab::parse_json_text(std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
    auto file = std::make_unique<sinklab::TensorFile>(sinklab::FileFormat::Safetensors, "fuzz");
    sinklab::TensorEntry e;
    e.name = "model.embed_tokens.weight";
    e.type = sinklab::TensorType::F32;
    e.shape = {8, 8};
    e.data = reinterpret_cast<const uint8_t*>(weights.data());
    e.nbytes = weights.size() * 4;
    file->add_tensor(e);
    file->set_config(cfg);
    (void)sinklab::Model::from_tensor_file(std::move(file), "/nonexistent-fuzz-dir/model.safetensors");
  } catch (const sinklab::Error&) {
  }
  return 0;
}
