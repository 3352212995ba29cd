// Adam (Kingma & Ba 2015) as PyTorch computes it, t = step:
//   g' from p as given; decoupled (AdamW, Loshchilov & Hutter 2019): p = p * (1 - lr * wd)
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
//   amsgrad: vmax = max(vmax, v), used below in place of v (raw v, as PyTorch)
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed in double on the host, per tensor (each has its own t).
#pragma once

#include <cmath>

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdamOperands {
  enum Slot : int { params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"exp_avgs", Role::state},
                                              {"exp_avg_sqs", Role::state},
                                              {"max_exp_avg_sqs", Role::state, "amsgrad=True"}};
};

struct AdamHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term; 0 when decoupled
  double lr;
  double beta1;
  double beta2;
  double eps;
  double decoupled_weight_decay;  // 0 unless AdamW-style decay
  bool amsgrad;
};

template <class S>
struct AdamScalars {
  GradScalars<S> grad;
  S beta1;
  S one_minus_beta1;  // rounded once from double, as PyTorch passes it
  S beta2;
  S one_minus_beta2;
  S eps;
  S step_size;
  S bias_correction2_sqrt;
  S decay_factor;  // 1 - lr * weight_decay when decoupled
  bool decoupled;
  bool amsgrad;
};

template <class S>
AdamScalars<S> make_scalars(const AdamHyper& h, const TensorProgress& progress) {
  const double t = static_cast<double>(progress.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
  // (Only lr and weight_decay can make a derived scalar overflow: both bias
  // corrections lie in (0, 1]. AdamW's weight_decay is used only through
  // 1 - lr * weight_decay, but is held to the same range as every hyperparameter.)
  narrow<S>(h.lr, "lr");
  narrow<S>(h.decoupled_weight_decay, "weight_decay");
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.beta1, "beta1"),
          narrow<S>(1.0 - h.beta1, "beta1", "1 - beta1"),
          narrow<S>(h.beta2, "beta2"),
          narrow<S>(1.0 - h.beta2, "beta2", "1 - beta2"),
          narrow<S>(h.eps, "eps"),
          narrow<S>(h.lr / bias_correction1, "lr", "lr / (1 - beta1**step)"),
          narrow<S>(std::sqrt(bias_correction2), "beta2", "sqrt(1 - beta2**step)"),
          narrow<S>(1.0 - h.lr * h.decoupled_weight_decay, "weight_decay", "1 - lr * weight_decay"),
          h.decoupled_weight_decay != 0.0,
          h.amsgrad};
}

NNFAST_ISA_NAMESPACE_BEGIN

template <class S, bool Amsgrad>
struct AdamOp
    : UpdatesAllButGrads<slot_bit(AdamOperands::params) | slot_bit(AdamOperands::grads) |
                         slot_bit(AdamOperands::exp_avgs) | slot_bit(AdamOperands::exp_avg_sqs) |
                         (Amsgrad ? slot_bit(AdamOperands::max_exp_avg_sqs) : 0u)> {
  AdamScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[AdamOperands::params];
    V& m = x[AdamOperands::exp_avgs];
    V& v = x[AdamOperands::exp_avg_sqs];
    const V d = effective_grad(x[AdamOperands::grads], p, s.grad);  // from p before the decay
    const V decayed = p * V(s.decay_factor);
    p = s.decoupled ? decayed : p;
    m = V(s.beta1) * m + V(s.one_minus_beta1) * d;
    v = V(s.beta2) * v + V(s.one_minus_beta2) * (d * d);
    V second_moment = v;
    if constexpr (Amsgrad) {
      V& vmax = x[AdamOperands::max_exp_avg_sqs];
      vmax = max_nan_(vmax, v);
      second_moment = vmax;
    }
    const V denom = sqrt_(second_moment) / V(s.bias_correction2_sqrt) + V(s.eps);
    p = p - V(s.step_size) * (m / denom);
  }
};

template <class S, class F>
void with_op(const AdamScalars<S>& s, const F& f) {
  s.amsgrad ? f(AdamOp<S, true>{{}, s}) : f(AdamOp<S, false>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
