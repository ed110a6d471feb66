// Chat prompts (chat.h, ChatFormat): the turns as pieces of special tokens and
// text, rendered as text or encoded to ids, and the format a model speaks.
#include <algorithm>

#include "sinklab/chat.h"

namespace sinklab {

namespace {

constexpr const char* kHarmonyIdentity = "You are ChatGPT, a large language model trained by OpenAI.";
constexpr const char* kHarmonyChannels =
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.";

// The special tokens each format cannot do without, in the order they are checked.
const std::vector<std::string>& required_specials(const std::string& name) {
  static const std::vector<std::string> harmony = {"<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|return|>"};
  static const std::vector<std::string> gemma = {"<start_of_turn>", "<end_of_turn>"};
  static const std::vector<std::string> chatml = {"<|im_start|>", "<|im_end|>"};
  static const std::vector<std::string> llama3 = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  static const std::vector<std::string> plain = {};
  if (name == "plain") return plain;
  if (name == "harmony") return harmony;
  if (name == "gemma") return gemma;
  if (name == "chatml") return chatml;
  return llama3;
}

// The tokens that end a reply, used when the tokenizer has them.
std::vector<std::string> stop_specials(const std::string& name) {
  if (name == "plain") return {};
  if (name == "harmony") return {"<|return|>", "<|call|>"};
  if (name == "gemma") return {"<end_of_turn>", "<eos>"};
  if (name == "chatml") return {"<|im_end|>", "<|endoftext|>"};
  return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
}

bool has_all(const Tokenizer& tok, const std::vector<std::string>& specials) {
  return std::all_of(specials.begin(), specials.end(),
                     [&](const std::string& s) { return tok.special_token_id(s) >= 0; });
}

std::string trimmed(const std::string& s) {
  const char* space = " \t\n\r\f\v";
  const size_t first = s.find_first_not_of(space);
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// Special tokens and text in order; consecutive text is kept as one piece.
class Prompt {
 public:
  void special(const std::string& s) { pieces_.emplace_back(true, s); }
  void text(const std::string& s) {
    if (s.empty()) return;
    if (!pieces_.empty() && !pieces_.back().first) pieces_.back().second += s;
    else pieces_.emplace_back(false, s);
  }
  std::vector<std::pair<bool, std::string>> take() { return std::move(pieces_); }

 private:
  std::vector<std::pair<bool, std::string>> pieces_;
};

// The special token that opens Gemma and Llama 3 prompts: the tokenizer's BOS,
// else `fallback` when the tokenizer has it, else none.
void open_with_bos(Prompt& p, const Tokenizer& tok, const std::string& fallback) {
  if (tok.bos_id() >= 0) p.special(tok.token_text(tok.bos_id()));
  else if (tok.special_token_id(fallback) >= 0) p.special(fallback);
}

// Each format writes a conversation in three parts: the preamble (BOS,
// system message; only at the start of a conversation), the turns, and the
// opening of the assistant's reply. `close_reply` writes what ends a reply the
// model generated (the turn's end and what follows it), so that a conversation
// kept in a cache continues with the same pieces a whole prompt would hold.

void harmony_prompt(Prompt& p, std::span<const ChatTurn> turns, const ChatOptions& o, bool preamble) {
  const auto message = [&](const std::string& header, const std::string& body) {
    p.special("<|start|>");
    p.text(header);
    p.special("<|message|>");
    p.text(body);
    p.special("<|end|>");
  };
  if (preamble) {
    std::string system = kHarmonyIdentity;
    system += "\nKnowledge cutoff: " + o.knowledge_cutoff;
    if (!o.current_date.empty()) system += "\nCurrent date: " + o.current_date;
    system += "\n\nReasoning: " + o.reasoning_effort + "\n\n" + kHarmonyChannels;
    message("system", system);
    if (!o.system.empty()) message("developer", "# Instructions\n\n" + o.system);
  }
  for (const ChatTurn& t : turns) {
    if (t.role == "user") {
      message("user", t.content);
      continue;
    }
    // An earlier answer, as a final-channel message (its reasoning is not kept).
    p.special("<|start|>");
    p.text("assistant");
    p.special("<|channel|>");
    p.text("final");
    p.special("<|message|>");
    p.text(t.content);
    p.special("<|end|>");
  }
  p.special("<|start|>");
  p.text("assistant");
}

void gemma_prompt(Prompt& p, const Tokenizer& tok, std::span<const ChatTurn> turns, const ChatOptions& o,
                  bool preamble) {
  if (preamble) open_with_bos(p, tok, "<bos>");
  bool first_user = preamble;
  for (const ChatTurn& t : turns) {
    std::string content = trimmed(t.content);
    // Gemma has no system turn: instructions open the first user turn.
    if (t.role == "user" && first_user && !o.system.empty()) content = trimmed(o.system) + "\n\n" + content;
    if (t.role == "user") first_user = false;
    p.special("<start_of_turn>");
    p.text((t.role == "user" ? "user\n" : "model\n") + content);
    p.special("<end_of_turn>");
    p.text("\n");
  }
  p.special("<start_of_turn>");
  p.text("model\n");
}

void chatml_prompt(Prompt& p, std::span<const ChatTurn> turns, const ChatOptions& o, bool preamble) {
  const auto turn = [&](const std::string& role, const std::string& content) {
    p.special("<|im_start|>");
    p.text(role + "\n" + content);
    p.special("<|im_end|>");
    p.text("\n");
  };
  if (preamble && !o.system.empty()) turn("system", o.system);
  for (const ChatTurn& t : turns) turn(t.role, t.content);
  p.special("<|im_start|>");
  p.text("assistant\n");
}

void llama3_prompt(Prompt& p, const Tokenizer& tok, std::span<const ChatTurn> turns, const ChatOptions& o,
                   bool preamble) {
  if (preamble) open_with_bos(p, tok, "<|begin_of_text|>");
  const auto header = [&](const std::string& role) {
    p.special("<|start_header_id|>");
    p.text(role);
    p.special("<|end_header_id|>");
    p.text("\n\n");
  };
  const auto turn = [&](const std::string& role, const std::string& content) {
    header(role);
    p.text(trimmed(content));
    p.special("<|eot_id|>");
  };
  if (preamble && !o.system.empty()) turn("system", o.system);
  for (const ChatTurn& t : turns) turn(t.role, t.content);
  header("assistant");
}

// For models without a chat template: "User: ...\nAssistant: ...\n" lines,
// the reply opened by "Assistant:" and ended by a newline.
void plain_prompt(Prompt& p, const Tokenizer& tok, std::span<const ChatTurn> turns, const ChatOptions& o,
                  bool preamble) {
  if (preamble && tok.bos_id() >= 0) p.special(tok.token_text(tok.bos_id()));
  if (preamble && !o.system.empty()) p.text(trimmed(o.system) + "\n\n");
  for (const ChatTurn& t : turns) p.text((t.role == "user" ? "User: " : "Assistant: ") + trimmed(t.content) + "\n");
  p.text("Assistant:");
}

}  // namespace

std::vector<std::string> ChatFormat::names() { return {"harmony", "gemma", "chatml", "llama3", "plain"}; }

ChatFormat::ChatFormat(Kind kind, const Tokenizer& tokenizer) : kind_(kind), tokenizer_(&tokenizer) {
  name_ = names()[size_t(kind)];
  for (const std::string& special : required_specials(name_)) require(special);
  for (const std::string& special : stop_specials(name_))
    if (const int32_t id = tokenizer.special_token_id(special); id >= 0) stop_ids_.push_back(id);
  if (kind == Kind::Plain) {
    // A model without a template ends its reply with EOS, or by starting the next turn.
    if (tokenizer.eos_id() >= 0) stop_ids_.push_back(tokenizer.eos_id());
    stop_texts_ = {"\nUser:"};
  }
}

int32_t ChatFormat::require(const std::string& special) const {
  int32_t id = tokenizer_->special_token_id(special);
  // A BOS that is a vocabulary token rather than an added one.
  if (id < 0 && tokenizer_->bos_id() >= 0 && special == tokenizer_->token_text(tokenizer_->bos_id()))
    id = tokenizer_->bos_id();
  if (id < 0)
    throw Error("chat: the tokenizer has no " + special + " token, which the " + name_ + " chat format needs");
  return id;
}

ChatFormat ChatFormat::by_name(const std::string& name, const Tokenizer& tokenizer) {
  const std::vector<std::string> all = names();
  const auto it = std::find(all.begin(), all.end(), name);
  if (it == all.end())
    throw Error("chat: unknown chat format \"" + name + "\" (harmony, gemma, chatml, llama3 or plain)");
  return ChatFormat(Kind(it - all.begin()), tokenizer);
}

std::string ChatFormat::name_for_template(std::string_view chat_template) {
  // The marker each format's Jinja template cannot do without.
  const std::pair<const char*, const char*> markers[] = {{"<|channel|>", "harmony"},
                                                         {"<start_of_turn>", "gemma"},
                                                         {"<|im_start|>", "chatml"},
                                                         {"<|start_header_id|>", "llama3"}};
  for (const auto& [marker, name] : markers)
    if (chat_template.find(marker) != std::string_view::npos) return name;
  return {};
}

ChatFormat ChatFormat::for_model(const std::string& arch, const Tokenizer& tokenizer,
                                 std::string_view chat_template) {
  if (const std::string named = name_for_template(chat_template); !named.empty())
    return by_name(named, tokenizer);
  if (arch == "gpt_oss") return by_name("harmony", tokenizer);
  if (arch.starts_with("gemma")) return by_name("gemma", tokenizer);
  for (const std::string& name : names())
    if (name != "plain" && has_all(tokenizer, required_specials(name))) return by_name(name, tokenizer);
  throw Error("chat: no chat format is known for architecture '" + arch +
              "', and its tokenizer has the special tokens of none (harmony <|start|>, gemma "
              "<start_of_turn>, chatml <|im_start|>, llama3 <|start_header_id|>); the plain format "
              "(User:/Assistant: lines) needs no special tokens");
}

ChatFormat ChatFormat::for_model_or_plain(const std::string& arch, const Tokenizer& tokenizer,
                                         std::string_view chat_template, std::string* why) {
  std::string reason = "the tokenizer's special tokens";
  if (!name_for_template(chat_template).empty()) reason = "the chat template";
  else if (arch == "gpt_oss" || arch.starts_with("gemma")) reason = "the architecture";
  try {
    ChatFormat format = for_model(arch, tokenizer, chat_template);
    if (why) *why = reason;
    return format;
  } catch (const Error&) {
    if (why) *why = "no chat template";
    return by_name("plain", tokenizer);
  }
}

bool ChatFormat::is_stop(int32_t id) const {
  return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

std::vector<std::pair<bool, std::string>> ChatFormat::pieces(std::span<const ChatTurn> turns,
                                                             const ChatOptions& options, bool preamble) const {
  for (const ChatTurn& t : turns)
    if (t.role != "user" && t.role != "assistant")
      throw Error("chat: unknown role \"" + t.role + "\" (expected user or assistant)");
  Prompt p;
  switch (kind_) {
    case Kind::Harmony: harmony_prompt(p, turns, options, preamble); break;
    case Kind::Gemma: gemma_prompt(p, *tokenizer_, turns, options, preamble); break;
    case Kind::ChatMl: chatml_prompt(p, turns, options, preamble); break;
    case Kind::Llama3: llama3_prompt(p, *tokenizer_, turns, options, preamble); break;
    case Kind::Plain: plain_prompt(p, *tokenizer_, turns, options, preamble); break;
  }
  return p.take();
}

std::string ChatFormat::render(std::span<const ChatTurn> turns, const ChatOptions& options) const {
  std::string out;
  for (const auto& [special, text] : pieces(turns, options, true)) out += text;
  return out;
}

std::vector<int32_t> ChatFormat::encode_pieces(std::span<const std::pair<bool, std::string>> pieces) const {
  std::vector<int32_t> ids;
  for (const auto& [special, text] : pieces) {
    if (special) {
      ids.push_back(require(text));
      continue;
    }
    // The text between two special tokens is one piece, as in the whole prompt.
    const std::vector<int32_t> t = tokenizer_->encode_ignoring_special(text);
    ids.insert(ids.end(), t.begin(), t.end());
  }
  return ids;
}

std::vector<int32_t> ChatFormat::encode(std::span<const ChatTurn> turns, const ChatOptions& options) const {
  return encode_pieces(pieces(turns, options, true));
}

std::vector<int32_t> ChatFormat::encode_next(std::span<const ChatTurn> turns, bool reply_closed,
                                             const ChatOptions& options) const {
  std::vector<std::pair<bool, std::string>> close;
  switch (kind_) {
    case Kind::Harmony: close = {{true, "<|end|>"}}; break;
    case Kind::Gemma: close = {{true, "<end_of_turn>"}, {false, "\n"}}; break;
    case Kind::ChatMl: close = {{true, "<|im_end|>"}, {false, "\n"}}; break;
    case Kind::Llama3: close = {{true, "<|eot_id|>"}}; break;
    case Kind::Plain: close = {{false, "\n"}}; break;
  }
  // A reply closed by a stop id already holds the turn's end token.
  if (reply_closed && close.front().first) close.erase(close.begin());
  std::vector<std::pair<bool, std::string>> all = std::move(close);
  for (auto& piece : pieces(turns, options, false)) {
    if (!piece.first && !all.empty() && !all.back().first) all.back().second += piece.second;
    else all.push_back(std::move(piece));
  }
  return encode_pieces(all);
}

}  // namespace sinklab
