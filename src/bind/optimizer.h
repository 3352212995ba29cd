// The Python functions of the optimizer steps, one generic binding for every
// optimizer and backend.
//
// Each step is called by keyword only (python/nnfast/functional.py passes every
// argument by name): the operands by the names of their ops/optimizers/ spec, the
// hyperparameters by the names its binding struct below reads, then the options
// every step shares (step, master_params, param_remainders, stochastic_rounding,
// seed, grad_scale, found_inf, store_scaled_grads). A missing or unknown keyword is a
// TypeError. The whole call is checked, scalars first, then every array and the dtypes
// of each role, before anything is written; then the backend's driver runs it once.
#pragma once

#include <algorithm>
#include <type_traits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "bind/arrays.h"
#include "call/optimizer_call.h"

namespace nnfast::bind {

// The keyword arguments of a call, each taken once by name.
class Keywords {
 public:
  Keywords(py::kwargs kwargs, const char* function) : kwargs_(std::move(kwargs)), function_(function) {}

  // The argument `name` (None is a value like any other); TypeError if absent.
  py::handle take(const char* name) {
    PyObject* value = PyDict_GetItemWithError(kwargs_.ptr(), interned(name));
    if (!value) {
      if (PyErr_Occurred()) throw py::error_already_set();
      throw py::type_error(std::string(function_) + "(): missing keyword argument '" + name + "'");
    }
    taken_.push_back(name);
    return value;
  }

  // TypeError naming a keyword that no take() asked for (a misspelled option must
  // not be silently ignored).
  void finish() const {
    if (static_cast<size_t>(PyDict_Size(kwargs_.ptr())) == taken_.size()) return;
    for (auto item : kwargs_) {
      const std::string key = py::str(item.first);
      if (std::none_of(taken_.begin(), taken_.end(), [&](const char* t) { return key == t; }))
        throw py::type_error(std::string(function_) + "(): unexpected keyword argument '" + key + "'");
    }
  }

 private:
  // The interned Python string of a name (a string literal, so its address names it):
  // made once, so a lookup hashes nothing new (a call takes some twenty keywords).
  static PyObject* interned(const char* name) {
    static std::vector<std::pair<const char*, PyObject*>> strings;  // (the GIL is held)
    for (const auto& [literal, string] : strings)
      if (literal == name) return string;
    PyObject* string = PyUnicode_InternFromString(name);
    if (!string) throw py::error_already_set();
    strings.emplace_back(name, string);
    return string;
  }

  py::kwargs kwargs_;
  const char* function_;
  std::vector<const char*> taken_;
};

inline ops::GradHyper grad_hyper(Keywords& k) {
  return {nonnegative_arg(k.take("weight_decay"), "weight_decay"),
          nonnegative_arg(k.take("l1"), "l1"), bool_arg(k.take("maximize"), "maximize")};
}

// ------------------------------------------------------------ one struct per optimizer
// kName, the operands (ops/optimizers/), hyper(): the hyperparameters read from
// the keywords and checked, uses(): whether an optional state is used, and
// kTakesFirstStep: whether the step takes a per-tensor first_step flag (and, where a
// binding declares it, kTakesMuProduct: whether it takes a per-tensor mu_product).

struct SgdBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "sgd_step";
  using Operands = ops::SgdOperands;
  using Hyper = ops::SgdHyper;
  static Hyper hyper(Keywords& k) { return {grad_hyper(k), nonnegative_arg(k.take("lr"), "lr")}; }
  static bool uses(const Hyper&, int) { return true; }
};

struct SgdmBinding {
  static constexpr bool kTakesFirstStep = true;  // PyTorch's first step: b = g'
  static constexpr const char* kName = "sgdm_step";
  using Operands = ops::SgdmOperands;
  using Hyper = ops::SgdmHyper;
  static Hyper hyper(Keywords& k) {
    const Hyper h{grad_hyper(k), nonnegative_arg(k.take("lr"), "lr"),
                  nonnegative_arg(k.take("momentum"), "momentum"),
                  real_arg(k.take("dampening"), "dampening"), bool_arg(k.take("nesterov"), "nesterov")};
    if (h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0))
      throw py::value_error("nesterov: requires momentum > 0 and dampening = 0");
    return h;
  }
  static bool uses(const Hyper&, int) { return true; }
};

