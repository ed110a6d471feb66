// Key masks: a -inf key bias on the slots of the hidden tokens. Masks that treat
// every query head of a kv head alike ride on the per-kv-head key bias in one
// kernel call; head-specific masks under GQA run one call per query head.
#include "key_mask.h"

#include <algorithm>
#include <cmath>

namespace sinklab {

int Session::add_key_mask(KeyMask mask) {
  const ModelConfig& c = model_->config();
  check(!mask.tokens.empty(), "key mask: no token indices given (which keys should be hidden?)");
  for (int64_t t : mask.tokens)
    check(t >= 0, "key mask: token index " + std::to_string(t) + " is negative");
  for (int l : mask.layers)
    check(l >= 0 && l < c.n_layers, "key mask: layer " + std::to_string(l) + " is out of range (the model has layers 0.." +
                                        std::to_string(c.n_layers - 1) + ")");
  for (int h : mask.heads)
    check(h >= 0 && h < c.n_heads, "key mask: head " + std::to_string(h) + " is out of range (the model has heads 0.." +
                                       std::to_string(c.n_heads - 1) + ")");
  key_masks_.emplace_back(next_key_mask_id_, std::move(mask));
  return next_key_mask_id_++;
}

void Session::remove_key_mask(int id) {
  std::erase_if(key_masks_, [id](const std::pair<int, KeyMask>& m) { return m.first == id; });
}

namespace key_mask {

namespace {

template <typename T>
bool contains(const std::vector<T>& v, T x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TensorView head_slice(const TensorView& t, int64_t head) {
  TensorView s = t;
  s.data = t.at(0, head);
  s.shape[1] = 1;
  return s;
}

void forward(const AttnSpec& spec, const TensorView& q, const TensorView& k, const TensorView& v,
             const TensorView& o, std::vector<float>* probs, size_t probs_offset, float* column_sums) {
  if (column_sums) {
    AttnStats stats;
    stats.column_sums = TensorView(column_sums, DType::F32, {1, q.shape[1], k.shape[2]});
    attention_forward(spec, q, k, v, o, {}, &stats);
  } else {
    attention_forward(spec, q, k, v, o);
  }
  if (!probs) return;
  const ReferenceForward ref = attention_reference(spec, q, k, v);
  std::copy(ref.prob.begin(), ref.prob.end(), probs->begin() + std::ptrdiff_t(probs_offset));
}

}  // namespace

std::vector<int64_t> slot_tokens(const StreamingCache& cache, int64_t n_ctx) {
  std::vector<int64_t> out(size_t(n_ctx), -1);
  const std::vector<TokenMeta> alive = cache.survivors();
  const std::vector<int32_t> slots = cache.slots();
  for (size_t i = 0; i < alive.size() && i < slots.size(); ++i)
    if (slots[i] >= 0 && slots[i] < n_ctx) out[size_t(slots[i])] = alive[i].index;
  return out;
}

void attend(const AttnSpec& spec, std::span<const std::pair<int, KeyMask>> masks, int layer,
            std::span<const int64_t> slot_tokens, const TensorView& q, const TensorView& k, const TensorView& v,
            const TensorView& o, std::vector<float>* probs, float* column_sums) {
  const int64_t H = q.shape[1], n = q.shape[2], Hkv = k.shape[1], n_ctx = k.shape[2];
  if (probs) probs->assign(size_t(H * n * n_ctx), 0.f);
  std::vector<const KeyMask*> active;
  for (const auto& [id, m] : masks)
    if (m.layers.empty() || contains(m.layers, layer)) active.push_back(&m);
  if (active.empty()) return forward(spec, q, k, v, o, probs, 0, column_sums);

  // hidden[h * n_ctx + s]: query head h may not see slot s.
  std::vector<char> hidden(size_t(H * n_ctx), 0);
  for (const KeyMask* m : active)
    for (int64_t s = 0; s < n_ctx; ++s) {
      if (slot_tokens[size_t(s)] < 0 || !contains(m->tokens, slot_tokens[size_t(s)])) continue;
      for (int64_t h = 0; h < H; ++h)
        if (m->heads.empty() || contains(m->heads, int(h))) hidden[size_t(h * n_ctx + s)] = 1;
    }
  const int64_t group = H / Hkv;
  auto bias_of = [&](int64_t h, int64_t s) -> float {
    if (hidden[size_t(h * n_ctx + s)]) return -INFINITY;
    return spec.key_bias.empty() ? 0.f : *static_cast<const float*>(spec.key_bias.at(0, h / group, s));
  };
  bool per_kv_head = true;
  for (int64_t h = 0; h < H && per_kv_head; ++h)
    per_kv_head = std::equal(hidden.begin() + h * n_ctx, hidden.begin() + (h + 1) * n_ctx,
                             hidden.begin() + (h - h % group) * n_ctx);
  if (per_kv_head) {
    std::vector<float> bias(size_t(Hkv * n_ctx));
    for (int64_t g = 0; g < Hkv; ++g)
      for (int64_t s = 0; s < n_ctx; ++s) bias[size_t(g * n_ctx + s)] = bias_of(g * group, s);
    AttnSpec masked = spec;
    masked.key_bias = TensorView(bias.data(), DType::F32, {1, Hkv, n_ctx});
    return forward(masked, q, k, v, o, probs, 0, column_sums);
  }
  std::vector<float> bias(static_cast<size_t>(n_ctx));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / group;
    for (int64_t s = 0; s < n_ctx; ++s) bias[size_t(s)] = bias_of(h, s);
    AttnSpec one = spec;
    one.key_bias = TensorView(bias.data(), DType::F32, {1, 1, n_ctx});
    if (spec.sink_logits) one.sink_logits = spec.sink_logits + h;
    if (spec.alibi_slopes) one.alibi_slopes = spec.alibi_slopes + h;
    if (spec.goat.lambda_sym) one.goat.lambda_sym = spec.goat.lambda_sym + g * spec.goat.rank;
    if (spec.goat.lambda_asym) one.goat.lambda_asym = spec.goat.lambda_asym + g * spec.goat.rank;
    forward(one, head_slice(q, h), head_slice(k, g), head_slice(v, g), head_slice(o, h), probs, size_t(h * n * n_ctx),
            column_sums ? column_sums + h * n_ctx : nullptr);
  }
}

}  // namespace key_mask

}  // namespace sinklab
