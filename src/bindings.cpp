// The pybind11 module nnfast._core: the one place where arrays are validated.
//
// Each function checks the whole call (types, dtypes, shapes, contiguity,
// writability, list lengths, label ranges) while holding the GIL and before any
// array is written, then releases the GIL for the kernel. Arrays are taken as
// plain py::array and never converted implicitly: a silent copy would lose an
// in-place update. Read-only inputs that are not C-contiguous are copied.
// Scalar arguments (hyperparameter ranges, reduction names, step counts) are
// checked here too, before any array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "cpu/activation.h"
#include "cpu/kernels.h"
#include "cpu/loss.h"
#include "cpu/optim.h"
#include "cpu/parallel.h"
#include "cpu/traffic.h"

namespace py = pybind11;
using namespace nnfast;

namespace {

// ---------------------------------------------------------------- validation

enum class DType { float32, float64 };
enum class Access { read, write };

struct Checked {
  py::array array;  // the caller's array, or a contiguous copy of a read-only input
  DType dtype;
};

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

std::string describe_shape(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    s += std::to_string(a.shape(d));
    if (a.ndim() == 1 || d + 1 < a.ndim()) s += d + 1 < a.ndim() ? ", " : ",";
  }
  return s + ")";
}

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d)) return false;
  return true;
}

py::array require_ndarray(py::handle obj, const ArgName& name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name.str() + ": expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

// An input that is only read may also be a NumPy scalar (what arithmetic on 0-d
// arrays returns); it is read as a 0-d array.
py::array read_only_ndarray(py::handle obj, const ArgName& name) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  const py::module_ np = py::module_::import("numpy");
  if (py::isinstance(obj, np.attr("generic"))) return np.attr("asarray")(obj);
  return require_ndarray(obj, name);
}

bool native_order(char order) {
  const uint16_t probe = 1;
  const bool little = *reinterpret_cast<const uint8_t*>(&probe) == 1;
  return order == '=' || order == '|' || order == (little ? '<' : '>');
}

// A float32 or float64 ndarray in native byte order; written arrays must be
// C-contiguous and writeable. (Descriptor fields are read directly: this runs
// for every array of every call.)
Checked check_float_array(py::handle obj, const ArgName& name, Access access) {
  py::array a = access == Access::read ? read_only_ndarray(obj, name) : require_ndarray(obj, name);
  namespace npy = py::detail;
  const auto* descr = npy::array_descriptor_proxy(npy::array_proxy(a.ptr())->descr);
  const bool is_float32 = descr->type_num == npy::npy_api::NPY_FLOAT_;
  const bool is_float64 = descr->type_num == npy::npy_api::NPY_DOUBLE_;
  if (!(is_float32 || is_float64) || !native_order(descr->byteorder))
    throw py::type_error(name.str() + ": dtype " + std::string(py::str(a.dtype())) +
                         " is not supported; expected float32 or float64");
  const DType dtype = is_float32 ? DType::float32 : DType::float64;
  const int flags = npy::array_proxy(a.ptr())->flags;
  const bool usable = (flags & npy::npy_api::NPY_ARRAY_C_CONTIGUOUS_) &&
                      (flags & npy::npy_api::NPY_ARRAY_ALIGNED_);
  if (access == Access::write) {
    if (!usable)
      throw py::value_error(name.str() + ": must be C-contiguous and aligned to be written in place");
    if (!(flags & npy::npy_api::NPY_ARRAY_WRITEABLE_))
      throw py::value_error(name.str() + ": array is read-only");
  } else if (!usable) {
    a = py::module_::import("numpy").attr("array")(a, py::arg("order") = "C");  // an aligned copy
  }
  return {a, dtype};
}

const char* dtype_name(DType d) { return d == DType::float32 ? "float32" : "float64"; }

void check_same_dtype(const Checked& c, DType expected, const ArgName& name,
                      const ArgName& reference_name) {
  if (c.dtype != expected)
    throw py::type_error(name.str() + ": dtype " + dtype_name(c.dtype) + " differs from " +
                         reference_name.str() + "'s " + dtype_name(expected) +
                         " (all arrays of one call share one dtype)");
}

