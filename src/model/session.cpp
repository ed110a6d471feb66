// The decoder forward of a Session: batched prefill and decode through the same
// code, with the KV cache in a StreamingCache (policy + slot storage) and named
// taps. Keys are stored raw and rotated in the kernel (reindex, absolute) or
// rotated on insert (shift, and dense caches, whose positions never change).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <unistd.h>

#include "key_mask.h"
#include "ops.h"
#include "weights.h"

namespace sinklab {

struct Session::Buffers {
  std::vector<float> x, h, q, k, v, att, tmp, g, u, a, f, router, logits;
  std::vector<int32_t> tokens;
  std::vector<float> prior_bias, alibi;
  std::vector<float> column_sums;  // [heads, n_ctx], for policies that evict by attention
  std::vector<float> layer_bias;   // the key bias of one layer, for policies that hide tokens per layer
};

Session::Session(std::shared_ptr<const Model> model, SessionOptions opts)
    : model_(std::move(model)), opts_(std::move(opts)) {
  check(model_ != nullptr, "Session: model is null");
  const ModelConfig& c = model_->config();
  check(opts_.context >= 0, "Session: context must be >= 0 (got " + std::to_string(opts_.context) + ")");
  spec_ = with_default_sizes(parse_cache_spec(opts_.cache),
                             opts_.context > 0 ? opts_.context : (c.max_seq > 0 ? c.max_seq : 4096));
  const bool rope = c.rope.style != RopeStyle::None;
  check(!kv_policy_info(spec_.policy).needs_sink_logits || c.sink_logits,
        "Session: cache policy 'sink-logit' needs a model with learned sink logits, and this " +
            c.arch + " model has none (use 'sink' or 'window')");
  // Without RoPE, positions reach the model only through a prior (GOAT,
  // ALiBi), which can read reindexed or absolute positions; with neither,
  // positions change nothing but the causal order and absolute is used.
  const bool prior = c.prior.kind != PriorKind::None;
  if (opts_.positions.empty()) {
    contract_ = rope || prior ? PositionContract::Reindex : PositionContract::Absolute;
  } else {
    contract_ = position_contract_from_name(opts_.positions);
    check(rope || contract_ != PositionContract::Shift,
          "Session: positions 'shift' rotate stored keys, but this model has no RoPE "
          "(use 'reindex' or 'absolute')");
    if (!rope && !prior) contract_ = PositionContract::Absolute;
  }
  streaming_ = kv_policy_info(spec_.policy).streaming;
  check(opts_.attn_window >= 0 && opts_.attn_sink_keys >= 0,
        "Session: attn_window and attn_sink_keys must be >= 0");
  check(!streaming_ || (opts_.attn_window == 0 && opts_.attn_sink_keys == 0),
        "Session: attn_window and attn_sink_keys apply to dense caches only");
  storage_contract_ = !streaming_ && rope ? PositionContract::Shift : contract_;
  make_caches();
  context_ = cache_->policy().capacity();
  buf_ = std::make_unique<Buffers>();
  if (c.prior.kind == PriorKind::Alibi) buf_->alibi = alibi_slopes(int(c.n_heads));  // per model, not per layer
}

// The policy's cache, and for models with sliding and full layers a second
// cache of the largest window (plus one forward's tokens) for the sliding
// layers. It keeps absolute positions: a sliding layer sees only its window,
// whose relative distances every contract preserves.
void Session::make_caches() {
  const ModelConfig& c = model_->config();
  const int n_layers = int(c.n_layers);
  const int32_t wmax = *std::max_element(c.layer_window.begin(), c.layer_window.end());
  const int n_local = int(std::count_if(c.layer_window.begin(), c.layer_window.end(), [](int32_t w) { return w > 0; }));
  const bool split = opts_.local_layer_cache && opts_.attn_window == 0 && n_local > 0 && n_local < n_layers;
  check(split || !c.rope_local || n_local == 0,
        "Session: this model's sliding layers have their own RoPE and need their own cache (local_layer_cache)");
  storage_layer_.assign(size_t(n_layers), 0);
  int n_main = 0, n_loc = 0;
  for (int l = 0; l < n_layers; ++l) storage_layer_[size_t(l)] = split && c.layer_window[size_t(l)] > 0 ? n_loc++ : n_main++;
  // Policies that keep tokens per layer are sized by the layers of their cache.
  if (kv_policy_reads(spec_.policy, "layers")) {
    if (spec_.options.layers == 0) spec_.options.layers = n_main;
    check(spec_.options.layers == n_main, "Session: cache option 'layers' is " + std::to_string(spec_.options.layers) +
                                              " but this model's cache has " + std::to_string(n_main) +
                                              " layers (leave 'layers' out)");
  }
  cache_ = make_cache(spec_, n_main, storage_contract_, c.rope);
  if (!split) return;
  check(opts_.local_batch >= 0, "Session: local_batch must be >= 0");
  local_chunk_ = opts_.local_batch > 0 ? opts_.local_batch : 256;
  local_spec_ = parse_cache_spec("window:window=" + std::to_string(int64_t(wmax) + local_chunk_ - 1));
  local_cache_ = make_cache(local_spec_, n_loc, PositionContract::Absolute, c.rope_local ? *c.rope_local : c.rope);
}

std::unique_ptr<StreamingCache> Session::make_cache(const CacheSpec& spec, int n_layers, PositionContract contract,
                                                   const RopeSpec& rope) const {
  const ModelConfig& c = model_->config();
  std::unique_ptr<KvPolicy> policy = make_kv_policy(spec);
  const int64_t cap = policy->capacity();
  check(cap <= (int64_t(1) << 30), "Session: context " + std::to_string(cap) + " is too large");
  // The whole cache must fit in this machine's memory: a streaming cache
  // promises fixed memory, so it is refused up front rather than paged in.
  const int64_t kv_bytes = 2 * int64_t(n_layers) * c.n_kv_heads * cap * c.head_dim * 4;
  const int64_t ram = int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGE_SIZE));
  check(ram <= 0 || kv_bytes <= ram,
        "Session: a KV cache of " + std::to_string(cap) + " tokens needs " + std::to_string(kv_bytes >> 20) +
            " MiB, more than this machine's " + std::to_string(ram >> 20) + " MiB of memory; lower the cache budget");
  KvStorageConfig sc;
  sc.n_layers = n_layers;
  sc.n_kv_heads = int(c.n_kv_heads);
  sc.head_dim = int(c.head_dim);
  sc.dtype = DType::F32;
  return std::make_unique<StreamingCache>(std::move(policy), sc, contract, rope);
}

