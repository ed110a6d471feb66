// Tokenizers: Hugging Face tokenizer.json (byte-level BPE as in GPT-2 /
// Llama-3 / Qwen2, and SentencePiece-style BPE with byte fallback as in
// Llama 2 / TinyLlama) and llama2.c tokenizer.bin files; GGUF tokenizer.ggml.*
// metadata is read into, and written from, these (see write_gguf_tokenizer for
// which ones a GGUF file can carry).
//
// Decoding always yields the exact bytes the tokens stand for (byte-level and
// byte-fallback tokens may produce invalid UTF-8 on their own); StreamDecoder
// turns a token stream into displayable, always-valid UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sinklab/core.h"

namespace sinklab {

// Per-sequence decoding state; tokenizers use it for context-dependent rules
// such as dropping the dummy-prefix space of the first piece.
struct DecodeState {
  bool at_start = true;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text to token ids. With add_bos, the BOS id is prepended when the
  // tokenizer has one. Any byte string is accepted (invalid UTF-8 included).
  // Text that spells a special or added token ("<|end|>") becomes that token.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;

  // As encode(text, false), except that the spelling of a special token is
  // encoded as ordinary text: for text from a user that must not inject
  // control tokens into a prompt. Added tokens that are not special still
  // match (as Hugging Face's split_special_tokens does). Tokenizers that never
  // match special tokens in text return encode(text, false).
  virtual std::vector<int32_t> encode_ignoring_special(std::string_view text) const { return encode(text, false); }

  // Ids to bytes. Special tokens are dropped when skip_special is true.
  // Throws Error for ids outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  // Appends the bytes of one token, given and updating the sequence state.
  virtual void decode_append(int32_t id, bool skip_special, DecodeState& state,
                             std::string& out) const = 0;

  // The vocabulary entry of `id` as stored in the file (e.g. "Ġthe", "▁the",
  // "<0x0A>", "<|endoftext|>"). Throws Error for ids out of range.
  virtual std::string token_text(int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  int32_t bos_id() const { return bos_id_; }  // -1 if none
  int32_t eos_id() const { return eos_id_; }  // -1 if none

  // Id of the special (or added) token whose text is `text`; -1 if none.
  virtual int32_t special_token_id(std::string_view text) const = 0;
  virtual bool is_special(int32_t id) const = 0;

  // Merge scores of a score-driven (llama2.c / SentencePiece) vocabulary, one
  // per id; empty for other tokenizers.
  virtual std::span<const float> piece_scores() const { return {}; }

 protected:
  void check_id(int32_t id) const;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
};

// Feeds ids one at a time and returns only complete UTF-8 text. Partial
// multi-byte sequences are held back until a later token completes them;
// bytes that can never form a valid sequence become U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  // Text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Remaining text; a dangling partial sequence becomes one U+FFFD.
  std::string flush();
  // Starts a new sequence.
  void reset();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  DecodeState state_;
  std::string pending_;
};

// Options for tokenizer.json files, whose BOS/EOS choice normally lives in a
// separate tokenizer_config.json. Empty names mean "infer": BOS from the
// TemplateProcessing post-processor or a known name (<s>, <|begin_of_text|>),
// EOS from a known name (</s>, <|end_of_text|>, <|endoftext|>).
struct TokenizerJsonOptions {
  std::string bos_token;
  std::string eos_token;
};

// Hugging Face tokenizer.json. Throws Error naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path,
                                               const TokenizerJsonOptions& options = {});
// Same, from the JSON text in memory; `source_name` is used in error messages.
// A token as a person reads it: the text it decodes to inside a sequence
// (" truth", not "Ġtruth" or "▁truth"); special tokens as stored
// ("<|endoftext|>"); a piece that is not whole UTF-8 by itself (one byte of a
// longer character) as its bytes, e.g. "<0xE2>". Throws Error for ids out of range.
std::string token_display_text(const Tokenizer& tokenizer, int32_t id);

std::unique_ptr<Tokenizer> tokenizer_from_json_string(std::string_view json,
                                                      const std::string& source_name = "<memory>",
                                                      const TokenizerJsonOptions& options = {});

// llama2.c tokenizer.bin holding `vocab_size` records. Encoding and decoding
// follow llama2.c (score-driven merges, dummy-prefix space, byte fallback at
// ids 3.., BOS=1, EOS=2). Throws Error naming the file and the problem.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);
std::unique_ptr<Tokenizer> llama2c_tokenizer_from_bytes(std::span<const uint8_t> bytes,
                                                        int32_t vocab_size,
                                                        const std::string& source_name = "<memory>");

