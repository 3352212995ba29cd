// LAMB (You et al. 2020) with the semantics of apex's FusedLAMB, t = step:
//   g' from the gradient, the clip factor of the global norm folded into grad_scale
//      (bind/optimizer.h), plus wd * p when not adam_w_mode (coupled L2)
//   m = beta1 * m + beta3 * g'            beta3 = 1 - beta1, or 1 without grad_averaging
//   v = beta2 * v + (1 - beta2) * g'^2
//   u = (m / c1) / (sqrt(v / c2) + eps)   c1 = 1 - beta1^t, c2 = 1 - beta2^t (1, 1 without
//                                          bias_correction)
//   adam_w_mode: u = u + wd * p
//   p = p - lr * r * u                     r = ||p|| / ||u|| per tensor, or 1 (below)
// The trust ratio r needs two sums over the whole tensor before any element is
// updated, so a step is three passes (bind/optimizer.h runs them):
//   1. the global norm of the gradients, with max_grad_norm (cpu/norms.cpp),
//   2. LambSquaresOp: sum p^2 and sum u^2 per tensor, reading p, g, m, v and
//      writing nothing (u recomputed in pass 3 with the same bits),
//   3. LambOp: the update, with lr * r of its tensor in the scalars.
// r = ||p|| / ||u|| when weight_decay != 0 or use_nvlamb, and both norms are
// nonzero (a NaN norm gives a NaN r, as apex); else r = 1.
#pragma once

#include <cmath>
#include <limits>

#include "ops/optimizers/moments.h"

namespace nnfast::ops {

// Adam's operands (moments.h).
using LambOperands = MomentOperands;

struct LambHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term: 0 in adam_w_mode
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;  // the decay of either mode
  double max_grad_norm;
  bool bias_correction;
  bool adam_w_mode;
  bool grad_averaging;
  bool use_nvlamb;
};

template <class S>
struct LambScalars {
  GradScalars<S> grad;
  S beta1;
  S beta3;
  S beta2;
  S one_minus_beta2;
  S bias_correction1;  // 1 - beta1^t, or 1
  S bias_correction2;
  S eps;
  S decoupled_weight_decay;  // wd in adam_w_mode, else 0
  S step_size;               // lr * r of the tensor (lr until trust_step_size sets it)
};

template <class S>
LambScalars<S> make_scalars(const LambHyper& h, const TensorProgress& progress) {
  const double t = static_cast<double>(progress.step);
  const double correction1 = h.bias_correction ? 1.0 - std::pow(h.beta1, t) : 1.0;
  const double correction2 = h.bias_correction ? 1.0 - std::pow(h.beta2, t) : 1.0;
  return {grad_scalars<S>(h.grad),
          narrow<S>(h.beta1, "beta1"),
          narrow<S>(h.grad_averaging ? 1.0 - h.beta1 : 1.0, "beta1", "1 - beta1"),
          narrow<S>(h.beta2, "beta2"),
          narrow<S>(1.0 - h.beta2, "beta2", "1 - beta2"),
          narrow<S>(correction1, "beta1", "1 - beta1**step"),
          narrow<S>(correction2, "beta2", "1 - beta2**step"),
          narrow<S>(h.eps, "eps"),
          narrow<S>(h.adam_w_mode ? h.weight_decay : 0.0, "weight_decay"),
          narrow<S>(h.lr, "lr")};
}

// apex's clip factor of the gradients, max_grad_norm / max(G, max_grad_norm) for
// the global norm G (1 when max_grad_norm is 0 or G <= max_grad_norm), in double.
inline double lamb_clip_factor(double global_norm, double max_grad_norm) {
  if (!(max_grad_norm > 0.0) || !(global_norm > max_grad_norm)) return 1.0;
  return max_grad_norm / global_norm;
}

// lr * r for a tensor whose sums of p^2 and u^2 are given, rounded to S. r is a
// property of the data, not an argument: a product beyond S's range is inf (what
// the float product would be), not an error.
template <class S>
S trust_step_size(const LambHyper& h, double param_squares, double update_squares) {
  const double param_norm = std::sqrt(param_squares);
  const double update_norm = std::sqrt(update_squares);
  const bool trusted = (h.weight_decay != 0.0 || h.use_nvlamb) && param_norm != 0.0 &&
                       update_norm != 0.0;
  const double step_size = trusted ? h.lr * (param_norm / update_norm) : h.lr;
  if (std::isfinite(step_size) && sizeof(S) < sizeof(double) &&
      !(std::fabs(step_size) < kFloat32RoundsToInfinity))
    return std::numeric_limits<S>::infinity();
  return static_cast<S>(step_size);
}

NNFAST_ISA_NAMESPACE_BEGIN

// The moments m, v updated from p and g (both as loaded) and the direction u
// they give: what pass 2 sums and pass 3 applies, with the same bits.
template <class V, class S>
NNFAST_HD V lamb_direction(V& g, V p, V& m, V& v, const LambScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  m = V(s.beta1) * m + V(s.beta3) * d;
  v = V(s.beta2) * v + V(s.one_minus_beta2) * (d * d);
  const V denom = sqrt_(v / V(s.bias_correction2)) + V(s.eps);
  const V u = (m / V(s.bias_correction1)) / denom;
  // The decay is added only when nonzero: 0 * inf would turn an infinite p's update
  // into NaN (apex's L2 mode adds no term at all).
  if (s.decoupled_weight_decay == S(0)) return u;
  return u + V(s.decoupled_weight_decay) * p;
}

// Pass 2: the terms of the two sums of a tensor, p and u (the drivers square and
// add them in double, per tensor, in a fixed chunk order). Writes nothing.
template <class S>
struct LambSquaresOp {
  static constexpr unsigned kRead = kMomentSlots;
  static constexpr unsigned kWrite = 0;
  LambScalars<S> s;
  // u of the loaded elements; x[params] is left as loaded.
  template <class V>
  NNFAST_HD V direction(V* x) const {
    V m = x[LambOperands::exp_avgs];
    V v = x[LambOperands::exp_avg_sqs];
    return lamb_direction(x[LambOperands::grads], x[LambOperands::params], m, v, s);
  }
};

// Pass 3: the update with the tensor's step size lr * r.
template <class S>
struct LambOp : UpdatesAllButGrads<LambSquaresOp<S>::kRead> {
  LambScalars<S> s;
  template <class V>
  NNFAST_HD void operator()(V* x) const {
    V& p = x[LambOperands::params];
    const V u = lamb_direction(x[LambOperands::grads], p, x[LambOperands::exp_avgs],
                               x[LambOperands::exp_avg_sqs], s);
    p = p - V(s.step_size) * u;
  }
};

template <class S, class F>
void with_op(const LambScalars<S>& s, const F& f) {
  f(LambOp<S>{{}, s});
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
