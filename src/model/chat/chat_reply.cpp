// Reading a reply as it is generated (chat.h, ChatReply): harmony's message
// headers and channels, and the text of each message as complete UTF-8.
#include "sinklab/chat.h"

namespace sinklab {

namespace {

// The channel named in a harmony header ("assistant<|channel|>final to=x<|constrain|>json"):
// the word after <|channel|>; "final" when the header names none.
std::string header_channel(const std::string& header) {
  const std::string mark = "<|channel|>";
  const size_t at = header.find(mark);
  if (at == std::string::npos) return "final";
  const size_t start = at + mark.size();
  const size_t end = header.find_first_of(" <", start);
  const std::string channel = header.substr(start, end == std::string::npos ? std::string::npos : end - start);
  return channel.empty() ? "final" : channel;
}

}  // namespace

ChatReply::ChatReply(const ChatFormat& format, bool show_all_channels)
    : format_(&format),
      show_all_(show_all_channels),
      harmony_(format.channels()),
      decoder_(format.tokenizer(), /*skip_special=*/true) {
  const Tokenizer& tok = format.tokenizer();
  if (harmony_) {
    start_ = tok.special_token_id("<|start|>");
    end_ = tok.special_token_id("<|end|>");
    message_ = tok.special_token_id("<|message|>");
  } else {
    // One message: the reply's text from its first token.
    messages_.push_back({"final", ""});
    state_ = State::Content;
  }
}

std::string ChatReply::push(int32_t id) {
  if (stopped_) return {};
  if (format_->is_stop(id)) {
    stopped_ = true;
    return state_ == State::Content ? end_message() : std::string();
  }
  if (harmony_) return push_harmony(id);
  const std::string piece = decoder_.push(id);
  messages_.back().content += piece;
  return piece;
}

std::string ChatReply::push_harmony(int32_t id) {
  switch (state_) {
    case State::BetweenMessages:
      if (id == start_) {
        header_.clear();
        state_ = State::Header;
      }
      return {};  // anything else between messages is not part of one
    case State::Header: {
      if (id != message_) {
        header_ += format_->tokenizer().decode(std::span<const int32_t>(&id, 1), /*skip_special=*/false);
        return {};
      }
      const std::string channel = header_channel(header_);
      messages_.push_back({channel, ""});
      decoder_.reset();
      state_ = State::Content;
      return show_all_ ? "[" + channel + "] " : std::string();
    }
    case State::Content:
      break;
  }
  if (id == end_ || id == start_) {
    std::string out = end_message();
    header_.clear();
    state_ = id == start_ ? State::Header : State::BetweenMessages;
    return out;
  }
  const std::string piece = decoder_.push(id);
  messages_.back().content += piece;
  return shown(messages_.back().channel) ? piece : std::string();
}

// Flushes the current message's text and closes it.
std::string ChatReply::end_message() {
  std::string rest = decoder_.flush();
  messages_.back().content += rest;
  state_ = State::BetweenMessages;
  if (!shown(messages_.back().channel)) return {};
  if (show_all_ && harmony_) rest += "\n";
  return rest;
}

std::string ChatReply::finish() {
  if (stopped_ || state_ != State::Content) return {};
  return end_message();
}

}  // namespace sinklab
