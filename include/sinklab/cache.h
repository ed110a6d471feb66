// sinklab KV cache: storage (bytes) and policies (which tokens stay, which
// positions they get), kept apart so that a new policy is one file plus one
// registry row (see docs/HOWTO-add-cache-policy.md).
//
//   KvPolicy        decides, token by token, which stream tokens survive and
//                   reports evictions; knows nothing about bytes.
//   KvStorage       fixed-capacity slot store of K and V rows per layer and kv
//                   head; O(1) slot allocation and free; never moves rows.
//   StreamingCache  the glue a Session uses: policy + storage + token->slot map.
//   cache_positions the positions the kernel uses for keys and queries under a
//                   PositionContract; shift_rotate re-rotates stored keys.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <iosfwd>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sinklab/attention.h"
#include "sinklab/core.h"

namespace sinklab {

// ------------------------------------------------------------ token metadata --
enum class Modality : uint8_t { Text = 0, Vision = 1, Audio = 2 };

// What a policy knows about one stream token.
struct TokenMeta {
  int64_t index = 0;     // absolute stream position (strictly increasing)
  uint8_t modality = 0;  // a Modality value
  int32_t round = 0;     // round (StreamingVLM) or chunk (chunked video) id; never decreases
};

// ------------------------------------------------------------------ options --
// Every option of every built-in policy. Each policy reads only its own and
// validates them; Error messages name the option as written here.
struct CacheOptions {
  int64_t limit = 0;   // dense: hard token limit (> 0)
  int64_t sink = 4;    // sink: S, the first tokens never evicted
  int64_t window = 0;  // window, sink, sink-logit: W, the most recent tokens kept
  int64_t budget = 0;  // sink: S + W (alternative to window; 0 = unset)
  // modal (StreamingVLM)
  int64_t text_sink = 512;
  int64_t text_window = 512;
  int64_t vision_rounds = 16;
  int64_t round_tokens = 256;  // most non-text tokens one round may hold
  // chunked (MotionStream / LongLive)
  int64_t sink_chunks = 1;
  int64_t window_chunks = 0;
  int64_t chunk_tokens = 0;  // most tokens one chunk may hold
  // heavy (H2O): the heavy-hitter slots beside the recent 'window'
  int64_t heavy = 0;
  // snapkv: the prompt's length and the max-pooling width of its key scores
  int64_t prompt = 0;
  int64_t pool = 7;
  // adaptive-layer: the layers of the cache, each with its own sinks (the
  // Session sets it to its model's when left 0)
  int64_t layers = 0;
};

// Parses "name" or "name:key=value,key=value" (keys are CacheOptions field
// names) into the policy name and options. Unknown keys and bad numbers throw
// an Error naming the key.
struct CacheSpec {
  std::string policy;
  CacheOptions options;
};
CacheSpec parse_cache_spec(std::string_view spec);

// ------------------------------------------------------------------- policy --
// The attention one forward step paid to the cache, handed to policies whose
// registry row says needs_attention (StreamingCache::observe_attention builds
// it from the kernel's column sums). One per layer of the cache and step.
struct AttentionObservation {
  int layer = 0;                // layer of the cache (storage layer), 0..n_layers-1
  int n_layers = 1;             // layers in the cache
  int n_kv_heads = 1;
  int heads_per_kv = 1;         // query heads summed into each kv head's mass
  int64_t n_queries = 0;        // queries of the step (the tokens just appended)
  int64_t first_query = 0;      // stream index of the step's first query
  std::span<const TokenMeta> tokens;  // the survivors, in cache order
  // [n_kv_heads, tokens.size()]: attention probability on each survivor,
  // summed over the step's queries and the kv head's query heads.
  std::span<const float> mass;
};

class KvPolicy {
 public:
  virtual ~KvPolicy() = default;
  virtual std::string_view name() const = 0;
  // Most tokens ever kept at once; the storage is sized to it.
  virtual int64_t capacity() const = 0;
  virtual int64_t size() const = 0;
  // Appends one token. Appends to `evicted` the tokens that leave the cache
  // because of it (possibly the new token itself, never for built-ins).
  // Throws Error when the token breaks the policy's rules (limit, sizes,
  // order); the policy is then unchanged.
  virtual void append(const TokenMeta& token, std::vector<TokenMeta>& evicted) = 0;
  // Survivors in cache order (ascending stream index for every built-in).
  virtual void survivors(std::vector<TokenMeta>& out) const = 0;
  // Attention paid to the survivors by the last step, once per layer; only
  // called for rows with needs_attention (heavy, adaptive, snapkv). The
  // default ignores it.
  virtual void observe_attention(const AttentionObservation&) {}
  // The survivors that cache layer `layer` must not attend to (they stay for
  // other layers); only asked of rows with masks_per_layer. Default: none.
  virtual void hidden_from_layer(int /*layer*/, std::vector<TokenMeta>& out) const { out.clear(); }
  // Most tokens the next batch may hold without an eviction inside it
  // (batched_append rows). A policy that must see the attention of a part of
  // the stream on its own (snapkv's observation window) returns less.
  virtual int64_t batch_room() const { return capacity() - size(); }

