// The Python function adafactor_step (python/nnfast/functional.py documents it). Its
// states are not shaped like the params, so it is checked here rather than by the
// elementwise engine of bind/optimizer.h, with that engine's rules: params, grads and
// the storage options (master_params, param_remainders, stochastic_rounding) as any
// step's (check_roles), then per tensor either row_vars[i] and col_vars[i] (params of
// >= 2 dims, torch's shapes: the last dim, or the second to last, set to 1) or
// variances[i] (0-D and 1-D params, the params' shape), the other entries None, every
// state of the dtype a state may have (state_dtype_rule). The whole call is checked,
// scalars first, before anything is written.
#pragma once

#include <string>
#include <vector>

#include "bind/optimizer.h"
#include "call/adafactor_call.h"

namespace nnfast::bind {

inline ops::AdafactorHyper adafactor_hyper(Keywords& k) {
  ops::AdafactorHyper h{};
  h.lr = nonnegative_arg(k.take("lr"), "lr");
  h.beta2_decay = real_arg(k.take("beta2_decay"), "beta2_decay");
  if (h.beta2_decay > 0.0)
    throw py::value_error("beta2_decay: must be <= 0, got " + std::to_string(h.beta2_decay));
  const py::handle eps1 = k.take("eps1");
  h.eps1 = eps1.is_none() ? -1.0 : nonnegative_arg(eps1, "eps1");
  h.eps2 = nonnegative_arg(k.take("eps2"), "eps2");
  h.d = real_arg(k.take("d"), "d");
  if (h.d < 1.0) throw py::value_error("d: must be >= 1, got " + std::to_string(h.d));
  h.weight_decay = nonnegative_arg(k.take("weight_decay"), "weight_decay");
  h.maximize = bool_arg(k.take("maximize"), "maximize");
  return h;
}

// The entries of a per-tensor state list (each None or an array, checked by the caller).
inline std::vector<py::object> state_entries(py::handle obj, const char* name, size_t count) {
  if (!PyList_Check(obj.ptr()) && !PyTuple_Check(obj.ptr()))
    throw py::type_error(std::string(name) + ": expected a list with one entry (an array or None) "
                         "per entry of params, got " + type_name(obj));
  const py::tuple items = py::tuple(py::reinterpret_borrow<py::object>(obj));
  if (items.size() != count)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(count) +
                          " entries (one per entry of params), got " + std::to_string(items.size()));
  std::vector<py::object> entries;
  for (size_t i = 0; i < count; ++i) entries.push_back(items[i]);
  return entries;
}

