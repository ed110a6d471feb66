// KvStorage and StreamingCache: the bytes follow the policy, eviction never
// copies or moves a surviving row, capacity holds, memory limits are checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "cache_test_util.h"

using namespace sinklab;
using namespace cache_test;

namespace {

constexpr int kLayers = 2, kHeads = 2, kDim = 4, kVDim = 3;

KvStorageConfig small_config(DType dtype = DType::F32) {
  KvStorageConfig c;
  c.n_layers = kLayers;
  c.n_kv_heads = kHeads;
  c.head_dim = kDim;
  c.v_dim = kVDim;
  c.dtype = dtype;
  return c;
}

// Every row of every live slot, as raw bytes, keyed by slot.
std::map<int32_t, std::vector<uint8_t>> snapshot(const KvStorage& s) {
  std::map<int32_t, std::vector<uint8_t>> out;
  const size_t es = dtype_size(s.config().dtype);
  for (int32_t slot = 0; slot < int32_t(s.high_water()); ++slot) {
    if (!s.is_live(slot)) continue;
    std::vector<uint8_t>& bytes = out[slot];
    for (int l = 0; l < kLayers; ++l)
      for (int g = 0; g < kHeads; ++g) {
        const auto* k = static_cast<const uint8_t*>(s.key_row(l, g, slot));
        const auto* v = static_cast<const uint8_t*>(s.value_row(l, g, slot));
        bytes.insert(bytes.end(), k, k + kDim * es);
        bytes.insert(bytes.end(), v, v + kVDim * es);
      }
  }
  return out;
}

float tag(int64_t index, bool bf16) { return float(bf16 ? index % 200 : index); }

void write_token(StreamingCache& cache, int32_t slot, int64_t index, bool bf16) {
  for (int l = 0; l < kLayers; ++l)
    for (int g = 0; g < kHeads; ++g) {
      const float k[kDim] = {tag(index, bf16), float(l), float(g), 0.5f};
      const float v[kVDim] = {-tag(index, bf16), float(l + g), 0.25f};
      cache.storage().write(l, g, slot, k, v);
    }
}

void run_contents_case(const PolicyCase& c, DType dtype, uint32_t seed) {
  const bool bf16 = dtype == DType::BF16;
  std::mt19937 rng(seed);
  const auto stream = random_stream(rng, 3000, c.group_max, c.count_all_tokens, c.text_share);
  StreamingCache cache(make_kv_policy(c.policy, c.options), small_config(dtype),
                       PositionContract::Reindex);
  ASSERT_EQ(cache.storage().capacity(), cache.policy().capacity());
  size_t pos = 0;
  int64_t evicted_total = 0;
  while (pos < stream.size()) {
    const size_t n = std::min(stream.size() - pos, size_t(std::uniform_int_distribution<int>(1, 9)(rng)));
    const std::span<const TokenMeta> batch(stream.data() + pos, n);
    const auto before = snapshot(cache.storage());
    std::map<int32_t, int64_t> owner_before;
    for (const TokenMeta& t : cache.survivors()) owner_before[cache.slot_of(t.index)] = t.index;
    const int64_t live_before = cache.storage().live();

    const std::vector<int32_t> slots = cache.append(batch);
    pos += n;

    // Survivors kept their slot and their bytes: nothing was copied or moved.
    int64_t kept_old = 0;
    const auto after = snapshot(cache.storage());
    for (const TokenMeta& t : cache.survivors()) {
      const int32_t slot = cache.slot_of(t.index);
      const auto it = owner_before.find(slot);
      if (it != owner_before.end() && it->second == t.index) {
        ++kept_old;
        ASSERT_EQ(after.at(slot), before.at(slot));
      }
    }
    int64_t new_slots = 0;
    for (size_t i = 0; i < n; ++i)
      if (slots[i] >= 0) {
        ++new_slots;
        write_token(cache, slots[i], batch[i].index, bf16);
      }
    evicted_total += live_before - kept_old;
    // The store did exactly one allocation per new survivor and nothing else.
    ASSERT_EQ(cache.storage().live(), kept_old + new_slots);
    ASSERT_EQ(cache.storage().live(), cache.policy().size());
    ASSERT_LE(cache.storage().high_water(), cache.storage().capacity());

    // Gathered rows in cache order carry the survivors' indices.
    const auto survivors = cache.survivors();
    const auto order = cache.slots();
    ASSERT_EQ(order.size(), survivors.size());
    std::vector<float> k(order.size() * kDim), v(order.size() * kVDim);
    for (int l = 0; l < kLayers; ++l)
      for (int g = 0; g < kHeads; ++g) {
        cache.storage().gather(l, g, order, k.data(), v.data());
        for (size_t i = 0; i < order.size(); ++i) {
          ASSERT_EQ(k[i * kDim], tag(survivors[i].index, bf16));
          ASSERT_EQ(k[i * kDim + 1], float(l));
          ASSERT_EQ(k[i * kDim + 2], float(g));
          ASSERT_EQ(v[i * kVDim], -tag(survivors[i].index, bf16));
        }
        // The zero-copy view in slot order sees the same rows.
        const TensorView view = cache.storage().keys(l);
        ASSERT_EQ(view.shape[2], cache.storage().high_water());
        for (size_t i = 0; i < order.size(); ++i) {
          float x = 0.f;
          to_f32(dtype, view.at(0, g, order[i], 0), &x, 1);
          ASSERT_EQ(x, tag(survivors[i].index, bf16));
        }
      }
    const std::vector<float> bias = cache.slot_key_bias();
    for (int32_t s = 0; s < int32_t(bias.size()); ++s)
      ASSERT_EQ(bias[size_t(s)] == 0.f, cache.storage().is_live(s));
  }
  if (c.policy != "dense") {
    EXPECT_GT(evicted_total, 0);
  }
}

}  // namespace