void check_same_shape(const py::array& a, const py::array& ref, const ArgName& name,
                      const ArgName& reference_name) {
  if (!same_shape(a, ref))
    throw py::value_error(name.str() + ": shape " + describe_shape(a) + " differs from " +
                          reference_name.str() + "'s shape " + describe_shape(ref));
}

// One operand of a multi-tensor call: a list of arrays, one per parameter.
struct Operand {
  Operand(const char* n, py::handle l, Access a, bool may_be_absent = false)
      : name(n), list(py::reinterpret_borrow<py::object>(l)), access(a), optional(may_be_absent) {}
  const char* name;
  py::object list;
  Access access;
  bool optional;  // an optional state, absent when None

  bool absent() const { return optional && list.is_none(); }
};

// All arrays of a multi-tensor call, validated: operands[0] gives the count,
// dtype and shapes every other operand must match.
struct CheckedList {
  DType dtype = DType::float32;
  // Per tensor, its validated arrays (null where an operand is absent). Held as
  // py::object: a default-constructed py::array would allocate an empty array.
  std::vector<std::array<py::object, cpu::kMaxOperands>> arrays;  // keeps copies alive
  std::vector<int64_t> sizes;

  const py::array& array(size_t tensor, int operand) const {
    return static_cast<const py::array&>(arrays[tensor][operand]);
  }

  template <class T>
  cpu::TensorList<T> tensors() const {
    cpu::TensorList<T> t;
    t.sizes = sizes;
    t.operands.reserve(arrays.size());
    for (size_t i = 0; i < arrays.size(); ++i) {
      std::array<T*, cpu::kMaxOperands> ptrs{};
      for (int k = 0; k < cpu::kMaxOperands; ++k)
        if (arrays[i][k]) ptrs[k] = static_cast<T*>(const_cast<void*>(array(i, k).data()));
      t.operands.push_back(ptrs);
    }
    return t;
  }
};

bool is_numpy_instance(py::handle obj, const char* numpy_type) {
  return py::isinstance(obj, py::module_::import("numpy").attr(numpy_type));
}

// One array (or NumPy scalar) or a list/tuple of them, viewed as a sequence
// without copying: a single array is a sequence of one.
struct ArraySequence {
  py::object items;  // a list or tuple, or the single array itself
  bool single = false;

  size_t size() const {
    return single ? 1 : static_cast<size_t>(PySequence_Fast_GET_SIZE(items.ptr()));
  }
  py::handle operator[](size_t i) const {
    return single ? py::handle(items) : py::handle(PySequence_Fast_GET_ITEM(items.ptr(), i));
  }
};

ArraySequence array_sequence(py::handle obj, const char* name) {
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr()))
    return {py::reinterpret_borrow<py::object>(obj), false};
  if (py::isinstance<py::array>(obj) || is_numpy_instance(obj, "generic"))
    return {py::reinterpret_borrow<py::object>(obj), true};
  throw py::type_error(std::string(name) + ": expected a numpy.ndarray or a list of them, got " +
                       std::string(py::str(py::type::of(obj).attr("__name__"))));
}

// No array that is written may share memory with any other array of the call
// (a tensor given twice, or a state given as its own gradient, would be updated
// twice, by racing threads): sorted by address, each array is compared with the
// furthest-reaching one before it.
void check_no_shared_memory(const CheckedList& c, const std::vector<Operand>& operands) {
  struct Span {
    const char* begin;
    const char* end;
    bool written;
    size_t tensor;
    size_t operand;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < c.arrays.size(); ++i) {
    for (size_t k = 0; k < operands.size(); ++k) {
      if (!c.arrays[i][k]) continue;
      const py::array& a = c.array(i, static_cast<int>(k));
      if (a.nbytes() == 0) continue;
      const char* begin = static_cast<const char*>(a.data());
      spans.push_back({begin, begin + a.nbytes(), operands[k].access == Access::write, i, k});
    }
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.begin < y.begin; });
  const Span* reach = nullptr;
  for (const Span& s : spans) {
    if (reach && s.begin < reach->end && (s.written || reach->written)) {
      const Span& w = s.written ? s : *reach;
      const Span& other = s.written ? *reach : s;
      throw py::value_error(
          ArgName(operands[w.operand].name, static_cast<int64_t>(w.tensor)).str() +
          ": shares memory with " +
          ArgName(operands[other.operand].name, static_cast<int64_t>(other.tensor)).str() +
          " (an array that is updated must be separate from every other array of the call)");
    }
    if (!reach || s.end > reach->end) reach = &s;
  }
}

