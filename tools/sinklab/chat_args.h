// The chat flags of `sinklab generate` (--chat, --chat-format, --system,
// --reasoning, --show-channels) and the chat format and options they choose.
#pragma once

#include <CLI/CLI.hpp>
#include <ctime>
#include <string>

#include "sinklab/chat.h"
#include "sinklab/model.h"

namespace sinklab::cli {

struct ChatArgs {
  bool chat = false;
  std::string format;  // empty: from the model
  std::string system;
  std::string reasoning = "medium";
  bool show_channels = false;
  // Every flag but --chat implies it.
  bool enabled() const { return chat || !format.empty() || !system.empty() || show_channels || reasoning_given; }
  bool reasoning_given = false;
};

inline void add_chat_flags(CLI::App& sub, ChatArgs& a) {
  sub.add_flag("--chat", a.chat,
               "Chat with an instruction-tuned model: -p becomes one user turn of its chat format, generation "
               "stops at the format's end-of-reply token, and only the assistant's reply is printed");
  sub.add_option("--chat-format", a.format,
                 "harmony (gpt-oss), gemma, chatml, llama3 or plain; default: from the model's chat template, architecture and "
                 "tokenizer (implies --chat)")
      ->check(CLI::IsMember(ChatFormat::names()));
  sub.add_option("--system", a.system,
                 "Instructions for the model: harmony's developer message, chatml's and llama3's system turn, "
                 "the start of Gemma's user turn (implies --chat)");
  sub.add_option_function<std::string>(
         "--reasoning",
         [&a](const std::string& level) {
           a.reasoning = level;
           a.reasoning_given = true;
         },
         "harmony: reasoning effort low, medium or high (default medium; implies --chat)")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  sub.add_flag("--show-channels", a.show_channels,
               "harmony: print the analysis and commentary messages too, each headed by [channel] "
               "(implies --chat)");
}

// The format the flags name, else the model's; errors say how to choose one.
inline ChatFormat chat_format(const ChatArgs& a, const Model& model, const Tokenizer& tok) {
  if (!a.format.empty()) return ChatFormat::by_name(a.format, tok);
  try {
    return ChatFormat::for_model(model.config().arch, tok, model.config().chat_template);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (name one with --chat-format)");
  }
}

inline ChatOptions chat_options(const ChatArgs& a) {
  ChatOptions o;
  o.system = a.system;
  o.reasoning_effort = a.reasoning;
  char date[16] = "";
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  if (localtime_r(&now, &local)) std::strftime(date, sizeof date, "%Y-%m-%d", &local);
  o.current_date = date;
  return o;
}

}  // namespace sinklab::cli
