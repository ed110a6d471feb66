// The merge loop shared by all BPE tokenizers: repeatedly merge the adjacent
// pair with the lowest priority (leftmost on ties) until no pair merges.
// A heap with lazy invalidation makes it O(n log n) while choosing exactly
// the pair the naive "scan all pairs, merge the best" loop would.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace sinklab::tok {

struct MergeCandidate {
  bool ok = false;
  double priority = 0;     // lower merges first
  int32_t merged_id = -1;  // id of the merged symbol
};

// find(left_id, right_id) -> MergeCandidate. Rewrites `ids` in place.
template <typename Find>
void merge_symbols(std::vector<int32_t>& ids, Find&& find) {
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n < 2) return;
  struct Entry {
    double priority;
    int32_t pos, left_id, right_id, merged_id;
  };
  const auto later = [](const Entry& a, const Entry& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.pos > b.pos;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(later)> heap(later);
  std::vector<int32_t> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const auto push_pair = [&](int32_t i) {
    const int32_t j = next[i];
    if (j < 0) return;
    const MergeCandidate c = find(ids[i], ids[j]);
    if (c.ok) heap.push(Entry{c.priority, i, ids[i], ids[j], c.merged_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    if (!alive[e.pos]) continue;
    const int32_t j = next[e.pos];
    if (j < 0 || ids[e.pos] != e.left_id || ids[j] != e.right_id) continue;  // stale
    ids[e.pos] = e.merged_id;
    alive[j] = 0;
    next[e.pos] = next[j];
    if (next[j] >= 0) prev[next[j]] = e.pos;
    if (prev[e.pos] >= 0) push_pair(prev[e.pos]);
    push_pair(e.pos);
  }
  int32_t out = 0;
  for (int32_t i = 0; i < n; ++i)
    if (alive[i]) ids[out++] = ids[i];
  ids.resize(out);
}

}  // namespace sinklab::tok
