// Bad options and bad streams: one clear Error naming the option, never a
// crash, and the policy is unchanged by a rejected token.
#include <gtest/gtest.h>

#include <functional>

#include "sinklab/cache.h"

using namespace sinklab;

namespace {

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an Error mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

std::unique_ptr<KvPolicy> make(const std::string& spec) { return make_kv_policy(parse_cache_spec(spec)); }

}  // namespace

TEST(CacheErrors, BadOptionsNameTheOption) {
  expect_error([] { make("nope"); }, "unknown cache policy 'nope' (known: dense, window, sink");
  expect_error([] { make("dense"); }, "'limit' must be >= 1");
  expect_error([] { make("window"); }, "window cache: option 'window' must be >= 1 (got 0)");
  expect_error([] { make("window:window=-3"); }, "(got -3)");
  expect_error([] { make("sink-logit"); }, "sink-logit cache: option 'window'");
  expect_error([] { make("sink:sink=4"); }, "option 'window' must be >= 1");
  expect_error([] { make("sink:sink=4,window=-1"); }, "option 'window'");
  expect_error([] { make("sink:sink=1024,budget=1024"); }, "option 'sink' (1024) must be smaller than option 'budget' (1024)");
  expect_error([] { make("sink:sink=2000,budget=1024"); }, "option 'budget'");
  expect_error([] { make("sink:sink=-1,window=4"); }, "option 'sink' must be >= 0");
  expect_error([] { make("sink:sink=4,window=10,budget=20"); }, "disagree with option 'budget'");
  expect_error([] { make("modal:text_window=0"); }, "modal cache: option 'text_window'");
  expect_error([] { make("modal:vision_rounds=0"); }, "option 'vision_rounds'");
  expect_error([] { make("modal:round_tokens=0"); }, "option 'round_tokens'");
  expect_error([] { make("modal:text_sink=-1"); }, "option 'text_sink'");
  expect_error([] { make("chunked:chunk_tokens=4"); }, "chunked cache: option 'window_chunks'");
  expect_error([] { make("chunked:window_chunks=2"); }, "option 'chunk_tokens'");
  expect_error([] { make("chunked:window_chunks=2,chunk_tokens=3,sink_chunks=-1"); }, "option 'sink_chunks'");
}

TEST(CacheErrors, SpecParsing) {
  const CacheSpec s = parse_cache_spec("sink: sink=4, window=1020");
  EXPECT_EQ(s.policy, "sink");
  EXPECT_EQ(s.options.sink, 4);
  EXPECT_EQ(s.options.window, 1020);
  EXPECT_EQ(make("sink:sink=4,budget=1024")->capacity(), 1024);
  EXPECT_EQ(make("modal")->capacity(), 512 + 512 + 16 * 256);
  EXPECT_EQ(make("chunked:sink_chunks=1,window_chunks=3,chunk_tokens=10")->capacity(), 40);
  expect_error([] { parse_cache_spec("sink:windw=3"); }, "unknown option 'windw'");
  expect_error([] { parse_cache_spec("sink:window=abc"); }, "option 'window' needs an integer, got 'abc'");
  expect_error([] { parse_cache_spec("sink:window=12x"); }, "option 'window' needs an integer");
  expect_error([] { parse_cache_spec("sink:window"); }, "expected key=value");
  expect_error([] { parse_cache_spec(":window=3"); }, "missing policy name");
}

TEST(CacheErrors, BadStreamsAreRejectedWithoutChangingThePolicy) {
  auto window = make("window:window=3");
  std::vector<TokenMeta> ev;
  window->append(TokenMeta{5, 0, 0}, ev);
  expect_error([&] { window->append(TokenMeta{5, 0, 0}, ev); }, "indices must strictly increase");
  expect_error([&] { window->append(TokenMeta{4, 0, 0}, ev); }, "token index 4 does not follow 5");
  window->append(TokenMeta{6, 0, 2}, ev);
  expect_error([&] { window->append(TokenMeta{7, 0, 1}, ev); }, "round ids must not decrease");
  EXPECT_EQ(window->size(), 2);

  auto modal = make("modal:text_sink=1,text_window=2,vision_rounds=2,round_tokens=2");
  modal->append(TokenMeta{0, uint8_t(Modality::Vision), 0}, ev);
  modal->append(TokenMeta{1, uint8_t(Modality::Vision), 0}, ev);
  expect_error([&] { modal->append(TokenMeta{2, uint8_t(Modality::Vision), 0}, ev); },
               "round 0 has more than 2 non-text tokens; raise option 'round_tokens'");
  modal->append(TokenMeta{2, uint8_t(Modality::Text), 0}, ev);  // text does not count
  EXPECT_EQ(modal->size(), 3);

  auto chunked = make("chunked:sink_chunks=0,window_chunks=1,chunk_tokens=2");
  chunked->append(TokenMeta{0, 0, 7}, ev);
  chunked->append(TokenMeta{1, 0, 7}, ev);
  expect_error([&] { chunked->append(TokenMeta{2, 0, 7}, ev); }, "raise option 'chunk_tokens'");
  EXPECT_EQ(chunked->size(), 2);
  EXPECT_TRUE(ev.empty());
  chunked->append(TokenMeta{2, 0, 8}, ev);  // a new chunk evicts the old one whole
  EXPECT_EQ(ev.size(), 2u);
}

TEST(CacheErrors, ShiftRotateNeedsRotatedKeys) {
  KvStorageConfig c;
  c.capacity = 4;
  c.head_dim = 8;
  KvStorage raw(c);
  RopeSpec rope;
  rope.style = RopeStyle::RotateHalf;
  const int32_t slot = raw.allocate();
  expect_error([&] { shift_rotate(raw, std::span<const int32_t>(&slot, 1), 1.0, rope); }, "KeyMode::Raw");
  expect_error([] { StreamingCache(nullptr, KvStorageConfig{}, PositionContract::Reindex); }, "policy is null");
}
