// Encoding and decoding for tokenizer.json pipelines (see hf_tokenizer.h).
#include "hf_tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "bpe_merge.h"
#include "byte_level.h"
#include "unicode.h"

namespace sinklab::tok {
namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Builds prefix + text (std::string::insert(0, ...) trips a GCC 12 -Wrestrict
// false positive at -O3).
std::string prefixed(std::string_view prefix, std::string_view text) {
  std::string out;
  out.reserve(prefix.size() + text.size());
  out.append(prefix).append(text);
  return out;
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string byte_piece_name(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

}  // namespace

std::vector<std::string_view> split_on_literal(std::string_view text, std::string_view delimiter,
                                               HfPipeline::SplitBehavior behavior) {
  using B = HfPipeline::SplitBehavior;
  std::vector<std::string_view> pieces;
  const auto add = [&](size_t from, size_t to) {
    if (to > from) pieces.push_back(text.substr(from, to - from));
  };
  size_t piece_start = 0;  // start of the text not yet emitted
  size_t pos = 0;
  while (!delimiter.empty()) {
    const size_t hit = text.find(delimiter, pos);
    if (hit == std::string_view::npos) break;
    size_t end = hit + delimiter.size();
    if (behavior == B::Contiguous)  // a run of delimiters is one piece
      while (text.substr(end).starts_with(delimiter)) end += delimiter.size();
    switch (behavior) {
      case B::Removed: add(piece_start, hit); piece_start = end; break;
      case B::Isolated:
      case B::Contiguous: add(piece_start, hit); add(hit, end); piece_start = end; break;
      case B::MergedWithPrevious: add(piece_start, end); piece_start = end; break;
      case B::MergedWithNext: add(piece_start, hit); piece_start = hit; break;
    }
    pos = end;
  }
  add(piece_start, text.size());
  return pieces;
}

HfTokenizer::HfTokenizer(HfPipeline pipeline, int32_t bos_id, int32_t eos_id)
    : p_(std::move(pipeline)) {
  bos_id_ = bos_id;
  eos_id_ = eos_id;
  int32_t max_id = -1;
  for (const auto& [text, id] : p_.vocab) max_id = std::max(max_id, id);
  for (const auto& t : p_.added) max_id = std::max(max_id, t.id);
  id_to_token_.resize(size_t(max_id + 1));
  added_kind_.assign(size_t(max_id + 1), 0);
  for (const auto& [text, id] : p_.vocab) id_to_token_[size_t(id)] = text;
  for (size_t i = 0; i < p_.added.size(); ++i) {
    const auto& t = p_.added[i];
    id_to_token_[size_t(t.id)] = t.content;
    added_kind_[size_t(t.id)] = t.special ? 2 : 1;
    added_by_content_.emplace(t.content, t.id);
    if (!t.content.empty())
      added_by_first_byte_[uint8_t(t.content[0])].push_back(static_cast<int32_t>(i));
  }
  for (auto& bucket : added_by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return p_.added[size_t(a)].content.size() > p_.added[size_t(b)].content.size();
    });
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = p_.vocab.find(byte_piece_name(uint8_t(b)));
    byte_ids_[size_t(b)] = it == p_.vocab.end() ? -1 : it->second;
  }
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_bos) const {
  return encode_text(text, add_bos, /*match_special=*/true);
}

std::vector<int32_t> HfTokenizer::encode_ignoring_special(std::string_view text) const {
  return encode_text(text, false, /*match_special=*/false);
}

std::vector<int32_t> HfTokenizer::encode_text(std::string_view text, bool add_bos, bool match_special) const {
  std::vector<int32_t> ids;
  if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
  // Added tokens first: at each position the longest added token wins.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const HfAddedToken* match = nullptr;
    for (int32_t index : added_by_first_byte_[uint8_t(text[pos])]) {
      const auto& t = p_.added[size_t(index)];
      if (t.special && !match_special) continue;
      if (text.substr(pos).starts_with(t.content)) {
        match = &t;
        break;
      }
    }
    if (!match) {
      ++pos;
      continue;
    }
    size_t segment_end = pos;
    if (match->lstrip)
      while (segment_end > segment_start && is_ascii_space(text[segment_end - 1])) --segment_end;
    encode_segment(text.substr(segment_start, segment_end - segment_start), segment_start == 0,
                   ids);
    ids.push_back(match->id);
    pos += match->content.size();
    if (match->rstrip)
      while (pos < text.size() && is_ascii_space(text[pos])) ++pos;
    segment_start = pos;
  }
  encode_segment(text.substr(segment_start), segment_start == 0, ids);
  return ids;
}

