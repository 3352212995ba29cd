// Adam (Kingma & Ba 2015) as PyTorch computes it, t = step:
//   g' from p as given; decoupled (AdamW, Loshchilov & Hutter 2019): p = p * (1 - lr * wd)
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
//   amsgrad: vmax = max(vmax, v), used below in place of v (raw v, as PyTorch)
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed in double on the host, per tensor (each has its own t). The first three lines
// are moments.h's, shared with NAdam and RAdam.
#pragma once

#include <cmath>

#include "ops/optimizers/moments.h"

namespace nnfast::ops {

struct AdamOperands {
  enum Slot : int { params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"exp_avgs", Role::state},
                                              {"exp_avg_sqs", Role::state},
                                              {"max_exp_avg_sqs", Role::state, "amsgrad=True"}};
};
static_assert(AdamOperands::exp_avg_sqs == MomentOperands::exp_avg_sqs,
              "Adam's first operands are the moments' (update_moments reads them by slot)");

struct AdamHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term; 0 when decoupled
  MomentHyper moments;
  bool amsgrad;
};

template <class S>
struct AdamScalars {
  GradScalars<S> grad;
  MomentScalars<S> moments;
  S step_size;
  S bias_correction2_sqrt;
  bool amsgrad;
};

template <class S>
AdamScalars<S> make_scalars(const AdamHyper& h, const TensorProgress& progress) {
  const MomentHyper& m = h.moments;
  const double t = static_cast<double>(progress.step);
  const double bias_correction1 = 1.0 - std::pow(m.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(m.beta2, t);
  // (Only lr and weight_decay can make a derived scalar overflow: both bias
  // corrections lie in (0, 1].)
  return {grad_scalars<S>(h.grad),
          moment_scalars<S>(m),
          narrow<S>(m.lr / bias_correction1, "lr", "lr / (1 - beta1**step)"),
          narrow<S>(std::sqrt(bias_correction2), "beta2", "sqrt(1 - beta2**step)"),
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
    update_moments(x, s.grad, s.moments);
    V& p = x[AdamOperands::params];
    V second_moment = x[AdamOperands::exp_avg_sqs];
    if constexpr (Amsgrad) {
      V& vmax = x[AdamOperands::max_exp_avg_sqs];
      vmax = max_nan_(vmax, second_moment);
      second_moment = vmax;
    }
    const V denom = sqrt_(second_moment) / V(s.bias_correction2_sqrt) + V(s.moments.eps);
    p = p - V(s.step_size) * (x[AdamOperands::exp_avgs] / denom);
  }
};

template <class S, class F>
void with_op(const AdamScalars<S>& s, const F& f) {
  s.amsgrad ? f(AdamOp<S, true>{{}, s}) : f(AdamOp<S, false>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
