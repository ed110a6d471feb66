#include <algorithm>

#include "sinklab/model.h"

namespace sinklab {

namespace {
// Glob match where '*' stands for any run of characters ("blk.*.attn_probs",
// "blk.3.*"); linear backtracking to the last '*'.
bool matches(const std::string& pattern, const std::string& name) {
  size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p, ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}
}  // namespace

int Taps::add(const std::string& pattern, TapFn fn) {
  check(!pattern.empty(), "taps: empty tap name");
  check(bool(fn), "taps: empty callback for '" + pattern + "'");
  entries_.push_back({next_id_, pattern, std::move(fn)});
  return next_id_++;
}

void Taps::remove(int id) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.id == id; }),
                 entries_.end());
}

void Taps::clear() { entries_.clear(); }

bool Taps::wants(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return matches(e.pattern, name); });
}

void Taps::fire(const TapEvent& ev) const {
  for (const Entry& e : entries_)
    if (matches(e.pattern, ev.name)) e.fn(ev);
}

}  // namespace sinklab
