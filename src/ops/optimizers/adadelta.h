// Adadelta (Zeiler 2012; torch.optim.Adadelta), in torch's operation order:
//   v = rho * v + ((1 - rho) * g') * g'
//   delta = (sqrt(u + eps) / sqrt(v + eps)) * g'
//   u = rho * u + ((1 - rho) * delta) * delta
//   p = p - lr * delta
// The ratio of the two running RMS values gives the step the units of p; lr
// (1 by default) only scales it.
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdadeltaOperands {
  enum Slot : int { params, grads, square_avgs, acc_deltas, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"square_avgs", Role::state},
                                              {"acc_deltas", Role::state}};
};

struct AdadeltaHyper {
  GradHyper grad;
  double lr;
  double rho;
  double eps;
};

template <class S>
struct AdadeltaScalars {
  GradScalars<S> grad;
  S lr;
  S rho;
  S one_minus_rho;  // rounded once from double, as torch passes it to addcmul
  S eps;
};

template <class S>
AdadeltaScalars<S> make_scalars(const AdadeltaHyper& h, const TensorProgress&) {
  return {grad_scalars<S>(h.grad), narrow<S>(h.lr, "lr"), narrow<S>(h.rho, "rho"),
          narrow<S>(1.0 - h.rho, "rho", "1 - rho"), narrow<S>(h.eps, "eps")};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct AdadeltaOp : UpdatesAllButGrads<slot_bit(AdadeltaOperands::params) |
                                       slot_bit(AdadeltaOperands::grads) |
                                       slot_bit(AdadeltaOperands::square_avgs) |
                                       slot_bit(AdadeltaOperands::acc_deltas)> {
  AdadeltaScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[AdadeltaOperands::params];
    V& v = x[AdadeltaOperands::square_avgs];
    V& u = x[AdadeltaOperands::acc_deltas];
    const V d = effective_grad(x[AdadeltaOperands::grads], p, s.grad);
    v = v * V(s.rho) + (V(s.one_minus_rho) * d) * d;
    const V delta = (sqrt_(u + V(s.eps)) / sqrt_(v + V(s.eps))) * d;
    u = u * V(s.rho) + (V(s.one_minus_rho) * delta) * delta;
    p = p - V(s.lr) * delta;
  }
};

template <class S, class F>
void with_op(const AdadeltaScalars<S>& s, const F& f) {
  f(AdadeltaOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