struct AdagradBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "adagrad_step";
  using Operands = ops::AdagradOperands;
  using Hyper = ops::AdagradHyper;
  static Hyper hyper(Keywords& k) {
    return {grad_hyper(k), nonnegative_arg(k.take("lr"), "lr"),
            nonnegative_arg(k.take("lr_decay"), "lr_decay"), nonnegative_arg(k.take("eps"), "eps")};
  }
  static bool uses(const Hyper&, int) { return true; }
};

struct RmspropBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "rmsprop_step";
  using Operands = ops::RmspropOperands;
  using Hyper = ops::RmspropHyper;
  static Hyper hyper(Keywords& k) {
    return {grad_hyper(k),
            nonnegative_arg(k.take("lr"), "lr"),
            unit_interval_arg(k.take("alpha"), "alpha", true),
            nonnegative_arg(k.take("eps"), "eps"),
            nonnegative_arg(k.take("momentum"), "momentum"),
            bool_arg(k.take("centered"), "centered")};
  }
  static bool uses(const Hyper& h, int slot) {
    if (slot == Operands::grad_avgs) return h.centered;
    if (slot == Operands::momentum_buffers) return h.momentum > 0.0;
    return true;
  }
};

// The moments' hyperparameters of Adam, NAdam and RAdam (lr, the betas, eps), with a decoupled
// weight_decay moved out of g' (grad) into the decay of p.
// A weight decay applied to p (decoupled), taken out of g': returns it, leaving grad's 0.
inline double decoupled_weight_decay(ops::GradHyper& grad) {
  const double decay = grad.weight_decay;
  grad.weight_decay = 0.0;
  return decay;
}

inline ops::MomentHyper moment_hyper(Keywords& k, ops::GradHyper& grad) {
  const bool decoupled = bool_arg(k.take("decoupled_weight_decay"), "decoupled_weight_decay");
  return {nonnegative_arg(k.take("lr"), "lr"), unit_interval_arg(k.take("beta1"), "beta1", false),
          unit_interval_arg(k.take("beta2"), "beta2", false), nonnegative_arg(k.take("eps"), "eps"),
          decoupled ? decoupled_weight_decay(grad) : 0.0};
}

struct AdamBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "adam_step";
  using Operands = ops::AdamOperands;
  using Hyper = ops::AdamHyper;
  static Hyper hyper(Keywords& k) {
    ops::GradHyper grad = grad_hyper(k);
    const ops::MomentHyper moments = moment_hyper(k, grad);
    return {grad, moments, bool_arg(k.take("amsgrad"), "amsgrad")};
  }
  static bool uses(const Hyper& h, int slot) {
    return slot != Operands::max_exp_avg_sqs || h.amsgrad;
  }
};

// NAdam: takes its per-tensor mu_product (kTakesMuProduct).
struct NadamBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr bool kTakesMuProduct = true;
  static constexpr const char* kName = "nadam_step";
  using Operands = ops::NadamOperands;
  using Hyper = ops::NadamHyper;
  static Hyper hyper(Keywords& k) {
    ops::GradHyper grad = grad_hyper(k);
    const ops::MomentHyper moments = moment_hyper(k, grad);
    return {grad, moments, nonnegative_arg(k.take("momentum_decay"), "momentum_decay")};
  }
  static bool uses(const Hyper&, int) { return true; }
};

struct RadamBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "radam_step";
  using Operands = ops::RadamOperands;
  using Hyper = ops::RadamHyper;
  static Hyper hyper(Keywords& k) {
    ops::GradHyper grad = grad_hyper(k);
    const ops::MomentHyper moments = moment_hyper(k, grad);
    return {grad, moments};
  }
  static bool uses(const Hyper&, int) { return true; }
};