// ---- GGUF embedded tokenizer (llama.cpp's tokenizer.ggml.* metadata) ----
class Metadata;  // formats.h

// The tokenizer a GGUF file carries. tokenizer.ggml.model "llama": SentencePiece
// tokens and scores, encoded as llama2.c does ("▁" read as a space, byte tokens
// <0x00>..<0xFF> required, at any ids: 3..258 in Llama 2, elsewhere in Gemma; a
// dummy-prefix space unless tokenizer.ggml.add_space_prefix is false, as in
// Gemma; special tokens are not matched in text); "gpt2": byte-level BPE with merges and
// the pre-tokenizer of tokenizer.ggml.pre, for the llama.cpp names whose split
// regex is one of PretokenizerPattern's (GPT-2: gpt-2, phi-2, mpt, olmo, jais, ...;
// Llama-3: llama-bpe, llama3, falcon3, pixtral, ..., and smaug-bpe / dbrx, which
// keep merging whole-word tokens; Qwen2: qwen2, stablelm2, megrez, hunyuan, ...;
// o200k: gpt-4o (gpt-oss), llama4),
// with llama.cpp's ignore_merges rule for the name;
// token_type 3 (control) and 4 (user-defined) become added tokens.
// BOS/EOS come from tokenizer.ggml.bos_token_id / eos_token_id (when missing:
// 1 / 2 for "llama", well-known names as in tokenizer.json for "gpt2"). Returns nullptr
// without tokenizer.ggml.model; for another model name the returned tokenizer
// knows its size but throws Error when used. Malformed metadata throws Error
// naming `source` and the key.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const Metadata& m, const std::string& source);

// Writes the tokenizer as GGUF metadata that tokenizer_from_gguf (and
// llama.cpp) read back to the same encoding, and returns true:
//  - a score-driven vocabulary (llama2.c, a GGUF "llama" one): model "llama",
//    tokens, scores, token_type, bos_token_id, eos_token_id;
//  - a byte-level BPE tokenizer.json (GPT-2 / Llama-3 / Qwen2 / o200k split): model
//    "gpt2", pre ("gpt-2"; "llama-bpe", or "smaug-bpe" when the tokenizer.json
//    does not set ignore_merges; "qwen2"; "gpt-4o" when it does not set
//    ignore_merges), tokens, token_type (1 normal,
//    3 special added, 4 other added), merges in rank order, bos/eos ids and
//    add_bos_token (true when the post-processor puts a BOS first).
// Writes nothing and returns false for anything GGUF cannot carry exactly: a
// tokenizer.json with a normalizer, add_prefix_space, lstrip/rstrip added tokens,
// a reachable unknown token, or a split + ignore_merges pair llama.cpp has no name
// for, and SentencePiece-style tokenizer.json BPE (Metaspace / byte fallback, as in
// Llama 2): llama.cpp stores those as "llama" with scores, and a score-driven
// encoder merges any pair whose concatenation is a token, where BPE merges only
// listed pairs, so no scores reproduce the merges in general.
// BOS/EOS ids already in `m` are kept. Throws Error when a tokenizer.json
// vocabulary leaves an id without a token.
bool write_gguf_tokenizer(const Tokenizer& tokenizer, Metadata& m);
// ---- end of GGUF embedded tokenizer ----

// Byte offset of the first byte of `text` that is not valid UTF-8 (overlong forms,
// surrogates and truncated sequences included), or -1 when all of it is valid.
int64_t first_invalid_utf8(std::string_view text);

// The word splitting of the supported tokenizer.json Split regexes
// (written as a scanner, without a regex engine):
//   Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//           (also recognised in tiktoken's cl100k_base spelling)
//   Qwen2:  as Llama3 with \p{N} (single digits) instead of \p{N}{1,3}
//   O200k:  (GPT-4o's o200k_base, gpt-oss's o200k_harmony)
//           [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//           [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//           \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//           ("CamelCase" splits into "Camel", "Case"; contractions stay on their word)
// The words cover the text exactly; invalid UTF-8 bytes count as punctuation.
// Letter classes follow the Unicode version of the generated tables
// (src/model/tokenizers/unicode_tables.cpp); the case-insensitive contractions
// match ASCII letters only.
enum class PretokenizerPattern { Gpt2, Llama3, Qwen2, O200k };
std::vector<std::string_view> pretokenize(std::string_view text, PretokenizerPattern pattern);

