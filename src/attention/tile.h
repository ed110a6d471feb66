// The tile machinery shared by the flash forward, decode, statistics and
// backward kernels. A "row block" is a set of query rows (any heads, any
// queries) that share one kv head; a key block is a contiguous range of keys.
// Every logit of a tile is produced by logits_tile(), which is the single place
// where the AttnSpec (scale, RoPE, softcap, priors, mask) is applied.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common.h"

namespace sinklab::attn {

constexpr int kBlockQ = 128;  // query rows per tile
constexpr int kBlockK = 128;  // keys per tile
constexpr int kFewRows = 8;   // row blocks up to this size take the BLAS-free kernels of few_rows.h

// Per-call constants derived from the spec.
struct TileContext {
  const AttnSpec& spec;
  const Dims& d;
  float scale = 1.f;
  bool rope = false;
  RopeTable rope_table;
  std::vector<double> goat_omega;  // [rank]
  int goat_rank = 0;
  bool alibi = false;
  bool key_bias = false;

  // The relative priors (GOAT kappa and ALiBi) depend only on d = qpos - kpos. When
  // the positions span a modest range they are tabulated once per query head,
  // rel[(tb * n_heads + h) * rel_range + d - rel_min], and a tile adds them with
  // one lookup per logit instead of a rank-2R product (tb = batch, or 0 when all
  // batch entries share positions).
  std::vector<float> rel;
  int64_t rel_min = 0, rel_range = 0;
  bool rel_per_batch = false;
  bool use_rel_table() const { return !rel.empty(); }
  const float* rel_row(int64_t b, int64_t h) const {
    return rel.data() + ((rel_per_batch ? b : 0) * d.n_heads + h) * rel_range;
  }
  // GOAT query/key features (qf, kf) are only computed when a tile needs the
  // rank-2R product: without the table, or for the backward's d(lambda).
  bool need_goat_features = false;

  // cos and sin (times the RoPE mscale) of every rotated pair for positions
  // [rope_pos0, rope_pos0 + rope_npos): row p - rope_pos0 holds the pairs'
  // cosines, then their sines. Kept by the calling thread across calls (a
  // model step's layers share their positions), so that the keys of a
  // streaming cache, rotated anew on every call, cost a lookup per pair rather
  // than a sine and cosine. Null when the positions are too sparse.
  std::shared_ptr<const std::vector<float>> rope_cs;
  int64_t rope_pos0 = 0, rope_npos = 0;

  TileContext(const AttnSpec& s, const Dims& dims, bool for_backward = false);
  int goat_features() const { return 2 * goat_rank; }

 private:
  void build_rel_table();
  void build_rope_cs();
};

// Keys (and GOAT key features) of one (batch, kv head), ready for tiles: f32,
// rotated. When the input is f32 without RoPE the keys are read in place.
struct KeySet {
  const float* k = nullptr;  // row j at k + j * k_stride
  int64_t k_stride = 0;
  std::vector<float> k_storage;
  std::vector<float> features;  // [n_k, 2R]: cos(w kpos) | sin(w kpos)
  std::vector<int32_t> pos;     // [n_k]
  // Min / max key position of each key block (for skipping and mask-free tiles).
  std::vector<int32_t> block_min, block_max;
  std::vector<uint8_t> block_consecutive;  // positions of the block are p, p+1, p+2, ...
};
// Builds the KeySet of (b, g). Parallel inside (call outside parallel regions).
// same_batch: an already built KeySet of the same batch entry, whose positions
// (which depend on b only) are copied instead of computed again.
void prepare_keys(const TileContext& c, const TensorView& k, int64_t b, int64_t g, KeySet& ks,
                  const KeySet* same_batch = nullptr);

// Applies the transpose of the RoPE rotation (incl. its mscale) of position pos to x
// (head_dim floats): maps a gradient w.r.t. a rotated vector to one w.r.t. the input.
void rotate_back(const TileContext& c, float* x, int32_t pos);

// Values of one (batch, kv head) for a key block, as f32 rows: either a pointer
// into the input (f32) or converted into `scratch`.
const float* value_block(const TensorView& v, int64_t b, int64_t g, int64_t j0, int64_t nk,
                         float* scratch, int64_t& ld);

// A block of query rows sharing kv head g of batch b.
struct RowBlock {
  int64_t b = 0, g = 0;
  int n = 0;
  int32_t head[kBlockQ];
  int32_t query[kBlockQ];
  int32_t qpos[kBlockQ];
  int32_t qpos_min = 0, qpos_max = 0;
  float* q = nullptr;   // [n, head_dim]: rotated, multiplied by scale unless softcap
  float* qf = nullptr;  // [n, 2R]: GOAT query features for kv head g
};
// Loads q rows into rb.q / rb.qf (buffers owned by the caller, sized kBlockQ*head_dim and
// kBlockQ*2R). rb.b, g, n, head[], query[] must be set; fills qpos and min/max.
void load_rows(const TileContext& c, const TensorView& q, RowBlock& rb);

enum class TileMask : uint8_t { Hidden, Partial, Visible };
// Classifies the tile of rows rb against key block [j0, j0+nk) from position bounds.
TileMask classify_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks, int64_t j0,
                       int64_t nk);

// s[r * ld + j] = logit z of row r and key j0+j (-inf where hidden).
// `pre_cap` (optional, same layout) receives the scaled content logit before softcap
// (what the backward needs for the softcap derivative).
// `values` (optional): the values of the same keys, fetched into the caches
// while the logits are computed (few-row tiles), for the P.V that follows.
void logits_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks, int64_t j0, int nk,
                 TileMask mask, float* s, int ld, float* pre_cap = nullptr,
                 const TensorView* values = nullptr);

// Online-softmax state of a row block.
struct RowState {
  float m[kBlockQ];
  float l[kBlockQ];
  float t[kBlockQ];  // sum of e^(z-m) * (z-m), for the entropy
  float* acc = nullptr;  // [n, v_dim]
  void reset(int n, int64_t v_dim);
};

// One flash step: logits of the tile, running max/sum update, acc += P V.
// s is scratch of kBlockQ*kBlockK floats, vscratch kBlockK*v_dim floats.
void accumulate_tile(const TileContext& c, const RowBlock& rb, const KeySet& ks,
                     const TensorView& v, int64_t j0, int nk, bool want_entropy, RowState& st,
                     float* s, float* vscratch);

// Merges state `o` into `st` (split-K): rows must match.
void merge_state(int n, int64_t v_dim, RowState& st, const RowState& o);

// Writes o, lse and entropy for the rows of rb from the final state (adds the sink logit).
void finalize_rows(const TileContext& c, const RowBlock& rb, const RowState& st,
                   const TensorView& o, const TensorView& lse, const TensorView& entropy);

}  // namespace sinklab::attn