CheckedList check_operands(const std::vector<Operand>& operands) {
  CheckedList out;
  std::array<ArraySequence, cpu::kMaxOperands> lists;
  for (size_t k = 0; k < operands.size(); ++k)
    if (!operands[k].absent()) lists[k] = array_sequence(operands[k].list, operands[k].name);
  const size_t count = lists[0].size();
  for (size_t k = 1; k < operands.size(); ++k) {
    if (operands[k].absent() || lists[k].size() == count) continue;
    throw py::value_error(std::string(operands[k].name) + ": expected " + std::to_string(count) +
                          " arrays (one per entry of " + operands[0].name + "), got " +
                          std::to_string(lists[k].size()));
  }
  out.arrays.resize(count);
  out.sizes.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const ArgName ref_name(operands[0].name, static_cast<int64_t>(i));
    for (size_t k = 0; k < operands.size(); ++k) {
      const Operand& op = operands[k];
      if (op.absent()) continue;
      const ArgName name(op.name, static_cast<int64_t>(i));
      const Checked c = check_float_array(lists[k][i], name, op.access);
      if (i == 0 && k == 0) out.dtype = c.dtype;
      check_same_dtype(c, out.dtype, name, ArgName(operands[0].name, 0));
      if (k > 0) check_same_shape(c.array, out.array(i, 0), name, ref_name);
      out.arrays[i][k] = c.array;
    }
    out.sizes[i] = static_cast<int64_t>(out.array(i, 0).size());
  }
  check_no_shared_memory(out, operands);
  return out;
}

template <class F>
auto dispatch(DType dtype, const F& f) {
  if (dtype == DType::float32) return f(float{});
  return f(double{});
}

// Runs work with the GIL released when it is large enough for other Python
// threads to gain from it; below that, releasing and retaking the GIL would cost
// more than the kernel itself.
constexpr int64_t kReleaseGilElements = 1 << 14;

template <class Work>
auto without_gil_if_large(int64_t elements, const Work& work) {
  if (elements < kReleaseGilElements) return work();
  py::gil_scoped_release release;
  return work();
}

// Runs kernel<T>(tensors) on the validated list.
template <class Kernel>
void run_list(const CheckedList& checked, const Kernel& kernel) {
  dispatch(checked.dtype, [&](auto tag) {
    using T = decltype(tag);
    const cpu::TensorList<T> tensors = checked.tensors<T>();
    without_gil_if_large(tensors.total(), [&] { kernel(tensors); });
    return 0;
  });
}

template <class T>
T* data_of(const py::array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}

py::array empty_like_shape(const py::array& like, const std::vector<py::ssize_t>& shape) {
  return py::array(like.dtype(), shape);
}

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// An output array: the caller's (validated like the input it mirrors) or a new one.
py::array output_for(const py::object& given, const char* name, const Checked& like,
                     const char* like_name, const std::vector<py::ssize_t>& shape) {
  if (given.is_none()) return empty_like_shape(like.array, shape);
  const Checked out = check_float_array(given, name, Access::write);
  check_same_dtype(out, like.dtype, name, like_name);
  std::vector<py::ssize_t> got = shape_of(out.array);
  if (got != shape) {
    py::array expected = empty_like_shape(like.array, shape);
    check_same_shape(out.array, expected, name, "the expected");
  }
  return out.array;
}

// An output may be one of the inputs itself (an in-place op) where allow_same is
// true, but never overlap an input partially: the kernels read each element
// before writing the same element only.
void check_overlap(const py::array& out, const char* out_name, const py::array& in,
                   const char* in_name, bool allow_same = true) {
  const char* o = static_cast<const char*>(out.data());
  const char* i = static_cast<const char*>(in.data());
  const py::ssize_t on = out.nbytes(), in_bytes = in.nbytes();
  if (on == 0 || in_bytes == 0 || o >= i + in_bytes || i >= o + on) return;
  if (allow_same && o == i && on == in_bytes) return;
  throw py::value_error(std::string(out_name) + ": overlaps " + in_name +
                        (allow_same ? " partially (only the very same array is allowed)"
                                    : " (must be separate memory)"));
}