Session::~Session() = default;

void Session::reset() {
  cache_->restart(make_kv_policy(spec_));  // keeps the KV memory
  if (local_cache_) local_cache_->restart(make_kv_policy(local_spec_));
  n_past_ = 0;
  last_logits_.clear();
}

std::span<const float> Session::logits() const {
  check(!last_logits_.empty(), "Session: no logits yet (feed tokens first)");
  return last_logits_;
}

EvictStats Session::evict_stats() const {
  EvictStats e;
  e.fed = n_past_;
  e.cached = cache_->policy().size();
  e.capacity = context_;
  e.evicted = e.fed - e.cached;
  e.rows_rotated = cache_->rows_rotated();
  e.bytes = cache_->storage().bytes();
  if (local_cache_) {
    e.local_bytes = local_cache_->storage().bytes();
    e.local_capacity = local_cache_->policy().capacity();
    e.local_layers = local_cache_->storage().config().n_layers;
    e.bytes += e.local_bytes;
  }
  return e;
}

void Session::feed(std::span<const int32_t> ids, std::vector<float>* all_logits) {
  feed(ids, std::span<const TokenMeta>(), all_logits);
}

void Session::feed(std::span<const int32_t> ids, std::span<const TokenMeta> meta,
                   std::vector<float>* all_logits) {
  const ModelConfig& c = model_->config();
  const int64_t n = int64_t(ids.size());
  check(n > 0, "Session::feed: no tokens");
  check(meta.empty() || meta.size() == ids.size(),
        "Session::feed: " + std::to_string(meta.size()) + " metadata entries for " + std::to_string(n) +
            " tokens (expected one per token)");
  // Checked up front so that no batch stops half-way inside the policy.
  for (size_t i = 0; i < meta.size(); ++i) {
    check(meta[i].modality <= uint8_t(Modality::Audio),
          "Session::feed: token " + std::to_string(i) + " has modality " + std::to_string(meta[i].modality) +
              " (expected 0 text, 1 vision or 2 audio)");
    check(meta[i].round >= 0 && (i == 0 || meta[i].round >= meta[i - 1].round),
          "Session::feed: round " + std::to_string(meta[i].round) + " of token " + std::to_string(i) +
              " is negative or below the previous token's (round and chunk ids must not decrease)");
  }
  const int64_t cached = cache_->policy().size();
  check(streaming_ || cached + n <= context_,
        "Session: context full (" + std::to_string(cached) + " + " + std::to_string(n) +
            " tokens > context " + std::to_string(context_) + ")");
  for (int32_t id : ids)
    check(id >= 0 && id < c.vocab, "Session::feed: token id " + std::to_string(id) +
                                       " is outside the vocabulary (0.." + std::to_string(c.vocab - 1) + ")");
  if (all_logits) all_logits->clear();
  std::vector<float> rows;
  const bool batch = kv_policy_info(spec_.policy).batched_append;
  // A batch never evicts: it fills at most the room left, so every query of
  // the batch sees every key the policy kept when its own token arrived. A
  // full cache takes one token at a time (each evicts before it is read).
  for (int64_t done = 0; done < n;) {
    const int64_t room = cache_->policy().batch_room();
    int64_t take = batch && room > 0 ? std::min(n - done, room) : 1;
    if (local_cache_) take = std::min(take, local_chunk_);  // every query keeps its whole window
    feed_chunk(ids.subspan(size_t(done), size_t(take)),
               meta.empty() ? meta : meta.subspan(size_t(done), size_t(take)), all_logits ? &rows : nullptr);
    if (all_logits) all_logits->insert(all_logits->end(), rows.begin(), rows.end());
    done += take;
  }
}

