// Token sampling: repetition penalty, then temperature, top-k, top-p and min-p
// in llama.cpp's order; greedy when the temperature is 0.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "sinklab/model.h"

namespace sinklab {

Sampler::Sampler(SamplerOptions opts) : opts_(opts), state_(opts.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {
  check(opts.temperature >= 0.f, "sampler: temperature must be >= 0");
  check(opts.top_k >= 0, "sampler: top-k must be >= 0");
  check(opts.top_p > 0.f && opts.top_p <= 1.f, "sampler: top-p must be in (0, 1]");
  check(opts.min_p >= 0.f && opts.min_p < 1.f, "sampler: min-p must be in [0, 1)");
  check(opts.repeat_penalty > 0.f, "sampler: repeat penalty must be > 0");
}

double Sampler::uniform() {  // xorshift64*, uniform in [0, 1)
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return double((state_ * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  check(!logits.empty(), "sampler: empty logits");
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_[i] = {logits[i], int32_t(i)};
  if (opts_.repeat_penalty != 1.f && opts_.repeat_last_n != 0) {
    const size_t n = opts_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(opts_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - ptrdiff_t(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || size_t(id) >= cand_.size()) continue;
      float& l = cand_[size_t(id)].first;
      l = l > 0 ? l / opts_.repeat_penalty : l * opts_.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (opts_.temperature == 0.f) return std::min_element(cand_.begin(), cand_.end(), by_logit)->second;
  size_t keep = cand_.size();
  if (opts_.top_k > 0) keep = std::min(keep, size_t(opts_.top_k));
  std::partial_sort(cand_.begin(), cand_.begin() + ptrdiff_t(keep), cand_.end(), by_logit);
  cand_.resize(keep);
  // Softmax at the temperature.
  const float m = cand_[0].first;
  double sum = 0;
  std::vector<double> p(keep);
  for (size_t i = 0; i < keep; ++i) sum += (p[i] = std::exp(double(cand_[i].first - m) / opts_.temperature));
  for (auto& x : p) x /= sum;
  if (opts_.top_p < 1.f) {
    double cum = 0;
    size_t k = 0;
    while (k < keep && cum < opts_.top_p) cum += p[k++];
    keep = std::max<size_t>(k, 1);
  }
  if (opts_.min_p > 0.f) {
    size_t k = 1;
    while (k < keep && p[k] >= opts_.min_p * p[0]) ++k;
    keep = k;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  double r = uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    r -= p[i];
    if (r < 0) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace sinklab
