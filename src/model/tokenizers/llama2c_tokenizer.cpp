// llama2.c tokenizer.bin: int32 max_token_length, then per token
// {float32 score, int32 length, bytes}. Encoding and decoding follow
// llama2.c's run.c (encode / decode) exactly, with a heap for the merges; the
// same encoder serves other layouts of such vocabularies (score_bpe.h).
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "bpe_merge.h"
#include "score_bpe.h"
#include "sinklab/tokenizer.h"

namespace sinklab {
namespace {

constexpr int32_t kUnk = 0, kBos = 1, kEos = 2, kFirstByte = 3;
constexpr int32_t kMaxVocab = 1 << 24;

// Parses "<0xXX>" (the form sscanf("<0x%02hhX>") accepts for vocab pieces).
bool parse_byte_piece(const std::string& piece, uint8_t& byte) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return false;
  unsigned value = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = piece[size_t(k)];
    value <<= 4;
    if (c >= '0' && c <= '9') value |= unsigned(c - '0');
    else if (c >= 'A' && c <= 'F') value |= unsigned(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') value |= unsigned(c - 'a' + 10);
    else return false;
  }
  byte = static_cast<uint8_t>(value);
  return true;
}

class Llama2cTokenizer final : public Tokenizer {
 public:
  Llama2cTokenizer(std::span<const uint8_t> bytes, int32_t vocab_size, const std::string& name) {
    const auto fail = [&](const std::string& what) -> void {
      throw Error("llama2.c tokenizer '" + name + "': " + what);
    };
    if (vocab_size <= 0 || vocab_size > kMaxVocab)
      fail("vocab size " + std::to_string(vocab_size) + " must be in [1, " +
           std::to_string(kMaxVocab) + "]");
    size_t pos = 0;
    const auto read_i32 = [&](const char* what) {
      if (bytes.size() - pos < 4) fail(std::string("file ends while reading ") + what);
      int32_t v;
      std::memcpy(&v, bytes.data() + pos, 4);
      pos += 4;
      return v;
    };
    if (read_i32("max_token_length") < 0) fail("negative max_token_length");
    pieces_.resize(size_t(vocab_size));
    scores_.resize(size_t(vocab_size));
    for (int32_t id = 0; id < vocab_size; ++id) {
      const std::string which = "token " + std::to_string(id);
      const int32_t score_bits = read_i32((which + " score").c_str());
      std::memcpy(&scores_[size_t(id)], &score_bits, 4);
      const int32_t len = read_i32((which + " length").c_str());
      if (len < 0) fail(which + " has negative length " + std::to_string(len));
      if (size_t(len) > bytes.size() - pos)
        fail(which + " length " + std::to_string(len) + " runs past the end of the file (" +
             std::to_string(bytes.size()) + " bytes)");
      pieces_[size_t(id)].assign(reinterpret_cast<const char*>(bytes.data() + pos), size_t(len));
      pos += size_t(len);
      lookup_.emplace(pieces_[size_t(id)], id);  // first id wins for duplicates
    }
    // Byte b is token 3 + b (llama2.c does not check the vocabulary; here an
    // id past the vocabulary falls back to <unk>).
    tok::ScoreBpeLayout layout;
    for (int b = 0; b < 256; ++b) layout.byte_ids[size_t(b)] = kFirstByte + b < vocab_size ? kFirstByte + b : kUnk;
    layout.n_specials = kEos + 1;
    layout.bos_id = vocab_size > kBos ? kBos : -1;
    layout.eos_id = vocab_size > kEos ? kEos : -1;
    set_layout(layout);
  }

  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores, const tok::ScoreBpeLayout& layout)
      : pieces_(std::move(pieces)), scores_(std::move(scores)) {
    for (size_t id = 0; id < pieces_.size(); ++id) lookup_.emplace(pieces_[id], int32_t(id));
    set_layout(layout);
  }

