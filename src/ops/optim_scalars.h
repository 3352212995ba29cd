// Scalars of the optimizer steps: the hyperparameters as the Python API passes
// them (double), and the per-kernel scalars derived from them on the host, once
// per call, then rounded to the kernel's value type S. Plain data shared by the
// generic drivers and every ISA's kernels (so not in an ISA namespace).
#pragma once

#include <cmath>
#include <cstdint>

namespace nnfast::ops {

template <class S>
struct GradScalars {
  S weight_decay;  // coupled L2 coefficient (0 when decoupled or absent)
  S l1;
  bool maximize;
};

template <class S>
struct SgdScalars {
  GradScalars<S> grad;
  S lr;
};

template <class S>
struct SgdmScalars {
  GradScalars<S> grad;
  S lr;
  S momentum;
  S one_minus_dampening;  // rounded once from double, as PyTorch passes it
  bool nesterov;
  bool initialize;  // PyTorch's first step: the buffer becomes g'
};

template <class S>
struct AdagradScalars {
  GradScalars<S> grad;
  S lr;
  S eps;
};

template <class S>
struct RmspropScalars {
  GradScalars<S> grad;
  S lr;
  S alpha;
  S one_minus_alpha;  // rounded once from double, as PyTorch passes it
  S eps;
  S momentum;
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
};

// Hyperparameters as the Python API receives them (double).
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
          S(1.0 - h.dampening),
          h.nesterov,
          h.first_step};
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