TEST(CacheStorage, ContentsFollowEveryPolicyWithoutCopies) {
  uint32_t seed = 10;
  for (const PolicyCase& c : policy_cases()) {
    SCOPED_TRACE(c.policy + " window " + std::to_string(c.options.window));
    run_contents_case(c, DType::F32, ++seed);
  }
}

TEST(CacheStorage, ContentsFollowPolicyInBf16) {
  for (const PolicyCase& c : policy_cases()) {
    if (c.policy != "sink" && c.policy != "chunked") continue;
    SCOPED_TRACE(c.policy);
    run_contents_case(c, DType::BF16, 77);
  }
}

TEST(CacheStorage, SlotsAreAllocatedAndFreedInConstantTime) {
  KvStorageConfig c = small_config();
  c.capacity = 5;
  KvStorage s(c);
  for (int32_t i = 0; i < 5; ++i) EXPECT_EQ(s.allocate(), i);  // a prefix while filling
  EXPECT_THROW(s.allocate(), Error);
  s.free(2);
  s.free(4);
  EXPECT_EQ(s.live(), 3);
  EXPECT_EQ(s.allocate(), 4);  // the most recently freed slot is reused
  EXPECT_EQ(s.allocate(), 2);
  EXPECT_EQ(s.high_water(), 5);
  EXPECT_THROW(s.free(7), Error);
  s.free(1);
  EXPECT_THROW(s.free(1), Error);
  EXPECT_THROW(s.key_row(kLayers, 0, 0), Error);
  EXPECT_EQ(s.bytes(), size_t(kLayers * kHeads * 5 * (kDim + kVDim) * 4));
}

// Rows start as zeros (memory committed up front, small stores and ones on the
// 2 MiB-page path alike); clear() frees every slot and starts the prefix over.
TEST(CacheStorage, RowsStartZeroAndClearFreesEverySlot) {
  for (int64_t capacity : {int64_t(5), int64_t(40000)}) {
    KvStorageConfig c = small_config();
    c.capacity = capacity;
    KvStorage s(c);
    for (int l = 0; l < kLayers; ++l)
      for (int g = 0; g < kHeads; ++g)
        for (int32_t slot : {int32_t(0), int32_t(capacity / 2), int32_t(capacity - 1)}) {
          const auto* k = static_cast<const uint8_t*>(s.key_row(l, g, slot));
          const auto* v = static_cast<const uint8_t*>(s.value_row(l, g, slot));
          EXPECT_TRUE(std::all_of(k, k + kDim * 4, [](uint8_t b) { return b == 0; }));
          EXPECT_TRUE(std::all_of(v, v + kVDim * 4, [](uint8_t b) { return b == 0; }));
        }
    for (int i = 0; i < 3; ++i) s.allocate();
    s.free(1);
    s.clear();
    EXPECT_EQ(s.live(), 0);
    EXPECT_EQ(s.high_water(), 0);
    EXPECT_FALSE(s.is_live(0));
    EXPECT_EQ(s.allocate(), 0);
    EXPECT_EQ(s.allocate(), 1);
    EXPECT_EQ(s.high_water(), 2);
  }
}

TEST(CacheStorage, MemoryLimitIsAClearError) {
  KvStorageConfig c = small_config(DType::BF16);
  c.capacity = 1 << 20;
  c.memory_limit_bytes = 1 << 20;
  try {
    KvStorage s(c);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("memory limit of 1.0 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1048576 tokens"), std::string::npos) << msg;
  }
  c.memory_limit_bytes = KvStorage::bytes_needed(c);
  EXPECT_NO_THROW(KvStorage{c});
  // The cache sizes its storage from the policy budget, so the limit applies to it.
  CacheOptions o;
  o.sink = 4;
  o.window = 1020;
  KvStorageConfig tiny = small_config();
  tiny.memory_limit_bytes = 1000;
  EXPECT_THROW(StreamingCache(make_kv_policy("sink", o), tiny, PositionContract::Reindex), Error);
  KvStorageConfig bad = small_config();
  bad.capacity = 0;
  EXPECT_THROW(KvStorage{bad}, Error);
}
