// Argument checks shared by the Python modules (nnfast._core and nnfast._cuda):
// names for error messages, and the scalar arguments (hyperparameters, flags,
// step counts, reduction names). Each raises a Python exception naming the
// argument: TypeError for a wrong type, ValueError for a value out of range.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "call/dtype.h"
#include "call/loss_options.h"

namespace nnfast::bind {

namespace py = pybind11;

enum class Access { read, write };

// The name of an argument, for error messages, built only when one is raised:
// "params[3]" is the array at index 3 of the list params.
struct ArgName {
  const char* base;
  int64_t index = -1;
  ArgName(const char* b) : base(b) {}  // NOLINT: names are written as string literals
  ArgName(const char* b, int64_t i) : base(b), index(i) {}
  std::string str() const {
    return index < 0 ? std::string(base) : std::string(base) + "[" + std::to_string(index) + "]";
  }
};

inline std::string type_name(py::handle obj) {
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

inline bool is_numpy_instance(py::handle obj, const char* numpy_type) {
  return py::isinstance(obj, py::module_::import("numpy").attr(numpy_type));
}

// A Python or NumPy int or float, not a bool.
inline bool is_real(py::handle obj) {
  PyObject* o = obj.ptr();
  return PyFloat_Check(o) || (PyLong_Check(o) && !PyBool_Check(o)) ||
         is_numpy_instance(obj, "floating") || is_numpy_instance(obj, "integer");
}

// A real number (Python or NumPy int/float, not bool) as a finite double:
// ValueError for NaN, an infinity, or an integer beyond float64's range. (Each
// kernel then refuses a value its dtype cannot hold: ops/narrow.h.)
inline double real_arg(py::handle obj, const char* name) {
  PyObject* o = obj.ptr();
  if (!is_real(obj))
    throw py::type_error(std::string(name) + ": expected a real number, got " + type_name(obj));
  const double value = PyFloat_AsDouble(o);
  if (value == -1.0 && PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
    PyErr_Clear();
    throw py::value_error(std::string(name) +
                          ": an integer beyond the float64 range (magnitude must be below 1.8e308)");
  }
  if (value != value) throw py::value_error(std::string(name) + ": must not be NaN");
  if (value - value != 0.0)
    throw py::value_error(std::string(name) + ": must be finite, got " + (value > 0 ? "inf" : "-inf"));
  return value;
}

inline double nonnegative_arg(py::handle obj, const char* name) {
  const double value = real_arg(obj, name);
  if (value < 0.0)
    throw py::value_error(std::string(name) + ": must be >= 0, got " + std::to_string(value));
  return value;
}

// A real in [0, 1), or [0, 1] with include_one.
inline double unit_interval_arg(py::handle obj, const char* name, bool include_one) {
  const double value = real_arg(obj, name);
  if (!(value >= 0.0 && (value < 1.0 || (include_one && value == 1.0))))
    throw py::value_error(std::string(name) + ": must lie in [0, 1" + (include_one ? "]" : ")") +
                          ", got " + std::to_string(value));
  return value;
}

inline bool bool_arg(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr())) return obj.ptr() == Py_True;
  if (is_numpy_instance(obj, "bool_")) return PyObject_IsTrue(obj.ptr()) == 1;
  throw py::type_error(std::string(name) + ": expected a bool, got " + type_name(obj));
}

// A Python or NumPy integer that fits in int64 (ValueError naming it otherwise).
inline int64_t int64_arg(py::handle obj, const char* name) {
  const py::int_ value(py::reinterpret_borrow<py::object>(obj));
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0)
    throw py::value_error(std::string(name) + ": " + std::string(py::str(value)) +
                          " does not fit in 64 bits");
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<int64_t>(v);
}

// A Python or NumPy integer, not a bool.
inline bool is_integer(py::handle obj) {
  PyObject* o = obj.ptr();
  return !PyBool_Check(o) && (PyLong_Check(o) || is_numpy_instance(obj, "integer"));
}

// A Python or NumPy integer (not a bool) in [low, high]: TypeError naming it if
// it is not an integer, ValueError if it lies outside; what_low says why low.
inline int64_t integer_arg(py::handle obj, const char* name, int64_t low, int64_t high,
                           const char* what_low = "") {
  if (!is_integer(obj))
    throw py::type_error(std::string(name) + ": expected an integer, got " + type_name(obj));
  const py::int_ integer(py::reinterpret_borrow<py::object>(obj));
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(integer.ptr(), &overflow);
  if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0)
    throw py::value_error(std::string(name) + ": must be " +
                          (overflow < 0 ? ">= " + std::to_string(low) : "<= " + std::to_string(high)) +
                          ", got " + std::string(py::str(integer)));
  if (value < low)
    throw py::value_error(std::string(name) + ": must be >= " + std::to_string(low) + what_low +
                          ", got " + std::to_string(value));
  if (value > high)
    throw py::value_error(std::string(name) + ": must be <= " + std::to_string(high) + ", got " +
                          std::to_string(value));
  return value;
}

// An optional state list that must be given exactly when `needed`.
inline void require_state(py::handle list, const char* name, bool needed, const char* condition) {
  if (needed && list.is_none())
    throw py::value_error(std::string(name) + ": required when " + condition);
  if (!needed && !list.is_none())
    throw py::value_error(std::string(name) + ": given, but only used when " + condition);
}

inline Reduction reduction_arg(py::handle obj) {
  if (PyUnicode_Check(obj.ptr())) {
    const std::string name = py::cast<std::string>(obj);
    if (name == "mean") return Reduction::mean;
    if (name == "sum") return Reduction::sum;
    if (name == "none") return Reduction::none;
  }
  throw py::value_error("reduction: expected one of 'mean', 'sum', 'none', got " +
                        std::string(py::repr(obj)));
}

// ignore_index: None or an integer (not a bool).
inline void check_ignore_index(py::handle ignore_index) {
  if (!ignore_index.is_none() && !is_integer(ignore_index))
    throw py::type_error("ignore_index: expected an integer or None, got " + type_name(ignore_index));
}

}  // namespace nnfast::bind
