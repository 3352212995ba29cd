// NAdam (Dozat 2016) as PyTorch computes it, t = step, psi = momentum_decay: the moments
// of moments.h (g', the decoupled decay, m, v), then
//   mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)),  mu_{t+1} likewise,
//   P_t = mu_1 * ... * mu_t (the caller's mu_product, kept as PyTorch keeps it)
//   denom = sqrt(v / (1 - beta2^t)) + eps
//   p = p - lr (1 - mu_t) / (1 - P_t) * g' / denom
//   p = p - lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / denom
// The two updates of p are rounded one after the other, as PyTorch's two addcdiv_.
// Every coefficient is derived in double on the host, per tensor (each has its own
// t and P_t).
#pragma once

#include <cmath>

#include "ops/optimizers/moments.h"

namespace nnfast::ops {

using NadamOperands = MomentOperands;

struct NadamHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term; 0 when decoupled
  MomentHyper moments;
  double momentum_decay;
};

template <class S>
struct NadamScalars {
  GradScalars<S> grad;
  MomentScalars<S> moments;
  S bias_correction2;  // 1 - beta2^t
  S grad_coefficient;  // lr (1 - mu_t) / (1 - P_t)
  S avg_coefficient;   // lr mu_{t+1} / (1 - P_t mu_{t+1})
};

// mu_t of NAdam's momentum schedule.
inline double nadam_momentum(double beta1, double momentum_decay, double t) {
  return beta1 * (1.0 - 0.5 * std::pow(0.96, t * momentum_decay));
}

template <class S>
NadamScalars<S> make_scalars(const NadamHyper& h, const TensorProgress& progress) {
  const MomentHyper& m = h.moments;
  const double t = static_cast<double>(progress.step);
  const double mu = nadam_momentum(m.beta1, h.momentum_decay, t);
  const double mu_next = nadam_momentum(m.beta1, h.momentum_decay, t + 1.0);
  const double product = progress.mu_product;
  return {grad_scalars<S>(h.grad), moment_scalars<S>(m),
          narrow<S>(1.0 - std::pow(m.beta2, t), "beta2", "1 - beta2**step"),
          narrow<S>(m.lr * (1.0 - mu) / (1.0 - product), "lr", "lr * (1 - mu) / (1 - mu_product)"),
          narrow<S>(m.lr * mu_next / (1.0 - product * mu_next), "lr",
                    "lr * mu_next / (1 - mu_product * mu_next)")};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S>
struct NadamOp : UpdatesAllButGrads<kMomentSlots> {
  NadamScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    const V d = update_moments(x, s.grad, s.moments);
    V& p = x[NadamOperands::params];
    const V denom = sqrt_(x[NadamOperands::exp_avg_sqs] / V(s.bias_correction2)) + V(s.moments.eps);
    p = p - V(s.grad_coefficient) * d / denom;
    p = p - V(s.avg_coefficient) * x[NadamOperands::exp_avgs] / denom;
  }
};

template <class S, class F>
void with_op(const NadamScalars<S>& s, const F& f) {
  f(NadamOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
