// One functor per elementwise operation, run by both apply loops: the CPU chunk
// loop (src/cpu/kernels.cpp, x an array of SIMD vectors or scalars) and the CUDA
// chunked apply loop (cuda/apply.cuh, x an array of scalars). After NVIDIA apex's
// multi_tensor_apply functors.
//
// A functor holds the call's scalars; operator()(x) runs the formula on x[0..],
// the operands of one element (or vector of elements) in TensorList order
// (src/cpu/optim.h). kRead names the operands loaded before it, kWrite those
// stored after it. A functor that returns a value returns a loss term, which the
// loop sums (in double).
#pragma once

#include "calls.h"
#include "ops/activation.h"
#include "ops/loss.h"
#include "ops/optim.h"

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

// Operand bits: bit k stands for x[k].
constexpr unsigned kOp0 = 1, kOp1 = 2, kOp2 = 4, kOp3 = 8, kOp4 = 16;

// The number of operands a functor touches (its highest operand + 1).
constexpr int operand_count(unsigned bits) {
  int n = 0;
  while (bits >> n) ++n;
  return n;
}

// ---------------------------------------------------------------- optimizers
// Operands: p, g, then the states of cpu/optim.h.

template <class S>
struct SgdOp {
  static constexpr unsigned kRead = kOp0 | kOp1, kWrite = kOp0;
  SgdScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const { sgd_update(x[0], x[1], s); }
};

template <class S>
struct SgdmOp {
  static constexpr unsigned kRead = kOp0 | kOp1 | kOp2, kWrite = kOp0 | kOp2;
  SgdmScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const { sgdm_update(x[0], x[1], x[2], s); }
};

template <class S>
struct AdagradOp {
  static constexpr unsigned kRead = kOp0 | kOp1 | kOp2, kWrite = kOp0 | kOp2;
  AdagradScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const { adagrad_update(x[0], x[1], x[2], s); }
};

template <class S, bool Centered, bool Momentum>
struct RmspropOp {
  static constexpr unsigned kStates = (Centered ? kOp3 : 0u) | (Momentum ? kOp4 : 0u);
  static constexpr unsigned kRead = kOp0 | kOp1 | kOp2 | kStates, kWrite = kOp0 | kOp2 | kStates;
  RmspropScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    rmsprop_update<Centered, Momentum>(x[0], x[1], x[2], Centered ? &x[3] : nullptr,
                                       Momentum ? &x[4] : nullptr, s);
  }
};

template <class S, bool Amsgrad>
struct AdamOp {
  static constexpr unsigned kMax = Amsgrad ? kOp4 : 0u;
  static constexpr unsigned kRead = kOp0 | kOp1 | kOp2 | kOp3 | kMax;
  static constexpr unsigned kWrite = kOp0 | kOp2 | kOp3 | kMax;
  AdamScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    adam_update<Amsgrad>(x[0], x[1], x[2], x[3], Amsgrad ? &x[4] : nullptr, s);
  }
};

// f(the functor of the call's variant): the variants are compile-time choices.
template <class S, class F>
void with_rmsprop_op(const RmspropScalars<S>& s, bool centered, bool momentum, const F& f) {
  if (centered) {
    momentum ? f(RmspropOp<S, true, true>{s}) : f(RmspropOp<S, true, false>{s});
  } else {
    momentum ? f(RmspropOp<S, false, true>{s}) : f(RmspropOp<S, false, false>{s});
  }
}

template <class S, class F>
void with_adam_op(const AdamScalars<S>& s, bool amsgrad, const F& f) {
  amsgrad ? f(AdamOp<S, true>{s}) : f(AdamOp<S, false>{s});
}

// ---------------------------------------------------------------- activations
// Forward operands: out, x. Backward: out, a (the forward output or input), dy.

template <class S, Activation Kind>
struct ActivationForwardOp {
  static constexpr unsigned kRead = kOp1, kWrite = kOp0;
  S alpha;
  template <class V>
  NNFAST_HD void operator()(V* v) const {
    if constexpr (Kind == Activation::sigmoid) v[0] = sigmoid_forward(v[1]);
    else if constexpr (Kind == Activation::tanh) v[0] = tanh_forward(v[1]);
    else if constexpr (Kind == Activation::relu) v[0] = relu_forward(v[1]);
    else v[0] = leaky_relu_forward(v[1], V(alpha));
  }
};

template <class S, Activation Kind>
struct ActivationBackwardOp {
  static constexpr unsigned kRead = kOp1 | kOp2, kWrite = kOp0;
  S alpha;
  template <class V>
  NNFAST_HD void operator()(V* v) const {
    if constexpr (Kind == Activation::sigmoid) v[0] = sigmoid_backward(v[1], v[2]);
    else if constexpr (Kind == Activation::tanh) v[0] = tanh_backward(v[1], v[2]);
    else if constexpr (Kind == Activation::relu) v[0] = relu_backward(v[1], v[2]);
    else v[0] = leaky_relu_backward(v[1], v[2], V(alpha));
  }
};

// f(Op<S, kind>{alpha}) for the runtime kind.
template <template <class, Activation> class Op, class S, class F>
void with_activation_op(Activation kind, S alpha, const F& f) {
  switch (kind) {
    case Activation::sigmoid: return f(Op<S, Activation::sigmoid>{alpha});
    case Activation::tanh: return f(Op<S, Activation::tanh>{alpha});
    case Activation::relu: return f(Op<S, Activation::relu>{alpha});
    case Activation::leaky_relu: return f(Op<S, Activation::leaky_relu>{alpha});
  }
}

// ---------------------------------------------------------------- losses

// MSE. Operands: pred, target, grad, losses (written when WriteLosses); returns the term.
template <class S, bool WriteLosses>
struct MseOp {
  static constexpr unsigned kRead = kOp0 | kOp1, kWrite = kOp2 | (WriteLosses ? kOp3 : 0u);
  S grad_scale;
  template <class V>
  NNFAST_HD V operator()(V* x) const {
    const V term = mse_term(x[0], x[1], V(grad_scale), x[2]);
    if constexpr (WriteLosses) x[3] = term;
    return term;
  }
};

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
