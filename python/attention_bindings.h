// The attention functions of the Python module, in terms of Python objects.
// Argument meanings are documented in the docstrings (sinklab_module.cpp).
#pragma once

#include "spec_builder.h"

namespace sinklab::python {

struct ForwardOptions {
  py::object return_lse = py::bool_(false);
  py::object return_stats = py::bool_(false);
  py::object stats_first_k = py::int_(1);
  py::object impl = py::str("auto");
};

// o, (o, lse) or (o, lse, stats) — see the docstring.
py::object attention(py::handle q, py::handle k, py::handle v, const SpecArgs& args,
                     const ForwardOptions& opts);

// {"dq", "dk", "dv", and the parameter gradients the spec has}.
py::dict attention_backward(py::handle q, py::handle k, py::handle v, py::handle o, py::handle lse,
                            py::handle d_o, const SpecArgs& args, py::handle impl);

// (q_tilde, k_tilde).
py::tuple goat_fold(py::handle q, py::handle k, py::handle lambda_sym, py::handle lambda_asym,
                    py::handle base, py::handle key_bias, py::handle positions,
                    py::handle content_scale);

}  // namespace sinklab::python