cpu::Reduction reduction_arg(py::handle obj) {
  if (PyUnicode_Check(obj.ptr())) {
    const std::string name = py::cast<std::string>(obj);
    if (name == "mean") return cpu::Reduction::mean;
    if (name == "sum") return cpu::Reduction::sum;
    if (name == "none") return cpu::Reduction::none;
  }
  throw py::value_error("reduction: expected one of 'mean', 'sum', 'none', got " +
                        std::string(py::repr(obj)));
}

// ---------------------------------------------------------------- scalar arguments

// A real number (Python or NumPy int/float, not bool) as double; NaN is a ValueError.
double real_arg(py::handle obj, const char* name) {
  PyObject* o = obj.ptr();
  const bool numeric = PyFloat_Check(o) || (PyLong_Check(o) && !PyBool_Check(o)) ||
                       is_numpy_instance(obj, "floating") || is_numpy_instance(obj, "integer");
  if (!numeric)
    throw py::type_error(std::string(name) + ": expected a real number, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const double value = PyFloat_AsDouble(o);
  if (value == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  if (value != value) throw py::value_error(std::string(name) + ": must not be NaN");
  return value;
}

double nonnegative_arg(py::handle obj, const char* name) {
  const double value = real_arg(obj, name);
  if (value < 0.0)
    throw py::value_error(std::string(name) + ": must be >= 0, got " + std::to_string(value));
  return value;
}

// A real in [0, 1), or [0, 1] with include_one.
double unit_interval_arg(py::handle obj, const char* name, bool include_one) {
  const double value = real_arg(obj, name);
  if (!(value >= 0.0 && (value < 1.0 || (include_one && value == 1.0))))
    throw py::value_error(std::string(name) + ": must lie in [0, 1" + (include_one ? "]" : ")") +
                          ", got " + std::to_string(value));
  return value;
}

bool bool_arg(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr())) return obj.ptr() == Py_True;
  if (is_numpy_instance(obj, "bool_")) return PyObject_IsTrue(obj.ptr()) == 1;
  throw py::type_error(std::string(name) + ": expected a bool, got " +
                       std::string(py::str(py::type::of(obj).attr("__name__"))));
}

// A Python or NumPy integer that fits in int64 (ValueError naming it otherwise).
int64_t int64_arg(py::handle obj, const char* name) {
  const py::int_ value(py::reinterpret_borrow<py::object>(obj));
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0)
    throw py::value_error(std::string(name) + ": " + std::string(py::str(value)) +
                          " does not fit in 64 bits");
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<int64_t>(v);
}

