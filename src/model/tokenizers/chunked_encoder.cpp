// Encoding a text that arrives in pieces (tokenizer.h, ChunkedEncoder).
//
// Why a cut is safe for the split regexes: every word of the GPT-2, Llama-3,
// Qwen2 and o200k patterns that holds a space or newline either starts with it,
// is made of white space only, or (o200k) ends a punctuation run with line
// breaks and slashes, so a space between two non-white-space characters, and a
// character after a newline that is neither white space nor '/', always start
// a word. The encoder still checks each cut on the tokenizer itself, because
// other tokenizers (dummy prefix, Metaspace, score-driven merges) differ.
#include <algorithm>

#include "sinklab/tokenizer.h"
#include "unicode.h"

namespace sinklab {

namespace {

constexpr size_t kCheckWindow = 256;   // bytes on each side of a cut that are encoded to check it
constexpr int kMaxCutChecks = 64;      // candidates tried per attempt before waiting for more text
constexpr size_t kForcedCutFactor = 16;  // buffer sizes (in chunks) past which a cut is forced

bool white_at(std::string_view text, size_t pos) {
  uint32_t cp = 0;
  tok::utf8_next(text, pos, cp);
  return cp != tok::kInvalidCodepoint && tok::is_whitespace(cp);
}

// Whether the character that ends just before `pos` is white space.
bool white_before(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && pos - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return white_at(text, start);
}

bool starts_word(std::string_view text, size_t p) {
  if (p == 0 || p + 1 >= text.size()) return false;
  if (text[p] == ' ') return !white_before(text, p) && !white_at(text, p + 1);
  return text[p - 1] == '\n' && text[p] != '/' && !white_at(text, p);
}

bool same_ids(const std::vector<int32_t>& whole, const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return whole.size() == a.size() + b.size() && std::equal(a.begin(), a.end(), whole.begin()) &&
         std::equal(b.begin(), b.end(), whole.begin() + std::ptrdiff_t(a.size()));
}

// Cut back to the start of a UTF-8 character.
size_t char_boundary_at_or_before(std::string_view text, size_t p) {
  size_t back = 0;
  while (p > 0 && back < 3 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p, ++back;
  return p;
}

}  // namespace

size_t last_word_cut(std::string_view text, size_t lo, size_t hi) {
  hi = std::min(hi, text.size());
  for (size_t p = hi; p-- > lo + 1;)
    if (starts_word(text, p)) return p;
  return std::string_view::npos;
}

ChunkedEncoder::ChunkedEncoder(const Tokenizer& tokenizer, size_t chunk_bytes)
    : tokenizer_(tokenizer), chunk_bytes_(std::max<size_t>(chunk_bytes, 4 * kCheckWindow)) {}

void ChunkedEncoder::feed(std::string_view bytes, std::vector<int32_t>& ids) {
  buffer_.append(bytes);
  while (buffer_.size() >= chunk_bytes_ + kCheckWindow + 1)
    if (!encode_through_cut(ids)) break;
}

void ChunkedEncoder::finish(std::vector<int32_t>& ids) {
  if (!buffer_.empty()) {
    const std::vector<int32_t> rest = tokenizer_.encode(buffer_, false);
    ids.insert(ids.end(), rest.begin(), rest.end());
  }
  buffer_.clear();
}

bool ChunkedEncoder::encode_through_cut(std::vector<int32_t>& ids) {
  const std::string_view text = buffer_;
  const size_t hi = std::min(chunk_bytes_, text.size() - kCheckWindow - 1);
  const size_t lo = hi / 2;
  size_t cut = std::string_view::npos;
  size_t resume = 0;  // where the next chunk starts: the cut, or one past a dropped space
  size_t p = hi + 1;
  for (int tries = 0; tries < kMaxCutChecks; ++tries) {
    p = last_word_cut(text, lo, p);
    if (p == std::string_view::npos) break;
    const size_t left_start = p > kCheckWindow ? p - kCheckWindow : 0;
    const std::string_view left = text.substr(left_start, p - left_start);
    const std::string_view right = text.substr(p, kCheckWindow);
    const std::vector<int32_t> whole = tokenizer_.encode(text.substr(left_start, p - left_start + right.size()), false);
    const std::vector<int32_t> before = tokenizer_.encode(left, false);
    if (same_ids(whole, before, tokenizer_.encode(right, false))) {
      cut = resume = p;
      break;
    }
    // Dummy-prefix tokenizers: the next piece gets its space back from the prefix.
    if (right[0] == ' ' && same_ids(whole, before, tokenizer_.encode(right.substr(1), false))) {
      cut = p;
      resume = p + 1;
      break;
    }
  }
  if (cut == std::string_view::npos) {
    if (text.size() < kForcedCutFactor * chunk_bytes_) return false;
    cut = resume = char_boundary_at_or_before(text, chunk_bytes_);
    if (cut == 0) cut = resume = chunk_bytes_;
  }
  const std::vector<int32_t> chunk = tokenizer_.encode(text.substr(0, cut), false);
  ids.insert(ids.end(), chunk.begin(), chunk.end());
  buffer_.erase(0, resume);
  return true;
}

}  // namespace sinklab

namespace sinklab {

namespace {

// Length of `t` without a last character that more bytes may complete.
size_t complete_prefix(std::string_view t) {
  size_t q = t.size();
  for (int i = 0; i < 3 && q > 0 && (static_cast<unsigned char>(t[q - 1]) & 0xC0) == 0x80; ++i) --q;
  if (q == 0) return t.size();
  const auto lead = static_cast<unsigned char>(t[q - 1]);
  if (lead < 0xC2 || lead > 0xF4) return t.size();  // not a lead byte: nothing to wait for
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return t.size() - (q - 1) < need ? q - 1 : t.size();
}

}  // namespace

int64_t Utf8StreamCheck::feed(std::string_view block) {
  if (bad_ >= 0) return bad_;
  std::string text = std::move(carry_);
  text.append(block);
  const size_t complete = complete_prefix(text);
  const int64_t bad = first_invalid_utf8(std::string_view(text).substr(0, complete));
  if (bad >= 0) return bad_ = offset_ + bad;
  carry_ = text.substr(complete);
  offset_ += int64_t(complete);
  return -1;
}

int64_t Utf8StreamCheck::finish() {
  if (bad_ >= 0) return bad_;
  const int64_t bad = first_invalid_utf8(carry_);
  return bad >= 0 ? bad_ = offset_ + bad : -1;
}

EncodedTextFile encode_text_file(const Tokenizer& tokenizer, const std::string& path,
                                 const TextFileEncoding& o) {
  EncodedTextFile out;
  if (o.add_bos && tokenizer.bos_id() >= 0) out.ids.push_back(tokenizer.bos_id());
  ChunkedEncoder encoder(tokenizer);
  Utf8StreamCheck utf8;
  auto check_utf8 = [&](int64_t bad) {
    if (o.require_utf8 && bad >= 0)
      throw Error(o.what + " '" + path + "' is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  };
  bool ended = true;
  read_file_blocks(path, o.what, size_t(1) << 20, [&](std::string_view block) {
    out.bytes_read += int64_t(block.size());
    out.blank = out.blank && block.find_first_not_of(" \t\r\n") == std::string_view::npos;
    check_utf8(utf8.feed(block));
    encoder.feed(block, out.ids);
    // The ids of completed chunks are final: stop once they are enough.
    ended = !(o.max_tokens > 0 && int64_t(out.ids.size()) >= o.max_tokens);
    return ended;
  });
  if (ended) {
    check_utf8(utf8.finish());
    encoder.finish(out.ids);
  }
  if (o.max_tokens > 0 && int64_t(out.ids.size()) > o.max_tokens) out.ids.resize(size_t(o.max_tokens));
  return out;
}

}  // namespace sinklab
