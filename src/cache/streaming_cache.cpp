// StreamingCache: runs the policy token by token, mirrors its decisions in
// the slot store, and (Shift) re-rotates survivors whose position changed.
#include <algorithm>
#include <limits>
#include <map>
#include <string>

#include "sinklab/cache.h"

namespace sinklab {

StreamingCache::StreamingCache(std::unique_ptr<KvPolicy> policy, KvStorageConfig storage,
                               PositionContract contract, RopeSpec rope)
    : policy_((check(policy != nullptr, "StreamingCache: policy is null"), std::move(policy))),
      storage_([&] {
        storage.capacity = policy_->capacity();
        storage.key_mode = key_mode_for(contract);
        return storage;
      }()),
      contract_(contract),
      rope_(rope) {
  stored_pos_.assign(size_t(storage_.capacity()), 0);
}

void StreamingCache::restart(std::unique_ptr<KvPolicy> policy) {
  check(policy != nullptr, "StreamingCache: policy is null");
  check(policy->capacity() == storage_.capacity(),
        "StreamingCache: restart needs a policy of the same capacity (" + std::to_string(storage_.capacity()) +
            " slots), got " + std::to_string(policy->capacity()));
  policy_ = std::move(policy);
  storage_.clear();
  slot_of_.clear();
  std::fill(stored_pos_.begin(), stored_pos_.end(), 0);
  rows_rotated_ = 0;
}

std::vector<int32_t> StreamingCache::append(std::span<const TokenMeta> tokens) {
  std::vector<int32_t> result(tokens.size(), -1);
  std::unordered_map<int64_t, size_t> batch_pos;  // index -> position in `tokens`
  std::vector<TokenMeta> evicted;
  for (size_t i = 0; i < tokens.size(); ++i) {
    evicted.clear();
    policy_->append(tokens[i], evicted);
    for (const TokenMeta& e : evicted) {
      const auto it = slot_of_.find(e.index);
      if (it == slot_of_.end()) continue;  // the policy dropped the new token itself
      storage_.free(it->second);
      slot_of_.erase(it);
      if (const auto b = batch_pos.find(e.index); b != batch_pos.end()) result[b->second] = -1;
    }
    const bool kept = std::none_of(evicted.begin(), evicted.end(),
                                   [&](const TokenMeta& e) { return e.index == tokens[i].index; });
    if (!kept) continue;
    const int32_t slot = storage_.allocate();
    slot_of_[tokens[i].index] = slot;
    batch_pos[tokens[i].index] = i;
    result[i] = slot;
  }
  if (contract_ == PositionContract::Shift) {
    // Survivors from earlier steps whose reindex position moved are rotated
    // by the difference, one shift_rotate per distinct delta (a sink cache
    // has two groups: sinks with delta 0 and the window with one delta).
    const std::vector<TokenMeta> alive = policy_->survivors();
    std::map<int64_t, std::vector<int32_t>> by_delta;
    for (size_t p = 0; p < alive.size(); ++p) {
      const int32_t slot = slot_of_.at(alive[p].index);
      if (batch_pos.count(alive[p].index)) {
        stored_pos_[size_t(slot)] = int32_t(p);  // written rotated by the caller
        continue;
      }
      const int64_t delta = int64_t(p) - stored_pos_[size_t(slot)];
      if (delta != 0) by_delta[delta].push_back(slot);
      stored_pos_[size_t(slot)] = int32_t(p);
    }
    for (const auto& [delta, slots] : by_delta) {
      shift_rotate(storage_, slots, double(delta), rope_);
      rows_rotated_ += int64_t(slots.size());
    }
  }
  return result;
}

void StreamingCache::observe_attention(int layer, int n_heads, int64_t n_queries, int64_t first_query,
                                       std::span<const float> head_slot_mass) {
  const KvStorageConfig& cfg = storage_.config();
  const int64_t hw = storage_.high_water();
  check(layer >= 0 && layer < cfg.n_layers && n_heads >= cfg.n_kv_heads && n_heads % cfg.n_kv_heads == 0 &&
            n_queries >= 1 && int64_t(head_slot_mass.size()) == int64_t(n_heads) * hw,
        "StreamingCache::observe_attention: layer " + std::to_string(layer) + " of " +
            std::to_string(cfg.n_layers) + ", " + std::to_string(head_slot_mass.size()) + " masses for " +
            std::to_string(n_heads) + " heads (" + std::to_string(cfg.n_kv_heads) + " kv heads) x " +
            std::to_string(hw) + " slots");
  const std::vector<TokenMeta> alive = policy_->survivors();
  const size_t n = alive.size();
  const int group = n_heads / cfg.n_kv_heads;
  std::vector<float> mass(size_t(cfg.n_kv_heads) * n, 0.f);
  for (size_t i = 0; i < n; ++i) {
    const int64_t slot = slot_of_.at(alive[i].index);
    for (int h = 0; h < n_heads; ++h) mass[size_t(h / group) * n + i] += head_slot_mass[size_t(h * hw + slot)];
  }
  AttentionObservation obs;
  obs.layer = layer;
  obs.n_layers = cfg.n_layers;
  obs.n_kv_heads = cfg.n_kv_heads;
  obs.heads_per_kv = group;
  obs.n_queries = n_queries;
  obs.first_query = first_query;
  obs.tokens = alive;
  obs.mass = mass;
  policy_->observe_attention(obs);
}

std::vector<int32_t> StreamingCache::slots() const {
  const std::vector<TokenMeta> alive = policy_->survivors();
  std::vector<int32_t> out(alive.size());
  for (size_t i = 0; i < alive.size(); ++i) out[i] = slot_of_.at(alive[i].index);
  return out;
}

int32_t StreamingCache::slot_of(int64_t index) const {
  const auto it = slot_of_.find(index);
  return it == slot_of_.end() ? -1 : it->second;
}

CachePositions StreamingCache::slot_positions(int64_t query_index) const {
  const std::vector<TokenMeta> alive = policy_->survivors();
  const CachePositions ordered = cache_positions(alive, contract_, query_index);
  CachePositions per_slot;
  per_slot.keys.assign(size_t(storage_.high_water()), 0);
  per_slot.query = ordered.query;
  for (size_t i = 0; i < alive.size(); ++i)
    per_slot.keys[size_t(slot_of_.at(alive[i].index))] = ordered.keys[i];
  return per_slot;
}

std::vector<float> StreamingCache::slot_key_bias() const {
  std::vector<float> bias(size_t(storage_.high_water()), -std::numeric_limits<float>::infinity());
  for (int64_t s = 0; s < storage_.high_water(); ++s)
    if (storage_.is_live(int32_t(s))) bias[size_t(s)] = 0.f;
  return bias;
}

void StreamingCache::hide_from_layer(int layer, std::vector<float>& key_bias) const {
  check(int64_t(key_bias.size()) == storage_.high_water(),
        "StreamingCache::hide_from_layer: a key bias of " + std::to_string(key_bias.size()) + " slots for " +
            std::to_string(storage_.high_water()));
  std::vector<TokenMeta> hidden;
  policy_->hidden_from_layer(layer, hidden);
  for (const TokenMeta& t : hidden) key_bias[size_t(slot_of_.at(t.index))] = -std::numeric_limits<float>::infinity();
}

}  // namespace sinklab