// A 1-based step count: an integer >= 1.
int64_t step_arg(py::handle obj) {
  PyObject* o = obj.ptr();
  if (PyBool_Check(o) || !(PyLong_Check(o) || is_numpy_instance(obj, "integer")))
    throw py::type_error("step: expected an integer, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const int64_t step = int64_arg(obj, "step");
  if (step < 1)
    throw py::value_error("step: must be >= 1 (the count including this update), got " +
                          std::to_string(step));
  return step;
}

// An optional state list that must be given exactly when `needed`.
void require_state(py::handle list, const char* name, bool needed, const char* condition) {
  if (needed && list.is_none())
    throw py::value_error(std::string(name) + ": required when " + condition);
  if (!needed && !list.is_none())
    throw py::value_error(std::string(name) + ": given, but only used when " + condition);
}

// ---------------------------------------------------------------- optimizers

ops::GradHyper grad_hyper(py::handle weight_decay, py::handle l1, py::handle maximize) {
  return {nonnegative_arg(weight_decay, "weight_decay"), nonnegative_arg(l1, "l1"),
          bool_arg(maximize, "maximize")};
}

// Each step validates every argument, scalars first, then all arrays, before
// the kernel writes anything. Arguments arrive in the order of the Python
// signatures in python/nnfast/optimizers.py.
void bind_optimizers(py::module_& m) {
  m.def("sgd_step", [](py::handle params, py::handle grads, py::handle lr,
                       py::handle weight_decay, py::handle l1, py::handle maximize) {
    const ops::SgdHyper h{grad_hyper(weight_decay, l1, maximize), nonnegative_arg(lr, "lr")};
    const auto c = check_operands({{"params", params, Access::write}, {"grads", grads, Access::read}});
    run_list(c, [&](const auto& t) { cpu::sgd_step(t, h); });
  });

  m.def("sgdm_step", [](py::handle params, py::handle grads, py::handle buffers, py::handle lr,
                        py::handle momentum, py::handle dampening, py::handle nesterov,
                        py::handle weight_decay, py::handle l1, py::handle maximize,
                        bool first_step) {
    const ops::SgdmHyper h{grad_hyper(weight_decay, l1, maximize), nonnegative_arg(lr, "lr"),
                           nonnegative_arg(momentum, "momentum"), real_arg(dampening, "dampening"),
                           bool_arg(nesterov, "nesterov"), first_step};
    if (h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0))
      throw py::value_error("nesterov: requires momentum > 0 and dampening = 0");
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"momentum_buffers", buffers, Access::write}});
    run_list(c, [&](const auto& t) { cpu::sgdm_step(t, h); });
  });

  m.def("adagrad_step", [](py::handle params, py::handle grads, py::handle sums, py::handle lr,
                           py::handle eps, py::handle weight_decay, py::handle l1,
                           py::handle maximize) {
    const ops::AdagradHyper h{grad_hyper(weight_decay, l1, maximize), nonnegative_arg(lr, "lr"),
                              nonnegative_arg(eps, "eps")};
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"sums", sums, Access::write}});
    run_list(c, [&](const auto& t) { cpu::adagrad_step(t, h); });
  });

  m.def("rmsprop_step", [](py::handle params, py::handle grads, py::handle square_avgs,
                           py::handle lr, py::handle alpha, py::handle eps,
                           py::handle weight_decay, py::handle l1, py::handle maximize,
                           py::handle momentum, py::handle momentum_buffers, py::handle centered,
                           py::handle grad_avgs) {
    const ops::RmspropHyper h{grad_hyper(weight_decay, l1, maximize), nonnegative_arg(lr, "lr"),
                              unit_interval_arg(alpha, "alpha", true), nonnegative_arg(eps, "eps"),
                              nonnegative_arg(momentum, "momentum"), bool_arg(centered, "centered")};
    require_state(momentum_buffers, "momentum_buffers", h.momentum > 0.0, "momentum > 0");
    require_state(grad_avgs, "grad_avgs", h.centered, "centered=True");
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"square_avgs", square_avgs, Access::write},
                                   {"grad_avgs", grad_avgs, Access::write, true},
                                   {"momentum_buffers", momentum_buffers, Access::write, true}});
    run_list(c, [&](const auto& t) { cpu::rmsprop_step(t, h); });
  });

  m.def("adam_step", [](py::handle params, py::handle grads, py::handle exp_avgs,
                        py::handle exp_avg_sqs, py::handle step, py::handle lr, py::handle beta1,
                        py::handle beta2, py::handle eps, py::handle weight_decay, py::handle l1,
                        py::handle decoupled_weight_decay, py::handle amsgrad,
                        py::handle max_exp_avg_sqs, py::handle maximize) {
    const bool decoupled = bool_arg(decoupled_weight_decay, "decoupled_weight_decay");
    const double decay = nonnegative_arg(weight_decay, "weight_decay");
    const ops::AdamHyper h{{decoupled ? 0.0 : decay, nonnegative_arg(l1, "l1"), bool_arg(maximize, "maximize")},
                           nonnegative_arg(lr, "lr"),
                           unit_interval_arg(beta1, "beta1", false),
                           unit_interval_arg(beta2, "beta2", false),
                           nonnegative_arg(eps, "eps"),
                           decoupled ? decay : 0.0,
                           step_arg(step),
                           bool_arg(amsgrad, "amsgrad")};
    require_state(max_exp_avg_sqs, "max_exp_avg_sqs", h.amsgrad, "amsgrad=True");
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"exp_avgs", exp_avgs, Access::write},
                                   {"exp_avg_sqs", exp_avg_sqs, Access::write},
                                   {"max_exp_avg_sqs", max_exp_avg_sqs, Access::write, true}});
    run_list(c, [&](const auto& t) { cpu::adam_step(t, h); });
  });
}

// ---------------------------------------------------------------- activations

struct ActivationBinding {
  const char* name;
  cpu::Activation kind;
  const char* backward_input;  // "y" when the backward reads the forward output
};