  // Batch append: same result as appending one by one. Tokens of the batch
  // evicted by later tokens of the same batch appear in `evicted` too.
  void append(std::span<const TokenMeta> tokens, std::vector<TokenMeta>& evicted);
  std::vector<TokenMeta> survivors() const;
};

// One registry row per policy: everything outside src/cache asks the row,
// never the policy's name.
struct KvPolicyInfo {
  const char* name;
  const char* summary;  // one line, for --help and `sinklab info`
  std::unique_ptr<KvPolicy> (*make)(const CacheOptions&);
  const char* option_keys;  // the CacheOptions it reads, comma-separated
  // Fills the sizes left unset (0) from the context a session is given (the
  // model's training context unless asked otherwise); nullptr = no defaults.
  void (*fill_defaults)(CacheOptions&, int64_t context);
  bool streaming;       // evicts: false only for dense
  bool batched_append;  // a batch of tokens may be appended at once up to the room left
  bool needs_metadata;  // reads TokenMeta modality / round (from --meta)
  bool needs_sink_logits;  // only for models with learned sink logits
  const char* group_size_option;  // the option a fixed group size (--chunk-tokens) sets; nullptr = none
  bool needs_attention;  // evicts by the attention it observes (KvPolicy::observe_attention)
  bool masks_per_layer;  // some survivors are hidden from some layers (KvPolicy::hidden_from_layer)
};
std::span<const KvPolicyInfo> kv_policies();
// The row of a policy; throws Error naming the unknown policy and listing the known ones.
const KvPolicyInfo& kv_policy_info(std::string_view name);
// Whether `policy` reads the CacheOptions field named `option` (option_keys).
bool kv_policy_reads(std::string_view policy, std::string_view option);
// `spec` with its unset sizes filled from `context` (> 0).
CacheSpec with_default_sizes(CacheSpec spec, int64_t context);
// "sink:sink=4,window=252": the policy and the options it reads (those set,
// i.e. non-zero); parse_cache_spec reads it back.
std::string cache_spec_string(const CacheSpec& spec);
// Throws Error naming the unknown policy and listing the known ones.
std::unique_ptr<KvPolicy> make_kv_policy(std::string_view name, const CacheOptions& options = {});
std::unique_ptr<KvPolicy> make_kv_policy(const CacheSpec& spec);

// ---------------------------------------------------------------- positions --
// What positions the survivors get (docs/ARCHITECTURE.md, "position contract").
enum class PositionContract : uint8_t {
  Reindex,   // keys stored raw; positions 0..n-1 in cache order, query n; RoPE in the kernel
  Shift,     // same positions as Reindex, but keys stored rotated and re-rotated on eviction
  Absolute,  // keys stored raw; original indices (gaps allowed); query = its own index
};
const char* position_contract_name(PositionContract c);
PositionContract position_contract_from_name(std::string_view name);  // "reindex", ...

struct CachePositions {
  std::vector<int32_t> keys;  // one per survivor, in the order given
  int32_t query = 0;          // position of the next query; later queries of a batch add 1 each
};
// `survivors` in cache order; `query_index` is the next token's stream index
// (used by Absolute). Throws Error when a position does not fit int32.
CachePositions cache_positions(std::span<const TokenMeta> survivors, PositionContract contract,
                               int64_t query_index);

// ------------------------------------------------------------------ storage --
enum class KeyMode : uint8_t { Raw, Rotated };
KeyMode key_mode_for(PositionContract c);  // Shift -> Rotated, else Raw

struct KvStorageConfig {
  int n_layers = 1;
  int n_kv_heads = 1;
  int head_dim = 64;
  int v_dim = 0;  // 0 = head_dim
  int64_t capacity = 0;  // slots (= the policy's capacity)
  DType dtype = DType::F32;  // F32 or BF16
  KeyMode key_mode = KeyMode::Raw;
  size_t memory_limit_bytes = 0;  // 0 = no limit
};

// Per layer: K [n_kv_heads, capacity, head_dim] and V [n_kv_heads, capacity,
// v_dim]. A slot is one row index, the same in every layer and head, so a
// token has one slot. Slots are handed out from a free list (lowest first
// while the store is filling, then whatever was freed last); freeing is O(1)
// and nothing is ever copied on eviction.
class KvStorage {
 public:
  explicit KvStorage(const KvStorageConfig& config);
  const KvStorageConfig& config() const { return cfg_; }
  int64_t capacity() const { return cfg_.capacity; }
  int64_t live() const { return live_; }
  // One past the highest slot ever used: views cover [0, high_water).
  int64_t high_water() const { return high_water_; }
  size_t bytes() const { return bytes_; }
  static size_t bytes_needed(const KvStorageConfig& config);

  int32_t allocate();        // Error when full
  void free(int32_t slot);   // Error when not live
  void clear();              // frees every slot (rows keep their bytes)
  bool is_live(int32_t slot) const;

