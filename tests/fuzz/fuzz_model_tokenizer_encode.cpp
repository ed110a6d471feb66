// Fuzzes encoding with fixed small tokenizers (byte-level BPE with the
// Llama-3 and the o200k split, SentencePiece-style BPE with byte fallback,
// llama2.c). Byte-level and llama2.c tokenizers must round-trip any input
// exactly, and byte-level ones also when special tokens are read as text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "sinklab/tokenizer.h"

namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

std::string byte_char(int b) {
  const auto printable = [](int k) { return (k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE; };
  int cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int k = 0; k < b; ++k) cp += printable(k) ? 0 : 1;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)";
constexpr const char* kO200kSplit =
    R"([^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"([^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"(\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)";

// `split`: the Split regex as written inside the JSON string (backslashes doubled).
std::unique_ptr<sinklab::Tokenizer> make_byte_level(const char* split) {
  std::string vocab;
  for (int b = 0; b < 256; ++b) vocab += "\"" + json_escape(byte_char(b)) + "\":" + std::to_string(b) + ",";
  vocab += R"("Ġt":256,"he":257,"Ġthe":258,"in":259,"Ġin":260)";
  std::string json =
      R"({"added_tokens":[{"id":261,"content":"<|eot|>","special":true}],)"
      R"("pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":")";
  json += split;
  json +=
      R"("},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},)"
      R"("decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{)" +
      vocab + R"(},"merges":["Ġ t","h e","Ġt he","i n","Ġ in"]}})";
  return sinklab::tokenizer_from_json_string(json, "byte_level.json");
}

std::unique_ptr<sinklab::Tokenizer> make_sentencepiece() {
  std::string vocab = R"("<unk>":0,"<s>":1,"</s>":2)";
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab += ",\"" + std::string(name) + "\":" + std::to_string(3 + b);
  }
  vocab += R"(,"▁":259,"a":260,"b":261,"▁a":262,"ab":263,"▁ab":264)";
  const std::string json =
      R"({"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},)"
      R"({"id":2,"content":"</s>","special":true}],)"
      R"("normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},)"
      R"({"type":"Replace","pattern":{"String":" "},"content":"▁"}]},)"
      R"("decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},)"
      R"({"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},)"
      R"("model":{"type":"BPE","unk_token":"<unk>","byte_fallback":true,"fuse_unk":true,"vocab":{)" +
      vocab + R"(},"merges":["▁ a","a b","▁a b"]}})";
  return sinklab::tokenizer_from_json_string(json, "sentencepiece.json");
}

std::unique_ptr<sinklab::Tokenizer> make_llama2c() {
  std::string bin;
  const auto put = [&](float score, const std::string& piece) {
    bin.append(reinterpret_cast<const char*>(&score), 4);
    const int32_t len = static_cast<int32_t>(piece.size());
    bin.append(reinterpret_cast<const char*>(&len), 4);
    bin += piece;
  };
  const int32_t max_len = 8;
  bin.append(reinterpret_cast<const char*>(&max_len), 4);
  put(0, "<unk>");
  put(0, "\n<s>\n");
  put(0, "\n</s>\n");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    put(0, name);
  }
  const char* pieces[] = {" ", "a", "b", "é", " a", "ab", " ab", "ba", "aa"};
  float score = -1;
  for (const char* p : pieces) put(score--, p);
  const std::vector<uint8_t> bytes(bin.begin(), bin.end());
  return sinklab::llama2c_tokenizer_from_bytes(bytes, 259 + 9, "llama2c.bin");
}

void check_round_trip(const sinklab::Tokenizer& tok, std::string_view text) {
  const auto ids = tok.encode(text, true);
  if (tok.decode(ids) != text) __builtin_trap();
  sinklab::StreamDecoder stream(tok);
  for (int32_t id : ids) (void)stream.push(id);
  (void)stream.flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto byte_level = make_byte_level(kLlama3Split);
  static const auto o200k = make_byte_level(kO200kSplit);
  static const auto sentencepiece = make_sentencepiece();
  static const auto llama2c = make_llama2c();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Special-token text in the input legitimately decodes differently.
  if (text.find("<|eot|>") == std::string_view::npos) {
    check_round_trip(*byte_level, text);
    check_round_trip(*o200k, text);
  }
  for (const auto* tok : {byte_level.get(), o200k.get()})
    if (tok->decode(tok->encode_ignoring_special(text)) != text) __builtin_trap();
  check_round_trip(*llama2c, text);
  const auto ids = sentencepiece->encode(text, true);
  (void)sentencepiece->decode(ids, false);
  return 0;
}
