// Shared plumbing of the probes: argument checks, layer selection, sessions
// sized for the ids, and taps that are removed when the probe returns.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sinklab/model.h"

namespace sinklab::probe_detail {

// Throws Error naming the probe when ids is empty.
void check_ids(std::span<const int32_t> ids, const char* probe);

// Sorted, de-duplicated layers; empty = every layer. Throws Error for a layer
// outside 0..n_layers-1.
std::vector<int> resolve_layers(const ModelConfig& config, const std::vector<int>& layers, const char* probe);

// A fresh Session whose context holds n tokens.
std::unique_ptr<Session> session_for(const std::shared_ptr<const Model>& model, int64_t n, const char* probe);

std::string layer_tap(int layer, const char* what);  // "blk.L.what"

// Adds taps to a session and removes exactly those when destroyed.
class TapGuard {
 public:
  explicit TapGuard(Session& session) : session_(session) {}
  ~TapGuard() {
    for (int id : ids_) session_.taps().remove(id);
  }
  TapGuard(const TapGuard&) = delete;
  TapGuard& operator=(const TapGuard&) = delete;
  void add(const std::string& pattern, TapFn fn) { ids_.push_back(session_.taps().add(pattern, std::move(fn))); }

 private:
  Session& session_;
  std::vector<int> ids_;
};

// Throws Error unless every named tap fired (fired[i] for names[i]).
void check_fired(const std::vector<std::string>& names, const std::vector<bool>& fired, const char* probe);

}  // namespace sinklab::probe_detail
