// Per-element math of the optimizer steps, written once (PyTorch's formulas).
//
// Notation: p parameter, g gradient, g' effective gradient, lr learning rate.
// All arithmetic is in V (float32 kernels compute in float32, as PyTorch and
// TensorFlow do); the scalars in the *Scalars structs are cast to V's element
// type once, on the host, from hyperparameters given in double.
#pragma once

#include "ops/common.h"

namespace nnfast::ops {

// g' = (maximize ? -g : g) + weight_decay * p + l1 * sign(p).
// Each term is added only when its coefficient is nonzero: 0 * inf would turn
// an infinite parameter's gradient into NaN (PyTorch skips the term the same way).
template <class S>
struct GradScalars {
  S weight_decay;  // coupled L2 coefficient (0 when decoupled or absent)
  S l1;
  bool maximize;
};

// The call-uniform maximize and weight-decay terms are selects, not branches,
// so the loop around them can vectorize.
template <class V, class S>
NNFAST_HD V effective_grad(V g, V p, const GradScalars<S>& s) {
  const V signed_grad = s.maximize ? -g : g;
  const V with_l2 = signed_grad + V(s.weight_decay) * p;
  const V decayed = s.weight_decay != S(0) ? with_l2 : signed_grad;
  if (s.l1 == S(0)) return decayed;  // sign(p) only when needed: it branches on p
  return decayed + V(s.l1) * sign_(p);
}

// SGD: p = p - lr * g'.
template <class S>
struct SgdScalars {
  GradScalars<S> grad;
  S lr;
};

template <class V, class S>
NNFAST_HD void sgd_update(V& p, V g, const SgdScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  p = p - V(s.lr) * d;
}

// SGD with momentum (PyTorch): b = momentum * b + (1 - dampening) * g';
// d = nesterov ? g' + momentum * b : b; p = p - lr * d.
// PyTorch's first step sets b = g'; that is buffer_decay = 0, grad_weight = 1
// with the same momentum for the Nesterov look-ahead.
template <class S>
struct SgdmScalars {
  GradScalars<S> grad;
  S lr;
  S momentum;      // mu in the Nesterov look-ahead
  S buffer_decay;  // mu, or 0 on PyTorch's first step
  S grad_weight;   // 1 - dampening, or 1 on PyTorch's first step
  bool nesterov;
};

template <class V, class S>
NNFAST_HD void sgdm_update(V& p, V g, V& b, const SgdmScalars<S>& s) {
  const V d = effective_grad(g, p, s.grad);
  b = V(s.buffer_decay) * b + V(s.grad_weight) * d;
  const V direction = s.nesterov ? d + V(s.momentum) * b : b;
  p = p - V(s.lr) * direction;
}

// Adagrad (Duchi et al. 2011, PyTorch form): s = s + g'^2; p = p - lr * g' / (sqrt(s) + eps).
template <class S>
struct AdagradScalars {
  GradScalars<S> grad;
  S lr;
  S eps;
};

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
template <class S>
struct RmspropScalars {
  GradScalars<S> grad;
  S lr;
  S alpha;
  S one_minus_alpha;  // rounded once from double, as PyTorch passes it
  S eps;
  S momentum;
};

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
//   decoupled (AdamW, Loshchilov & Hutter 2019): p = p * (1 - lr * wd) first
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
//   amsgrad: vmax = max(vmax, v), used below in place of v (raw v, as PyTorch)
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
// computed in double on the host.
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
};

template <bool Amsgrad, class V, class S>
NNFAST_HD void adam_update(V& p, V g, V& m, V& v, V* vmax, const AdamScalars<S>& s) {
  const V decayed = p * V(s.decay_factor);
  p = s.decoupled ? decayed : p;
  const V d = effective_grad(g, p, s.grad);
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

}  // namespace nnfast::ops

namespace nnfast::ops {

// Hyperparameters as the Python API receives them (double), and the per-kernel
// scalars derived from them on the host, once per call, then rounded to S.
struct GradHyper {
  double weight_decay = 0.0;
  double l1 = 0.0;
  bool maximize = false;
};

template <class S>
GradScalars<S> grad_scalars(const GradHyper& h) {
  return {S(h.weight_decay), S(h.l1), h.maximize};
}

struct SgdHyper {
  GradHyper grad;
  double lr;
};

template <class S>
SgdScalars<S> sgd_scalars(const SgdHyper& h) {
  return {grad_scalars<S>(h.grad), S(h.lr)};
}

struct SgdmHyper {
  GradHyper grad;
  double lr;
  double momentum;
  double dampening;
  bool nesterov;
  bool first_step;  // PyTorch initializes the buffer to g' on its first step
};

template <class S>
SgdmScalars<S> sgdm_scalars(const SgdmHyper& h) {
  return {grad_scalars<S>(h.grad),
          S(h.lr),
          S(h.momentum),
          S(h.first_step ? 0.0 : h.momentum),
          S(h.first_step ? 1.0 : 1.0 - h.dampening),
          h.nesterov};
}

struct AdagradHyper {
  GradHyper grad;
  double lr;
  double eps;
};

template <class S>
AdagradScalars<S> adagrad_scalars(const AdagradHyper& h) {
  return {grad_scalars<S>(h.grad), S(h.lr), S(h.eps)};
}

struct RmspropHyper {
  GradHyper grad;
  double lr;
  double alpha;
  double eps;
  double momentum;
  bool centered;
};

template <class S>
RmspropScalars<S> rmsprop_scalars(const RmspropHyper& h) {
  return {grad_scalars<S>(h.grad), S(h.lr), S(h.alpha), S(1.0 - h.alpha), S(h.eps), S(h.momentum)};
}

struct AdamHyper {
  GradHyper grad;  // grad.weight_decay is the coupled L2 term; 0 when decoupled
  double lr;
  double beta1;
  double beta2;
  double eps;
  double decoupled_weight_decay;  // 0 unless AdamW-style decay
  int64_t step;                   // 1-based, including this update
  bool amsgrad;
};

template <class S>
AdamScalars<S> adam_scalars(const AdamHyper& h) {
  const double t = static_cast<double>(h.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
  return {grad_scalars<S>(h.grad),
          S(h.beta1),
          S(1.0 - h.beta1),
          S(h.beta2),
          S(1.0 - h.beta2),
          S(h.eps),
          S(h.lr / bias_correction1),
          S(std::sqrt(bias_correction2)),
          S(1.0 - h.lr * h.decoupled_weight_decay),
          h.decoupled_weight_decay != 0.0};
}

}  // namespace nnfast::ops
