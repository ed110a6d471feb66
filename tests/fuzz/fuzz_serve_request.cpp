// Fuzzes `sinklab serve`'s request reading: the body parser and the OpenAI
// field validation of both endpoints, then the error JSON a refusal is sent
// as. A refusal is an ApiError with a 4xx status; anything else (crash, hang,
// another exception, an error JSON that cannot be written) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../../src/serve/serve_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sinklab::serve;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (Endpoint e : {Endpoint::Completions, Endpoint::ChatCompletions}) {
    try {
      const ApiRequest r = parse_request(parse_body(text), e);
      if (r.max_tokens < -1 || r.temperature < 0 || r.top_p <= 0 || r.stop.size() > 4) std::abort();
    } catch (const ApiError& err) {
      if (err.status < 400 || err.status >= 500) std::abort();
      (void)err.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return 0;
}
