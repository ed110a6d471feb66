// libFuzzer target: parse_gguf on arbitrary bytes must either succeed or throw
// sinklab::Error; successful parses are decoded to touch every tensor byte and
// their embedded tokenizer (tokenizer.ggml.*), if any, encodes a short text.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sinklab/formats.h"
#include "sinklab/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sinklab::TensorFile tf = sinklab::parse_gguf(data, size, "fuzz-input");
    std::vector<float> out;
    for (const auto& [name, entry] : tf.tensors()) {
      const int64_t n = entry.numel();
      if (n > (int64_t(1) << 20)) continue;  // bounded work per input
      out.resize(size_t(n));
      sinklab::dequantize(entry, out.data());
    }
    if (const auto tok = sinklab::tokenizer_from_gguf(tf.metadata(), "fuzz-input"))
      tok->decode(tok->encode("Hello world \xF0\x9F\x98\x80", true), false);
  } catch (const sinklab::Error&) {
  }
  return 0;
}
