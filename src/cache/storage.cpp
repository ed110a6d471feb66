// KvStorage: fixed-capacity slot rows, O(1) allocate/free, no compaction;
// and shift_rotate, the in-place re-rotation of stored keys.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "sinklab/cache.h"

namespace sinklab {

namespace {

int value_dim(const KvStorageConfig& c) { return c.v_dim > 0 ? c.v_dim : c.head_dim; }

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

size_t KvStorage::bytes_needed(const KvStorageConfig& c) {
  check(c.n_layers >= 1, "KV storage: n_layers must be >= 1 (got " + std::to_string(c.n_layers) + ")");
  check(c.n_kv_heads >= 1,
        "KV storage: n_kv_heads must be >= 1 (got " + std::to_string(c.n_kv_heads) + ")");
  check(c.head_dim >= 1, "KV storage: head_dim must be >= 1 (got " + std::to_string(c.head_dim) + ")");
  check(c.v_dim >= 0, "KV storage: v_dim must be >= 0 (got " + std::to_string(c.v_dim) + ")");
  check(c.capacity >= 1,
        "KV storage: capacity must be >= 1 token (got " + std::to_string(c.capacity) + ")");
  check(c.capacity <= int64_t(INT32_MAX),
        "KV storage: capacity " + std::to_string(c.capacity) + " exceeds int32 slot ids");
  // Computed in long double so an absurd budget reports instead of wrapping.
  const long double bytes = (long double)c.n_layers * c.n_kv_heads * (long double)c.capacity *
                            (c.head_dim + value_dim(c)) * dtype_size(c.dtype);
  check(bytes < 1e18L, "KV storage: capacity " + std::to_string(c.capacity) + " is far too large");
  return size_t(bytes);
}

KvStorage::KvStorage(const KvStorageConfig& config) : cfg_(config) {
  bytes_ = bytes_needed(cfg_);
  if (cfg_.memory_limit_bytes > 0 && bytes_ > cfg_.memory_limit_bytes)
    throw Error("KV storage: a cache of " + std::to_string(cfg_.capacity) + " tokens (" +
                std::to_string(cfg_.n_layers) + " layers x " + std::to_string(cfg_.n_kv_heads) +
                " kv heads x " + std::to_string(cfg_.head_dim + value_dim(cfg_)) + " " +
                dtype_name(cfg_.dtype) + " values) needs " + mib(bytes_) +
                ", over the memory limit of " + mib(cfg_.memory_limit_bytes) +
                "; lower the cache budget");
  const size_t per_token = size_t(cfg_.n_layers) * size_t(cfg_.n_kv_heads) * dtype_size(cfg_.dtype);
  // The whole cache is committed (and zeroed) now: the store promises fixed
  // memory, decode steps never fault rows in, and rows of free slots hold
  // zeros rather than whatever the allocator left (a NaN there would survive
  // a zero attention weight in a BLAS product).
  k_ = committed_array<uint8_t>(per_token * size_t(cfg_.capacity) * size_t(cfg_.head_dim));
  v_ = committed_array<uint8_t>(per_token * size_t(cfg_.capacity) * size_t(value_dim(cfg_)));
  clear();
}

void KvStorage::clear() {
  // Pop order 0, 1, 2, ...: while filling, the live slots are a prefix.
  free_.resize(size_t(cfg_.capacity));
  for (int64_t i = 0; i < cfg_.capacity; ++i) free_[size_t(i)] = int32_t(cfg_.capacity - 1 - i);
  live_flag_.assign(size_t(cfg_.capacity), 0);
  live_ = 0;
  high_water_ = 0;
}

int32_t KvStorage::allocate() {
  if (free_.empty())
    throw Error("KV storage: all " + std::to_string(cfg_.capacity) +
                " slots are in use (the policy kept more tokens than its capacity)");
  const int32_t slot = free_.back();
  free_.pop_back();
  live_flag_[size_t(slot)] = 1;
  ++live_;
  high_water_ = std::max<int64_t>(high_water_, int64_t(slot) + 1);
  return slot;
}

void KvStorage::free(int32_t slot) {
  if (!is_live(slot))
    throw Error("KV storage: slot " + std::to_string(slot) + " is not in use and cannot be freed");
  live_flag_[size_t(slot)] = 0;
  free_.push_back(slot);
  --live_;
}

bool KvStorage::is_live(int32_t slot) const {
  return slot >= 0 && slot < cfg_.capacity && live_flag_[size_t(slot)] != 0;
}

void KvStorage::check_slot(int layer, int kv_head, int32_t slot) const {
  if (layer < 0 || layer >= cfg_.n_layers || kv_head < 0 || kv_head >= cfg_.n_kv_heads ||
      slot < 0 || slot >= cfg_.capacity)
    throw Error("KV storage: (layer " + std::to_string(layer) + ", kv head " +
                std::to_string(kv_head) + ", slot " + std::to_string(slot) +
                ") is out of range for " + std::to_string(cfg_.n_layers) + " layers, " +
                std::to_string(cfg_.n_kv_heads) + " kv heads, " + std::to_string(cfg_.capacity) +
                " slots");
}

size_t KvStorage::row_offset(int layer, int kv_head, int32_t slot, int dim) const {
  const size_t row = (size_t(layer) * size_t(cfg_.n_kv_heads) + size_t(kv_head)) *
                         size_t(cfg_.capacity) + size_t(slot);
  return row * size_t(dim) * dtype_size(cfg_.dtype);
}

void* KvStorage::key_row(int layer, int kv_head, int32_t slot) {
  check_slot(layer, kv_head, slot);
  return k_.get() + row_offset(layer, kv_head, slot, cfg_.head_dim);
}
void* KvStorage::value_row(int layer, int kv_head, int32_t slot) {
  check_slot(layer, kv_head, slot);
  return v_.get() + row_offset(layer, kv_head, slot, value_dim(cfg_));
}
const void* KvStorage::key_row(int layer, int kv_head, int32_t slot) const {
  return const_cast<KvStorage*>(this)->key_row(layer, kv_head, slot);
}
const void* KvStorage::value_row(int layer, int kv_head, int32_t slot) const {
  return const_cast<KvStorage*>(this)->value_row(layer, kv_head, slot);
}

void KvStorage::write(int layer, int kv_head, int32_t slot, const float* k, const float* v) {
  if (k) from_f32(cfg_.dtype, k, key_row(layer, kv_head, slot), size_t(cfg_.head_dim));
  if (v) from_f32(cfg_.dtype, v, value_row(layer, kv_head, slot), size_t(value_dim(cfg_)));
}

TensorView KvStorage::keys(int layer) const {
  check_slot(layer, 0, 0);
  const int64_t d = cfg_.head_dim, cap = cfg_.capacity;
  return TensorView::strided(const_cast<uint8_t*>(k_.get()) + row_offset(layer, 0, 0, cfg_.head_dim),
                             cfg_.dtype, {1, cfg_.n_kv_heads, high_water_, d},
                             {cfg_.n_kv_heads * cap * d, cap * d, d, 1});
}

TensorView KvStorage::values(int layer) const {
  check_slot(layer, 0, 0);
  const int64_t d = value_dim(cfg_), cap = cfg_.capacity;
  return TensorView::strided(const_cast<uint8_t*>(v_.get()) + row_offset(layer, 0, 0, int(d)),
                             cfg_.dtype, {1, cfg_.n_kv_heads, high_water_, d},
                             {cfg_.n_kv_heads * cap * d, cap * d, d, 1});
}

void KvStorage::gather(int layer, int kv_head, std::span<const int32_t> slots, float* k_out,
                       float* v_out) const {
  const size_t dk = size_t(cfg_.head_dim), dv = size_t(value_dim(cfg_));
  for (size_t i = 0; i < slots.size(); ++i) {
    if (k_out) to_f32(cfg_.dtype, key_row(layer, kv_head, slots[i]), k_out + i * dk, dk);
    if (v_out) to_f32(cfg_.dtype, value_row(layer, kv_head, slots[i]), v_out + i * dv, dv);
  }
}

void shift_rotate(KvStorage& storage, std::span<const int32_t> slots, double delta,
                  const RopeSpec& rope) {
  const KvStorageConfig& c = storage.config();
  check(c.key_mode == KeyMode::Rotated,
        "shift_rotate: the KV storage holds raw keys (KeyMode::Raw); only rotated keys are "
        "re-rotated");
  if (rope.style == RopeStyle::None || delta == 0.0 || slots.empty()) return;
  // One rotation by delta for every row: cos/sin computed once per call, the
  // pairing exactly as rope_rotate's. The YaRN attention factor was applied
  // when the key was first rotated, so it is not applied again.
  const RopeTable table = rope_table(rope, c.head_dim);
  const size_t half = table.inv_freq.size();
  std::vector<float> cs(half), sn(half);
  for (size_t i = 0; i < half; ++i) {
    const double ang = delta * table.inv_freq[i];
    cs[i] = float(std::cos(ang));
    sn[i] = float(std::sin(ang));
  }
  const bool rotate_half = rope.style == RopeStyle::RotateHalf;
  constexpr size_t kBlock = 64;  // rows converted to f32 at a time
  const size_t d = size_t(c.head_dim);
  std::vector<float> buf(kBlock * d);
  for (int layer = 0; layer < c.n_layers; ++layer)
    for (int g = 0; g < c.n_kv_heads; ++g)
      for (size_t b0 = 0; b0 < slots.size(); b0 += kBlock) {
        const size_t nb = std::min(kBlock, slots.size() - b0);
        for (size_t r = 0; r < nb; ++r)
          to_f32(c.dtype, storage.key_row(layer, g, slots[b0 + r]), &buf[r * d], d);
        for (size_t r = 0; r < nb; ++r) {
          float* x = &buf[r * d];
          for (size_t i = 0; i < half; ++i) {
            const size_t a = rotate_half ? i : 2 * i, bb = rotate_half ? i + half : 2 * i + 1;
            const float xa = x[a], xb = x[bb];
            x[a] = xa * cs[i] - xb * sn[i];
            x[bb] = xb * cs[i] + xa * sn[i];
          }
        }
        for (size_t r = 0; r < nb; ++r)
          from_f32(c.dtype, &buf[r * d], storage.key_row(layer, g, slots[b0 + r]), d);
      }
}

}  // namespace sinklab
