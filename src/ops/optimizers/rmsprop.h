// RMSprop (Hinton 2012, PyTorch form):
//   q = alpha * q + (1 - alpha) * g'^2
//   centered: c = alpha * c + (1 - alpha) * g';  avg = sqrt(q - c^2) + eps
//   otherwise: avg = sqrt(q) + eps
//   momentum > 0: b = momentum * b + g' / avg;  p = p - lr * b
//   otherwise: p = p - lr * (g' / avg)
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct RmspropOperands {
  enum Slot : int { params, grads, square_avgs, grad_avgs, momentum_buffers, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"square_avgs", Role::state},
                                              {"grad_avgs", Role::state, "centered=True"},
                                              {"momentum_buffers", Role::state, "momentum > 0"}};
};

struct RmspropHyper {
  GradHyper grad;
  double lr;
  double alpha;
  double eps;
  double momentum;
  bool centered;
};

template <class S>
struct RmspropScalars {
  GradScalars<S> grad;
  S lr;
  S alpha;
  S one_minus_alpha;  // rounded once from double, as PyTorch passes it
  S eps;
  S momentum;
  bool centered;
  bool with_momentum;
};

template <class S>
RmspropScalars<S> make_scalars(const RmspropHyper& h, const TensorProgress&) {
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.lr, "lr"),
          narrow<S>(h.alpha, "alpha"),
          narrow<S>(1.0 - h.alpha, "alpha", "1 - alpha"),
          narrow<S>(h.eps, "eps"),
          narrow<S>(h.momentum, "momentum"),
          h.centered,
          h.momentum > 0.0};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S, bool Centered, bool Momentum>
struct RmspropOp
    : UpdatesAllButGrads<slot_bit(RmspropOperands::params) | slot_bit(RmspropOperands::grads) |
                         slot_bit(RmspropOperands::square_avgs) |
                         (Centered ? slot_bit(RmspropOperands::grad_avgs) : 0u) |
                         (Momentum ? slot_bit(RmspropOperands::momentum_buffers) : 0u)> {
  RmspropScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[RmspropOperands::params];
    V& square_avg = x[RmspropOperands::square_avgs];
    const V d = effective_grad(x[RmspropOperands::grads], p, s.grad);
    square_avg = V(s.alpha) * square_avg + V(s.one_minus_alpha) * (d * d);
    V avg;
    if constexpr (Centered) {
      V& grad_avg = x[RmspropOperands::grad_avgs];
      grad_avg = V(s.alpha) * grad_avg + V(s.one_minus_alpha) * d;
      avg = sqrt_(square_avg - grad_avg * grad_avg) + V(s.eps);
    } else {
      avg = sqrt_(square_avg) + V(s.eps);
    }
    if constexpr (Momentum) {
      V& buffer = x[RmspropOperands::momentum_buffers];
      buffer = V(s.momentum) * buffer + d / avg;
      p = p - V(s.lr) * buffer;
    } else {
      p = p - V(s.lr) * (d / avg);
    }
  }
};

// The variants are compile-time choices.
template <class S, class F>
void with_op(const RmspropScalars<S>& s, const F& f) {
  if (s.centered) {
    s.with_momentum ? f(RmspropOp<S, true, true>{{}, s}) : f(RmspropOp<S, true, false>{{}, s});
  } else {
    s.with_momentum ? f(RmspropOp<S, false, true>{{}, s}) : f(RmspropOp<S, false, false>{{}, s});
  }
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
