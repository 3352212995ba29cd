// The Python functions of the gradient utilities (python/nnfast/gradients.py), for
// nnfast._core and nnfast._cuda: grad_norm, and clip_grad_norm_, its two passes
// (the norm, then g *= coefficient).
// Every argument is checked, scalars first, then every array, before anything is
// written; clip_grad_norm_ with error_if_nonfinite writes nothing when the norm
// is NaN or infinite.
#pragma once

#include <pybind11/numpy.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "bind/arrays.h"
#include "bind/ops.h"
#include "ops/norms.h"

namespace nnfast::bind {

// A real number, or +inf (a Python or NumPy float), as a double.
inline double real_or_inf_arg(py::handle obj, const char* name) {
  PyObject* o = obj.ptr();
  if ((PyFloat_Check(o) || is_numpy_instance(obj, "floating")) &&
      PyFloat_AsDouble(o) == std::numeric_limits<double>::infinity())
    return std::numeric_limits<double>::infinity();
  return real_arg(obj, name);
}

// norm_type: p > 0, or inf.
inline double norm_type_arg(py::handle obj) {
  const double p = real_or_inf_arg(obj, "norm_type");
  if (!(p > 0.0))
    throw py::value_error("norm_type: must be > 0 or inf, got " + std::string(py::str(obj)));
  return p;
}

// max_norm: >= 0, or inf.
inline double max_norm_arg(py::handle obj) {
  const double max_norm = real_or_inf_arg(obj, "max_norm");
  if (max_norm < 0.0)
    throw py::value_error("max_norm: must be >= 0, got " + std::string(py::str(obj)));
  return max_norm;
}

// torch.nn.utils.clip_grad_norm_'s message, for error_if_nonfinite.
inline std::string nonfinite_norm_message(double norm_type) {
  return "The total norm of order " + std::string(py::str(py::float_(norm_type))) +
         " for gradients from `parameters` is non-finite, so it cannot be clipped. To disable "
         "this error and scale the gradients by the non-finite norm anyway, set "
         "`error_if_nonfinite=False`";
}

// The scalar arguments of grad_norm and of clip_grad_norm_, checked.
struct NormArgs {
  NormSpec spec;
  bool per_tensor;
};

inline NormArgs norm_args(py::handle norm_type, py::handle scale, py::handle per_tensor) {
  return {ops::norm_spec(norm_type_arg(norm_type), real_arg(scale, "scale")),
          bool_arg(per_tensor, "per_tensor")};
}

struct ClipArgs {
  double max_norm;
  NormSpec spec;
  bool error_if_nonfinite;
};

inline ClipArgs clip_args(py::handle max_norm, py::handle norm_type,
                          py::handle error_if_nonfinite) {
  const double limit = max_norm_arg(max_norm);
  return {limit, ops::norm_spec(norm_type_arg(norm_type), 1.0),
          bool_arg(error_if_nonfinite, "error_if_nonfinite")};
}

// Whether B's drivers leave their results in device memory (the GPU's
// grad_norm_to), else they return them (the host's grad_norm).
template <class B, class = void>
constexpr bool kDeviceResults = false;
template <class B>
constexpr bool kDeviceResults<B, std::void_t<decltype(&B::template grad_norm_to<float>)>> = true;

// The array whose library, dtype and device the GPU results take.
inline const Array& first_array(const CheckedList& c) {
  if (c.arrays.empty()) throw py::value_error("grads: a GPU call needs at least one array");
  return c.arrays[0][0];
}

// The norm of the checked grads: on the host a float (and a float64 NumPy array of
// the per-tensor norms); on the GPU new device arrays of the grads' library and
// dtype, 1 element (and one per tensor), not waited for.
// The GPU norms take float32 and float64 grads (their results are device arrays of
// the grads' dtype): TypeError for 16-bit GPU grads, which the host takes.
inline void check_device_norm_dtype(DType dtype) {
  if (is_16bit_float(dtype))
    throw py::type_error(std::string("grads: dtype ") + dtype_name(dtype) +
                         " is not supported for GPU arrays here; expected float32 or float64");
}

template <class B>
py::object run_grad_norm(const CheckedList& c, const NormArgs& args) {
  if constexpr (kDeviceResults<B>) {
    check_device_norm_dtype(c.dtype);
    const Array& like = first_array(c);
    const Array total = B::empty(like, {1});
    const Array norms = args.per_tensor ? B::empty(like, {static_cast<int64_t>(c.sizes.size())}) : Array{};
    dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      B::grad_norm_to(c.template tensors<T>(), args.spec, total.ptr<T>(), norms.ptr<T>());
      return 0;
    });
    if (args.per_tensor) return py::make_tuple(total.owner, norms.owner);
    return total.owner;
  } else {
    py::array_t<double> norms(static_cast<py::ssize_t>(c.sizes.size()));
    double* per = args.per_tensor ? norms.mutable_data() : nullptr;
    const double total = dispatch_storage<B>(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const TensorList<T> t = c.template tensors<T>();
      return without_gil_if_large(t.total(), [&] { return B::grad_norm(t, args.spec, per); });
    });
    if (args.per_tensor) return py::make_tuple(total, norms);
    return py::float_(total);
  }
}

