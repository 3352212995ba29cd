// The Python functions of every operation, written once for every backend.
//
// bind_ops<Backend>(m) defines the optimizer steps (bind/optimizer.h), activations
// and losses of a module: each function checks every argument, scalars first, then
// all arrays, before anything is written, then runs the Backend's driver. Arguments
// of the activations and losses arrive in the order of the Python signatures in
// python/nnfast/{activations,losses}.py. A Backend supplies the array checks (see arrays.h),
// new arrays of an input's kind, class-id targets, and the drivers.
#pragma once

#include <string>
#include <vector>

#include "bind/arrays.h"
#include "bind/optimizer.h"
#include "call/activation_kind.h"
#include "ops/loss_scalars.h"

namespace nnfast::bind {

// f(T{}) for the element type T of dtype: float, double, and Bfloat16 or Float16 where
// the backend's drivers take 16-bit storage (elsewhere check_floating refuses them).
template <class B, class F>
auto dispatch_storage(DType dtype, const F& f) {
  if constexpr (B::kSixteenBitStorage) {
    if (dtype == DType::bfloat16) return f(Bfloat16{});
    if (dtype == DType::float16) return f(Float16{});
  }
  return dispatch(dtype, f);
}

struct ActivationBinding {
  const char* name;
  Activation kind;
  const char* backward_input;  // "y" when the backward reads the forward output
};

constexpr ActivationBinding kActivations[] = {
    {"sigmoid", Activation::sigmoid, "y"},
    {"tanh", Activation::tanh, "y"},
    {"relu", Activation::relu, "x"},
    {"leaky_relu", Activation::leaky_relu, "x"},
};

template <class B>
void bind_activations(py::module_& m) {
  for (const ActivationBinding& b : kActivations) {
    const Activation kind = b.kind;
    m.def(b.name, [kind](py::object x_obj, py::object out_obj, py::handle alpha_obj) {
      const double alpha = real_arg(alpha_obj, "alpha");
      typename B::Call call;
      const Array x = B::check(x_obj, "x", Access::read);
      check_floating<B>(x, "x");
      const Array out = output_for<B>(out_obj, "out", x, "x", x.shape);
      check_overlap(out, "out", x, "x");
      dispatch_storage<B>(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        without_gil_if_large(x.size, [&] {
          B::activation_forward(kind, x.ptr<T>(), out.ptr<T>(), x.size, alpha);
        });
        return 0;
      });
      return out.owner;
    }, py::arg("x"), py::arg("out"), py::arg("alpha"));
    const char* a_name = b.backward_input;
    m.def((std::string(b.name) + "_backward").c_str(),
          [kind, a_name](py::object a_obj, py::object dy_obj, py::object out_obj,
                         py::handle alpha_obj) {
            const double alpha = real_arg(alpha_obj, "alpha");
            typename B::Call call;
            const Array a = B::check(a_obj, a_name, Access::read);
            check_floating<B>(a, a_name);
            const Array dy = B::check(dy_obj, "dy", Access::read);
            check_same_dtype(dy, a.dtype, "dy", a_name);
            check_shape(dy, a.shape, "dy", a_name);
            const Array out = output_for<B>(out_obj, "out", a, a_name, a.shape);
            check_overlap(out, "out", a, a_name);
            check_overlap(out, "out", dy, "dy");
            dispatch_storage<B>(a.dtype, [&](auto tag) {
              using T = decltype(tag);
              without_gil_if_large(a.size, [&] {
                B::activation_backward(kind, a.ptr<T>(), dy.ptr<T>(), out.ptr<T>(), a.size, alpha);
              });
              return 0;
            });
            return out.owner;
          }, py::arg(a_name), py::arg("dy"), py::arg("out"), py::arg("alpha"));
  }
}

// Runs a loss's driver on validated arrays and returns (loss, grad): loss is a
// float for "sum"/"mean", or for "none" a new array of losses_shape (one loss per
// element or row), which driver(T tag, T* losses) writes. like gives the dtype,
// kind and size of the call. A call with no values (like.size == 0: no rows, or
// rows of no classes) runs nothing: every loss term is 0, so the result is 0, or
// NaN for "mean" over mean_count = 0 terms, and "none" gives zeros (whose pages
// the OS provides untouched: O(1) for any number of rows).
template <class B, class Driver>
py::tuple run_loss(Reduction r, const Array& like, const Shape& losses_shape, const Array& grad,
                   int64_t mean_count, const Driver& driver) {
  if (like.size == 0) {
    if (r == Reduction::none) return py::make_tuple(B::zeros(like, losses_shape).owner, grad.owner);
    return py::make_tuple(ops::reduce_loss(0.0, mean_count, r), grad.owner);
  }
  const Array losses = r == Reduction::none ? B::empty(like, losses_shape) : Array{};
  const double value = dispatch_storage<B>(like.dtype, [&](auto tag) {
    using T = decltype(tag);
    T* per_item = r == Reduction::none ? losses.ptr<T>() : nullptr;
    return without_gil_if_large(like.size, [&] { return driver(tag, per_item); });
  });
  if (r == Reduction::none) return py::make_tuple(losses.owner, grad.owner);
  return py::make_tuple(value, grad.owner);
}

// The arrays of an elementwise loss: an input, a target of its dtype and shape,
// and the gradient (grad_out, or new), which may be the input itself.
struct LossArrays {
  Array input, target, grad;
};

