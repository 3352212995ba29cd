// What every optimizer shares: the effective gradient g' (gradient scale, coupled
// weight decay, L1, maximize), the description of an optimizer's operands, and the per-tensor
// progress (step counts) its scalars may depend on.
//
// Notation of every optimizer file: p parameter, g gradient, g' effective
// gradient, lr learning rate. All arithmetic is in V (float32 kernels compute in
// float32, as PyTorch and TensorFlow do); the scalars of each *Scalars struct are
// derived on the host in double, once per call (or per tensor where they depend on
// its step count), then rounded to the compute type S (narrow.h).
#pragma once

#include <cstdint>

#include "ops/common.h"
#include "ops/narrow.h"

namespace nnfast::ops {

// The role of an operand, which decides what it may hold (bind/optimizer.h) and
// whether it is written: params and states are read and written, grads only read.
enum class Role : uint8_t { param, grad, state };

// One operand of an optimizer: the name every layer uses for it (the binding's
// keyword, the Python argument, error messages) and its role. An optional state
// is given exactly when the options use it: used_when says when (null: always).
struct OperandSpec {
  const char* name;
  Role role;
  const char* used_when = nullptr;
};

// The slots every optimizer shares: params first, grads second (the engine
// stores the updated params and reads masters through slot 0).
enum SharedSlot : int { kParamsSlot = 0, kGradsSlot = 1 };

// Bit k stands for operand slot k.
constexpr unsigned slot_bit(int slot) { return 1u << slot; }

// An optimizer functor reads every operand it uses and writes all of them but the
// gradient.
template <unsigned Used>
struct UpdatesAllButGrads {
  static constexpr unsigned kRead = Used;
  static constexpr unsigned kWrite = Used & ~slot_bit(kGradsSlot);
};

// What a tensor's scalars may depend on besides the call's hyperparameters.
struct TensorProgress {
  int64_t step = 1;         // 1-based count of updates including this one
  bool first_step = false;  // SGD momentum: PyTorch's first step sets the buffer to g'
  double mu_product = 1.0;  // NAdam: mu_1 * ... * mu_t, this step's mu_t included
};

struct GradHyper {
  double weight_decay = 0.0;  // coupled L2 coefficient (0 when decoupled or absent)
  double l1 = 0.0;
  bool maximize = false;
  // The factor every gradient is multiplied by before anything else: an inverse loss
  // scale times a clip coefficient (apex and torch fold unscaling into their fused
  // steps the same way).
  double grad_scale = 1.0;
};

template <class S>
struct GradScalars {
  S weight_decay;
  S l1;
  bool maximize;
  S grad_scale;
};

template <class S>
GradScalars<S> grad_scalars(const GradHyper& h) {
  return {narrow<S>(h.weight_decay, "weight_decay"), narrow<S>(h.l1, "l1"), h.maximize,
          narrow<S>(h.grad_scale, "grad_scale")};
}

// p's factor in a decoupled weight decay (AdamW, Loshchilov & Hutter 2019; Lion;
// Adafactor): p = p * (1 - lr * weight_decay), the factor derived in double and rounded
// to S, weight_decay held to S's range as every hyperparameter is.
template <class S>
S decoupled_decay_factor(double lr, double weight_decay) {
  narrow<S>(weight_decay, "weight_decay");
  return narrow<S>(1.0 - lr * weight_decay, "weight_decay", "1 - lr * weight_decay");
}

NNFAST_ISA_NAMESPACE_BEGIN

// g = grad_scale * g, in place (what StoresScaledGrads stores back), then
// g' = (maximize ? -g : g) + weight_decay * p + l1 * sign(p).
// Each term is added only when its coefficient is nonzero: 0 * inf would turn
// an infinite parameter's gradient into NaN (PyTorch skips the term the same way).
// The flags are uniform over a call, so these selects cost no branch misses.
template <class V, class S>
NNFAST_HD V effective_grad(V& g, V p, const GradScalars<S>& s) {
  g = g * V(s.grad_scale);
  const V signed_grad = s.maximize ? -g : g;
  const V with_l2 = signed_grad + V(s.weight_decay) * p;
  const V decayed = s.weight_decay != S(0) ? with_l2 : signed_grad;
  if (s.l1 == S(0)) return decayed;  // skip the two selects of sign(p)
  return decayed + V(s.l1) * sign_(p);
}

// Op, also storing the scaled gradient grad_scale * g (left in place by
// effective_grad) back into grads: torch's fused optimizers leave the unscaled
// gradient there when GradScaler hands them its scale.
template <class Op>
struct StoresScaledGrads : Op {
  static constexpr unsigned kWrite = Op::kWrite | slot_bit(kGradsSlot);
};

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