template <class B>
void run_adafactor(Keywords& k) {
  ops::AdafactorHyper h = adafactor_hyper(k);
  const GradScaling scaling = grad_scaling(k);
  h.store_scaled_grads = scaling.store_scaled_grads;
  const py::handle params = k.take("params"), grads = k.take("grads");
  const py::handle row_vars = k.take("row_vars"), col_vars = k.take("col_vars");
  const py::handle variances = k.take("variances");
  const py::handle step = k.take("step");
  const StorageArgs storage = storage_args(k);
  k.finish();

  std::vector<Operand> operands{{"params", params, Access::write},
                                {"grads", grads, scaling.store_scaled_grads ? Access::write : Access::read}};
  std::vector<ops::Role> roles{ops::Role::param, ops::Role::grad};
  const int companion = add_companion(storage, operands, roles);
  typename B::Call on_device;
  CheckedList c = check_operands<B>(operands, /*one_dtype=*/false);
  const ParamStorage param_storage = check_roles(c, operands, roles, companion, storage);
  if (h.eps1 < 0.0) h.eps1 = machine_epsilon(c.dtype);  // eps1=None: torch's, the params' dtype's
  const size_t count = c.arrays.size();
  const std::vector<py::object> rows = state_entries(row_vars, "row_vars", count);
  const std::vector<py::object> cols = state_entries(col_vars, "col_vars", count);
  const std::vector<py::object> vars = state_entries(variances, "variances", count);
  // The states fill the slots after the params' operands, so check_no_shared_memory
  // sees them too.
  const int first_state = static_cast<int>(operands.size());
  std::vector<Operand> all = operands;
  all.insert(all.end(), {{"row_vars", row_vars, Access::write},
                         {"col_vars", col_vars, Access::write},
                         {"variances", variances, Access::write}});
  DType states_dtype = c.dtype;
  bool states_seen = false;
  for (size_t i = 0; i < count; ++i) {
    const auto index = static_cast<int64_t>(i);
    const Shape& shape = c.arrays[i][0].shape;
    const bool factored = shape.size() >= 2;
    const auto take_state = [&](const py::object& entry, const char* name, int slot, bool used, Shape expected) {
      const ArgName arg(name, index);
      if (!used) {
        if (!entry.is_none())
          throw py::value_error(arg.str() + std::string(": must be None for params of ") +
                                (factored ? ">= 2 dims (their states are row_vars and col_vars)"
                                          : "0 or 1 dims (their state is variances)"));
        return;
      }
      if (entry.is_none())
        throw py::value_error(arg.str() + std::string(": required for params of ") +
                              (factored ? ">= 2 dims" : "0 or 1 dims") + ", got None");
      Array a = B::check(entry, arg, Access::write);
      const std::string rule = state_dtype_rule(c.dtype, a.dtype, states_seen ? &states_dtype : nullptr);
      if (!rule.empty()) throw dtype_refused(arg, a.dtype, rule);
      states_dtype = a.dtype;
      states_seen = true;
      if (a.shape != expected)
        throw py::value_error(arg.str() + ": shape " + describe_shape(a.shape) + " must be " +
                              describe_shape(expected) + " for params of shape " + describe_shape(shape));
      c.arrays[i][first_state + slot] = std::move(a);
    };
    const auto with_unit_dim = [&](size_t from_end) {
      std::vector<int64_t> dims(shape.begin(), shape.end());
      if (factored) dims[dims.size() - from_end] = 1;
      return Shape(dims.data(), dims.size());
    };
    take_state(rows[i], "row_vars", 0, factored, with_unit_dim(1));
    take_state(cols[i], "col_vars", 1, factored, with_unit_dim(2));
    take_state(vars[i], "variances", 2, !factored, shape);
  }
  check_no_shared_memory(c, all);
  const std::vector<int64_t> steps = per_tensor_steps(step, count);
  const ControlArrays control = control_arrays<B>(scaling);
  h.grad_scale = control.grad_scale;
  const bool one_dtype = (c.dtype == DType::float32 || c.dtype == DType::float64) &&
                         (count == 0 || c.arrays[0][1].dtype == c.dtype) &&
                         (!states_seen || states_dtype == c.dtype);
  if (!B::kAdafactorConverts && !one_dtype)
    throw py::type_error("adafactor_step: GPU arrays must be all float32 or all float64 (the GPU "
                         "kernels convert no 16-bit array yet)");
  const auto run = [&](auto compute) {
    using S = decltype(compute);
    AdafactorCall<S> call;
    call.hyper = h;
    call.params_dtype = c.dtype;
    if (count > 0) call.grads_dtype = c.arrays[0][1].dtype;
    call.states_dtype = states_dtype;
    call.param_storage = param_storage;
    call.seed = storage.seed;
    call.found_inf = control.found_inf();
    call.device_grad_scale = control.device_grad_scale;
    for (size_t i = 0; i < count; ++i) {
      const auto& a = c.arrays[i];
      const Shape& shape = a[0].shape;
      AdafactorTensor<S> t{a[0].data, a[1].data, companion >= 0 ? a[companion].data : nullptr,
                           a[first_state].data, a[first_state + 1].data, a[first_state + 2].data,
                           shape.size() >= 2, a[0].size, 1, 1, a[0].size, steps[i],
                           ops::adafactor_scalars<S>(h, steps[i])};
      if (t.factored) {
        t.rows = shape[shape.size() - 2];
        t.cols = shape[shape.size() - 1];
        t.batch = t.rows * t.cols == 0 ? 0 : t.count / (t.rows * t.cols);
      }
      call.tensors.push_back(t);
    }
    without_gil_if_large(call.total(), [&] { B::adafactor_step(call); });
  };
  if (c.dtype == DType::float64) run(double{});
  else run(float{});
}

template <class B>
void bind_adafactor(py::module_& m) {
  m.def("adafactor_step", [](py::kwargs kwargs) {
    Keywords k(std::move(kwargs), "adafactor_step");
    run_adafactor<B>(k);
  });
}

}  // namespace nnfast::bind