constexpr ActivationBinding kActivations[] = {
    {"sigmoid", cpu::Activation::sigmoid, "y"},
    {"tanh", cpu::Activation::tanh, "y"},
    {"relu", cpu::Activation::relu, "x"},
    {"leaky_relu", cpu::Activation::leaky_relu, "x"},
};

void bind_activations(py::module_& m) {
  for (const ActivationBinding& b : kActivations) {
    const cpu::Activation kind = b.kind;
    m.def(b.name, [kind](py::object x_obj, py::object out_obj, py::handle alpha_obj) {
      const double alpha = real_arg(alpha_obj, "alpha");
      const Checked x = check_float_array(x_obj, "x", Access::read);
      py::array out = output_for(out_obj, "out", x, "x", shape_of(x.array));
      check_overlap(out, "out", x.array, "x");
      dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* in = data_of<T>(x.array);
        T* o = data_of<T>(out);
        const int64_t n = x.array.size();
        without_gil_if_large(n, [&] { cpu::activation_forward(kind, in, o, n, alpha); });
        return 0;
      });
      return out;
    });
    const char* a_name = b.backward_input;
    m.def((std::string(b.name) + "_backward").c_str(),
          [kind, a_name](py::object a_obj, py::object dy_obj, py::object out_obj,
                         py::handle alpha_obj) {
            const double alpha = real_arg(alpha_obj, "alpha");
            const Checked a = check_float_array(a_obj, a_name, Access::read);
            const Checked dy = check_float_array(dy_obj, "dy", Access::read);
            check_same_dtype(dy, a.dtype, "dy", a_name);
            check_same_shape(dy.array, a.array, "dy", a_name);
            py::array out = output_for(out_obj, "out", a, a_name, shape_of(a.array));
            check_overlap(out, "out", a.array, a_name);
            check_overlap(out, "out", dy.array, "dy");
            dispatch(a.dtype, [&](auto tag) {
              using T = decltype(tag);
              const T* pa = data_of<T>(a.array);
              const T* pdy = data_of<T>(dy.array);
              T* o = data_of<T>(out);
              const int64_t n = a.array.size();
              without_gil_if_large(n, [&] { cpu::activation_backward(kind, pa, pdy, o, n, alpha); });
              return 0;
            });
            return out;
          });
  }
}

// ---------------------------------------------------------------- losses

// (loss, grad): loss is a float for "sum"/"mean", the losses array for "none".
py::tuple loss_result(double value, const py::object& losses, const py::array& grad) {
  if (!losses.is_none()) return py::make_tuple(losses, grad);
  return py::make_tuple(value, grad);
}

