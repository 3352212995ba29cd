// SGD with momentum (PyTorch): b = momentum * b + (1 - dampening) * g';
// d = nesterov ? g' + momentum * b : b; p = p - lr * d.
// PyTorch's first step sets b = g' (whatever b held: an inf in a stale buffer
// must not leak into it).
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct SgdmOperands {
  enum Slot : int { params, grads, momentum_buffers, count };
  static constexpr OperandSpec spec[count] = {
      {"params", Role::param}, {"grads", Role::grad}, {"momentum_buffers", Role::state}};
};

struct SgdmHyper {
  GradHyper grad;
  double lr;
  double momentum;
  double dampening;
  bool nesterov;
};

template <class S>
struct SgdmScalars {
  GradScalars<S> grad;
  S lr;
  S momentum;
  S one_minus_dampening;  // rounded once from double, as PyTorch passes it
  bool nesterov;
  bool initialize;  // this tensor's first step: the buffer becomes g'
};

template <class S>
SgdmScalars<S> make_scalars(const SgdmHyper& h, const TensorProgress& t) {
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.lr, "lr"),
          narrow<S>(h.momentum, "momentum"),
          narrow<S>(1.0 - h.dampening, "dampening", "1 - dampening"),
          h.nesterov,
          t.first_step};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct SgdmOp : UpdatesAllButGrads<slot_bit(SgdmOperands::params) | slot_bit(SgdmOperands::grads) |
                                   slot_bit(SgdmOperands::momentum_buffers)> {
  SgdmScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[SgdmOperands::params];
    V& b = x[SgdmOperands::momentum_buffers];
    const V d = effective_grad(x[SgdmOperands::grads], p, s.grad);
    b = s.initialize ? d : V(s.momentum) * b + V(s.one_minus_dampening) * d;
    const V direction = s.nesterov ? d + V(s.momentum) * b : b;
    p = p - V(s.lr) * direction;
  }
};

template <class S, class F>
void with_op(const SgdmScalars<S>& s, const F& f) {
  f(SgdmOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