// One chunk's forward: model, sizes, scratch and the taps. Tap names are
// built only when some tap is set (a decode step would build ~150).
struct Session::Forward {
  const ModelConfig& c;
  const ModelWeights& w;
  const Taps& taps;
  Buffers& B;
  int64_t n;
  std::span<const int32_t> tokens;  // stream indices of the rows

  void tap(const std::string& name, float* data, int64_t rows, int64_t cols, int layer,
           std::span<const int32_t> row_ids = {}) const {
    if (taps.empty() || !taps.wants(name)) return;
    taps.fire(TapEvent{name, data, rows, cols, layer, tokens, row_ids});
  }
  std::string blk(int l, const char* what) const {
    return taps.empty() ? std::string() : "blk." + std::to_string(l) + "." + what;
  }

  // A block's output B.f (through its post-norm when the model has one, as
  // Gemma does) added to the residual stream B.x, tapped before and after.
  void add_to_residual(const std::vector<float>& post_norm, int layer, const char* out_name,
                       const char* resid_name) const {
    const int64_t D = c.dim;
    if (!post_norm.empty()) ops::rmsnorm(B.f.data(), post_norm.data(), n, D, c.norm_eps, B.f.data());
    tap(blk(layer, out_name), B.f.data(), n, D, layer);
    for (int64_t i = 0; i < n * D; ++i) B.x[size_t(i)] += B.f[size_t(i)];
    tap(blk(layer, resid_name), B.x.data(), n, D, layer);
  }