void bind_losses(py::module_& m) {
  m.def("mse_loss", [](py::object pred_obj, py::object target_obj, py::handle reduction,
                       py::object grad_out) {
    const cpu::Reduction r = reduction_arg(reduction);
    const Checked pred = check_float_array(pred_obj, "pred", Access::read);
    const Checked target = check_float_array(target_obj, "target", Access::read);
    check_same_dtype(target, pred.dtype, "target", "pred");
    check_same_shape(target.array, pred.array, "target", "pred");
    const auto shape = shape_of(pred.array);
    py::array grad = output_for(grad_out, "grad_out", pred, "pred", shape);
    check_overlap(grad, "grad_out", pred.array, "pred");
    check_overlap(grad, "grad_out", target.array, "target");
    py::object losses = r == cpu::Reduction::none ? py::object(empty_like_shape(pred.array, shape))
                                                  : py::object(py::none());
    const double value = dispatch(pred.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* p = data_of<T>(pred.array);
      const T* t = data_of<T>(target.array);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      const int64_t n = pred.array.size();
      return without_gil_if_large(n, [&] { return cpu::mse_loss(p, t, g, l, n, r); });
    });
    return loss_result(value, losses, grad);
  });

  m.def("cross_entropy", [](py::object probs_obj, py::object target_obj, py::handle reduction,
                            py::object grad_out) {
    const cpu::Reduction r = reduction_arg(reduction);
    const Checked probs = check_float_array(probs_obj, "probs", Access::read);
    const Checked target = check_float_array(target_obj, "target", Access::read);
    check_same_dtype(target, probs.dtype, "target", "probs");
    check_same_shape(target.array, probs.array, "target", "probs");
    if (probs.array.ndim() < 1)
      throw py::value_error("probs: expected at least 1 dimension (the classes), got a 0-d array");
    const auto shape = shape_of(probs.array);
    const int64_t classes = shape.back();
    const std::vector<py::ssize_t> row_shape(shape.begin(), shape.end() - 1);
    int64_t rows = 1;
    for (py::ssize_t d : row_shape) rows *= d;
    py::array grad = output_for(grad_out, "grad_out", probs, "probs", shape);
    check_overlap(grad, "grad_out", probs.array, "probs");
    check_overlap(grad, "grad_out", target.array, "target");
    py::object losses = r == cpu::Reduction::none
                            ? py::object(empty_like_shape(probs.array, row_shape))
                            : py::object(py::none());
    const double value = dispatch(probs.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* p = data_of<T>(probs.array);
      const T* t = data_of<T>(target.array);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      return without_gil_if_large(rows * classes, [&] { return cpu::cross_entropy(p, t, g, l, rows, classes, r); });
    });
    return loss_result(value, losses, grad);
  });

  m.def("softmax_cross_entropy", [](py::object logits_obj, py::object target_obj,
                                    py::handle reduction, py::object ignore_index,
                                    py::handle label_smoothing, py::object grad_out) {
    const cpu::Reduction r = reduction_arg(reduction);
    const double smoothing = unit_interval_arg(label_smoothing, "label_smoothing", true);
    if (!ignore_index.is_none() && (PyBool_Check(ignore_index.ptr()) ||
                                    !(PyLong_Check(ignore_index.ptr()) ||
                                      is_numpy_instance(ignore_index, "integer"))))
      throw py::type_error("ignore_index: expected an integer or None, got " +
                           std::string(py::str(py::type::of(ignore_index).attr("__name__"))));
    const Checked logits = check_float_array(logits_obj, "logits", Access::read);
    if (logits.array.ndim() != 2)
      throw py::value_error("logits: expected 2 dimensions (N, C), got shape " +
                            describe_shape(logits.array));
    const int64_t rows = logits.array.shape(0);
    const int64_t classes = logits.array.shape(1);
    if (classes < 1) throw py::value_error("logits: expected at least one class, got C = 0");
    py::array target = require_ndarray(target_obj, "target");
    const char kind = target.dtype().kind();
    const bool class_ids = kind == 'i' || kind == 'u';
    cpu::SoftmaxCrossEntropyOptions o{
        r,
        {nullptr, !ignore_index.is_none(),
         ignore_index.is_none() ? 0 : int64_arg(ignore_index, "ignore_index"), smoothing},
        rows};
    if (class_ids) {
      if (target.ndim() != 1 || target.shape(0) != rows)
        throw py::value_error("target: class ids must have shape (" + std::to_string(rows) +
                              ",), got " + describe_shape(target));
      // A private int64 copy: the kernel reads it without the GIL, so the caller's
      // array could change after validation; and uint64 ids past 2^63 must not wrap.
      const py::module_ np = py::module_::import("numpy");
      if (kind == 'u' && target.itemsize() == 8 && rows > 0 &&
          py::cast<bool>(np.attr("any")(target.attr("__gt__")(py::int_(INT64_MAX)))))
        throw py::value_error("target: class ids must lie in [0, " + std::to_string(classes) +
                              "), got a uint64 id above 2^63 - 1");
      target = np.attr("array")(target, "int64");
      const int64_t* labels = static_cast<const int64_t*>(target.data());
      o.counted_rows = 0;
      for (int64_t r = 0; r < rows; ++r) {
        if (o.rows.has_ignore_index && labels[r] == o.rows.ignore_index) continue;
        if (labels[r] < 0 || labels[r] >= classes)
          throw py::value_error("target[" + std::to_string(r) + "] = " + std::to_string(labels[r]) +
                                " is outside [0, " + std::to_string(classes) + ")");
        ++o.counted_rows;
      }
    } else {
      const Checked probs = check_float_array(target, "target", Access::read);
      check_same_dtype(probs, logits.dtype, "target", "logits");
      check_same_shape(probs.array, logits.array, "target", "logits");
      if (o.rows.has_ignore_index)
        throw py::value_error(
            "ignore_index: applies to class-id targets only, but target holds probabilities");
      target = probs.array;
    }
    const auto shape = shape_of(logits.array);
    py::array grad = output_for(grad_out, "grad_out", logits, "logits", shape);
    check_overlap(grad, "grad_out", logits.array, "logits");
    check_overlap(grad, "grad_out", target, "target", /*allow_same=*/false);
    py::object losses = o.reduction == cpu::Reduction::none
                            ? py::object(empty_like_shape(logits.array, {rows}))
                            : py::object(py::none());
    const double value = dispatch(logits.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* x = data_of<T>(logits.array);
      o.rows.labels = class_ids ? static_cast<const int64_t*>(target.data()) : nullptr;
      const T* probs = class_ids ? nullptr : data_of<T>(target);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      return without_gil_if_large(rows * classes, [&] { return cpu::softmax_cross_entropy(x, probs, g, l, rows, classes, o); });
    });
    return loss_result(value, losses, grad);
  });

  m.def("l1_loss", [](py::object w) {
    const auto c = check_operands({{"w", w, Access::read}});
    return dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const cpu::TensorList<T> t = c.tensors<T>();
      return without_gil_if_large(t.total(), [&] { return cpu::l1_loss(t); });
    });
  });

  m.def("l2_loss", [](py::object w) {
    const auto c = check_operands({{"w", w, Access::read}});
    return dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const cpu::TensorList<T> t = c.tensors<T>();
      return without_gil_if_large(t.total(), [&] { return cpu::l2_loss(t); });
    });
  });
}

