// Builds an AttnSpec from the keyword arguments shared by attention,
// attention_backward and goat_fold. The one place Python options become spec
// fields, so the three functions cannot drift apart.
#pragma once

#include "numpy_views.h"
#include "sinklab/attention.h"

namespace sinklab::python {

// The keyword arguments as Python passed them (None = not given).
struct SpecArgs {
  py::object causal = py::bool_(true);
  py::object window = py::int_(0);
  py::object sink_keys = py::int_(0);
  py::object sink_logits = py::none();
  py::object prior = py::none();      // dict, see spec_builder.cpp
  py::object positions = py::none();  // (q_pos, k_pos)
  py::object rope = py::none();       // dict
  py::object softcap = py::float_(0.0);
  py::object scale = py::none();
  py::object check_finite = py::bool_(false);
};

// The sizes the optional arrays are checked against.
struct ProblemShape {
  int64_t batch = 0, n_heads = 0, n_kv_heads = 0, n_q = 0, n_k = 0;
};
ProblemShape problem_shape(const TensorView& q, const TensorView& k);

// An AttnSpec together with the arrays its pointers point into.
struct BuiltSpec {
  AttnSpec spec;
  KeepAlive keep;
  int64_t key_bias_batch = 0;  // batch of the key_bias the caller gave (1 = broadcast); 0 = none
};

// Raises TypeError / ValueError naming the argument when one is malformed.
// Value ranges the library checks itself (window >= 0, ...) are left to it.
BuiltSpec build_spec(const SpecArgs& args, const ProblemShape& shape);

AttnImpl parse_impl(py::handle impl);

}  // namespace sinklab::python
