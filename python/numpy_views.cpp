#include "numpy_views.h"

#include <cmath>
#include <limits>

namespace sinklab::python {

namespace {

std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

std::string dtype_name(const py::array& a) {
  return a.dtype().attr("name").cast<std::string>();
}

// Whether numpy's element strides can be handed to a TensorView directly.
bool viewable_in_place(const py::array& a) {
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(float) != 0) return false;
  const int nd = int(a.ndim());
  for (int i = 0; i < nd; ++i) {
    if (a.shape(i) == 1) continue;  // never stepped over
    if (a.strides(i) < 0 || a.strides(i) % ssize_t(sizeof(float)) != 0) return false;
  }
  if (a.shape(nd - 1) > 1 && a.strides(nd - 1) != ssize_t(sizeof(float))) return false;
  // Rows must not overlap: the kernels hand the row stride to GEMM as its
  // leading dimension, which must cover a whole row.
  if (nd >= 2 && a.shape(nd - 2) > 1 && a.strides(nd - 2) < a.shape(nd - 1) * ssize_t(sizeof(float)))
    return false;
  return true;
}

}  // namespace

std::string shape_str(const py::array& a) {
  std::string s = "[";
  for (ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

TensorView float32_view(py::handle obj, const std::string& name, int ndim, KeepAlive& keep) {
  if (obj.is_none()) throw py::type_error(name + " must be a numpy array, got None");
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + " must be a numpy array (float32 or float64), got " + type_name(obj));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  const bool is_f32 = dt.kind() == 'f' && dt.itemsize() == 4;
  const bool is_f64 = dt.kind() == 'f' && dt.itemsize() == 8;
  if (!is_f32 && !is_f64)
    throw py::type_error(name + " must have dtype float32 or float64, got " +
                         dtype_name(a));
  if (a.ndim() != ndim)
    throw py::value_error(name + " must have " + std::to_string(ndim) + " dimensions, got shape " +
                          shape_str(a));
  for (int i = 0; i < ndim; ++i)
    if (a.shape(i) == 0)
      throw py::value_error(name + " must not be empty, got shape " + shape_str(a));
  // Non-native byte order (say '>f4') is converted, never read as if it were native.
  const bool native = dt.attr("isnative").cast<bool>();
  if (!is_f32 || !native || !viewable_in_place(a))
    a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!a) throw py::error_already_set();
  keep.push_back(a);

  TensorView v;
  v.data = const_cast<void*>(a.data());
  v.dtype = DType::F32;
  v.ndim = ndim;
  // A size-1 dimension is never stepped over, and numpy may give it any stride;
  // it gets the stride a contiguous array would have.
  for (int i = ndim - 1; i >= 0; --i) {
    v.shape[i] = a.shape(i);
    if (a.shape(i) > 1)
      v.stride[i] = int64_t(a.strides(i) / ssize_t(sizeof(float)));
    else
      v.stride[i] = i == ndim - 1 ? 1 : v.stride[i + 1] * v.shape[i + 1];
  }
  return v;
}

py::array_t<float> float32_array(py::handle obj, const std::string& name,
                                 const std::vector<int64_t>& shape, KeepAlive& keep) {
  py::array raw;
  try {
    raw = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
  }
  if (!raw) throw py::type_error(name + " must be an array of floats, got " + type_name(obj));
  const char kind = raw.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::type_error(name + " must hold real numbers, got dtype " +
                         dtype_name(raw));
  bool ok = raw.ndim() == ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = shape[i] < 0 ? raw.shape(ssize_t(i)) > 0 : raw.shape(ssize_t(i)) == shape[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (i ? ", " : "") + (shape[i] < 0 ? std::string("n") : std::to_string(shape[i]));
    throw py::value_error(name + " must have shape " + want + "], got " + shape_str(raw));
  }
  auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(raw);
  if (!a) throw py::error_already_set();
  keep.push_back(a);
  return a;
}

