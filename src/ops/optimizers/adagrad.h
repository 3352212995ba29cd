// Adagrad (Duchi et al. 2011, PyTorch form), t = step:
//   clr = lr / (1 + (t - 1) * lr_decay)   (in double, on the host)
//   s = s + g'^2;  p = p - clr * g' / (sqrt(s) + eps)
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdagradOperands {
  enum Slot : int { params, grads, sums, count };
  static constexpr OperandSpec spec[count] = {
      {"params", Role::param}, {"grads", Role::grad}, {"sums", Role::state}};
};

struct AdagradHyper {
  GradHyper grad;
  double lr;
  double lr_decay;
  double eps;
};

template <class S>
struct AdagradScalars {
  GradScalars<S> grad;
  S lr;  // clr
  S eps;
};

template <class S>
AdagradScalars<S> make_scalars(const AdagradHyper& h, const TensorProgress& t) {
  narrow<S>(h.lr, "lr");
  const double decayed = h.lr / (1.0 + static_cast<double>(t.step - 1) * h.lr_decay);
  return {grad_scalars<S>(h.grad), narrow<S>(decayed, "lr", "lr / (1 + (step - 1) * lr_decay)"),
          narrow<S>(h.eps, "eps")};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct AdagradOp : UpdatesAllButGrads<slot_bit(AdagradOperands::params) |
                                      slot_bit(AdagradOperands::grads) |
                                      slot_bit(AdagradOperands::sums)> {
  AdagradScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[AdagradOperands::params];
    V& sum = x[AdagradOperands::sums];
    const V d = effective_grad(x[AdagradOperands::grads], p, s.grad);
    sum = sum + d * d;
    p = p - V(s.lr) * (d / (sqrt_(sum) + V(s.eps)));
  }
};

template <class S, class F>
void with_op(const AdagradScalars<S>& s, const F& f) {
  f(AdagradOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
