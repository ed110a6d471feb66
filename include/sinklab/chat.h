// Chat formats: how a conversation becomes the prompt of an instruction-tuned
// model, which tokens end the assistant's reply, and which part of the reply
// is the answer. Four formats:
//   harmony  gpt-oss: <|start|>{role}<|message|>{text}<|end|> ... <|start|>assistant;
//            a system message (identity, knowledge cutoff, date, "Reasoning:
//            {effort}", the valid channels), instructions as a developer
//            message; the reply is one or more messages on channels (analysis,
//            commentary, final) and ends with <|return|> or <|call|>
//   gemma    Gemma 2 / 3: <bos><start_of_turn>user\n{text}<end_of_turn>\n
//            <start_of_turn>model\n; instructions open the first user turn;
//            the reply ends with <end_of_turn>
//   chatml   Qwen and others: <|im_start|>{role}\n{text}<|im_end|>\n ...
//            <|im_start|>assistant\n; the reply ends with <|im_end|>
//   llama3   Llama 3: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>
//            \n\n{text}<|eot_id|> ...; the reply ends with <|eot_id|>
// The special tokens are looked up in the tokenizer once; the text of each
// turn is encoded with special-token spellings read as ordinary text, so a
// message cannot open or close turns. A ChatFormat refers to its tokenizer and
// a ChatReply to its format: each must outlive what refers to it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sinklab/tokenizer.h"

namespace sinklab {

struct ChatTurn {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct ChatOptions {
  // Instructions for the model (a "system prompt"): harmony's developer
  // message, chatml's and llama3's system turn, the start of Gemma's first
  // user turn. Empty: none.
  std::string system;
  // harmony's system message: "Reasoning: {effort}" (low, medium, high), the
  // knowledge cutoff, and "Current date: {date}" when the date is not empty.
  std::string reasoning_effort = "medium";
  std::string knowledge_cutoff = "2024-06";
  std::string current_date;
};

// One message of a reply: its channel (harmony: analysis, commentary, final;
// other formats: final) and its text.
struct ChatMessage {
  std::string channel;
  std::string content;
};

class ChatFormat {
 public:
  // "harmony", "gemma", "chatml", "llama3", "plain".
  static std::vector<std::string> names();
  // The format a Jinja chat template (tokenizer_config.json's chat_template,
  // GGUF tokenizer.chat_template) writes, from the special tokens it spells;
  // empty when it spells none of the known formats'.
  static std::string name_for_template(std::string_view chat_template);

  // The format called `name` on this tokenizer. Throws Error for an unknown
  // name, or naming the first special token of the format the tokenizer lacks.
  static ChatFormat by_name(const std::string& name, const Tokenizer& tokenizer);

  // The format a model speaks: from its chat template when that names one,
  // else from its architecture (ModelConfig::arch: gpt_oss -> harmony, gemma
  // -> gemma), else from the special tokens of its tokenizer. Throws Error when
  // none tells, or when the tokenizer lacks a special token the format needs.
  static ChatFormat for_model(const std::string& arch, const Tokenizer& tokenizer,
                              std::string_view chat_template = {});

  // for_model, else plain; `why` (when given) receives how the format was
  // chosen: "the chat template", "the architecture", "the tokenizer's special
  // tokens" or "no chat template".
  static ChatFormat for_model_or_plain(const std::string& arch, const Tokenizer& tokenizer,
                                       std::string_view chat_template, std::string* why = nullptr);

  const std::string& name() const { return name_; }

  // The prompt as text (special tokens spelled out): the turns, then the
  // opening of the assistant's reply. Throws Error for a role other than
  // "user" or "assistant".
  std::string render(std::span<const ChatTurn> turns, const ChatOptions& options = {}) const;
  // The same prompt as token ids (the BOS of formats that open with one included).
  std::vector<int32_t> encode(std::span<const ChatTurn> turns, const ChatOptions& options = {}) const;
  // What follows a reply the model generated into a cache that keeps the
  // conversation: the end of that reply's turn (without the end token when
  // reply_closed, i.e. the reply ended with a stop id that is already in the
  // cache), `turns`, then the opening of the next reply. No preamble: the
  // conversation already has it.
  std::vector<int32_t> encode_next(std::span<const ChatTurn> turns, bool reply_closed,
                                   const ChatOptions& options = {}) const;

  // Ids that end the reply (harmony: <|return|>, <|call|>; gemma: <end_of_turn>,
  // <eos>; chatml: <|im_end|>, <|endoftext|>; llama3: <|eot_id|>, <|eom_id|>,
  // <|end_of_text|>; those the tokenizer has).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  bool is_stop(int32_t id) const;
  // Texts that end the reply where the format has no end token (plain: "\nUser:").
  const std::vector<std::string>& stop_texts() const { return stop_texts_; }

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool channels() const { return kind_ == Kind::Harmony; }

 private:
  enum class Kind { Harmony, Gemma, ChatMl, Llama3, Plain };
  ChatFormat(Kind kind, const Tokenizer& tokenizer);
  int32_t require(const std::string& special) const;
  // The prompt as pieces: (true, special token text) or (false, text).
  std::vector<std::pair<bool, std::string>> pieces(std::span<const ChatTurn> turns, const ChatOptions& options,
                                                   bool preamble) const;
  std::vector<int32_t> encode_pieces(std::span<const std::pair<bool, std::string>> pieces) const;

  Kind kind_;
  std::string name_;
  const Tokenizer* tokenizer_;
  std::vector<int32_t> stop_ids_;
  std::vector<std::string> stop_texts_;
};

// Reads a reply as its tokens arrive: follows harmony's message headers
// (<|start|>assistant<|channel|>final<|message|>...), decodes the text of each
// message as complete UTF-8, and says what to show: the final channel's text,
// or with show_all_channels every message, each headed by "[channel] " and
// ended by a newline. Other formats have one message, on channel "final".
class ChatReply {
 public:
  ChatReply(const ChatFormat& format, bool show_all_channels = false);
  // Takes one generated id; returns the text it adds to what is shown.
  std::string push(int32_t id);
  // The text held back at the end (a character cut by the last token).
  std::string finish();
  // A stop id was pushed (later ids are ignored).
  bool stopped() const { return stopped_; }
  const std::vector<ChatMessage>& messages() const { return messages_; }

 private:
  std::string push_harmony(int32_t id);
  std::string end_message();
  bool shown(const std::string& channel) const { return show_all_ || channel == "final"; }

  const ChatFormat* format_;
  bool show_all_;
  bool harmony_;
  int32_t start_ = -1, end_ = -1, message_ = -1;  // harmony's message tokens
  enum class State { Header, Content, BetweenMessages } state_ = State::Header;
  std::string header_;  // harmony header text since <|start|> (or the reply's start)
  std::vector<ChatMessage> messages_;
  StreamDecoder decoder_;
  bool stopped_ = false;
};

}  // namespace sinklab