// ---------------------------------------------------------------- benchmark

void bind_benchmark(py::module_& m) {
  m.def("memory_traffic", [](py::list reads, py::list updates, py::list outs) {
    std::vector<Checked> arrays;
    std::vector<ArgName> names;
    for (auto [list, prefix, access] : {std::make_tuple(reads, "reads", Access::read),
                                        std::make_tuple(updates, "updates", Access::write),
                                        std::make_tuple(outs, "outs", Access::write)}) {
      for (size_t i = 0; i < list.size(); ++i) {
        names.emplace_back(prefix, static_cast<int64_t>(i));
        arrays.push_back(check_float_array(list[i], names.back(), access));
        check_same_dtype(arrays.back(), arrays[0].dtype, names.back(), names[0]);
        check_same_shape(arrays.back().array, arrays[0].array, names.back(), names[0]);
      }
    }
    if (arrays.empty()) return;
    dispatch(arrays[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      std::vector<const T*> r;
      std::vector<T*> u, o;
      for (size_t i = 0; i < arrays.size(); ++i) {
        T* p = data_of<T>(arrays[i].array);
        if (i < reads.size()) r.push_back(p);
        else if (i < reads.size() + updates.size()) u.push_back(p);
        else o.push_back(p);
      }
      const int64_t n = arrays[0].array.size();
      without_gil_if_large(n, [&] { cpu::memory_traffic(r, u, o, n); });
      return 0;
    });
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast's C++ kernels (private; use the nnfast package)";
  bind_optimizers(m);
  bind_activations(m);
  bind_losses(m);
  bind_benchmark(m);
  m.def("set_num_threads", &cpu::set_num_threads);
  // The scalar checks of the kernels, for Python-level objects (nnfast.optim).
  m.def("check_real", [](py::handle value, const char* name) { return real_arg(value, name); });
  m.def("check_nonnegative",
        [](py::handle value, const char* name) { return nonnegative_arg(value, name); });
  m.def("check_unit_interval", [](py::handle value, const char* name, bool include_one) {
    return unit_interval_arg(value, name, include_one);
  });
  m.def("supported_simd", []() {
    std::vector<std::string> names;
    for (const cpu::KernelTable* t : cpu::supported_kernels()) names.emplace_back(t->isa);
    return names;
  });
  m.def("use_simd", &cpu::use_kernels);
  m.def("get_num_threads", &cpu::max_threads);
  m.def("build_info", []() {
    py::dict d;
    d["version"] = NNFAST_VERSION;
    d["commit"] = NNFAST_COMMIT;
    d["openmp"] = cpu::openmp_enabled();
    d["simd"] = cpu::kernels().isa;
    d["compiler"] = __VERSION__;
    return d;
  });
}