template <class B>
LossArrays check_loss_arrays(const py::object& input_obj, const char* input_name,
                             const py::object& target_obj, const py::object& grad_out) {
  LossArrays a;
  a.input = B::check(input_obj, input_name, Access::read);
  check_floating<B>(a.input, input_name);
  a.target = B::check(target_obj, "target", Access::read);
  check_same_dtype(a.target, a.input.dtype, "target", input_name);
  check_shape(a.target, a.input.shape, "target", input_name);
  a.grad = output_for<B>(grad_out, "grad_out", a.input, input_name, a.input.shape);
  check_overlap(a.grad, "grad_out", a.input, input_name);
  check_overlap(a.grad, "grad_out", a.target, "target");
  return a;
}

template <class B>
void bind_losses(py::module_& m) {
  m.def("mse_loss", [](py::object pred_obj, py::object target_obj, py::handle reduction,
                       py::object grad_out) {
    const Reduction r = reduction_arg(reduction);
    typename B::Call call;
    const LossArrays a = check_loss_arrays<B>(pred_obj, "pred", target_obj, grad_out);
    return run_loss<B>(r, a.input, a.input.shape, a.grad, a.input.size, [&](auto tag, auto* losses) {
      using T = decltype(tag);
      return B::mse_loss(a.input.ptr<T>(), a.target.ptr<T>(), a.grad.ptr<T>(), losses,
                         a.input.size, r);
    });
  }, py::arg("pred"), py::arg("target"), py::arg("reduction"), py::arg("grad_out"));

  m.def("cross_entropy", [](py::object probs_obj, py::object target_obj, py::handle reduction,
                            py::object grad_out) {
    const Reduction r = reduction_arg(reduction);
    typename B::Call call;
    const LossArrays a = check_loss_arrays<B>(probs_obj, "probs", target_obj, grad_out);
    if (a.input.shape.empty())
      throw py::value_error("probs: expected at least 1 dimension (the classes), got a 0-d array");
    const int64_t classes = a.input.shape.back();
    const Shape row_shape(a.input.shape.begin(), a.input.shape.size() - 1);
    const int64_t rows = element_count(row_shape);
    return run_loss<B>(r, a.input, row_shape, a.grad, rows, [&](auto tag, auto* losses) {
      using T = decltype(tag);
      return B::cross_entropy(a.input.ptr<T>(), a.target.ptr<T>(), a.grad.ptr<T>(), losses, rows,
                              classes, r);
    });
  }, py::arg("probs"), py::arg("target"), py::arg("reduction"), py::arg("grad_out"));

  m.def("softmax_cross_entropy", [](py::object logits_obj, py::object target_obj,
                                    py::handle reduction, py::object ignore_index,
                                    py::handle label_smoothing, py::object grad_out) {
    const Reduction r = reduction_arg(reduction);
    const double smoothing = unit_interval_arg(label_smoothing, "label_smoothing", true);
    check_ignore_index(ignore_index);
    typename B::Call call;
    const Array logits = B::check(logits_obj, "logits", Access::read);
    check_floating<B>(logits, "logits");
    if (logits.shape.size() != 2)
      throw py::value_error("logits: expected 2 dimensions (N, C), got shape " +
                            describe_shape(logits.shape));
    const int64_t rows = logits.shape[0];
    const int64_t classes = logits.shape[1];
    if (classes < 1) throw py::value_error("logits: expected at least one class, got C = 0");
    SoftmaxCrossEntropyOptions o{
        r,
        {nullptr, !ignore_index.is_none(),
         ignore_index.is_none() ? 0 : int64_arg(ignore_index, "ignore_index"), smoothing},
        rows};
    // Class ids become a private int64 copy, checked against [0, C): the kernel
    // reads them without the GIL, so the caller's array could change meanwhile.
    py::object labels;
    Array probs;
    if (B::holds_integers(target_obj)) {
      labels = B::class_ids(target_obj, rows, classes, o);
    } else {
      probs = B::check(target_obj, "target", Access::read);
      if (probs.shape.size() == 1 && logits.shape.size() == 2)
        throw py::type_error("target: class ids must be integers, got " +
                             std::string(dtype_name(probs.dtype)) +
                             " (probability targets have the logits' shape " +
                             describe_shape(logits.shape) + ")");
      check_same_dtype(probs, logits.dtype, "target", "logits");
      check_shape(probs, logits.shape, "target", "logits");
      if (o.rows.has_ignore_index)
        throw py::value_error(
            "ignore_index: applies to class-id targets only, but target holds probabilities");
    }
    const Array grad = output_for<B>(grad_out, "grad_out", logits, "logits", logits.shape);
    check_overlap(grad, "grad_out", logits, "logits");
    if (probs.data) check_overlap(grad, "grad_out", probs, "target", /*allow_same=*/false);
    return run_loss<B>(r, logits, {rows}, grad, ops::mean_divisor(o, rows), [&](auto tag, auto* losses) {
      using T = decltype(tag);
      return B::softmax_cross_entropy(logits.ptr<T>(), probs.ptr<T>(), grad.ptr<T>(), losses, rows,
                                      classes, o);
    });
  },
      py::arg("logits"), py::arg("target"), py::arg("reduction"), py::arg("ignore_index"),
      py::arg("label_smoothing"), py::arg("grad_out"));

  for (const bool l2 : {false, true}) {
    m.def(l2 ? "l2_loss" : "l1_loss", [l2](py::object w) {
      typename B::Call call;
      const auto c = check_operands<B>({{"w", w, Access::read}});
      return dispatch_storage<B>(c.dtype, [&](auto tag) {
        using T = decltype(tag);
        const TensorList<T> t = c.template tensors<T>();
        return without_gil_if_large(t.total(), [&] { return l2 ? B::l2_loss(t) : B::l1_loss(t); });
      });
    }, py::arg("w"));
  }
}

template <class B>
void bind_ops(py::module_& m) {
  bind_optimizers<B>(m);
  bind_activations<B>(m);
  bind_losses<B>(m);
}

}  // namespace nnfast::bind