// ---- Texts that arrive in pieces ----
// Where the GPT-2 / Llama-3 / Qwen2 / o200k splits start a new word whatever
// the text around it: before a space that sits between two non-space bytes, or
// after a newline followed by a byte that is neither white space nor '/' (o200k's
// punctuation runs take the slashes after their line breaks). Returns the last
// such cut p with lo < p <= hi - 1 (so text[p] exists), or std::string_view::npos.
size_t last_word_cut(std::string_view text, size_t lo, size_t hi);

// Encodes an unbounded text in bounded memory. Bytes are buffered until about
// `chunk_bytes` are held; the buffer is then encoded up to a word cut where
// this tokenizer gives the same ids as for the whole text (checked at each
// cut by encoding the 256 bytes on each side together and apart; a cut where
// the next piece drops its space serves dummy-prefix tokenizers). The ids of
// the whole stream equal encode(text, false), which the tests check on real
// tokenizers. A text with no usable cut in 16 x chunk_bytes (e.g. one
// unbroken run of letters) is cut at a UTF-8 boundary, where ids may differ.
class ChunkedEncoder {
 public:
  explicit ChunkedEncoder(const Tokenizer& tokenizer, size_t chunk_bytes = size_t(1) << 20);
  // Takes more text; appends the ids of every chunk completed by it.
  void feed(std::string_view bytes, std::vector<int32_t>& ids);
  // Encodes what is left (the end of the text).
  void finish(std::vector<int32_t>& ids);
  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  bool encode_through_cut(std::vector<int32_t>& ids);
  const Tokenizer& tokenizer_;
  size_t chunk_bytes_;
  std::string buffer_;
};
// UTF-8 checking across the blocks of a stream: a character cut by one
// block's end is completed by the next.
class Utf8StreamCheck {
 public:
  // Stream offset of the first invalid byte seen so far, or -1.
  int64_t feed(std::string_view block);
  // The same at the end of the stream, where a cut character is invalid.
  int64_t finish();

 private:
  std::string carry_;   // the start of a character the next block may complete
  int64_t offset_ = 0;  // of carry_[0] in the stream
  int64_t bad_ = -1;
};

struct TextFileEncoding {
  int64_t max_tokens = 0;     // stop reading once this many ids are known (0 = the whole file)
  bool add_bos = false;
  bool require_utf8 = true;   // invalid UTF-8 is an Error naming its byte offset
  std::string what = "text";  // names the file in messages
};

struct EncodedTextFile {
  std::vector<int32_t> ids;   // at most max_tokens (BOS included)
  int64_t bytes_read = 0;
  bool blank = true;          // nothing but white space in what was read
};

// Reads `path` in 1 MiB blocks through a ChunkedEncoder: memory is the ids plus
// a few blocks, and with max_tokens only the blocks those ids need are read.
// The ids equal tokenizer.encode(whole text, add_bos) cut to max_tokens.
EncodedTextFile encode_text_file(const Tokenizer& tokenizer, const std::string& path,
                                 const TextFileEncoding& options = {});
// ---- end of texts that arrive in pieces ----

// ---- BPE training ----
struct BpeTrainOptions {
  int32_t vocab_size = 4096;                // specials + 256 byte symbols + merged tokens
  std::vector<std::string> special_tokens;  // ids 0.., matched literally in text, never merged
  PretokenizerPattern pattern = PretokenizerPattern::Gpt2;
  int64_t min_pair_count = 2;  // stop merging when the most frequent pair is rarer
};

// Trains byte-level BPE (GPT-2 style: 256 byte symbols + merges) on `text` and
// returns the tokenizer.json text (Hugging Face layout, loadable by
// tokenizer_from_json_string). The most frequent adjacent pair is merged
// first; ties go to the pair with the smaller (left id, right id). Throws
// Error for a vocab_size that cannot hold the specials and the 256 byte
// symbols, empty text and empty, duplicate or single-symbol special tokens.
std::string train_bpe_tokenizer_json(std::string_view text, const BpeTrainOptions& opts);
// The same, reading `path` in 1 MiB pieces cut at word cuts that no special
// token crosses: memory follows the distinct words, not the file size. The
// result equals train_bpe_tokenizer_json(whole file) (tested). Throws Error
// naming the file when it cannot be read.
std::string train_bpe_tokenizer_json_from_file(const std::string& path, const BpeTrainOptions& opts);
// ---- end of BPE training ----

}  // namespace sinklab
