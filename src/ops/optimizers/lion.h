// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), in
// lion-pytorch's order:
//   p = p * (1 - lr * wd)                       (decoupled decay)
//   c = beta1 * m + (1 - beta1) * g'
//   p = p - lr * sign(c),  sign(0) = 0, sign(NaN) = NaN (torch.sign)
//   m = beta2 * m + (1 - beta2) * g'
// The update's size is lr in every element: only the sign of the interpolation
// c reaches p, and m keeps the slower average (beta2 > beta1 by default).
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct LionOperands {
  enum Slot : int { params, grads, exp_avgs, count };
  static constexpr OperandSpec spec[count] = {
      {"params", Role::param}, {"grads", Role::grad}, {"exp_avgs", Role::state}};
};

struct LionHyper {
  GradHyper grad;  // grad.weight_decay is 0: Lion's decay is decoupled
  double lr;
  double beta1;
  double beta2;
  double decoupled_weight_decay;
};

template <class S>
struct LionScalars {
  GradScalars<S> grad;
  S lr;
  S beta1;
  S one_minus_beta1;  // rounded once from double, as lion-pytorch passes it
  S beta2;
  S one_minus_beta2;
  S decay_factor;  // 1 - lr * weight_decay (exactly 1 without decay)
};

template <class S>
LionScalars<S> make_scalars(const LionHyper& h, const TensorProgress&) {
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.lr, "lr"),
          narrow<S>(h.beta1, "beta1"),
          narrow<S>(1.0 - h.beta1, "beta1", "1 - beta1"),
          narrow<S>(h.beta2, "beta2"),
          narrow<S>(1.0 - h.beta2, "beta2", "1 - beta2"),
          decoupled_decay_factor<S>(h.lr, h.decoupled_weight_decay)};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct LionOp : UpdatesAllButGrads<slot_bit(LionOperands::params) | slot_bit(LionOperands::grads) |
                                   slot_bit(LionOperands::exp_avgs)> {
  LionScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[LionOperands::params];
    V& m = x[LionOperands::exp_avgs];
    const V d = effective_grad(x[LionOperands::grads], p, s.grad);  // from p before the decay
    const V c = V(s.beta1) * m + V(s.one_minus_beta1) * d;
    // lr * sign(c) is exact (+-lr or 0), so p rounds twice, as lion-pytorch's mul_ and add_.
    p = p * V(s.decay_factor) - V(s.lr) * sign_(c);
    m = V(s.beta2) * m + V(s.one_minus_beta2) * d;
  }
};

template <class S, class F>
void with_op(const LionScalars<S>& s, const F& f) {
  f(LionOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