// Whether a binding's step takes the per-tensor mu_product keyword (NAdam's); a binding
// that does not say takes none.
template <class Opt, class = void>
struct TakesMuProduct : std::false_type {};
template <class Opt>
struct TakesMuProduct<Opt, std::void_t<decltype(Opt::kTakesMuProduct)>>
    : std::bool_constant<Opt::kTakesMuProduct> {};

// Whether a binding has passes of its own before the update (prepare<B>(call, h), e.g.
// LAMB's norms), which read the skip flag and the gradients' scale on the host; a
// binding that does not say has none.
template <class Opt, class = void>
struct PreparesOnHost : std::false_type {};
template <class Opt>
struct PreparesOnHost<Opt, std::void_t<decltype(Opt::kPreparesOnHost)>>
    : std::bool_constant<Opt::kPreparesOnHost> {};

struct LambBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr bool kPreparesOnHost = true;  // the global norm and the trust ratios
  static constexpr const char* kName = "lamb_step";
  using Operands = ops::LambOperands;
  using Hyper = ops::LambHyper;
  static Hyper hyper(Keywords& k) {
    const bool adam_w_mode = bool_arg(k.take("adam_w_mode"), "adam_w_mode");
    const double weight_decay = nonnegative_arg(k.take("weight_decay"), "weight_decay");
    const ops::GradHyper grad{adam_w_mode ? 0.0 : weight_decay, 0.0,
                              bool_arg(k.take("maximize"), "maximize")};
    return {grad,
            nonnegative_arg(k.take("lr"), "lr"),
            unit_interval_arg(k.take("beta1"), "beta1", false),
            unit_interval_arg(k.take("beta2"), "beta2", false),
            nonnegative_arg(k.take("eps"), "eps"),
            weight_decay,
            nonnegative_arg(k.take("max_grad_norm"), "max_grad_norm"),
            bool_arg(k.take("bias_correction"), "bias_correction"),
            adam_w_mode,
            bool_arg(k.take("grad_averaging"), "grad_averaging"),
            bool_arg(k.take("use_nvlamb"), "use_nvlamb")};
  }
  static bool uses(const Hyper&, int) { return true; }
  template <class B, class S>
  static void prepare(OptimizerCall<S>& call, const Hyper& h);
};

// ------------------------------------------------------------ LAMB's passes

// The value of a 1-element float32 control array (found_inf, grad_scale): read from
// host memory, or copied from the device (a sync: LAMB's trust ratios are derived
// on the host anyway).
template <class B>
double control_value(const float* value) {
  if constexpr (B::kHostMemory) return *value;
  else return B::template norm_value<float>(value);
}

// Passes 1 and 2 of a LAMB call (ops/optimizers/lamb.h), which is then run as any
// step: the global norm G of grad_scale * g (with max_grad_norm > 0), whose clip
// factor multiplies grad_scale in every tensor's scalars; then the sums of p^2 and
// u^2 of each tensor, which give it its own scalars with step size lr * r. The
// caller has checked found_inf: this runs only for a step that is taken.
template <class B, class S>
void prepare_lamb(OptimizerCall<S>& call, ops::LambHyper h) {
  if (h.max_grad_norm > 0.0) {
    const double global_norm = B::lamb_grad_norm(call, h.grad.grad_scale);
    h.grad.grad_scale *= ops::lamb_clip_factor(global_norm, h.max_grad_norm);
    const ops::GradScalars<S> grad = ops::grad_scalars<S>(h.grad);
    for (auto& scalars : call.scalars) std::get<ops::LambScalars<S>>(scalars).grad = grad;
  }
  const size_t tensors = call.sizes.size();
  std::vector<double> param_squares(tensors), update_squares(tensors);
  B::lamb_squares(call, param_squares.data(), update_squares.data());
  std::vector<ops::OptimizerScalars<S>> own(tensors);
  for (size_t t = 0; t < tensors; ++t) {
    auto scalars = std::get<ops::LambScalars<S>>(call.scalars[call.scalars_of_tensor[t]]);
    scalars.step_size = ops::trust_step_size<S>(h, param_squares[t], update_squares[t]);
    own[t] = scalars;
    call.scalars_of_tensor[t] = static_cast<uint32_t>(t);
  }
  call.scalars = std::move(own);
}