py::array_t<int32_t> int32_array(py::handle obj, const std::string& name, KeepAlive& keep) {
  py::array raw;
  try {
    raw = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
  }
  if (!raw) throw py::type_error(name + " must be an integer array, got " + type_name(obj));
  const char kind = raw.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(name + " must be an integer array, got dtype " +
                         dtype_name(raw));
  if (raw.ndim() != 1 && raw.ndim() != 2)
    throw py::value_error(name + " must have shape [n] or [batch, n], got " + shape_str(raw));
  auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
  if (!wide) throw py::error_already_set();
  if (kind == 'u' && raw.dtype().itemsize() == 8) {
    // uint64 values above int64 max wrap when cast; check them before.
    auto u = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
    for (ssize_t i = 0; i < u.size(); ++i)
      if (u.data()[i] > uint64_t(std::numeric_limits<int32_t>::max()))
        throw py::value_error(name + " holds a value that does not fit in int32");
  }
  py::array_t<int32_t> out(std::vector<ssize_t>(raw.shape(), raw.shape() + raw.ndim()));
  const int64_t* src = wide.data();
  int32_t* dst = out.mutable_data();
  for (ssize_t i = 0; i < wide.size(); ++i) {
    if (src[i] < std::numeric_limits<int32_t>::min() || src[i] > std::numeric_limits<int32_t>::max())
      throw py::value_error(name + " holds " + std::to_string(src[i]) + ", which does not fit in int32");
    dst[i] = int32_t(src[i]);
  }
  keep.push_back(out);
  return out;
}

std::vector<int32_t> token_ids(py::handle ids, const std::string& name, bool allow_empty, bool allow_scalar) {
  if (allow_scalar && py::isinstance<py::int_>(ids) && !py::isinstance<py::bool_>(ids))
    return {int32_t(to_int(ids, name, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()))};
  if (ids.is_none() || py::isinstance<py::str>(ids) || !py::hasattr(ids, "__len__"))
    throw py::type_error(name + " must be a list, tuple or 1-D integer array of token ids, got " +
                         type_name(ids));
  if (py::len(ids) == 0) {
    if (allow_empty) return {};
    throw py::value_error(name + " must not be empty");
  }
  KeepAlive keep;
  const py::array_t<int32_t> a = int32_array(ids, name, keep);
  if (a.ndim() != 1) throw py::value_error(name + " must be one-dimensional, got shape " + shape_str(a));
  return std::vector<int32_t>(a.data(), a.data() + a.size());
}

py::array_t<float> nan_array(const std::vector<int64_t>& shape) {
  py::array_t<float> a(std::vector<ssize_t>(shape.begin(), shape.end()));
  float* p = a.mutable_data();
  for (ssize_t i = 0; i < a.size(); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
  return a;
}

TensorView writable_view(py::array_t<float>& a) {
  TensorView v;
  v.data = a.mutable_data();
  v.dtype = DType::F32;
  v.ndim = int(a.ndim());
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = a.shape(i);
    v.stride[i] = a.strides(i) / ssize_t(sizeof(float));
  }
  return v;
}

bool to_bool(py::handle obj, const std::string& name) {
  if (py::isinstance<py::bool_>(obj) ||
      py::isinstance(obj, py::module_::import("numpy").attr("bool_")))
    return PyObject_IsTrue(obj.ptr()) == 1;
  throw py::type_error(name + " must be a bool, got " + type_name(obj));
}

int64_t to_int(py::handle obj, const std::string& name, int64_t lo, int64_t hi) {
  if (py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(name + " must be an int, got " + type_name(obj));
  py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0 || v < lo || v > hi)
    throw py::value_error(name + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) +
                          ", got " + py::str(obj).cast<std::string>());
  return v;
}

double to_double(py::handle obj, const std::string& name) {
  const bool excluded = py::isinstance<py::bool_>(obj) || py::isinstance<py::str>(obj) ||
                        py::isinstance<py::array>(obj) || obj.is_none();
  if (!excluded) {
    const double v = PyFloat_AsDouble(obj.ptr());
    if (!(v == -1.0 && PyErr_Occurred())) return v;
    PyErr_Clear();
  }
  throw py::type_error(name + " must be a number, got " + type_name(obj));
}

std::string to_string(py::handle obj, const std::string& name) {
  if (!py::isinstance<py::str>(obj)) throw py::type_error(name + " must be a str, got " + type_name(obj));
  return obj.cast<std::string>();
}

}  // namespace sinklab::python
