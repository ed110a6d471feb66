// Python taps (session_taps.h).
#include "session_taps.h"

#include <pybind11/numpy.h>

#include <algorithm>

namespace sinklab::python {

namespace {

bool is_attn_probs(const std::string& name) {
  return name.size() > 11 && name.compare(name.size() - 11, 11, ".attn_probs") == 0;
}

}  // namespace

TapRecorder::TapRecorder(Session& session, const std::vector<std::string>& patterns)
    : session_(session), n_heads_(session.model().config().n_heads) {
  if (patterns.empty()) throw py::value_error("taps must name at least one tap (e.g. 'blk.0.attn_probs')");
  for (const std::string& p : patterns) {
    if (p.empty()) throw py::value_error("taps: an empty tap name");
    ids_.push_back(session_.taps().add(p, [this](const TapEvent& e) {
      shots_[e.name].push_back({e.rows, e.cols, std::vector<float>(e.data, e.data + e.rows * e.cols)});
    }));
  }
}

TapRecorder::~TapRecorder() {
  for (int id : ids_) session_.taps().remove(id);
}

py::dict TapRecorder::result() const {
  py::dict out;
  for (const auto& [name, shots] : shots_) {
    py::list arrays;
    for (const Shot& s : shots) {
      std::vector<ssize_t> shape = {ssize_t(s.rows), ssize_t(s.cols)};
      if (is_attn_probs(name) && n_heads_ > 0 && s.rows % n_heads_ == 0)
        shape = {ssize_t(n_heads_), ssize_t(s.rows / n_heads_), ssize_t(s.cols)};
      py::array_t<float> a(shape);
      std::copy(s.data.begin(), s.data.end(), a.mutable_data());
      arrays.append(a);
    }
    out[py::str(name)] = arrays.size() == 1 ? py::object(arrays[0]) : py::object(arrays);
  }
  return out;
}

int add_python_tap(Session& session, const std::string& pattern, py::function fn) {
  if (pattern.empty()) throw py::value_error("add_tap: the pattern is empty");
  return session.taps().add(pattern, [fn](const TapEvent& e) {
    py::gil_scoped_acquire gil;
    // A copy, written back after the call: edits in place take effect, and an
    // array kept by the callable never points into the session's memory.
    py::array_t<float> copy({ssize_t(e.rows), ssize_t(e.cols)});
    std::copy(e.data, e.data + e.rows * e.cols, copy.mutable_data());
    const py::object r = fn(py::str(e.name), copy, e.layer);
    if (r.is_none()) {
      std::copy(copy.data(), copy.data() + e.rows * e.cols, e.data);
      return;
    }
    const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(r);
    if (!a || a.ndim() != 2 || a.shape(0) != e.rows || a.shape(1) != e.cols)
      throw py::value_error("tap '" + e.name + "': the callable must return None or a float array of shape [" +
                            std::to_string(e.rows) + ", " + std::to_string(e.cols) + "]");
    std::copy(a.data(), a.data() + e.rows * e.cols, e.data);
  });
}

}  // namespace sinklab::python
