// adaptive-layer: adaptive sinks chosen per layer. Each cache layer l keeps
// its own S sink tokens, by its own score
//   score_l = max over kv heads of  mass at layer l / (queries x query heads)
// (adaptive's score at one layer), plus the last W tokens, shared by all
// layers. The storage gives a token one slot in every layer, so it holds the
// union of the layers' sinks plus the window, L*S + W slots; layer l sees only
// its own sinks and the window, the other members of the union are hidden
// from it (hidden_from_layer, a -inf key bias in the Session). A model whose
// layers park on different tokens (token 0 in one layer, a later token in
// another) keeps them all with S = 1, where adaptive's one set for every layer
// would drop one. Ties and a layer's lost token are as in adaptive: the newest
// leaves, and a token that lost its slot at a layer never regains it there.
#include <algorithm>
#include <string>

#include "scored_eviction.h"

namespace sinklab::cache_detail {

namespace {

class PerLayerAdaptivePolicy final : public KvPolicy {
 public:
  PerLayerAdaptivePolicy(int64_t layers, int64_t sink, int64_t window)
      : layers_(layers), sink_(sink), window_(window), mine_(size_t(layers)) {}
  std::string_view name() const override { return "adaptive-layer"; }
  int64_t capacity() const override { return layers_ * sink_ + window_; }
  int64_t size() const override { return int64_t(kept_.size() + recent_.size()); }
  using KvPolicy::append;
  using KvPolicy::survivors;

  void append(const TokenMeta& t, std::vector<TokenMeta>& evicted) override {
    order_.check("adaptive-layer", t);
    order_.accept(t);
    recent_.push_back(t);
    tally_[t.index] = AttentionTally{};
    if (int64_t(recent_.size()) <= window_) return;
    const TokenMeta leaving = recent_.front();  // older than every recent token, newer than every kept one
    recent_.pop_front();
    kept_.push_back(leaving);
    for (int l = 0; l < int(layers_); ++l) compete(l, leaving.index);
    // A token no layer keeps leaves the storage.
    for (size_t i = 0; i < kept_.size();) {
      if (kept_by_any(kept_[i].index)) {
        ++i;
        continue;
      }
      evicted.push_back(kept_[i]);
      tally_.erase(kept_[i].index);
      kept_.erase(kept_.begin() + std::ptrdiff_t(i));
    }
  }

  void survivors(std::vector<TokenMeta>& out) const override {
    out.assign(kept_.begin(), kept_.end());
    out.insert(out.end(), recent_.begin(), recent_.end());
  }

  void observe_attention(const AttentionObservation& obs) override {
    check(obs.n_layers == layers_, "adaptive-layer cache: option 'layers' is " + std::to_string(layers_) +
                                       " but the attention comes from a cache of " + std::to_string(obs.n_layers) +
                                       " layers");
    tally_attention("adaptive-layer", tally_, obs);
  }

  void hidden_from_layer(int layer, std::vector<TokenMeta>& out) const override {
    check(layer >= 0 && layer < layers_, "adaptive-layer cache: layer " + std::to_string(layer) +
                                             " of a cache of " + std::to_string(layers_) + " layers");
    out.clear();
    const std::vector<int64_t>& own = mine_[size_t(layer)];
    for (const TokenMeta& t : kept_)
      if (!std::binary_search(own.begin(), own.end(), t.index)) out.push_back(t);
  }

 private:
  double score(int layer, int64_t index) const {
    const AttentionTally& t = tally_.at(index);
    if (t.query_heads == 0 || t.mass.empty()) return 0.0;
    const size_t heads = t.mass.size() / size_t(layers_);
    const auto first = t.mass.begin() + std::ptrdiff_t(size_t(layer) * heads);
    return *std::max_element(first, first + std::ptrdiff_t(heads)) / double(t.query_heads);
  }

  // `index` joins layer l's sinks; when they are more than S the lowest score
  // leaves (scanning newest first makes ties evict the newest).
  void compete(int l, int64_t index) {
    std::vector<int64_t>& own = mine_[size_t(l)];
    own.push_back(index);  // newer than every kept token: stays ascending
    if (int64_t(own.size()) <= sink_) return;
    size_t victim = own.size() - 1;
    double lowest = score(l, own[victim]);
    for (size_t i = own.size() - 1; i-- > 0;) {
      const double s = score(l, own[i]);
      if (s < lowest) {
        lowest = s;
        victim = i;
      }
    }
    own.erase(own.begin() + std::ptrdiff_t(victim));
  }

  bool kept_by_any(int64_t index) const {
    return std::any_of(mine_.begin(), mine_.end(), [&](const std::vector<int64_t>& own) {
      return std::binary_search(own.begin(), own.end(), index);
    });
  }

  int64_t layers_, sink_, window_;
  std::vector<std::vector<int64_t>> mine_;  // per layer: its sinks, ascending index
  std::vector<TokenMeta> kept_;             // the union of the layers' sinks, ascending index
  std::deque<TokenMeta> recent_;
  std::unordered_map<int64_t, AttentionTally> tally_;  // by stream index, for every survivor
  StreamOrder order_;
};

}  // namespace

std::unique_ptr<KvPolicy> make_adaptive_layer_policy(const CacheOptions& o) {
  require_at_least("adaptive-layer", "layers", o.layers, 1);
  require_at_least("adaptive-layer", "sink", o.sink, 0);
  require_at_least("adaptive-layer", "budget", o.budget, 0);
  int64_t window = o.window;
  if (o.budget > 0) {
    if (o.sink >= o.budget)
      throw Error("adaptive-layer cache: option 'sink' (" + std::to_string(o.sink) +
                  ") must be smaller than option 'budget' (" + std::to_string(o.budget) +
                  ") so that the window keeps at least one token");
    if (o.window > 0 && o.sink + o.window != o.budget)
      throw Error("adaptive-layer cache: options 'sink' + 'window' (" + std::to_string(o.sink) + " + " +
                  std::to_string(o.window) + ") disagree with option 'budget' (" + std::to_string(o.budget) +
                  "); set one of 'window' and 'budget'");
    window = o.budget - o.sink;
  } else if (window <= 0) {
    throw Error("adaptive-layer cache: option 'window' must be >= 1 (got " + std::to_string(window) +
                "), or set option 'budget' = sink + window");
  }
  return std::make_unique<PerLayerAdaptivePolicy>(o.layers, o.sink, window);
}

}  // namespace sinklab::cache_detail
