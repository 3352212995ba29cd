// One functor per elementwise activation and loss, run by both apply loops: the CPU
// chunk loop (src/cpu/kernels.cpp, x an array of SIMD vectors or scalars) and the
// CUDA chunked apply loop (cuda/apply.cuh, x an array of scalars). After NVIDIA
// apex's multi_tensor_apply functors. (The optimizers' functors are in
// ops/optimizers/, one file each.)
//
// A functor holds the call's scalars; operator()(x) runs the formula on x[0..],
// the operands of one element (or vector of elements) in TensorList order
// (the driver says which). kRead names the operands loaded before it, kWrite those
// stored after it. A functor that returns a value returns a loss term, which the
// loop sums (in double).
#pragma once

#include "call/activation_kind.h"
#include "ops/activation.h"
#include "ops/loss.h"

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