template <class B, class S>
void LambBinding::prepare(OptimizerCall<S>& call, const Hyper& h) {
  prepare_lamb<B>(call, h);
}

struct LionBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "lion_step";
  using Operands = ops::LionOperands;
  using Hyper = ops::LionHyper;
  static Hyper hyper(Keywords& k) {
    ops::GradHyper grad = grad_hyper(k);
    const double decay = decoupled_weight_decay(grad);
    return {grad, nonnegative_arg(k.take("lr"), "lr"),
            unit_interval_arg(k.take("beta1"), "beta1", true),
            unit_interval_arg(k.take("beta2"), "beta2", true), decay};
  }
  static bool uses(const Hyper&, int) { return true; }
};

struct AdamaxBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "adamax_step";
  using Operands = ops::AdamaxOperands;
  using Hyper = ops::AdamaxHyper;
  static Hyper hyper(Keywords& k) {
    return {grad_hyper(k), nonnegative_arg(k.take("lr"), "lr"),
            unit_interval_arg(k.take("beta1"), "beta1", false),
            unit_interval_arg(k.take("beta2"), "beta2", false),
            nonnegative_arg(k.take("eps"), "eps")};
  }
  static bool uses(const Hyper&, int) { return true; }
};

struct AdadeltaBinding {
  static constexpr bool kTakesFirstStep = false;
  static constexpr const char* kName = "adadelta_step";
  using Operands = ops::AdadeltaOperands;
  using Hyper = ops::AdadeltaHyper;
  static Hyper hyper(Keywords& k) {
    return {grad_hyper(k), nonnegative_arg(k.take("lr"), "lr"),
            unit_interval_arg(k.take("rho"), "rho", true), nonnegative_arg(k.take("eps"), "eps")};
  }
  static bool uses(const Hyper&, int) { return true; }
};

// ------------------------------------------------------------ what every step shares

// One value per tensor: obj itself for every tensor, or a list or tuple of one value
// per tensor; parse(item, name) reads (and checks) each, `what` says what one is.
template <class T, class Parse>
std::vector<T> per_tensor(py::handle obj, const char* name, const char* what, size_t count,
                          const Parse& parse) {
  if (!PyList_Check(obj.ptr()) && !PyTuple_Check(obj.ptr()))
    return std::vector<T>(count, parse(obj, std::string(name)));
  const py::sequence items = py::reinterpret_borrow<py::sequence>(obj);
  if (items.size() != count)
    throw py::value_error(std::string(name) + ": expected " + what + " or " + std::to_string(count) +
                          " of them (one per entry of params), got " + std::to_string(items.size()));
  std::vector<T> values;
  values.reserve(count);
  for (size_t i = 0; i < count; ++i)
    values.push_back(parse(items[i], ArgName(name, static_cast<int64_t>(i)).str()));
  return values;
}

// step: an integer >= 1 (the count including this update), or one per tensor.
inline std::vector<int64_t> per_tensor_steps(py::handle obj, size_t count) {
  return per_tensor<int64_t>(obj, "step", "an integer", count, [](py::handle item, const std::string& n) {
    return integer_arg(item, n.c_str(), 1, INT64_MAX, " (the count including this update)");
  });
}

// first_step: a bool, or one per tensor.
inline std::vector<bool> per_tensor_flags(py::handle obj, const char* name, size_t count) {
  return per_tensor<bool>(obj, name, "a bool", count, [](py::handle item, const std::string& n) {
    return bool_arg(item, n.c_str());
  });
}

// mu_product: a real in [0, 1) (NAdam's product of mu_1..mu_t), or one per tensor.
inline std::vector<double> per_tensor_products(py::handle obj, size_t count) {
  return per_tensor<double>(obj, "mu_product", "a real", count, [](py::handle item, const std::string& n) {
    return unit_interval_arg(item, n.c_str(), false);
  });
}

