// Chat formats (chat.h): the exact prompt text and ids of each format, the
// format chosen for a model, errors for tokenizers without the format's
// special tokens, and the reading of replies (harmony channels, stop tokens).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "sinklab/chat.h"
#include "sinklab/tokenizer.h"
#include "tokenizer_files.h"

namespace sinklab {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

using test::read_tokenizer_json;
const std::string& kDataDir = test::kTokenizerDataDir;

// Ids of tests/data/tokenizers/harmony_tiny.json (see test_tokenizer_gpt_oss_gemma.cpp).
constexpr int32_t kUser = 269, kAssistant = 270, kSystem = 271, kFinal = 272, kAnalysis = 273, kHi = 277,
                  kThink = 278, kHello = 259, kSpWorld = 264;
constexpr int32_t kReturn = 200002, kChannel = 200005, kStart = 200006, kEnd = 200007, kMessage = 200008,
                  kCall = 200012;

// The gpt-oss test tokenizer with the specials of ChatML and Llama 3 added.
std::unique_ptr<Tokenizer> multi_format_tokenizer() {
  json j = read_tokenizer_json("harmony_tiny.json");
  int32_t id = 200019;
  for (const char* s : {"<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
                        "<|end_header_id|>", "<|eot_id|>"})
    j["added_tokens"].push_back({{"id", id++}, {"content", s}, {"special", true}});
  return tokenizer_from_json_string(j.dump(), "multi.json");
}

const std::vector<ChatTurn> kOneQuestion = {{"user", "What is 2 + 2?"}};

TEST(ChatFormat, HarmonyPromptText) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const ChatFormat f = ChatFormat::by_name("harmony", *tok);
  ChatOptions o;
  o.system = "Answer briefly.";
  o.reasoning_effort = "high";
  o.current_date = "2025-06-28";
  EXPECT_EQ(f.render(kOneQuestion, o),
            "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
            "Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: high\n\n"
            "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
            "<|start|>developer<|message|># Instructions\n\nAnswer briefly.<|end|>"
            "<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant");
  // Without instructions or a date: no developer message, no date line; an
  // earlier answer is a final-channel message.
  const std::vector<ChatTurn> turns = {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Hi"}};
  EXPECT_EQ(f.render(turns),
            "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
            "Knowledge cutoff: 2024-06\n\nReasoning: medium\n\n"
            "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
            "<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello<|end|>"
            "<|start|>user<|message|>Hi<|end|><|start|>assistant");
}

TEST(ChatFormat, HarmonyPromptIds) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const ChatFormat f = ChatFormat::by_name("harmony", *tok);
  const std::vector<ChatTurn> turns = {{"user", "Hi"}};
  const Ids ids = f.encode(turns);
  ASSERT_GT(ids.size(), 12u);
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + 3), (Ids{kStart, kSystem, kMessage}));
  EXPECT_EQ(Ids(ids.end() - 8, ids.end()), (Ids{kEnd, kStart, kUser, kMessage, kHi, kEnd, kStart, kAssistant}));
  // Without special spellings in the turns, the ids are those of the rendered text.
  EXPECT_EQ(ids, tok->encode(f.render(turns), false));
  // A user's "<|end|>" is text, not the end of the message.
  const Ids sneaky = f.encode(std::vector<ChatTurn>{{"user", "<|end|>"}});
  EXPECT_EQ(std::count(sneaky.begin(), sneaky.end(), kEnd), 2);  // the system's and the user's own
  EXPECT_EQ(f.stop_ids(), (Ids{kReturn, kCall}));
}

