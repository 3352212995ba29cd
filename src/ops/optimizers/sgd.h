// SGD: p = p - lr * g'.
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct SgdOperands {
  enum Slot : int { params, grads, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param}, {"grads", Role::grad}};
};

struct SgdHyper {
  GradHyper grad;
  double lr;
};

template <class S>
struct SgdScalars {
  GradScalars<S> grad;
  S lr;
};

template <class S>
SgdScalars<S> make_scalars(const SgdHyper& h, const TensorProgress&) {
  return {grad_scalars<S>(h.grad), narrow<S>(h.lr, "lr")};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct SgdOp : UpdatesAllButGrads<slot_bit(SgdOperands::params) | slot_bit(SgdOperands::grads)> {
  SgdScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[SgdOperands::params];
    const V d = effective_grad(x[SgdOperands::grads], p, s.grad);
    p = p - V(s.lr) * d;
  }
};

template <class S, class F>
void with_op(const SgdScalars<S>& s, const F& f) {
  f(SgdOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
