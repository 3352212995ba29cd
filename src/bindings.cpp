// The pybind11 module nnfast._core: the one place where arrays are validated.
//
// Each function checks the whole call (types, dtypes, shapes, contiguity,
// writability, list lengths, label ranges) while holding the GIL and before any
// array is written, then releases the GIL for the kernel. Arrays are taken as
// plain py::array and never converted implicitly: a silent copy would lose an
// in-place update. Read-only inputs that are not C-contiguous are copied.
// Python-level arguments (hyperparameter ranges, reduction names) are checked
// in python/nnfast/_arguments.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "cpu/activation.h"
#include "cpu/kernels.h"
#include "cpu/loss.h"
#include "cpu/optim.h"
#include "cpu/parallel.h"

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

py::array require_ndarray(py::handle obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + ": expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

// An input that is only read may also be a NumPy scalar (what arithmetic on 0-d
// arrays returns); it is read as a 0-d array.
py::array read_only_ndarray(py::handle obj, const std::string& name) {
  const py::module_ np = py::module_::import("numpy");
  if (!py::isinstance<py::array>(obj) && py::isinstance(obj, np.attr("generic")))
    return np.attr("asarray")(obj);
  return require_ndarray(obj, name);
}

bool native_order(const py::dtype& dt) {
  const char order = dt.byteorder();
  const uint16_t probe = 1;
  const bool little = *reinterpret_cast<const uint8_t*>(&probe) == 1;
  return order == '=' || order == '|' || order == (little ? '<' : '>');
}

// A float32 or float64 ndarray in native byte order; written arrays must be
// C-contiguous and writeable.
Checked check_float_array(py::handle obj, const std::string& name, Access access) {
  py::array a = access == Access::read ? read_only_ndarray(obj, name) : require_ndarray(obj, name);
  const py::dtype dt = a.dtype();
  const int num = dt.num();
  const bool is_float32 = num == py::dtype::of<float>().num();
  const bool is_float64 = num == py::dtype::of<double>().num();
  if (!(is_float32 || is_float64) || !native_order(dt))
    throw py::type_error(name + ": dtype " + std::string(py::str(dt)) +
                         " is not supported; expected float32 or float64");
  const DType dtype = is_float32 ? DType::float32 : DType::float64;
  const bool contiguous = a.flags() & py::array::c_style;
  if (access == Access::write) {
    if (!contiguous)
      throw py::value_error(name + ": must be C-contiguous to be written in place");
    if (!a.writeable()) throw py::value_error(name + ": array is read-only");
  } else if (!contiguous) {
    a = py::module_::import("numpy").attr("ascontiguousarray")(a);
  }
  return {a, dtype};
}

const char* dtype_name(DType d) { return d == DType::float32 ? "float32" : "float64"; }

void check_same_dtype(const Checked& c, DType expected, const std::string& name,
                      const std::string& reference_name) {
  if (c.dtype != expected)
    throw py::type_error(name + ": dtype " + dtype_name(c.dtype) + " differs from " +
                         reference_name + "'s " + dtype_name(expected) +
                         " (all arrays of one call share one dtype)");
}

void check_same_shape(const py::array& a, const py::array& ref, const std::string& name,
                      const std::string& reference_name) {
  if (!same_shape(a, ref))
    throw py::value_error(name + ": shape " + describe_shape(a) + " differs from " +
                          reference_name + "'s shape " + describe_shape(ref));
}

// One operand of a multi-tensor call: a list of arrays, one per parameter.
struct Operand {
  const char* name;
  py::object list;  // None for an absent optional state
  Access access;
};

// All arrays of a multi-tensor call, validated: operands[0] gives the count,
// dtype and shapes every other operand must match.
struct CheckedList {
  DType dtype = DType::float32;
  std::vector<std::array<py::array, cpu::kMaxOperands>> arrays;  // keeps copies alive
  std::vector<int64_t> sizes;

  template <class T>
  cpu::TensorList<T> tensors() const {
    cpu::TensorList<T> t;
    t.sizes = sizes;
    for (const auto& row : arrays) {
      std::array<T*, cpu::kMaxOperands> ptrs{};
      for (int k = 0; k < cpu::kMaxOperands; ++k)
        if (row[k]) ptrs[k] = static_cast<T*>(const_cast<void*>(row[k].data()));
      t.operands.push_back(ptrs);
    }
    return t;
  }
};

py::list require_list(const py::object& obj, const std::string& name) {
  if (!py::isinstance<py::list>(obj))
    throw py::type_error(name + ": expected a list of numpy.ndarray");
  return py::reinterpret_borrow<py::list>(obj);
}

CheckedList check_operands(const std::vector<Operand>& operands) {
  CheckedList out;
  const py::list first = require_list(operands[0].list, operands[0].name);
  const size_t count = first.size();
  for (const Operand& op : operands) {
    if (op.list.is_none()) continue;
    const py::list l = require_list(op.list, op.name);
    if (l.size() != count)
      throw py::value_error(std::string(op.name) + ": expected " + std::to_string(count) +
                            " arrays (one per entry of " + operands[0].name + "), got " +
                            std::to_string(l.size()));
  }
  out.arrays.resize(count);
  out.sizes.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const std::string ref_name = std::string(operands[0].name) + "[" + std::to_string(i) + "]";
    for (size_t k = 0; k < operands.size(); ++k) {
      const Operand& op = operands[k];
      if (op.list.is_none()) continue;
      const std::string name = std::string(op.name) + "[" + std::to_string(i) + "]";
      const Checked c = check_float_array(py::reinterpret_borrow<py::list>(op.list)[i], name, op.access);
      if (i == 0 && k == 0) out.dtype = c.dtype;
      check_same_dtype(c, out.dtype, name, std::string(operands[0].name) + "[0]");
      if (k > 0) check_same_shape(c.array, out.arrays[i][0], name, ref_name);
      out.arrays[i][k] = c.array;
    }
    out.sizes[i] = static_cast<int64_t>(out.arrays[i][0].size());
  }
  return out;
}