  // Gated feed-forward of one expert (or the dense FFN) on `rows` rows of h:
  // down(act(gate h) * up h), with the model's activation and optional biases.
  void expert_ffn(const ExpertWeights& e, const float* h, int64_t rows, int64_t hidden, float* out, int layer,
                  const std::string& act_name) const {
    B.g.resize(size_t(rows * hidden));
    B.u.resize(B.g.size());
    B.a.resize(B.g.size());
    const auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
    const ops::MatmulJob gate_up[] = {{&e.gate, B.g.data(), bias(e.gate_bias)}, {&e.up, B.u.data(), bias(e.up_bias)}};
    ops::matmul_group(gate_up, h, rows);
    const int64_t n = rows * hidden;
    switch (c.ffn_act) {
      case FfnActivation::SiLU: ops::swiglu(B.g.data(), B.u.data(), n, B.a.data()); break;
      case FfnActivation::GeluTanh: ops::geglu_tanh(B.g.data(), B.u.data(), n, B.a.data()); break;
      case FfnActivation::ClampedSwiGLU:
        ops::clamped_swiglu(B.g.data(), B.u.data(), n, c.swiglu_limit, c.swiglu_alpha, B.a.data());
        break;
    }
    if (!act_name.empty()) tap(act_name, B.a.data(), rows, hidden, layer);
    ops::matmul(e.down, B.a.data(), rows, out, bias(e.down_bias));
  }
};

struct Session::Placement {
  StreamingCache* cache = nullptr;
  const RopeSpec* rope = nullptr;    // the RoPE of the layers in this cache
  std::vector<int32_t> slots;        // the storage slot of each new token
  CachePositions pos;                // the position of every slot's key
  std::vector<int32_t> q_pos;        // each new token's query position
  std::vector<float> key_bias;       // 0 for live slots, -inf for free ones
  std::vector<int64_t> slot_tokens;  // stream index in each slot (only for key masks)
  std::vector<RopeAngles> angles;    // per new token, when keys are rotated before storing
  bool rotate_outside = false;
  int64_t n_ctx = 0;                 // slots in use (the kernel's key count)
};

// Appends the chunk to a cache: slots, key positions (a token's query
// position is its own key position), key bias, and rotation angles.
Session::Placement Session::place_chunk(StreamingCache& cache, bool rotate_outside, const RopeSpec& rope,
                                        std::span<const TokenMeta> given, int64_t n) {
  Placement at;
  at.cache = &cache;
  at.rope = &rope;
  std::vector<TokenMeta> meta(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (!given.empty()) meta[size_t(i)] = given[size_t(i)];
    meta[size_t(i)].index = n_past_ + i;
  }
  at.slots = cache.append(meta);
  for (int32_t s : at.slots) check(s >= 0, "Session: a token was evicted within its own batch");
  at.pos = cache.slot_positions(n_past_ + n);
  at.q_pos.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) at.q_pos[size_t(i)] = at.pos.keys[size_t(at.slots[size_t(i)])];
  at.key_bias = cache.slot_key_bias();
  // Key masks (sink ablation) address tokens by stream index: which token sits in each slot.
  if (!key_masks_.empty()) at.slot_tokens = key_mask::slot_tokens(cache, cache.storage().high_water());
  at.n_ctx = cache.storage().high_water();
  at.rotate_outside = rotate_outside;
  if (at.rotate_outside) {
    const RopeTable table = rope_table(rope, int(model_->config().head_dim));
    for (int64_t i = 0; i < n; ++i) at.angles.push_back(rope_angles(table, double(at.q_pos[size_t(i)])));
  }
  return at;
}