// The storage options of a step: master weights or remainders for 16-bit params,
// or stochastic rounding of them.
struct StorageArgs {
  py::handle master_params;     // None or a list of float32 arrays
  py::handle param_remainders;  // None or a list of int16 arrays
  bool stochastic_rounding = false;
  uint64_t seed = 0;
};

inline StorageArgs storage_args(Keywords& k) {
  StorageArgs a;
  a.master_params = k.take("master_params");
  a.param_remainders = k.take("param_remainders");
  a.stochastic_rounding = bool_arg(k.take("stochastic_rounding"), "stochastic_rounding");
  const py::handle seed = k.take("seed");
  if (!is_integer(seed)) throw py::type_error("seed: expected an integer, got " + type_name(seed));
  const py::int_ value(py::reinterpret_borrow<py::object>(seed));
  const unsigned long long s = PyLong_AsUnsignedLongLong(value.ptr());
  if (s == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("seed: must lie in [0, 2**64), got " + std::string(py::str(value)));
  }
  a.seed = s;
  if (!a.master_params.is_none() && !a.param_remainders.is_none())
    throw py::value_error("master_params, param_remainders: give one or neither (both hold the "
                          "float32 master of the params)");
  if (a.stochastic_rounding && !(a.master_params.is_none() && a.param_remainders.is_none()))
    throw py::value_error("stochastic_rounding: applies to 16-bit params without master_params "
                          "or param_remainders (a master keeps the exact value already)");
  return a;
}

// Appends the params' companion list (master_params or param_remainders) to the
// operands when the storage options give one: its index, or -1.
inline int add_companion(const StorageArgs& storage, std::vector<Operand>& operands,
                         std::vector<ops::Role>& roles) {
  if (storage.master_params.is_none() && storage.param_remainders.is_none()) return -1;
  const bool masters = !storage.master_params.is_none();
  operands.emplace_back(masters ? "master_params" : "param_remainders",
                        masters ? storage.master_params : storage.param_remainders, Access::write);
  roles.push_back(ops::Role::param);
  return static_cast<int>(operands.size()) - 1;
}

// The options of a step that mixed-precision training sets (torch.amp.GradScaler,
// gradient clipping): the factor folded into every gradient, the flag that skips
// the step, and whether the scaled gradients are stored back.
struct GradScaling {
  py::handle grad_scale;  // a real >= 0, or a 1-element float32 array on the call's device
  py::handle found_inf;   // None, or a 1-element float32 array on the call's device
  bool store_scaled_grads = false;
  double real_scale = 1.0;  // grad_scale when a real (checked as it is taken), else 1
};

inline GradScaling grad_scaling(Keywords& k) {
  GradScaling g;
  g.grad_scale = k.take("grad_scale");
  g.found_inf = k.take("found_inf");
  g.store_scaled_grads = bool_arg(k.take("store_scaled_grads"), "store_scaled_grads");
  if (is_real(g.grad_scale)) g.real_scale = nonnegative_arg(g.grad_scale, "grad_scale");
  return g;
}

// A 1-element float32 array of the call (found_inf, grad_scale), checked by the
// backend as every operand is (its device among them).
template <class B>
Array control_array(py::handle obj, const char* name) {
  Array a = B::check(obj, name, Access::read);
  if (a.dtype != DType::float32)
    throw py::type_error(std::string(name) + ": expected a float32 array of one element, got dtype " +
                         dtype_name(a.dtype));
  if (a.size != 1)
    throw py::value_error(std::string(name) + ": expected one element, got shape " +
                          describe_shape(a.shape));
  return a;
}

// The value of a grad_scale array, held to the rule of a real grad_scale.
inline double checked_grad_scale(double value) {
  if (!(value >= 0.0) || value - value != 0.0)
    throw py::value_error("grad_scale: must be finite and >= 0, got " + std::to_string(value));
  return value;
}

