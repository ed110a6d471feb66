// Taps from Python: record the named intermediate tensors of a feed as numpy
// arrays, and install Python callables that read or replace them.
#pragma once

#include <pybind11/pybind11.h>

#include <map>
#include <string>
#include <vector>

#include "sinklab/model.h"

namespace sinklab::python {

namespace py = pybind11;

// Installs a recording tap for each pattern on construction and removes them
// on destruction. Recording needs no GIL (feed runs without it).
class TapRecorder {
 public:
  TapRecorder(Session& session, const std::vector<std::string>& patterns);
  ~TapRecorder();
  TapRecorder(const TapRecorder&) = delete;
  TapRecorder& operator=(const TapRecorder&) = delete;
  // name -> float32 array: [rows, cols], or [heads, rows, n_ctx] for
  // blk.L.attn_probs; a name fired more than once in the feed (one call per
  // prefill chunk) gives a list of arrays in order.
  py::dict result() const;

 private:
  struct Shot {
    int64_t rows, cols;
    std::vector<float> data;
  };
  Session& session_;
  int64_t n_heads_;
  std::vector<int> ids_;
  std::map<std::string, std::vector<Shot>> shots_;
};

// Session.add_tap(pattern, fn): fn(name, array, layer) gets each matching
// tensor as a float32 [rows, cols] array; edits to it in place, or an array of
// the same shape that fn returns, replace the tensor. Returns the tap id.
int add_python_tap(Session& session, const std::string& pattern, py::function fn);

}  // namespace sinklab::python
