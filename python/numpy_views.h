// Conversions between numpy arrays / Python scalars and the views and values
// the C++ library takes. Everything a C++ view points into is appended to a
// KeepAlive list, which the caller holds until the kernel has returned.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sinklab/core.h"

namespace sinklab::python {

namespace py = pybind11;

using KeepAlive = std::vector<py::object>;

// A float32 view of a numpy array of rank `ndim`. float32 arrays are viewed in
// place (strides passed through) when the last dimension is unit-stride and the
// data is aligned; otherwise, and for float64, a contiguous float32 copy is made.
// Raises TypeError for a non-array or another dtype, ValueError for a wrong rank
// or a zero-sized dimension. `name` names the argument in messages.
TensorView float32_view(py::handle obj, const std::string& name, int ndim, KeepAlive& keep);

// A contiguous float32 copy of an array-like (lists allowed) with exactly the
// given shape; -1 entries accept any size. Returns the array (already kept alive).
py::array_t<float> float32_array(py::handle obj, const std::string& name,
                                 const std::vector<int64_t>& shape, KeepAlive& keep);

// A contiguous int32 copy of an integer array-like of rank 1 or 2. Values must
// fit in int32.
py::array_t<int32_t> int32_array(py::handle obj, const std::string& name, KeepAlive& keep);

// Token ids: a list, tuple or 1-D integer array (a single int when
// allow_scalar). TypeError for None or other objects, ValueError for an empty
// sequence (unless allow_empty), a wrong rank or values outside int32.
std::vector<int32_t> token_ids(py::handle ids, const std::string& name, bool allow_empty = false,
                               bool allow_scalar = false);

// A new contiguous float32 array filled with NaN, so that an element a kernel
// forgets to write shows up instead of passing as stale memory.
py::array_t<float> nan_array(const std::vector<int64_t>& shape);
// A writable contiguous view of an array made by nan_array.
TensorView writable_view(py::array_t<float>& a);

// Scalars with type checks and messages that name the argument.
bool to_bool(py::handle obj, const std::string& name);
int64_t to_int(py::handle obj, const std::string& name, int64_t lo, int64_t hi);
double to_double(py::handle obj, const std::string& name);
std::string to_string(py::handle obj, const std::string& name);

// "[2, 3, 4]" for a numpy shape.
std::string shape_str(const py::array& a);

}  // namespace sinklab::python