// The grad_scale of a step whose grad_scale is an array: its value, read now from
// host memory (then held to the rule of a real grad_scale), or 1 with the array's
// device pointer left for the kernel to read.
template <class B>
double array_grad_scale(const Array& a, const float*& device_grad_scale) {
  if constexpr (B::kHostMemory) {
    return checked_grad_scale(*a.ptr<float>());
  } else {
    device_grad_scale = a.ptr<float>();
    return 1.0;
  }
}

// The control arrays of a step (grad_scale when an array, found_inf), checked by the
// backend once the operands are (so their device is known), held for the call: the
// grad_scale the scalars take, and what the drivers read.
struct ControlArrays {
  Array grad_scale_array, found_inf_array;
  double grad_scale = 1.0;
  const float* device_grad_scale = nullptr;  // a device grad_scale the kernels read
  const float* found_inf() const { return found_inf_array.ptr<const float>(); }
};

template <class B>
ControlArrays control_arrays(const GradScaling& s) {
  ControlArrays c;
  c.grad_scale = s.real_scale;
  if (!is_real(s.grad_scale)) {
    c.grad_scale_array = control_array<B>(s.grad_scale, "grad_scale");
    c.grad_scale = array_grad_scale<B>(c.grad_scale_array, c.device_grad_scale);
  }
  if (!s.found_inf.is_none()) c.found_inf_array = control_array<B>(s.found_inf, "found_inf");
  return c;
}

inline std::string dtype_list(std::initializer_list<DType> dtypes) {
  std::string s;
  for (DType d : dtypes) s += (s.empty() ? "" : ", ") + std::string(dtype_name(d));
  return s;
}

// The TypeError of an array whose dtype breaks a rule, saying what it may hold.
inline py::type_error dtype_refused(const ArgName& arg, DType d, const std::string& allowed) {
  return py::type_error(arg.str() + ": dtype " + dtype_name(d) + " is not allowed here; " + allowed);
}

// The rule of a state's dtype d beside params of dtype `params` (states: float32,
// bfloat16 or the params' dtype; float64 only with float64 params; one dtype for all
// of a call's states, `seen` when one came before): empty when d keeps it, else what
// d may be.
inline std::string state_dtype_rule(DType params, DType d, const DType* seen) {
  const bool ok = params == DType::float64
                      ? d == DType::float64
                      : (d == DType::float32 || d == DType::bfloat16 || d == params);
  if (!ok)
    return params == DType::float64 ? std::string("the states of float64 params are float64")
                                    : "states may be float32, bfloat16 or the params' dtype " +
                                          std::string(dtype_name(params));
  if (seen && d != *seen)
    return std::string("the states of one call share one dtype, here ") + dtype_name(*seen);
  return "";
}