// Both passes of clipping on the checked grads; returns the norm as run_grad_norm
// does (error_if_nonfinite: RuntimeError before the second pass, which on the GPU
// waits for the norm).
template <class B>
py::object run_clip(const CheckedList& c, const ClipArgs& args) {
  const std::string nonfinite = nonfinite_norm_message(args.spec.p);
  if constexpr (kDeviceResults<B>) {
    check_device_norm_dtype(c.dtype);
    const Array total = B::empty(first_array(c), {1});
    dispatch(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const TensorList<T> t = c.template tensors<T>();
      B::grad_norm_to(t, args.spec, total.ptr<T>(), static_cast<T*>(nullptr));
      if (args.error_if_nonfinite && !std::isfinite(static_cast<double>(B::norm_value(total.ptr<T>()))))
        throw std::runtime_error(nonfinite);
      B::clip_to_norm(t, total.ptr<T>(), args.max_norm);
      return 0;
    });
    return total.owner;
  } else {
    return py::float_(dispatch_storage<B>(c.dtype, [&](auto tag) {
      using T = decltype(tag);
      const TensorList<T> t = c.template tensors<T>();
      const double total =
          without_gil_if_large(t.total(), [&] { return B::grad_norm(t, args.spec, nullptr); });
      if (args.error_if_nonfinite && !std::isfinite(total)) throw std::runtime_error(nonfinite);
      const ComputeType<T> coefficient = ops::clip_coefficient<ComputeType<T>>(total, args.max_norm);
      without_gil_if_large(t.total(), [&] { B::scale(t, static_cast<double>(coefficient)); });
      return total;
    }));
  }
}

template <class B>
void bind_gradients(py::module_& m) {
  m.def("grad_norm", [](py::object grads, py::handle norm_type, py::handle scale,
                        py::handle per_tensor) {
    const NormArgs args = norm_args(norm_type, scale, per_tensor);
    typename B::Call call;
    return run_grad_norm<B>(check_operands<B>({{"grads", grads, Access::read}}), args);
  }, py::arg("grads"), py::arg("norm_type"), py::arg("scale"), py::arg("per_tensor"));

  m.def("clip_grad_norm_", [](py::object grads, py::handle max_norm, py::handle norm_type,
                              py::handle error_if_nonfinite) {
    const ClipArgs args = clip_args(max_norm, norm_type, error_if_nonfinite);
    typename B::Call call;
    return run_clip<B>(check_operands<B>({{"grads", grads, Access::write}}), args);
  }, py::arg("grads"), py::arg("max_norm"), py::arg("norm_type"), py::arg("error_if_nonfinite"));
}

}  // namespace nnfast::bind
