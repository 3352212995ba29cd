// What Adam and its variants NAdam and RAdam share, as PyTorch computes them: the operands
// (params, grads and the two moments), the hyperparameters of the moments, and the
// first half of their update of an element:
//   g' from p as given; decoupled: p = p * (1 - lr * wd)
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
// (1 - beta rounded once from double, as PyTorch passes it.)
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct MomentOperands {
  enum Slot : int { params, grads, exp_avgs, exp_avg_sqs, count };
  static constexpr OperandSpec spec[count] = {{"params", Role::param},
                                              {"grads", Role::grad},
                                              {"exp_avgs", Role::state},
                                              {"exp_avg_sqs", Role::state}};
};

// The slots a functor of these operands reads and writes.
constexpr unsigned kMomentSlots = slot_bit(MomentOperands::params) | slot_bit(MomentOperands::grads) |
                                  slot_bit(MomentOperands::exp_avgs) |
                                  slot_bit(MomentOperands::exp_avg_sqs);

struct MomentHyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double decoupled_weight_decay;  // 0 unless decoupled (the coupled one is GradHyper's)
};

template <class S>
struct MomentScalars {
  S beta1;
  S one_minus_beta1;
  S beta2;
  S one_minus_beta2;
  S eps;
  S decay_factor;  // 1 - lr * weight_decay when decoupled
  bool decoupled;
};

template <class S>
MomentScalars<S> moment_scalars(const MomentHyper& h) {
  // (lr and weight_decay reach the update only through derived scalars, but are held to
  // the same range as every hyperparameter.)
  narrow<S>(h.lr, "lr");
  return {narrow<S>(h.beta1, "beta1"),
          narrow<S>(1.0 - h.beta1, "beta1", "1 - beta1"),
          narrow<S>(h.beta2, "beta2"),
          narrow<S>(1.0 - h.beta2, "beta2", "1 - beta2"),
          narrow<S>(h.eps, "eps"),
          decoupled_decay_factor<S>(h.lr, h.decoupled_weight_decay),
          h.decoupled_weight_decay != 0.0};
}

NNFAST_ISA_NAMESPACE_BEGIN

// The shared first half of an element's update (above): decays p when decoupled, updates
// m and v in place, and returns g' (taken from p before the decay).
template <class V, class S>
NNFAST_HD V update_moments(V* x, const GradScalars<S>& g, const MomentScalars<S>& s) {
  V& p = x[MomentOperands::params];
  V& m = x[MomentOperands::exp_avgs];
  V& v = x[MomentOperands::exp_avg_sqs];
  const V d = effective_grad(x[MomentOperands::grads], p, g);
  const V decayed = p * V(s.decay_factor);
  p = s.decoupled ? decayed : p;
  m = V(s.beta1) * m + V(s.one_minus_beta1) * d;
  v = V(s.beta2) * v + V(s.one_minus_beta2) * (d * d);
  return d;
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