  // Row of one slot (head_dim or v_dim elements of config().dtype).
  void* key_row(int layer, int kv_head, int32_t slot);
  void* value_row(int layer, int kv_head, int32_t slot);
  const void* key_row(int layer, int kv_head, int32_t slot) const;
  const void* value_row(int layer, int kv_head, int32_t slot) const;
  // Writes f32 rows converting to the storage dtype.
  void write(int layer, int kv_head, int32_t slot, const float* k, const float* v);

  // Zero-copy views [1, n_kv_heads, high_water, dim] over the slot rows of one
  // layer, in slot order. Attention with explicit per-slot positions does not
  // depend on key order, so pass these with slot_positions() and
  // slot_key_bias() (hides free slots) instead of reordering.
  TensorView keys(int layer) const;
  TensorView values(int layer) const;

  // Copies the given slots, in the given order, into contiguous f32
  // [slots.size(), dim] buffers: O(n * dim) per call, for tools and tests.
  void gather(int layer, int kv_head, std::span<const int32_t> slots, float* k_out,
              float* v_out) const;

 private:
  size_t row_offset(int layer, int kv_head, int32_t slot, int dim) const;
  void check_slot(int layer, int kv_head, int32_t slot) const;

  KvStorageConfig cfg_;
  size_t bytes_ = 0;
  AlignedPtr<uint8_t> k_, v_;
  std::vector<int32_t> free_;  // stack of free slots
  std::vector<uint8_t> live_flag_;
  int64_t live_ = 0;
  int64_t high_water_ = 0;
};

// Re-rotates the keys of `slots` (every layer and kv head) by `delta`
// positions, in float32, a block of rows at a time. Needs KeyMode::Rotated.
// YaRN's attention factor is not applied again.
void shift_rotate(KvStorage& storage, std::span<const int32_t> slots, double delta,
                  const RopeSpec& rope);

// ---------------------------------------------------------- streaming cache --
// Policy + storage + token->slot map. Per step: append() the new tokens'
// metadata, write their K/V rows into the returned slots, then read the cache
// with slot_positions()/slot_key_bias() (or survivors()/slots()).
class StreamingCache {
 public:
  StreamingCache(std::unique_ptr<KvPolicy> policy, KvStorageConfig storage,
                 PositionContract contract, RopeSpec rope = {});

  // Runs the policy, frees evicted slots and allocates slots for the new
  // survivors. Returns one slot per token of `tokens`, -1 for a token that
  // was evicted within the same batch (its K/V is not stored). Under Shift,
  // survivors whose position changed are re-rotated (blocks of equal delta),
  // and new rows must be written rotated to slot_positions() of their slot.
  std::vector<int32_t> append(std::span<const TokenMeta> tokens);

  const KvPolicy& policy() const { return *policy_; }
  // Hands one layer's attention to the policy (AttentionObservation):
  // `head_slot_mass` [n_heads, high_water] is the attention of each query head
  // on each slot summed over the step's `n_queries` queries (the first at
  // stream index `first_query`), as AttnStats::column_sums gives it; query
  // heads are summed per kv head and free slots ignored.
  void observe_attention(int layer, int n_heads, int64_t n_queries, int64_t first_query,
                         std::span<const float> head_slot_mass);
  KvStorage& storage() { return storage_; }
  const KvStorage& storage() const { return storage_; }
  PositionContract contract() const { return contract_; }

  // Starts over empty with a fresh policy (same capacity), keeping the
  // storage's memory.
  void restart(std::unique_ptr<KvPolicy> policy);

  std::vector<TokenMeta> survivors() const { return policy_->survivors(); }
  // Slots of the survivors, in cache order.
  std::vector<int32_t> slots() const;
  int32_t slot_of(int64_t index) const;  // -1 when not cached
  // Key position per slot in [0, high_water) (0 for free slots), and the next
  // query's position, for the given next token index.
  CachePositions slot_positions(int64_t query_index) const;
  // [high_water] f32: 0 for live slots, -inf for free ones (AttnSpec::key_bias).
  std::vector<float> slot_key_bias() const;
  // Sets -inf in `key_bias` (as slot_key_bias gives it) for the slots the
  // policy hides from cache layer `layer` (KvPolicy::hidden_from_layer).
  void hide_from_layer(int layer, std::vector<float>& key_bias) const;
  // Rows re-rotated by Shift since construction.
  int64_t rows_rotated() const { return rows_rotated_; }

 private:
  std::unique_ptr<KvPolicy> policy_;
  KvStorage storage_;
  PositionContract contract_;
  RopeSpec rope_;
  std::unordered_map<int64_t, int32_t> slot_of_;
  std::vector<int32_t> stored_pos_;  // Shift: position each slot's key is rotated to
  int64_t rows_rotated_ = 0;
};

// Reads per-token metadata rows (the `--meta` file format): one row per
// token, CSV "modality[,round]" (modality text|vision|audio or 0|1|2) or JSON
// {"modality": ..., "round" or "chunk": ...}; blank lines and '#' comments are
// skipped. Rows without a round get index / group_tokens (group_tokens > 0) or
// the previous row's. Throws Error naming `source` and the line.
std::vector<TokenMeta> parse_token_meta(std::istream& in, const std::string& source, int64_t group_tokens);

}  // namespace sinklab
