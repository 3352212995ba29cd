// Scalars of the optimizer steps: the hyperparameters as the Python API passes
// them (double), and the per-kernel scalars derived from them on the host, once
// per call, then rounded to the kernel's value type S (narrow.h: a value beyond
// S's range is refused, naming the argument). Plain data shared by the
// generic drivers and every ISA's kernels (so not in an ISA namespace).
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/narrow.h"

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
  return {narrow<S>(h.weight_decay, "weight_decay"), narrow<S>(h.l1, "l1"), h.maximize};
}

struct SgdHyper {
  GradHyper grad;
  double lr;
};

template <class S>
SgdScalars<S> sgd_scalars(const SgdHyper& h) {
  return {grad_scalars<S>(h.grad), narrow<S>(h.lr, "lr")};
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
          narrow<S>(h.lr, "lr"),
          narrow<S>(h.momentum, "momentum"),
          narrow<S>(1.0 - h.dampening, "dampening", "1 - dampening"),
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
  return {grad_scalars<S>(h.grad), narrow<S>(h.lr, "lr"), narrow<S>(h.eps, "eps")};
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
  return {grad_scalars<S>(h.grad),   narrow<S>(h.lr, "lr"),
          narrow<S>(h.alpha, "alpha"), narrow<S>(1.0 - h.alpha, "alpha", "1 - alpha"),
          narrow<S>(h.eps, "eps"),     narrow<S>(h.momentum, "momentum")};
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
          h.decoupled_weight_decay != 0.0};
}

}  // namespace nnfast::ops