// Norm, q/k/v, keys and values into the cache, attention through the AttnSpec,
// output projection and the residual add.
void Session::attention_block(Forward& fw, int l, Placement& at) {
  const ModelConfig& c = fw.c;
  const LayerWeights& L = fw.w.layers[size_t(l)];
  Buffers& B = fw.B;
  const int64_t n = fw.n, D = c.dim, hd = c.head_dim, H = c.n_heads, Hkv = c.n_kv_heads;
  const int64_t qd = H * hd, kvd = Hkv * hd, n_ctx = at.n_ctx;
  KvStorage& store = at.cache->storage();
  const int sl = storage_layer_[size_t(l)];
  ops::rmsnorm(B.x.data(), L.attn_norm.data(), n, D, c.norm_eps, B.h.data());
  fw.tap(fw.blk(l, "attn_norm"), B.h.data(), n, D, l);
  const auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  const ops::MatmulJob qkv[] = {
      {&L.wq, B.q.data(), bias(L.bq)}, {&L.wk, B.k.data(), bias(L.bk)}, {&L.wv, B.v.data(), bias(L.bv)}};
  ops::matmul_group(qkv, B.h.data(), n);
  if (c.qk_norm) {
    ops::rmsnorm(B.q.data(), L.q_norm.data(), n * H, hd, c.norm_eps, B.q.data());
    ops::rmsnorm(B.k.data(), L.k_norm.data(), n * Hkv, hd, c.norm_eps, B.k.data());
  } else if (c.qk_norm_full) {
    ops::rmsnorm(B.q.data(), L.q_norm.data(), n, qd, c.norm_eps, B.q.data());
    ops::rmsnorm(B.k.data(), L.k_norm.data(), n, kvd, c.norm_eps, B.k.data());
  }
  fw.tap(fw.blk(l, "q"), B.q.data(), n, qd, l);
  fw.tap(fw.blk(l, "k"), B.k.data(), n, kvd, l);
  fw.tap(fw.blk(l, "v"), B.v.data(), n, kvd, l);
  for (int64_t i = 0; i < n; ++i) {
    if (at.rotate_outside) {
      const RopeAngles& a = at.angles[size_t(i)];
      for (int64_t hh = 0; hh < H; ++hh) rope_rotate(*at.rope, a, B.q.data() + i * qd + hh * hd);
      for (int64_t g = 0; g < Hkv; ++g) rope_rotate(*at.rope, a, B.k.data() + i * kvd + g * hd);
    }
    for (int64_t g = 0; g < Hkv; ++g)
      store.write(sl, int(g), at.slots[size_t(i)], B.k.data() + i * kvd + g * hd, B.v.data() + i * kvd + g * hd);
  }
  AttnSpec spec;
  spec.window = opts_.attn_window > 0 ? int(opts_.attn_window) : c.layer_window[size_t(l)];
  spec.sink_keys = int(opts_.attn_sink_keys);
  spec.q_pos = at.q_pos.data();
  spec.k_pos = at.pos.keys.data();
  if (!at.rotate_outside) spec.rope = *at.rope;
  spec.scale = c.attn_scale;
  spec.softcap = c.attn_softcap;
  // Policies that keep some tokens for other layers only hide them here.
  std::vector<float>* key_bias = &at.key_bias;
  if (at.cache == cache_.get() && kv_policy_info(spec_.policy).masks_per_layer) {
    B.layer_bias = at.key_bias;
    at.cache->hide_from_layer(sl, B.layer_bias);
    key_bias = &B.layer_bias;
  }
  spec.key_bias = TensorView::strided(key_bias->data(), DType::F32, {1, Hkv, n_ctx}, {0, 0, 1});
  if (!L.sinks.empty()) spec.sink_logits = L.sinks.data();
  if (c.relu_attention) spec.normalization = AttnNormalization::Relu;
  if (c.prior.kind == PriorKind::Alibi) {
    spec.alibi_slopes = B.alibi.data();  // computed once, when the session was made
  } else if (c.prior.kind == PriorKind::Goat) {
    spec.goat = GoatRelative{c.prior.goat_rank, c.prior.goat_base, L.prior_sym.data(), L.prior_asym.data()};
    // u per kv head and slot, on top of the cache's own bias (-inf for empty slots).
    B.prior_bias.resize(size_t(Hkv * n_ctx));
    goat_key_prior(c.prior, Hkv, L.prior_key_w1.data(), L.prior_key_b1.data(), L.prior_key_w2.data(),
                   L.prior_first.data(), std::span<const int32_t>(at.pos.keys.data(), size_t(n_ctx)),
                   B.prior_bias.data());
    for (int64_t g = 0; g < Hkv; ++g)
      for (int64_t s = 0; s < n_ctx; ++s) B.prior_bias[size_t(g * n_ctx + s)] += (*key_bias)[size_t(s)];
    spec.key_bias = TensorView::strided(B.prior_bias.data(), DType::F32, {1, Hkv, n_ctx}, {0, n_ctx, 1});
  }
  const TensorView qv = TensorView::strided(B.q.data(), DType::F32, {1, H, n, hd}, {n * qd, hd, qd, 1});
  const TensorView ov = TensorView::strided(B.att.data(), DType::F32, {1, H, n, hd}, {n * qd, hd, qd, 1});
  // Materialised probabilities (float64 oracle) only when tapped; key masks applied to both.
  const std::string probs_name = fw.blk(l, "attn_probs");
  const bool want_probs = !taps_.empty() && taps_.wants(probs_name);
  std::vector<float> probs;
  // Policies that evict by attention see the kernel's column sums of every layer of their cache.
  const bool observe = at.cache == cache_.get() && kv_policy_info(spec_.policy).needs_attention;
  if (observe) B.column_sums.resize(size_t(H * n_ctx));
  key_mask::attend(spec, key_masks_, l, at.slot_tokens, qv, store.keys(sl), store.values(sl), ov,
                   want_probs ? &probs : nullptr, observe ? B.column_sums.data() : nullptr);
  if (observe) at.cache->observe_attention(sl, int(H), n, n_past_, B.column_sums);
  if (want_probs) fw.tap(probs_name, probs.data(), H * n, n_ctx, l);
  fw.tap(fw.blk(l, "attn_ctx"), B.att.data(), n, qd, l);
  ops::matmul(L.wo, B.att.data(), n, B.f.data(), L.bo.empty() ? nullptr : L.bo.data());
  fw.add_to_residual(L.post_attn_norm, l, "attn_out", "resid_mid");
}

