// Adamax (Kingma & Ba 2015, section 7.1; torch.optim.Adamax), t = step:
//   m = beta1 * m + (1 - beta1) * g'
//   u = max(beta2 * u, |g'| + eps)      (a NaN on either side propagates, as torch.maximum)
//   p = p - (clr * m) / u,  clr = lr / (1 - beta1^t)  (in double, on the host, per tensor)
// The infinity norm u replaces Adam's sqrt(v): it needs no bias correction, and
// eps inside the max keeps u > 0 for a zero gradient.
#pragma once

#include <cmath>

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdamaxOperands {
  enum Slot : int { params, grads, exp_avgs, exp_infs, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"exp_avgs", Role::state},
                                              {"exp_infs", Role::state}};
};

struct AdamaxHyper {
  GradHyper grad;
  double lr;
  double beta1;
  double beta2;
  double eps;
};

template <class S>
struct AdamaxScalars {
  GradScalars<S> grad;
  S beta1;
  S one_minus_beta1;  // rounded once from double
  S beta2;
  S eps;
  S step_size;  // clr
};

template <class S>
AdamaxScalars<S> make_scalars(const AdamaxHyper& h, const TensorProgress& progress) {
  // 1 - beta1^t lies in (0, 1]: only lr can make clr overflow.
  narrow<S>(h.lr, "lr");
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(progress.step));
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.beta1, "beta1"),
          narrow<S>(1.0 - h.beta1, "beta1", "1 - beta1"),
          narrow<S>(h.beta2, "beta2"),
          narrow<S>(h.eps, "eps"),
          narrow<S>(h.lr / bias_correction1, "lr", "lr / (1 - beta1**step)")};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct AdamaxOp : UpdatesAllButGrads<slot_bit(AdamaxOperands::params) |
                                     slot_bit(AdamaxOperands::grads) |
                                     slot_bit(AdamaxOperands::exp_avgs) |
                                     slot_bit(AdamaxOperands::exp_infs)> {
  AdamaxScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[AdamaxOperands::params];
    V& m = x[AdamaxOperands::exp_avgs];
    V& u = x[AdamaxOperands::exp_infs];
    const V d = effective_grad(x[AdamaxOperands::grads], p, s.grad);
    m = V(s.beta1) * m + V(s.one_minus_beta1) * d;
    // |d| as max(d, -d): NaN stays NaN, -0 becomes +0.
    u = max_nan_(u * V(s.beta2), max_nan_(d, -d) + V(s.eps));
    // (clr * m) / u: torch's addcdiv order
    p = p - (V(s.step_size) * m) / u;
  }
};

template <class S, class F>
void with_op(const AdamaxScalars<S>& s, const F& f) {
  f(AdamaxOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