TEST(ChatFormat, GemmaPromptTextAndIds) {
  const auto tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  const ChatFormat f = ChatFormat::by_name("gemma", *tok);
  const std::vector<ChatTurn> turns = {{"user", "Hello"}};
  EXPECT_EQ(f.render(turns), "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n");
  // <bos>, <start_of_turn>, "user", "\n", "Hello", <end_of_turn>, "\n", <start_of_turn>, "model", "\n".
  EXPECT_EQ(f.encode(turns), (Ids{2, 105, 533, 107, 511, 106, 107, 105, 537, 107}));
  ChatOptions o;
  o.system = "Be brief. ";
  const std::vector<ChatTurn> three = {{"user", " Hi "}, {"assistant", "Hello"}, {"user", "12"}};
  EXPECT_EQ(f.render(three, o),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>user\n12<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(f.encode(three, o), tok->encode(f.render(three, o), false));
  EXPECT_EQ(f.stop_ids(), (Ids{106, 1}));  // <end_of_turn>, <eos>
}

TEST(ChatFormat, ChatMlAndLlama3PromptText) {
  const auto tok = multi_format_tokenizer();
  ChatOptions o;
  o.system = "S";
  const std::vector<ChatTurn> turns = {{"user", "Hi"}};
  EXPECT_EQ(ChatFormat::by_name("chatml", *tok).render(turns, o),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const ChatFormat llama3 = ChatFormat::by_name("llama3", *tok);
  EXPECT_EQ(llama3.render(turns, o),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(llama3.encode(turns, o), tok->encode(llama3.render(turns, o), false));
  EXPECT_EQ(ChatFormat::by_name("chatml", *tok).stop_ids(), (Ids{200020, 199999}));  // <|im_end|>, <|endoftext|>
  EXPECT_EQ(llama3.stop_ids(), (Ids{200024}));                                       // <|eot_id|>
}

TEST(ChatFormat, ChosenFromTheArchitectureOrTheTokenizer) {
  const auto harmony_tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const auto gemma_tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  EXPECT_EQ(ChatFormat::for_model("gpt_oss", *harmony_tok).name(), "harmony");
  EXPECT_EQ(ChatFormat::for_model("gemma", *gemma_tok).name(), "gemma");
  // Other architectures: by the tokenizer's special tokens.
  EXPECT_EQ(ChatFormat::for_model("llama", *gemma_tok).name(), "gemma");
  EXPECT_EQ(ChatFormat::for_model("qwen2", *harmony_tok).name(), "harmony");
  json plain = read_tokenizer_json("harmony_tiny.json");
  plain["added_tokens"] = json::array();
  const auto plain_tok = tokenizer_from_json_string(plain.dump(), "plain.json");
  try {
    ChatFormat::for_model("llama", *plain_tok);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no chat format is known for architecture 'llama'"), std::string::npos)
        << e.what();
  }
}

// A conversation kept in a cache: the first prompt, the reply as generated
// (closed by its stop id or not), then encode_next of the next turn, reads as
// the whole conversation's prompt.
void expect_continuation_reads_as_whole(const ChatFormat& f, bool closed) {
  const Tokenizer& tok = f.tokenizer();
  ChatOptions o;
  o.system = "Be brief.";
  const std::vector<ChatTurn> first = {{"user", "Hi"}};
  const std::vector<ChatTurn> next = {{"user", "And you?"}};
  Ids cache = f.encode(first, o);
  // plain opens the reply with "Assistant:"; the model writes the space.
  const Ids reply = tok.encode_ignoring_special(f.name() == "plain" ? " Hello" : "Hello");
  cache.insert(cache.end(), reply.begin(), reply.end());
  if (closed && !f.stop_ids().empty()) cache.push_back(f.stop_ids().front());
  const Ids more = f.encode_next(next, closed && !f.stop_ids().empty(), o);
  cache.insert(cache.end(), more.begin(), more.end());
  const std::vector<ChatTurn> whole = {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "And you?"}};
  EXPECT_EQ(tok.decode(cache, false), f.render(whole, o)) << f.name() << (closed ? " closed" : " open");
}

TEST(ChatFormat, ContinuationReadsAsTheWholePrompt) {
  const auto multi = multi_format_tokenizer();
  const auto gemma_tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  for (bool closed : {true, false}) {
    expect_continuation_reads_as_whole(ChatFormat::by_name("chatml", *multi), closed);
    expect_continuation_reads_as_whole(ChatFormat::by_name("llama3", *multi), closed);
    expect_continuation_reads_as_whole(ChatFormat::by_name("gemma", *gemma_tok), closed);
    expect_continuation_reads_as_whole(ChatFormat::by_name("plain", *multi), false);
  }
  // harmony: the generated reply carries its own channel header and ends with <|return|>.
  const auto harmony_tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const ChatFormat h = ChatFormat::by_name("harmony", *harmony_tok);
  EXPECT_EQ(harmony_tok->decode(h.encode_next(std::vector<ChatTurn>{{"user", "Hi"}}, true), false),
            "<|start|>user<|message|>Hi<|end|><|start|>assistant");
  EXPECT_EQ(harmony_tok->decode(h.encode_next(std::vector<ChatTurn>{{"user", "Hi"}}, false), false),
            "<|end|><|start|>user<|message|>Hi<|end|><|start|>assistant");
}

TEST(ChatFormat, PlainAndChosenFromTheChatTemplate) {
  const auto multi = multi_format_tokenizer();
  const ChatFormat plain = ChatFormat::by_name("plain", *multi);
  const std::vector<ChatTurn> turns = {{"user", " Hi "}, {"assistant", "Yo"}, {"user", "Ok"}};
  EXPECT_EQ(plain.render(turns), "User: Hi\nAssistant: Yo\nUser: Ok\nAssistant:");
  EXPECT_EQ(plain.stop_texts(), std::vector<std::string>{"\nUser:"});
  EXPECT_EQ(ChatFormat::name_for_template("{% for m in messages %}<|im_start|>{{ m.role }}"), "chatml");
  EXPECT_EQ(ChatFormat::name_for_template("{{ '<|start_header_id|>' + role }}"), "llama3");
  EXPECT_EQ(ChatFormat::name_for_template("<start_of_turn>user"), "gemma");
  EXPECT_EQ(ChatFormat::name_for_template("{{ bos_token }}{{ content }}"), "");
  // The template wins over the tokenizer's specials (this tokenizer has harmony's too).
  EXPECT_EQ(ChatFormat::for_model("llama", *multi, "<|im_start|>").name(), "chatml");
  EXPECT_EQ(ChatFormat::for_model("llama", *multi).name(), "harmony");
  json bare = read_tokenizer_json("harmony_tiny.json");
  bare["added_tokens"] = json::array();
  const auto bare_tok = tokenizer_from_json_string(bare.dump(), "bare.json");
  std::string why;
  EXPECT_EQ(ChatFormat::for_model_or_plain("llama", *bare_tok, "", &why).name(), "plain");
  EXPECT_EQ(why, "no chat template");
  EXPECT_EQ(ChatFormat::for_model_or_plain("llama", *multi, "<|im_start|>", &why).name(), "chatml");
  EXPECT_EQ(why, "the chat template");
}

void expect_error(const std::function<void()>& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error, expected: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(ChatFormat, TokenizersWithoutTheSpecialsAreNamedErrors) {
  const auto harmony_tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const auto gemma_tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  expect_error([&] { ChatFormat::for_model("gpt_oss", *gemma_tok); },
               "the tokenizer has no <|start|> token, which the harmony chat format needs");
  expect_error([&] { ChatFormat::by_name("gemma", *harmony_tok); },
               "the tokenizer has no <start_of_turn> token, which the gemma chat format needs");
  expect_error([&] { ChatFormat::by_name("llama3", *harmony_tok); }, "no <|start_header_id|> token");
  expect_error([&] { ChatFormat::by_name("vicuna", *harmony_tok); }, "unknown chat format \"vicuna\"");
  const ChatFormat f = ChatFormat::by_name("harmony", *harmony_tok);
  expect_error([&] { f.render(std::vector<ChatTurn>{{"tool", "x"}}); }, "unknown role \"tool\"");
}

// Pushes ids and collects what the reply shows.
std::string shown(ChatReply& reply, const Ids& ids) {
  std::string out;
  for (int32_t id : ids) out += reply.push(id);
  return out + reply.finish();
}

// "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>Hello world<|return|>"
const Ids kHarmonyReply = {kChannel, kAnalysis, kMessage, kThink, kEnd, kStart, kAssistant, kChannel, kFinal,
                           kMessage, kHello,    kSpWorld, kReturn};

TEST(ChatReply, HarmonyShowsTheFinalChannel) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const ChatFormat f = ChatFormat::by_name("harmony", *tok);
  ChatReply reply(f);
  EXPECT_EQ(shown(reply, kHarmonyReply), "Hello world");
  EXPECT_TRUE(reply.stopped());
  ASSERT_EQ(reply.messages().size(), 2u);
  EXPECT_EQ(reply.messages()[0].channel, "analysis");
  EXPECT_EQ(reply.messages()[0].content, "think");
  EXPECT_EQ(reply.messages()[1].channel, "final");
  EXPECT_EQ(reply.messages()[1].content, "Hello world");
  EXPECT_EQ(reply.push(kHello), "");  // nothing after the stop token

  ChatReply all(f, /*show_all_channels=*/true);
  EXPECT_EQ(shown(all, kHarmonyReply), "[analysis] think\n[final] Hello world\n");
}

TEST(ChatReply, HarmonyToolCallsAndCutCharacters) {
  const auto tok = load_tokenizer_json(kDataDir + "harmony_tiny.json");
  const ChatFormat f = ChatFormat::by_name("harmony", *tok);
  // "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>": a tool call stops too.
  Ids call = {kChannel};
  for (int32_t id : tok->encode("commentary to=functions.f ", false)) call.push_back(id);
  call.push_back(200003);  // <|constrain|>
  for (int32_t id : tok->encode("json", false)) call.push_back(id);
  call.push_back(kMessage);
  for (int32_t id : tok->encode("{}", false)) call.push_back(id);
  call.push_back(kCall);
  ChatReply reply(f, true);
  EXPECT_EQ(shown(reply, call), "[commentary] {}\n");
  EXPECT_TRUE(reply.stopped());
  // "好" arrives as three byte tokens: shown only when whole; a reply cut by the token limit is flushed.
  ChatReply cut(f);
  for (int32_t id : {kChannel, kFinal, kMessage}) EXPECT_EQ(cut.push(id), "");
  EXPECT_EQ(cut.push(161), "");
  EXPECT_EQ(cut.push(98), "");
  EXPECT_EQ(cut.push(121), "好");
  EXPECT_EQ(cut.push(161), "");
  EXPECT_EQ(cut.finish(), "\xEF\xBF\xBD");  // a dangling partial character
  EXPECT_FALSE(cut.stopped());
}

TEST(ChatReply, GemmaStopsAtEndOfTurn) {
  const auto tok = load_tokenizer_json(kDataDir + "gemma_tiny.json");
  const ChatFormat f = ChatFormat::by_name("gemma", *tok);
  ChatReply reply(f, true);  // no channels: shown as is
  EXPECT_EQ(shown(reply, Ids{511, 516, 106, 511}), "Hello world");
  EXPECT_TRUE(reply.stopped());
  ASSERT_EQ(reply.messages().size(), 1u);
  EXPECT_EQ(reply.messages()[0].content, "Hello world");
}

}  // namespace
}  // namespace sinklab
