// Bound methods that refuse an object whose __init__ never ran. pybind11 lets
// Python make an instance with Class.__new__(Class); its C++ value is then
// null, and a plain member-function binding would call through a null `this`.
// checked_method wraps a member function so that it raises TypeError for that
// case instead.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <utility>

namespace sinklab::python {

[[noreturn]] inline void throw_uninitialised(const char* cls) {
  throw pybind11::type_error(std::string("sinklab.") + cls + " object was never initialised: create it with sinklab." +
                             cls + "(...), not " + cls + ".__new__");
}

// The C++ object behind `self`, or TypeError when its __init__ never ran (the
// holder is constructed by __init__; before that the value memory is not an object).
template <typename T>
T* initialised_self(pybind11::handle self, const char* cls) {
  auto* inst = reinterpret_cast<pybind11::detail::instance*>(self.ptr());
  auto vh = inst->get_value_and_holder(pybind11::detail::get_type_info(typeid(T)));
  if (!vh || !vh.holder_constructed() || !vh.value_ptr()) throw_uninitialised(cls);
  return vh.template value_ptr<T>();
}

template <typename T, typename R, typename... A>
auto checked_method(const char* cls, R (T::*f)(A...) const) {
  return [cls, f](pybind11::handle self, A... a) -> R {
    return (initialised_self<T>(self, cls)->*f)(std::forward<A>(a)...);
  };
}

template <typename T, typename R, typename... A>
auto checked_method(const char* cls, R (T::*f)(A...)) {
  return [cls, f](pybind11::handle self, A... a) -> R {
    return (initialised_self<T>(self, cls)->*f)(std::forward<A>(a)...);
  };
}

}  // namespace sinklab::python
