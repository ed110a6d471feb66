// Shared Tokenizer code and the streaming UTF-8 decoder.
#include <cstdio>
#include "sinklab/tokenizer.h"

#include "unicode.h"

namespace sinklab {

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("tokenizer: token id " + std::to_string(id) + " is outside [0, " +
                std::to_string(vocab_size()) + ")");
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  DecodeState state;
  for (int32_t id : ids) decode_append(id, skip_special, state, out);
  return out;
}

std::string token_display_text(const Tokenizer& tokenizer, int32_t id) {
  if (tokenizer.is_special(id)) return tokenizer.token_text(id);
  DecodeState inside;  // not at the start: a dummy-prefix space stays
  inside.at_start = false;
  std::string text;
  tokenizer.decode_append(id, /*skip_special=*/false, inside, text);
  if (first_invalid_utf8(text) < 0) return text;
  std::string bytes;
  char buf[8];
  for (unsigned char c : text) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", c);
    bytes += buf;
  }
  return bytes;
}

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Moves the longest prefix of `pending` that can be shown into the result:
// complete sequences verbatim, impossible ones as U+FFFD. Keeps a trailing
// incomplete-but-valid prefix in `pending`.
std::string take_complete(std::string& pending) {
  std::string out;
  size_t pos = 0;
  while (pos < pending.size()) {
    size_t invalid_len = 0;
    const int n = tok::utf8_sequence_status(pending, pos, invalid_len);
    if (n == 0) break;  // wait for more bytes
    if (n < 0) {
      out += kReplacement;
      pos += invalid_len;
    } else {
      out.append(pending, pos, size_t(n));
      pos += size_t(n);
    }
  }
  pending.erase(0, pos);
  return out;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  tokenizer_->decode_append(id, skip_special_, state_, pending_);
  return take_complete(pending_);
}

std::string StreamDecoder::flush() {
  std::string out = take_complete(pending_);
  if (!pending_.empty()) out += kReplacement;  // an incomplete sequence at the end
  pending_.clear();
  return out;
}

void StreamDecoder::reset() {
  state_ = DecodeState{};
  pending_.clear();
}

int64_t first_invalid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    const size_t n = tok::utf8_next(text, pos, cp);
    if (cp == tok::kInvalidCodepoint) return int64_t(pos);
    pos += n;
  }
  return -1;
}

}  // namespace sinklab