// Norm, the dense or mixture-of-experts feed-forward, and the residual add.
void Session::ffn_block(Forward& fw, int l) {
  const ModelConfig& c = fw.c;
  const LayerWeights& L = fw.w.layers[size_t(l)];
  Buffers& B = fw.B;
  const int64_t n = fw.n, D = c.dim;
  ops::rmsnorm(B.x.data(), L.ffn_norm.data(), n, D, c.norm_eps, B.h.data());
  fw.tap(fw.blk(l, "ffn_norm"), B.h.data(), n, D, l);
  if (c.moe.n_experts == 0)
    fw.expert_ffn(L.ffn, B.h.data(), n, c.hidden, B.f.data(), l, fw.blk(l, "ffn_act"));
  else
    moe_ffn(fw, l);
  fw.add_to_residual(L.post_ffn_norm, l, "ffn_out", "resid_out");
}

// Router softmax, top-k experts per token (ties to the lower index), each
// expert on its rows, weighted sum; plus the shared expert and its gate.
void Session::moe_ffn(Forward& fw, int l) {
  const ModelConfig& c = fw.c;
  const LayerWeights& L = fw.w.layers[size_t(l)];
  Buffers& B = fw.B;
  const int64_t n = fw.n, D = c.dim;
  const int E = c.moe.n_experts, K = c.moe.n_used;
  B.router.resize(size_t(n * E));
  ops::matmul(L.router, B.h.data(), n, B.router.data(), L.router_bias.empty() ? nullptr : L.router_bias.data());
  for (int64_t i = 0; i < n; ++i) ops::softmax(B.router.data() + i * E, E);
  fw.tap(fw.blk(l, "moe.router_probs"), B.router.data(), n, E, l);
  std::vector<std::vector<std::pair<int32_t, float>>> routed(static_cast<size_t>(E));
  std::vector<int> order(static_cast<size_t>(E));
  for (int64_t i = 0; i < n; ++i) {
    const float* p = B.router.data() + i * E;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float norm = 0;
    for (int t = 0; t < K; ++t) norm += p[order[size_t(t)]];
    for (int t = 0; t < K; ++t) {
      const int e = order[size_t(t)];
      routed[size_t(e)].push_back({int32_t(i), c.moe.norm_topk ? p[e] / norm : p[e]});
    }
  }
  std::fill(B.f.begin(), B.f.end(), 0.f);
  std::vector<float> hin, out;
  std::vector<int32_t> rows;
  for (int e = 0; e < E; ++e) {
    const auto& r = routed[size_t(e)];
    if (r.empty()) continue;
    const int64_t m = int64_t(r.size());
    hin.resize(size_t(m * D));
    out.resize(size_t(m * D));
    rows.resize(size_t(m));
    for (int64_t t = 0; t < m; ++t) {
      rows[size_t(t)] = r[size_t(t)].first;
      std::copy_n(B.h.data() + r[size_t(t)].first * D, D, hin.data() + t * D);
    }
    fw.expert_ffn(L.experts[size_t(e)], hin.data(), m, c.moe.expert_hidden, out.data(), l, "");
    fw.tap(fw.blk(l, ("moe.expert." + std::to_string(e) + ".down_out").c_str()), out.data(), m, D, l, rows);
    for (int64_t t = 0; t < m; ++t) {
      float* dst = B.f.data() + r[size_t(t)].first * D;
      const float wgt = r[size_t(t)].second;
      for (int64_t d = 0; d < D; ++d) dst[d] += wgt * out[size_t(t * D + d)];
    }
  }
  if (c.moe.shared_hidden == 0) return;
  out.resize(size_t(n * D));
  fw.expert_ffn(L.shared, B.h.data(), n, c.moe.shared_hidden, out.data(), l, "");
  for (int64_t i = 0; i < n; ++i) {
    float scale = 1.f;
    if (!L.shared_gate.empty()) {
      double z = 0;
      for (int64_t d = 0; d < D; ++d) z += double(L.shared_gate[size_t(d)]) * B.h[size_t(i * D + d)];
      scale = float(1.0 / (1.0 + std::exp(-z)));
    }
    for (int64_t d = 0; d < D; ++d) B.f[size_t(i * D + d)] += scale * out[size_t(i * D + d)];
  }
}

