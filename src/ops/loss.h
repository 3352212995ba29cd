// Per-element math of the losses and their gradients, written once.
// Loss terms are returned in V; drivers accumulate them in double.
#pragma once

#include "ops/common.h"

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

// MSE: term (pred - target)^2; gradient grad_scale * (pred - target), with
// grad_scale = 2 / N for "mean" and 2 otherwise (d/dpred of the reduced loss).
template <class V>
NNFAST_HD V mse_term(V pred, V target, V grad_scale, V& grad) {
  const V d = pred - target;
  grad = grad_scale * d;
  return d * d;
}

// Cross-entropy on probabilities (the lesson's h(y_, y) = -sum y_ ln y):
// term -t ln p, gradient -t / p times grad_scale (1 / rows for "mean").
// A zero target contributes exactly 0 to both, even where p = 0 (never 0 * -inf);
// a positive target on p = 0 gives +inf loss and -inf gradient.
template <class V>
NNFAST_HD V cross_entropy_term(V prob, V target, V grad_scale, V& grad) {
  grad = select(target == V(0), V(0), -(target / prob) * grad_scale);
  return select(target == V(0), V(0), -target * log_(prob));
}

// Softmax cross-entropy gradient of one logit, from e = exp(x - max) and the row's
// 1 / sum(e): d loss / d x_c = (softmax_c * target_mass - t'_c) * grad_scale, where
// t' is the (label-smoothed) target distribution and target_mass = sum_c t'_c
// (1 for class ids; PyTorch does not renormalize probability targets).
template <class V>
NNFAST_HD V softmax_cross_entropy_grad(V e, V inv_sum, V target_mass, V target, V grad_scale) {
  return (e * inv_sum * target_mass - target) * grad_scale;
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

// The loss of one softmax cross-entropy row from its log-sum-exp lse, in double
// (Milakov & Gimelshein's max-shifted form; PyTorch's label smoothing):
//   class id y:    loss = lse - (1 - eps) x_y - (eps / C) sum_c x_c
//   probabilities: loss = lse sum_c t'_c - sum_c t'_c x_c,  t'_c = (1 - eps) t_c + eps / C
// keep = 1 - eps and smooth = eps / C as rounded to the kernel's type.
NNFAST_HD double softmax_cross_entropy_class_loss(double lse, double x_label, double sum_x,
                                                  double keep, double smooth) {
  return lse - keep * x_label - smooth * sum_x;
}

NNFAST_HD double softmax_cross_entropy_soft_loss(double lse, double target_mass, double sum_tx) {
  return lse * target_mass - sum_tx;
}

// l1_loss = sum |w| and l2_loss = (sum w^2) / 2 (tf.nn.l2_loss). The drivers
// form the terms in double (V is double or a double vector), so a float32 w^2
// cannot overflow on the way.
template <class V>
NNFAST_HD V l1_term(V w) { return select(w < V(0), -w, w); }
template <class V>
NNFAST_HD V l2_term(V w) { return w * w; }
constexpr double kL2LossFactor = 0.5;

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
