// Registry rows: default sizes from the context, the options each policy
// reads, and the spec string that round-trips through parse_cache_spec.
#include <gtest/gtest.h>

#include "sinklab/cache.h"

namespace sinklab {
namespace {

TEST(RegistryRows, DefaultSizesFollowTheContext) {
  EXPECT_EQ(with_default_sizes(parse_cache_spec("dense"), 300).options.limit, 300);
  EXPECT_EQ(with_default_sizes(parse_cache_spec("window"), 300).options.window, 300);
  EXPECT_EQ(with_default_sizes(parse_cache_spec("sink-logit"), 300).options.window, 300);
  const CacheSpec sink = with_default_sizes(parse_cache_spec("sink"), 300);
  EXPECT_EQ(sink.options.sink, 4);
  EXPECT_EQ(sink.options.window, 296);
  EXPECT_EQ(make_kv_policy(sink)->capacity(), 300);
  // Given sizes stay as given.
  EXPECT_EQ(with_default_sizes(parse_cache_spec("sink:sink=2,window=10"), 300).options.window, 10);
  EXPECT_EQ(with_default_sizes(parse_cache_spec("sink:budget=64"), 300).options.window, 0);
  EXPECT_EQ(with_default_sizes(parse_cache_spec("dense:limit=7"), 300).options.limit, 7);
  EXPECT_THROW(with_default_sizes(parse_cache_spec("sink:sink=300"), 300), Error);
  EXPECT_THROW(with_default_sizes(parse_cache_spec("dense"), 0), Error);
  EXPECT_THROW(with_default_sizes(parse_cache_spec("nope"), 10), Error);
}

TEST(RegistryRows, EveryRowIsComplete) {
  for (const KvPolicyInfo& row : kv_policies()) {
    EXPECT_NE(row.summary, nullptr);
    EXPECT_NE(std::string(row.option_keys), "") << row.name;
    EXPECT_EQ(&kv_policy_info(row.name), &row);
    EXPECT_EQ(row.streaming, std::string(row.name) != "dense") << row.name;
    EXPECT_EQ(row.needs_metadata, row.group_size_option != nullptr) << row.name;
    if (row.group_size_option) {
      EXPECT_TRUE(kv_policy_reads(row.name, row.group_size_option)) << row.name;
    }
  }
  EXPECT_TRUE(kv_policy_reads("sink", "window"));
  EXPECT_TRUE(kv_policy_reads("sink", "budget"));
  EXPECT_FALSE(kv_policy_reads("dense", "window"));
  EXPECT_FALSE(kv_policy_reads("window", "sink"));
  EXPECT_TRUE(kv_policy_info("sink-logit").needs_sink_logits);
  EXPECT_FALSE(kv_policy_info("sink").needs_sink_logits);
}

TEST(RegistryRows, SpecStringsRoundTrip) {
  for (const char* text : {"dense:limit=256", "window:window=64", "sink:sink=4,window=252", "sink:sink=2,budget=64",
                           "sink-logit:window=128", "chunked:sink_chunks=1,window_chunks=4,chunk_tokens=16",
                           "modal:text_sink=4,text_window=60,vision_rounds=2,round_tokens=32"}) {
    const CacheSpec spec = parse_cache_spec(text);
    EXPECT_EQ(cache_spec_string(spec), text);
    const CacheSpec back = parse_cache_spec(cache_spec_string(spec));
    EXPECT_EQ(make_kv_policy(back)->capacity(), make_kv_policy(spec)->capacity()) << text;
  }
}

}  // namespace
}  // namespace sinklab
