// Per-element math of the optimizer steps, written once (PyTorch's formulas).
//
// Notation: p parameter, g gradient, g' effective gradient, lr learning rate.
// All arithmetic is in V (float32 kernels compute in float32, as PyTorch and
// TensorFlow do); the scalars in the *Scalars structs are cast to V's element
// type once, on the host, from hyperparameters given in double.
#pragma once

#include "ops/common.h"
#include "ops/optim_scalars.h"

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

// g' = (maximize ? -g : g) + weight_decay * p + l1 * sign(p).
// Each term is added only when its coefficient is nonzero: 0 * inf would turn
// an infinite parameter's gradient into NaN (PyTorch skips the term the same way).
// The flags are uniform over a call, so these selects cost no branch misses.
template <class V, class S>
NNFAST_HD V effective_grad(V g, V p, const GradScalars<S>& s) {
  const V signed_grad = s.maximize ? -g : g;
  const V with_l2 = signed_grad + V(s.weight_decay) * p;
  const V decayed = s.weight_decay != S(0) ? with_l2 : signed_grad;
  if (s.l1 == S(0)) return decayed;  // skip the two selects of sign(p)
  return decayed + V(s.l1) * sign_(p);
}

// SGD: p = p - lr * g'.
template <class V, class S>
NNFAST_HD void sgd_update(V& p, V g, const SgdScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  p = p - V(s.lr) * d;
}

// SGD with momentum (PyTorch): b = momentum * b + (1 - dampening) * g';
// d = nesterov ? g' + momentum * b : b; p = p - lr * d.
// PyTorch's first step sets b = g' (whatever b held: an inf in a stale buffer
// must not leak into it).

template <class V, class S>
NNFAST_HD void sgdm_update(V& p, V g, V& b, const SgdmScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  b = s.initialize ? d : V(s.momentum) * b + V(s.one_minus_dampening) * d;
  const V direction = s.nesterov ? d + V(s.momentum) * b : b;
  p = p - V(s.lr) * direction;
}

// Adagrad (Duchi et al. 2011, PyTorch form): s = s + g'^2; p = p - lr * g' / (sqrt(s) + eps).

template <class V, class S>
NNFAST_HD void adagrad_update(V& p, V g, V& sum, const AdagradScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  sum = sum + d * d;
  p = p - V(s.lr) * (d / (sqrt_(sum) + V(s.eps)));
}

// RMSprop (Hinton 2012, PyTorch form):
//   q = alpha * q + (1 - alpha) * g'^2
//   centered: c = alpha * c + (1 - alpha) * g';  avg = sqrt(q - c^2) + eps
//   otherwise: avg = sqrt(q) + eps
//   momentum > 0: b = momentum * b + g' / avg;  p = p - lr * b
//   otherwise: p = p - lr * (g' / avg)

template <bool Centered, bool Momentum, class V, class S>
NNFAST_HD void rmsprop_update(V& p, V g, V& square_avg, V* grad_avg, V* buffer,
                              const RmspropScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  square_avg = V(s.alpha) * square_avg + V(s.one_minus_alpha) * (d * d);
  V avg;
  if constexpr (Centered) {
    *grad_avg = V(s.alpha) * *grad_avg + V(s.one_minus_alpha) * d;
    avg = sqrt_(square_avg - *grad_avg * *grad_avg) + V(s.eps);
  } else {
    avg = sqrt_(square_avg) + V(s.eps);
  }
  if constexpr (Momentum) {
    *buffer = V(s.momentum) * *buffer + d / avg;
    p = p - V(s.lr) * *buffer;
  } else {
    p = p - V(s.lr) * (d / avg);
  }
}

// Adam (Kingma & Ba 2015) as PyTorch computes it, t = step:
//   g' from p as given; decoupled (AdamW, Loshchilov & Hutter 2019): p = p * (1 - lr * wd)
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
//   amsgrad: vmax = max(vmax, v), used below in place of v (raw v, as PyTorch)
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed in double on the host.

template <bool Amsgrad, class V, class S>
NNFAST_HD void adam_update(V& p, V g, V& m, V& v, V* vmax, const AdamScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);  // from p before the decay (l1's sign(p))
  const V decayed = p * V(s.decay_factor);
  p = s.decoupled ? decayed : p;
  m = V(s.beta1) * m + V(s.one_minus_beta1) * d;
  v = V(s.beta2) * v + V(s.one_minus_beta2) * (d * d);
  V second_moment = v;
  if constexpr (Amsgrad) {
    *vmax = max_nan_(*vmax, v);
    second_moment = *vmax;
  }
  const V denom = sqrt_(second_moment) / V(s.bias_correction2_sqrt) + V(s.eps);
  p = p - V(s.step_size) * (m / denom);
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
