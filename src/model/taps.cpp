#include <algorithm>

#include "sinklab/model.h"

namespace sinklab {

namespace {
bool matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == name;
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
