// Fuzzes the tokenizer.json loader: the input is a tokenizer.json, optionally
// followed by a NUL byte and text to encode. Loading may fail with
// sinklab::Error; anything else (crash, hang, other exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sinklab/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find('\0');
  const std::string_view json = input.substr(0, cut);
  const std::string_view text = cut == std::string_view::npos
                                    ? std::string_view("Hello world's 123 <s> caf\xc3\xa9 \xff!")
                                    : input.substr(cut + 1);
  try {
    auto tok = sinklab::tokenizer_from_json_string(json, "fuzz.json");
    const auto ids = tok->encode(text, true);
    (void)tok->encode_ignoring_special(text);
    (void)tok->decode(ids, true);
    (void)tok->decode(ids, false);
    sinklab::StreamDecoder stream(*tok);
    for (int32_t id : ids) (void)stream.push(id);
    (void)stream.flush();
    for (int32_t id = 0; id < tok->vocab_size() && id < 64; ++id) {
      (void)tok->token_text(id);
      (void)tok->is_special(id);
    }
    (void)tok->special_token_id("<s>");
  } catch (const sinklab::Error&) {
  }
  return 0;
}