// The dtypes of a step's roles (the arrays of one role share one dtype), checked
// against what the engine runs:
//   params:  float64, float32, bfloat16, float16 (P)
//   grads:   P; or float32 when P is 16-bit; or bfloat16/float16 with a master
//   states:  float32, bfloat16 or P (float64 only with float64 params)
//   master_params: float32, with 16-bit P; param_remainders: int16, with bfloat16 P
//   stochastic_rounding: with 16-bit P.
// TypeError naming the first array that breaks a rule, listing what it may hold.
inline ParamStorage check_roles(const CheckedList& c, const std::vector<Operand>& operands,
                                const std::vector<ops::Role>& roles, int companion,
                                const StorageArgs& a) {
  const DType params = c.dtype;
  const bool half = is_16bit_float(params);
  const bool with_master = companion >= 0;
  const auto refuse = [&](size_t tensor, size_t k, const std::string& allowed) {
    throw dtype_refused(ArgName(operands[k].name, static_cast<int64_t>(tensor)),
                        c.arrays[tensor][k].dtype, allowed);
  };
  DType states = params;
  bool states_seen = false;
  for (size_t i = 0; i < c.arrays.size(); ++i) {
    for (size_t k = 0; k < operands.size(); ++k) {
      if (operands[k].absent()) continue;
      const DType d = c.arrays[i][k].dtype;
      if (static_cast<int>(k) == companion) {
        const bool remainder = !a.param_remainders.is_none();
        if (remainder && params != DType::bfloat16)
          refuse(0, 0, "param_remainders go with bfloat16 params");
        if (!remainder && !half) refuse(0, 0, "master_params go with bfloat16 or float16 params");
        if (d != (remainder ? DType::int16 : DType::float32))
          refuse(i, k, remainder ? "param_remainders are int16" : "master_params are float32");
        continue;
      }
      switch (roles[k]) {
        case ops::Role::param:
          if (!(d == DType::float64 || d == DType::float32 || half))
            refuse(i, k, "params may be " + dtype_list({DType::float64, DType::float32, DType::bfloat16, DType::float16}));
          if (d != params)
            refuse(i, k, "every entry of params has params[0]'s dtype " + std::string(dtype_name(params)));
          break;
        case ops::Role::grad: {
          const bool ok = d == params || (half && d == DType::float32) ||
                          (with_master && is_16bit_float(d));
          if (!ok)
            refuse(i, k, std::string("grads may be the params' dtype ") + dtype_name(params) +
                             (half ? ", or float32" : "") +
                             (with_master ? ", bfloat16 or float16 (with a master)" : ""));
          if (i > 0 && d != c.arrays[0][k].dtype)
            refuse(i, k, std::string("every entry of grads has grads[0]'s dtype ") +
                             dtype_name(c.arrays[0][k].dtype));
          break;
        }
        case ops::Role::state: {
          const std::string rule = state_dtype_rule(params, d, states_seen ? &states : nullptr);
          if (!rule.empty()) refuse(i, k, rule);
          states = d;
          states_seen = true;
          break;
        }
      }
    }
  }
  if (a.stochastic_rounding && !half)
    throw py::value_error(std::string("stochastic_rounding: applies to bfloat16 or float16 params, got ") +
                          dtype_name(params));
  if (!a.param_remainders.is_none()) return ParamStorage::remainder;
  if (with_master) return ParamStorage::master;
  return a.stochastic_rounding ? ParamStorage::stochastic : ParamStorage::nearest;
}

template <class Opt, class S>
OptimizerCall<S> optimizer_call(const CheckedList& c, const std::vector<Operand>& operands,
                                size_t formula_operands, int companion,
                                ParamStorage storage, const typename Opt::Hyper& h,
                                const std::vector<int64_t>& steps,
                                const std::vector<bool>& first_steps,
                                const std::vector<double>& mu_products, uint64_t seed) {
  OptimizerCall<S> call;
  call.param_storage = storage;
  call.seed = seed;
  if (storage == ParamStorage::stochastic) call.steps = steps;
  call.sizes = c.sizes;
  call.dtypes.fill(dtype_of<S>());
  if (!c.arrays.empty()) {
    for (size_t k = 0; k < formula_operands; ++k)
      if (!operands[k].absent()) call.dtypes[k] = c.arrays[0][k].dtype;
    if (companion >= 0) call.dtypes[kCompanionSlot] = c.arrays[0][companion].dtype;
  }
  call.operands.reserve(c.arrays.size());
  call.scalars_of_tensor.reserve(c.arrays.size());
  ops::TensorProgress last{0, false};
  for (size_t i = 0; i < c.arrays.size(); ++i) {
    std::array<void*, kOperandSlots> slots{};
    for (size_t k = 0; k < formula_operands; ++k) slots[k] = c.arrays[i][k].data;
    if (companion >= 0) slots[kCompanionSlot] = c.arrays[i][companion].data;
    call.operands.push_back(slots);
    const ops::TensorProgress progress{steps[i], first_steps[i], mu_products[i]};
    if (call.scalars.empty() || progress.step != last.step || progress.first_step != last.first_step ||
        progress.mu_product != last.mu_product) {
      call.scalars.push_back(ops::make_scalars<S>(h, progress));
      last = progress;
    }
    call.scalars_of_tensor.push_back(static_cast<uint32_t>(call.scalars.size() - 1));
  }
  return call;
}