void HfTokenizer::encode_segment(std::string_view text, bool at_text_start,
                                 std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  std::string s(text);
  for (const auto& step : p_.normalizer) {
    if (step.prepend) {
      if (!s.empty()) s = prefixed(step.to, s);
    } else {
      replace_all(s, step.from, step.to);
    }
  }
  if (s.empty()) return;
  if (p_.metaspace) {
    const std::string& r = p_.metaspace_replacement;
    replace_all(s, " ", r);
    const bool prepend = p_.metaspace_prepend == HfPipeline::Prepend::Always ||
                         (p_.metaspace_prepend == HfPipeline::Prepend::First && at_text_start);
    if (prepend && !s.starts_with(r)) s = prefixed(r, s);
    if (!p_.metaspace_split || r.empty()) {
      encode_word(s, ids);
      return;
    }
    // Each word starts at a replacement character.
    size_t start = 0;
    for (size_t hit = s.find(r, 1); hit != std::string::npos; hit = s.find(r, hit + r.size())) {
      if (hit > start) encode_word(std::string_view(s).substr(start, hit - start), ids);
      start = hit;
    }
    encode_word(std::string_view(s).substr(start), ids);
    return;
  }
  if (p_.byte_level && p_.byte_level_prefix_space && s[0] != ' ') s = prefixed(" ", s);
  encode_pieces(s, ids);
}

// The pre-tokenizer's split (regex or literal) and the ByteLevel mapping of each piece.
void HfTokenizer::encode_pieces(std::string_view s, std::vector<int32_t>& ids) const {
  const auto encode_piece = [&](std::string_view piece) {
    encode_word(p_.byte_level ? byte_level_encode(piece) : std::string(piece), ids);
  };
  if (p_.split) {
    for (std::string_view word : split_words(s, p_.split_rules)) encode_piece(word);
  } else if (!p_.split_delimiter.empty()) {
    for (std::string_view piece : split_on_literal(s, p_.split_delimiter, p_.split_behavior)) encode_piece(piece);
  } else {
    encode_piece(s);
  }
}

void HfTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (p_.ignore_merges) {
    const auto it = p_.vocab.find(std::string(word));
    if (it != p_.vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  bool last_was_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    uint32_t cp = 0;
    const size_t len = utf8_next(word, pos, cp);
    const std::string_view ch = word.substr(pos, len);
    pos += len;
    const auto it = p_.vocab.find(std::string(ch));
    if (it != p_.vocab.end()) {
      symbols.push_back(it->second);
      last_was_unk = false;
      continue;
    }
    if (p_.byte_fallback &&
        std::all_of(ch.begin(), ch.end(), [&](char b) { return byte_ids_[uint8_t(b)] >= 0; })) {
      for (char b : ch) symbols.push_back(byte_ids_[uint8_t(b)]);
      last_was_unk = false;
      continue;
    }
    if (p_.unk_id < 0) continue;  // no unknown token: the character is dropped
    if (!(p_.fuse_unk && last_was_unk)) symbols.push_back(p_.unk_id);
    last_was_unk = true;
  }
  merge_symbols(symbols, [&](int32_t a, int32_t b) {
    MergeCandidate c;
    const auto it = p_.merges.find(pair_key(a, b));
    if (it == p_.merges.end()) return c;
    c.ok = true;
    c.priority = it->second.first;
    c.merged_id = it->second.second;
    return c;
  });
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

void HfTokenizer::decode_append(int32_t id, bool skip_special, DecodeState& state,
                                std::string& out) const {
  check_id(id);
  const std::string& token = id_to_token_[size_t(id)];
  if (added_kind_[size_t(id)] != 0) {
    if (added_kind_[size_t(id)] == 2 && skip_special) return;
    out += token;
    state.at_start = false;
    return;
  }
  std::string piece;
  switch (p_.decoder) {
    case HfPipeline::Decoder::Plain:
      piece = token;
      break;
    case HfPipeline::Decoder::ByteLevel:
      if (!byte_level_decode(token, piece)) piece = token;
      break;
    case HfPipeline::Decoder::Pieces: {
      const auto* byte_it = p_.decoder_byte_fallback
                                ? std::find(byte_ids_.begin(), byte_ids_.end(), id)
                                : byte_ids_.end();
      if (byte_it != byte_ids_.end()) {
        piece = std::string(1, static_cast<char>(byte_it - byte_ids_.begin()));
      } else {
        piece = token;
        for (const auto& [from, to] : p_.decoder_replace) replace_all(piece, from, to);
      }
      break;
    }
  }
  if (piece.empty()) return;
  if (state.at_start) {
    // Strip (after Fuse) removes leading spaces of the whole decoded text.
    int n = 0;
    while (n < p_.decoder_strip_leading_spaces && size_t(n) < piece.size() && piece[size_t(n)] == ' ')
      ++n;
    piece.erase(0, size_t(n));
    state.at_start = false;
  }
  out += piece;
}

std::string HfTokenizer::token_text(int32_t id) const {
  check_id(id);
  return id_to_token_[size_t(id)];
}

int32_t HfTokenizer::special_token_id(std::string_view text) const {
  const auto it = added_by_content_.find(std::string(text));
  return it == added_by_content_.end() ? -1 : it->second;
}

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && added_kind_[size_t(id)] == 2;
}

}  // namespace sinklab::tok
