// Position contracts: positions per contract, Shift-stored keys equal raw
// keys rotated to Reindex positions, and attention over the slot-order view
// equals attention over the cache-order gather under every contract.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "cache_test_util.h"

using namespace sinklab;
using namespace cache_test;

TEST(CachePositions, PerContract) {
  std::vector<TokenMeta> survivors;
  for (int64_t i : {0, 1, 2, 3, 50, 51, 52}) survivors.push_back(TokenMeta{i, 0, 0});
  const auto re = cache_positions(survivors, PositionContract::Reindex, 53);
  EXPECT_EQ(re.keys, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(re.query, 7);
  const auto sh = cache_positions(survivors, PositionContract::Shift, 53);
  EXPECT_EQ(sh.keys, re.keys);
  EXPECT_EQ(sh.query, re.query);
  const auto ab = cache_positions(survivors, PositionContract::Absolute, 53);
  EXPECT_EQ(ab.keys, (std::vector<int32_t>{0, 1, 2, 3, 50, 51, 52}));
  EXPECT_EQ(ab.query, 53);
  const auto empty = cache_positions({}, PositionContract::Reindex, 9);
  EXPECT_TRUE(empty.keys.empty());
  EXPECT_EQ(empty.query, 0);

  for (auto c : {PositionContract::Reindex, PositionContract::Shift, PositionContract::Absolute})
    EXPECT_EQ(position_contract_from_name(position_contract_name(c)), c);
  EXPECT_EQ(key_mode_for(PositionContract::Shift), KeyMode::Rotated);
  EXPECT_EQ(key_mode_for(PositionContract::Reindex), KeyMode::Raw);
  EXPECT_EQ(key_mode_for(PositionContract::Absolute), KeyMode::Raw);
  EXPECT_THROW(position_contract_from_name("rotate"), Error);
  const std::vector<TokenMeta> far = {TokenMeta{int64_t(1) << 33, 0, 0}};
  EXPECT_THROW(cache_positions(far, PositionContract::Absolute, (int64_t(1) << 33) + 1), Error);
}

namespace {

struct RopeCase {
  const char* name;
  RopeSpec rope;
  int head_dim;
};

std::vector<RopeCase> rope_cases() {
  RopeSpec half;
  half.style = RopeStyle::RotateHalf;
  RopeSpec yarn;
  yarn.style = RopeStyle::Interleaved;
  yarn.rotary_dim = 8;
  yarn.scaling = RopeScaling::YaRN;
  yarn.factor = 4.f;
  yarn.original_context = 64;
  return {{"rotate-half", half, 16}, {"interleaved-yarn-partial", yarn, 12}};
}

double rel_err(const float* a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST(CachePositions, ShiftStoredKeysEqualRawKeysAtReindexPositions) {
  for (const RopeCase& rc : rope_cases()) {
    for (const char* policy_name : {"sink", "chunked", "modal"}) {
      SCOPED_TRACE(std::string(rc.name) + " " + policy_name);
      CacheOptions o;
      o.sink = 3;
      o.window = 20;
      o.sink_chunks = 1;
      o.window_chunks = 2;
      o.chunk_tokens = 5;
      o.text_sink = 2;
      o.text_window = 6;
      o.vision_rounds = 2;
      o.round_tokens = 5;
      KvStorageConfig cfg;
      cfg.n_layers = 2;
      cfg.n_kv_heads = 2;
      cfg.head_dim = rc.head_dim;
      StreamingCache cache(make_kv_policy(policy_name, o), cfg, PositionContract::Shift, rc.rope);
      const RopeTable table = rope_table(rc.rope, rc.head_dim);
      std::mt19937 rng(3);
      std::normal_distribution<float> normal(0.f, 1.f);
      const auto stream = random_stream(rng, 600, 5, std::string(policy_name) == "chunked", 0.5);
      std::map<int64_t, std::vector<float>> raw;  // per token, [layer][head][dim]
      const size_t row = size_t(rc.head_dim);
      size_t pos = 0;
      double worst = 0;
      while (pos < stream.size()) {
        const size_t n = std::min(stream.size() - pos, size_t(std::uniform_int_distribution<int>(1, 6)(rng)));
        const std::span<const TokenMeta> batch(stream.data() + pos, n);
        pos += n;
        const auto slots = cache.append(batch);
        const CachePositions per_slot = cache.slot_positions(batch[n - 1].index + 1);
        for (size_t i = 0; i < n; ++i) {
          if (slots[i] < 0) continue;
          std::vector<float>& r = raw[batch[i].index];
          r.resize(4 * row);
          for (float& x : r) x = normal(rng);
          for (int l = 0; l < 2; ++l)
            for (int g = 0; g < 2; ++g) {
              std::vector<float> k(r.begin() + std::ptrdiff_t((l * 2 + g) * row),
                                   r.begin() + std::ptrdiff_t((l * 2 + g + 1) * row));
              rope_rotate(rc.rope, table, k.data(), rc.head_dim, per_slot.keys[size_t(slots[i])]);
              cache.storage().write(l, g, slots[i], k.data(), nullptr);
            }
        }
        const auto survivors = cache.survivors();
        const auto order = cache.slots();
        std::vector<float> got(order.size() * row);
        for (int l = 0; l < 2; ++l)
          for (int g = 0; g < 2; ++g) {
            cache.storage().gather(l, g, order, got.data(), nullptr);
            for (size_t p = 0; p < order.size(); ++p) {
              const std::vector<float>& r = raw.at(survivors[p].index);
              std::vector<float> want(r.begin() + std::ptrdiff_t((l * 2 + g) * row),
                                      r.begin() + std::ptrdiff_t((l * 2 + g + 1) * row));
              rope_rotate(rc.rope, table, want.data(), rc.head_dim, double(p));
              worst = std::max(worst, rel_err(&got[p * row], want));
            }
          }
      }
      EXPECT_LE(worst, 1e-5);
      EXPECT_GT(cache.rows_rotated(), 100);
    }
  }
}

namespace {

// One query against the cache: through the zero-copy slot-order view with
// per-slot positions and a bias hiding free slots, or through a cache-order
// gather with cache_positions. Shift stores rotated keys, so the kernel gets
// a pre-rotated query and no RoPE.
std::vector<float> attend(const StreamingCache& cache, const std::vector<float>& q_raw, int n_heads,
                          int64_t query_index, const RopeSpec& rope, bool gathered) {
  const KvStorageConfig& cfg = cache.storage().config();
  const int d = cfg.head_dim;
  const bool shift = cache.contract() == PositionContract::Shift;
  AttnSpec spec;
  spec.rope = shift ? RopeSpec{} : rope;
  std::vector<float> q = q_raw;
  std::vector<int32_t> k_pos;
  int32_t q_pos = 0;
  std::vector<float> kbuf, vbuf, bias;
  TensorView k, v, key_bias;
  if (gathered) {
    const auto order = cache.slots();
    const auto p = cache_positions(cache.survivors(), cache.contract(), query_index);
    k_pos = p.keys;
    q_pos = p.query;
    const int64_t n = int64_t(order.size());
    kbuf.resize(size_t(cfg.n_kv_heads * n * d));
    vbuf.resize(kbuf.size());
    for (int g = 0; g < cfg.n_kv_heads; ++g)
      cache.storage().gather(0, g, order, &kbuf[size_t(g * n * d)], &vbuf[size_t(g * n * d)]);
    k = TensorView(kbuf.data(), DType::F32, {1, cfg.n_kv_heads, n, d});
    v = TensorView(vbuf.data(), DType::F32, {1, cfg.n_kv_heads, n, d});
  } else {
    const auto p = cache.slot_positions(query_index);
    k_pos = p.keys;
    q_pos = p.query;
    k = cache.storage().keys(0);
    v = cache.storage().values(0);
    bias = cache.slot_key_bias();
    key_bias = TensorView::strided(bias.data(), DType::F32, {1, cfg.n_kv_heads, int64_t(bias.size())},
                                   {0, 0, 1});
    spec.key_bias = key_bias;
  }
  if (shift) {
    const RopeTable t = rope_table(rope, d);
    for (int h = 0; h < n_heads; ++h) rope_rotate(rope, t, &q[size_t(h * d)], d, q_pos);
  }
  spec.q_pos = &q_pos;
  spec.k_pos = k_pos.data();
  std::vector<float> o(size_t(n_heads * d), std::nanf(""));
  attention_forward(spec, TensorView(q.data(), DType::F32, {1, n_heads, 1, d}), k, v,
                    TensorView(o.data(), DType::F32, {1, n_heads, 1, d}));
  return o;
}

}  // namespace

TEST(CachePositions, AttentionOverSlotViewMatchesCacheOrderAcrossContracts) {
  RopeSpec rope;
  rope.style = RopeStyle::RotateHalf;
  const int d = 16, n_heads = 4;
  CacheOptions o;
  o.sink_chunks = 1;
  o.window_chunks = 3;
  o.chunk_tokens = 7;
  std::map<PositionContract, std::vector<float>> outputs;
  for (auto contract : {PositionContract::Reindex, PositionContract::Shift, PositionContract::Absolute}) {
    SCOPED_TRACE(position_contract_name(contract));
    KvStorageConfig cfg;
    cfg.n_kv_heads = 2;
    cfg.head_dim = d;
    StreamingCache cache(make_kv_policy("chunked", o), cfg, contract, rope);
    const RopeTable table = rope_table(rope, d);
    std::mt19937 rng(11);  // same stream and values for every contract
    std::normal_distribution<float> normal(0.f, 1.f);
    const auto stream = random_stream(rng, 150, 7, true, 0.5);
    for (const TokenMeta& t : stream) {
      const int32_t slot = cache.append(std::span<const TokenMeta>(&t, 1))[0];
      const int32_t key_pos = cache.slot_positions(t.index + 1).keys[size_t(slot)];
      for (int g = 0; g < 2; ++g) {
        std::vector<float> k(d), v(d);
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        if (contract == PositionContract::Shift) rope_rotate(rope, table, k.data(), d, key_pos);
        cache.storage().write(0, g, slot, k.data(), v.data());
      }
    }
    // The last chunk is partly filled after a whole-chunk eviction: free
    // slots sit among the live ones and must be hidden.
    ASSERT_LT(cache.storage().live(), cache.storage().high_water());
    std::vector<float> q(size_t(n_heads * d));
    for (float& x : q) x = normal(rng);
    const int64_t next = stream.back().index + 1;
    const auto viewed = attend(cache, q, n_heads, next, rope, false);
    const auto gathered = attend(cache, q, n_heads, next, rope, true);
    EXPECT_LE(rel_err(viewed.data(), gathered), 1e-5);
    outputs[contract] = gathered;
  }
  // Shift and Reindex give the model the same positions.
  EXPECT_LE(rel_err(outputs[PositionContract::Shift].data(), outputs[PositionContract::Reindex]), 1e-5);
  // Absolute positions differ (gaps), so its output must differ.
  EXPECT_GT(rel_err(outputs[PositionContract::Absolute].data(), outputs[PositionContract::Reindex]), 1e-4);
}
