// Request validation of `sinklab serve`: every field checked, errors name it.
#include <gtest/gtest.h>

#include "../../../src/serve/serve_internal.h"

namespace sinklab::serve {
namespace {

using json = nlohmann::json;

ApiError error_of(const json& body, Endpoint e) {
  try {
    parse_request(body, e);
  } catch (const ApiError& err) {
    return err;
  }
  ADD_FAILURE() << "no error for " << body.dump();
  return ApiError(0, "");
}

TEST(ServeRequest, ReadsEveryCompletionField) {
  const ApiRequest r = parse_request(json::parse(R"({"model": "m", "prompt": ["hello"], "max_tokens": 7,
      "temperature": 0.5, "top_p": 0.9, "seed": 42, "stop": "\n", "stream": true,
      "stream_options": {"include_usage": true}, "conversation_id": "conv-1", "return_tokens": true,
      "n": 1, "frequency_penalty": 0, "logprobs": null})"),
                                     Endpoint::Completions);
  EXPECT_EQ(r.prompt, "hello");
  EXPECT_FALSE(r.prompt_is_ids);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.seed, 42);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream && r.include_usage && r.return_tokens);
  EXPECT_EQ(r.conversation_id, "conv-1");
}

TEST(ServeRequest, TokenIdPrompts) {
  const ApiRequest r = parse_request(json::parse(R"({"prompt": [1, 2, 3]})"), Endpoint::Completions);
  EXPECT_TRUE(r.prompt_is_ids);
  EXPECT_EQ(r.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(error_of(json::parse(R"({"prompt": [1, 2.5]})"), Endpoint::Completions).param, "prompt");
  EXPECT_EQ(error_of(json::parse(R"({"prompt": ["a", "b"]})"), Endpoint::Completions).param, "prompt");
}

TEST(ServeRequest, ChatMessages) {
  const ApiRequest r = parse_request(json::parse(R"({"messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": "yes"}, {"role": "user", "content": "more"}]})"),
                                     Endpoint::ChatCompletions);
  EXPECT_EQ(r.system, "be brief");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].content, "hi there");
  EXPECT_EQ(r.messages[1].role, "assistant");
}

TEST(ServeRequest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt": "x", "max_tokens": -1})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "top_p": 0})", "top_p"},
      {R"({"prompt": "x", "stop": [""]})", "stop"},
      {R"({"prompt": "x", "stop": 3})", "stop"},
      {R"({"prompt": "x", "n": 3})", "n"},
      {R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty"},
      {R"({"prompt": "x", "stream_options": 1})", "stream_options"},
      {R"({"prompt": "x", "conversation_id": ""})", "conversation_id"},
      {R"({"prompt": "x", "echo": true})", "echo"},
      {R"({"prompt": {"a": 1}})", "prompt"},
  };
  for (const auto& [body, param] : cases) {
    const ApiError e = error_of(json::parse(body), Endpoint::Completions);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body;
    EXPECT_EQ(e.body()["error"]["param"], param);
    EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
  }
  EXPECT_EQ(error_of(json::parse(R"({"messages": []})"), Endpoint::ChatCompletions).param, "messages");
  EXPECT_EQ(error_of(json::parse(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
                     Endpoint::ChatCompletions)
                .param,
            "messages[0].content");
}

TEST(ServeRequest, BodiesThatAreNotObjects) {
  const std::vector<std::string> texts = {"", "{", "[1]", "\"x\"", std::string(1000, '[') + std::string(1000, ']')};
  for (const std::string& text : texts) {
    try {
      parse_body(text);
      ADD_FAILURE() << text.substr(0, 20);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
}

TEST(ServeRequest, StatusesMapToOpenAiTypes) {
  EXPECT_EQ(ApiError(401, "").type(), "authentication_error");
  EXPECT_EQ(ApiError(404, "").type(), "not_found_error");
  EXPECT_EQ(ApiError(503, "").type(), "server_overloaded");
  EXPECT_TRUE(ApiError(400, "m").body()["error"]["param"].is_null());
}

TEST(ServeTranscript, HashDependsOnRoleContentAndOrder) {
  const uint64_t a = hash_turn(hash_turn(0, "user", "hi"), "assistant", "yo");
  EXPECT_EQ(a, hash_turn(hash_turn(0, "user", "hi"), "assistant", "yo"));
  EXPECT_NE(a, hash_turn(hash_turn(0, "assistant", "yo"), "user", "hi"));
  EXPECT_NE(hash_turn(0, "user", "ab"), hash_turn(0, "usera", "b"));
}

}  // namespace
}  // namespace sinklab::serve