// Final norm and the classifier: logits of the last row, or of every row.
void Session::lm_head(Forward& fw, std::vector<float>* all_logits) {
  const ModelConfig& c = fw.c;
  Buffers& B = fw.B;
  const int64_t n = fw.n, D = c.dim;
  ops::rmsnorm(B.x.data(), fw.w.out_norm.data(), n, D, c.norm_eps, B.h.data());
  fw.tap("output_norm", B.h.data(), n, D, -1);
  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  B.logits.resize(size_t(rows * c.vocab));
  ops::matmul(fw.w.output, B.h.data() + first * D, rows, B.logits.data());
  if (c.final_softcap > 0)
    for (float& z : B.logits) z = c.final_softcap * std::tanh(z / c.final_softcap);
  fw.tap("logits", B.logits.data(), rows, c.vocab, -1);
  last_logits_.assign(B.logits.end() - c.vocab, B.logits.end());
  if (all_logits) *all_logits = B.logits;
}

void Session::feed_chunk(std::span<const int32_t> ids, std::span<const TokenMeta> given,
                         std::vector<float>* all_logits) {
  const ModelConfig& c = model_->config();
  const ModelWeights& w = model_->weights();
  const int64_t n = int64_t(ids.size());
  Buffers& B = *buf_;
  const int64_t D = c.dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  B.tokens.resize(size_t(n));
  std::iota(B.tokens.begin(), B.tokens.end(), int32_t(n_past_));
  for (auto [buf, size] : {std::pair{&B.x, D}, {&B.h, D}, {&B.q, qd}, {&B.k, kvd}, {&B.v, kvd}, {&B.att, qd},
                           {&B.f, D}})
    buf->resize(size_t(n * size));
  Forward fw{c, w, taps_, B, n, B.tokens};
  for (int64_t i = 0; i < n; ++i) ops::matrix_row(w.embed, ids[size_t(i)], B.x.data() + i * D);
  if (c.embed_scale != 1.f)
    for (float& x : B.x) x *= c.embed_scale;
  fw.tap("token_embd", B.x.data(), n, D, -1);
  Placement at = place_chunk(*cache_, storage_contract_ == PositionContract::Shift, c.rope, given, n);
  Placement local;
  if (local_cache_) local = place_chunk(*local_cache_, false, c.rope_local ? *c.rope_local : c.rope, given, n);
  for (int l = 0; l < int(c.n_layers); ++l) {
    attention_block(fw, l, local_cache_ && c.layer_window[size_t(l)] > 0 ? local : at);
    ffn_block(fw, l);
  }
  lm_head(fw, all_logits);
  n_past_ += n;
}

}  // namespace sinklab