  void set_layout(const tok::ScoreBpeLayout& layout) {
    layout_ = layout;
    bos_id_ = layout.bos_id;
    eos_id_ = layout.eos_id;
    const auto space = lookup_.find(" ");
    dummy_prefix_ = !layout.dummy_prefix || space == lookup_.end() ? -1 : space->second;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 2);
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    if (!text.empty() && dummy_prefix_ >= 0) ids.push_back(dummy_prefix_);
    // One unit is a byte plus up to three following continuation bytes,
    // exactly as llama2.c groups them (so invalid UTF-8 is grouped the same).
    for (size_t pos = 0; pos < text.size();) {
      size_t len = 1;
      while (len < 4 && pos + len < text.size() && (uint8_t(text[pos + len]) & 0xC0) == 0x80) ++len;
      const auto it = lookup_.find(std::string(text.substr(pos, len)));
      if (it != lookup_.end()) {
        ids.push_back(it->second);
      } else {
        for (size_t k = 0; k < len; ++k) ids.push_back(byte_id(uint8_t(text[pos + k])));
      }
      pos += len;
    }
    std::string pair;
    tok::merge_symbols(ids, [&](int32_t a, int32_t b) {
      tok::MergeCandidate c;
      if (a < 0 || b < 0) return c;
      pair.assign(pieces_[size_t(a)]).append(pieces_[size_t(b)]);
      const auto it = lookup_.find(pair);
      // llama2.c starts from best_score = -1e10 and needs a strictly better score.
      if (it == lookup_.end() || !(scores_[size_t(it->second)] > -1e10f)) return c;
      c.ok = true;
      c.priority = -double(scores_[size_t(it->second)]);
      c.merged_id = it->second;
      return c;
    });
    return ids;
  }

  void decode_append(int32_t id, bool skip_special, DecodeState& state,
                     std::string& out) const override {
    check_id(id);
    if (is_special(id)) {
      if (!skip_special) out += pieces_[size_t(id)];
      state.at_start = id == bos_id_;
      return;
    }
    std::string_view piece = pieces_[size_t(id)];
    // After BOS (and at the start of a sequence) the dummy-prefix space goes.
    if (state.at_start && layout_.dummy_prefix && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    state.at_start = false;
    uint8_t byte = 0;
    if (parse_byte_piece(std::string(piece), byte)) {
      out += static_cast<char>(byte);
    } else {
      out += piece;
    }
  }

  std::string token_text(int32_t id) const override {
    check_id(id);
    return pieces_[size_t(id)];
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }

  int32_t special_token_id(std::string_view text) const override {
    if (layout_.n_specials == 0) return -1;
    if (text == "<unk>") return kUnk;
    if (text == "<s>") return bos_id_;
    if (text == "</s>") return eos_id_;
    return -1;
  }
  bool is_special(int32_t id) const override {
    return id >= 0 && id < layout_.n_specials && id < vocab_size();
  }
  std::span<const float> piece_scores() const override { return scores_; }

 private:
  int32_t byte_id(uint8_t b) const { return layout_.byte_ids[b]; }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> lookup_;
  tok::ScoreBpeLayout layout_;
  int32_t dummy_prefix_ = -1;
};

}  // namespace

std::unique_ptr<Tokenizer> llama2c_tokenizer_from_bytes(std::span<const uint8_t> bytes,
                                                        int32_t vocab_size,
                                                        const std::string& source_name) {
  return std::make_unique<Llama2cTokenizer>(bytes, vocab_size, source_name);
}

namespace tok {

std::unique_ptr<Tokenizer> score_bpe_tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                                               const ScoreBpeLayout& layout) {
  return std::make_unique<Llama2cTokenizer>(std::move(pieces), std::move(scores), layout);
}

}  // namespace tok

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size) {
  const MappedFile file(path);
  return llama2c_tokenizer_from_bytes(std::span<const uint8_t>(file.data(), file.size()),
                                      vocab_size, path);
}

}  // namespace sinklab