template <class F>
auto dispatch(DType dtype, const F& f) {
  if (dtype == DType::float32) return f(float{});
  return f(double{});
}

// Runs kernel<T>(tensors) for the validated list without the GIL.
template <class Kernel>
void run_list(const CheckedList& checked, const Kernel& kernel) {
  dispatch(checked.dtype, [&](auto tag) {
    using T = decltype(tag);
    const cpu::TensorList<T> tensors = checked.tensors<T>();
    py::gil_scoped_release release;
    kernel(tensors);
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
    check_same_shape(out.array, expected, name, std::string("the expected"));
  }
  return out.array;
}

// An output may be one of the inputs itself (an in-place op) where allow_same is
// true, but never overlap an input partially: the kernels read each element
// before writing the same element only.
void check_overlap(const py::array& out, const char* out_name, const py::array& in,
                   const std::string& in_name, bool allow_same = true) {
  const char* o = static_cast<const char*>(out.data());
  const char* i = static_cast<const char*>(in.data());
  const py::ssize_t on = out.nbytes(), in_bytes = in.nbytes();
  if (on == 0 || in_bytes == 0 || o >= i + in_bytes || i >= o + on) return;
  if (allow_same && o == i && on == in_bytes) return;
  throw py::value_error(std::string(out_name) + ": overlaps " + in_name +
                        (allow_same ? " partially (only the very same array is allowed)"
                                    : " (must be separate memory)"));
}

cpu::Reduction to_reduction(int r) { return static_cast<cpu::Reduction>(r); }

// ---------------------------------------------------------------- optimizers

ops::GradHyper grad_hyper(double weight_decay, double l1, bool maximize) {
  return {weight_decay, l1, maximize};
}

void bind_optimizers(py::module_& m) {
  m.def("sgd_step", [](py::object params, py::object grads, double lr, double weight_decay,
                       double l1, bool maximize) {
    const auto c = check_operands({{"params", params, Access::write}, {"grads", grads, Access::read}});
    const ops::SgdHyper h{grad_hyper(weight_decay, l1, maximize), lr};
    run_list(c, [&](const auto& t) { cpu::sgd_step(t, h); });
  });

  m.def("sgdm_step", [](py::object params, py::object grads, py::object buffers, double lr,
                        double momentum, double dampening, bool nesterov, double weight_decay,
                        double l1, bool maximize, bool first_step) {
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"momentum_buffers", buffers, Access::write}});
    const ops::SgdmHyper h{grad_hyper(weight_decay, l1, maximize), lr, momentum, dampening,
                           nesterov, first_step};
    run_list(c, [&](const auto& t) { cpu::sgdm_step(t, h); });
  });

  m.def("adagrad_step", [](py::object params, py::object grads, py::object sums, double lr,
                           double eps, double weight_decay, double l1, bool maximize) {
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"sums", sums, Access::write}});
    const ops::AdagradHyper h{grad_hyper(weight_decay, l1, maximize), lr, eps};
    run_list(c, [&](const auto& t) { cpu::adagrad_step(t, h); });
  });

  m.def("rmsprop_step", [](py::object params, py::object grads, py::object square_avgs,
                           py::object grad_avgs, py::object momentum_buffers, double lr,
                           double alpha, double eps, double weight_decay, double l1,
                           bool maximize, double momentum, bool centered) {
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"square_avgs", square_avgs, Access::write},
                                   {"grad_avgs", grad_avgs, Access::write},
                                   {"momentum_buffers", momentum_buffers, Access::write}});
    const ops::RmspropHyper h{grad_hyper(weight_decay, l1, maximize), lr, alpha, eps, momentum,
                              centered};
    run_list(c, [&](const auto& t) { cpu::rmsprop_step(t, h); });
  });

  m.def("adam_step", [](py::object params, py::object grads, py::object exp_avgs,
                        py::object exp_avg_sqs, py::object max_exp_avg_sqs, int64_t step,
                        double lr, double beta1, double beta2, double eps, double weight_decay,
                        double l1, bool decoupled_weight_decay, bool maximize) {
    const auto c = check_operands({{"params", params, Access::write},
                                   {"grads", grads, Access::read},
                                   {"exp_avgs", exp_avgs, Access::write},
                                   {"exp_avg_sqs", exp_avg_sqs, Access::write},
                                   {"max_exp_avg_sqs", max_exp_avg_sqs, Access::write}});
    const ops::AdamHyper h{grad_hyper(decoupled_weight_decay ? 0.0 : weight_decay, l1, maximize),
                           lr, beta1, beta2, eps,
                           decoupled_weight_decay ? weight_decay : 0.0, step,
                           !max_exp_avg_sqs.is_none()};
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
    m.def(b.name, [kind](py::object x_obj, py::object out_obj, double alpha) {
      const Checked x = check_float_array(x_obj, "x", Access::read);
      py::array out = output_for(out_obj, "out", x, "x", shape_of(x.array));
      check_overlap(out, "out", x.array, "x");
      dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* in = data_of<T>(x.array);
        T* o = data_of<T>(out);
        const int64_t n = x.array.size();
        py::gil_scoped_release release;
        cpu::activation_forward(kind, in, o, n, alpha);
        return 0;
      });
      return out;
    });
    const std::string a_name = b.backward_input;
    m.def((std::string(b.name) + "_backward").c_str(),
          [kind, a_name](py::object a_obj, py::object dy_obj, py::object out_obj, double alpha) {
            const Checked a = check_float_array(a_obj, a_name, Access::read);
            const Checked dy = check_float_array(dy_obj, "dy", Access::read);
            check_same_dtype(dy, a.dtype, "dy", a_name);
            check_same_shape(dy.array, a.array, "dy", a_name);
            py::array out = output_for(out_obj, "out", a, a_name.c_str(), shape_of(a.array));
            check_overlap(out, "out", a.array, a_name);
            check_overlap(out, "out", dy.array, "dy");
            dispatch(a.dtype, [&](auto tag) {
              using T = decltype(tag);
              const T* pa = data_of<T>(a.array);
              const T* pdy = data_of<T>(dy.array);
              T* o = data_of<T>(out);
              const int64_t n = a.array.size();
              py::gil_scoped_release release;
              cpu::activation_backward(kind, pa, pdy, o, n, alpha);
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
  m.def("mse_loss", [](py::object pred_obj, py::object target_obj, int reduction,
                       py::object grad_out) {
    const Checked pred = check_float_array(pred_obj, "pred", Access::read);
    const Checked target = check_float_array(target_obj, "target", Access::read);
    check_same_dtype(target, pred.dtype, "target", "pred");
    check_same_shape(target.array, pred.array, "target", "pred");
    const auto shape = shape_of(pred.array);
    py::array grad = output_for(grad_out, "grad_out", pred, "pred", shape);
    check_overlap(grad, "grad_out", pred.array, "pred");
    check_overlap(grad, "grad_out", target.array, "target");
    const cpu::Reduction r = to_reduction(reduction);
    py::object losses = r == cpu::Reduction::none ? py::object(empty_like_shape(pred.array, shape))
                                                  : py::object(py::none());
    const double value = dispatch(pred.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* p = data_of<T>(pred.array);
      const T* t = data_of<T>(target.array);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      const int64_t n = pred.array.size();
      py::gil_scoped_release release;
      return cpu::mse_loss(p, t, g, l, n, r);
    });
    return loss_result(value, losses, grad);
  });

  m.def("cross_entropy", [](py::object probs_obj, py::object target_obj, int reduction,
                            py::object grad_out) {
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
    const cpu::Reduction r = to_reduction(reduction);
    py::object losses = r == cpu::Reduction::none
                            ? py::object(empty_like_shape(probs.array, row_shape))
                            : py::object(py::none());
    const double value = dispatch(probs.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* p = data_of<T>(probs.array);
      const T* t = data_of<T>(target.array);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      py::gil_scoped_release release;
      return cpu::cross_entropy(p, t, g, l, rows, classes, r);
    });
    return loss_result(value, losses, grad);
  });

  m.def("softmax_cross_entropy", [](py::object logits_obj, py::object target_obj, int reduction,
                                    py::object ignore_index, double label_smoothing,
                                    py::object grad_out) {
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
    cpu::SoftmaxCrossEntropyOptions o{to_reduction(reduction), !ignore_index.is_none(),
                                      ignore_index.is_none() ? 0 : ignore_index.cast<int64_t>(),
                                      label_smoothing, rows};
    if (class_ids) {
      if (target.ndim() != 1 || target.shape(0) != rows)
        throw py::value_error("target: class ids must have shape (" + std::to_string(rows) +
                              ",), got " + describe_shape(target));
      target = py::module_::import("numpy").attr("ascontiguousarray")(target, "int64");
      const int64_t* labels = static_cast<const int64_t*>(target.data());
      o.counted_rows = 0;
      for (int64_t r = 0; r < rows; ++r) {
        if (o.has_ignore_index && labels[r] == o.ignore_index) continue;
        if (labels[r] < 0 || labels[r] >= classes)
          throw py::value_error("target[" + std::to_string(r) + "] = " + std::to_string(labels[r]) +
                                " is outside [0, " + std::to_string(classes) + ")");
        ++o.counted_rows;
      }
    } else {
      const Checked probs = check_float_array(target, "target", Access::read);
      check_same_dtype(probs, logits.dtype, "target", "logits");
      check_same_shape(probs.array, logits.array, "target", "logits");
      if (o.has_ignore_index)
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
      const int64_t* labels = class_ids ? static_cast<const int64_t*>(target.data()) : nullptr;
      const T* probs = class_ids ? nullptr : data_of<T>(target);
      T* g = data_of<T>(grad);
      T* l = losses.is_none() ? nullptr : data_of<T>(py::reinterpret_borrow<py::array>(losses));
      py::gil_scoped_release release;
      return cpu::softmax_cross_entropy(x, labels, probs, g, l, rows, classes, o);
    });
    return loss_result(value, losses, grad);
  });

  m.def("l1_loss", [](py::object w) {
    const auto c = check_operands({{"w", w, Access::read}});
    return dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const cpu::TensorList<T> t = c.tensors<T>();
      py::gil_scoped_release release;
      return cpu::l1_loss(t);
    });
  });

  m.def("l2_loss", [](py::object w) {
    const auto c = check_operands({{"w", w, Access::read}});
    return dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const cpu::TensorList<T> t = c.tensors<T>();
      py::gil_scoped_release release;
      return cpu::l2_loss(t);
    });
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast's C++ kernels (private; use the nnfast package)";
  bind_optimizers(m);
  bind_activations(m);
  bind_losses(m);
  m.def("set_num_threads", &cpu::set_num_threads);
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
    d["openmp"] = cpu::openmp_enabled();
    d["simd"] = cpu::kernels().isa;
    d["compiler"] = __VERSION__;
    return d;
  });
}
