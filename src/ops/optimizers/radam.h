// RAdam (Liu et al. 2020) as PyTorch computes it, t = step: the moments of moments.h
// (g', the decoupled decay, m, v), then
//   rho_inf = 2 / (1 - beta2) - 1,  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
//   rho_t > 5 (rectified):
//     r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
//     p = p - lr r sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
//   otherwise (too few steps to trust the variance estimate: momentum SGD):
//     p = p - lr / (1 - beta1^t) * m
// The branch and the coefficients are per tensor (they depend on its t), derived in
// double on the host; the branch picks the functor, so no element tests it.
#pragma once

#include <cmath>

#include "ops/optimizers/moments.h"

namespace nnfast::ops {

using RadamOperands = MomentOperands;

struct RadamHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term; 0 when decoupled
  MomentHyper moments;
};

template <class S>
struct RadamScalars {
  GradScalars<S> grad;
  MomentScalars<S> moments;
  S step_size;     // rectified: lr r sqrt(1 - beta2^t) / (1 - beta1^t); else lr / (1 - beta1^t)
  bool rectified;  // rho_t > 5
};

template <class S>
RadamScalars<S> make_scalars(const RadamHyper& h, const TensorProgress& progress) {
  const MomentHyper& m = h.moments;
  const double t = static_cast<double>(progress.step);
  const double bias_correction1 = 1.0 - std::pow(m.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(m.beta2, t);
  const double rho_inf = 2.0 / (1.0 - m.beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * std::pow(m.beta2, t) / bias_correction2;
  const bool rectified = rho_t > 5.0;
  double step_size = m.lr / bias_correction1;
  if (rectified) {
    const double rect = std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                                  ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
    step_size = step_size * std::sqrt(bias_correction2) * rect;
  }
  return {grad_scalars<S>(h.grad), moment_scalars<S>(m),
          narrow<S>(step_size, "lr", "lr / (1 - beta1**step) (times the rectification)"),
          rectified};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S, bool Rectified>
struct RadamOp : UpdatesAllButGrads<kMomentSlots> {
  RadamScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    update_moments(x, s.grad, s.moments);
    V& p = x[RadamOperands::params];
    const V& m = x[RadamOperands::exp_avgs];
    if constexpr (Rectified) {
      p = p - V(s.step_size) * (m / (sqrt_(x[RadamOperands::exp_avg_sqs]) + V(s.moments.eps)));
    } else {
      p = p - V(s.step_size) * m;
    }
  }
};

template <class S, class F>
void with_op(const RadamScalars<S>& s, const F& f) {
  s.rectified ? f(RadamOp<S, true>{{}, s}) : f(RadamOp<S, false>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