template <class B, class Opt>
void run_step(Keywords& k) {
  using Operands = typename Opt::Operands;
  typename Opt::Hyper h = Opt::hyper(k);
  const GradScaling scaling = grad_scaling(k);
  std::vector<Operand> operands;
  std::vector<ops::Role> roles;
  for (int slot = 0; slot < Operands::count; ++slot) {
    const ops::OperandSpec& spec = Operands::spec[slot];
    const py::handle list = k.take(spec.name);
    const bool read_only = spec.role == ops::Role::grad && !scaling.store_scaled_grads;
    const Access access = read_only ? Access::read : Access::write;
    if (spec.used_when) require_state(list, spec.name, Opt::uses(h, slot), spec.used_when);
    operands.emplace_back(spec.name, list, access, spec.used_when != nullptr);
    roles.push_back(spec.role);
  }
  const py::handle step = k.take("step");
  const py::handle first_step = Opt::kTakesFirstStep ? k.take("first_step") : py::handle(Py_False);
  const py::handle mu_product = TakesMuProduct<Opt>::value ? k.take("mu_product") : py::handle();
  const StorageArgs storage = storage_args(k);
  k.finish();
  const int companion = add_companion(storage, operands, roles);
  typename B::Call on_device;
  const CheckedList c = check_operands<B>(operands, /*one_dtype=*/false);
  const ParamStorage param_storage = check_roles(c, operands, roles, companion, storage);
  const std::vector<int64_t> steps = per_tensor_steps(step, c.arrays.size());
  const std::vector<bool> first_steps = per_tensor_flags(first_step, "first_step", c.arrays.size());
  const std::vector<double> mu_products =
      TakesMuProduct<Opt>::value ? per_tensor_products(mu_product, c.arrays.size())
                                 : std::vector<double>(c.arrays.size(), 1.0);
  ControlArrays control = control_arrays<B>(scaling);
  h.grad.grad_scale = control.grad_scale;
  if constexpr (PreparesOnHost<Opt>::value) {
    // (a GPU call syncs here: its passes before the update are derived on the host)
    if (control.device_grad_scale) {
      h.grad.grad_scale = checked_grad_scale(control_value<B>(control.device_grad_scale));
      control.device_grad_scale = nullptr;
    }
  }
  const auto run = [&](auto compute) {
    using S = decltype(compute);
    OptimizerCall<S> call = optimizer_call<Opt, S>(c, operands, Operands::count, companion, param_storage,
                                                   h, steps, first_steps, mu_products, storage.seed);
    call.stores_scaled_grads = scaling.store_scaled_grads;
    call.found_inf = control.found_inf();
    call.device_grad_scale = control.device_grad_scale;
    if constexpr (PreparesOnHost<Opt>::value) {
      if (call.found_inf && control_value<B>(call.found_inf) != 0.0) return 0;  // (checked whole)
      without_gil_if_large(call.total(), [&] { Opt::template prepare<B>(call, h); });
    }
    without_gil_if_large(call.total(), [&] { B::optimizer_step(call); });
    return 0;
  };
  if (c.dtype == DType::float64) run(double{});
  else run(float{});
}

template <class B, class Opt>
void bind_optimizer(py::module_& m) {
  m.def(Opt::kName, [](py::kwargs kwargs) {
    Keywords k(std::move(kwargs), Opt::kName);
    run_step<B, Opt>(k);
  });
}

template <class B>
void bind_optimizers(py::module_& m) {
  bind_optimizer<B, SgdBinding>(m);
  bind_optimizer<B, SgdmBinding>(m);
  bind_optimizer<B, AdagradBinding>(m);
  bind_optimizer<B, RmspropBinding>(m);
  bind_optimizer<B, AdamBinding>(m);
  bind_optimizer<B, NadamBinding>(m);
  bind_optimizer<B, RadamBinding>(m);
  bind_optimizer<B, LambBinding>(m);
  bind_optimizer<B, LionBinding>(m);
  bind_optimizer<B, AdamaxBinding>(m);
  bind_optimizer<B, AdadeltaBinding>(m);
}

}  // namespace nnfast::bind
