// Adafactor (Shazeer & Stern, 2018) as torch.optim.Adafactor computes it, t = step:
//   g' = -s g with maximize, else s g      (s = grad_scale)
//   beta2_t' = t^beta2_decay                (the weight 1 - beta2_t of the new term)
//   rho = min(lr, 1 / sqrt(t)),  alpha = max(eps2, RMS(p)) * rho   (p before the decay)
//   p = p * (1 - lr * weight_decay)
//   >= 2-D, viewed as (B, m, n) with the last two dims factored:
//     R = lerp(R, mean_j g'^2, beta2_t')   (B, m)      C = lerp(C, mean_i g'^2, beta2_t') (B, n)
//     v_ij = R_i C_j / max(mean_i R_i, eps1)
//   0-D and 1-D: v = lerp(v, g'^2, beta2_t')
//   u = g' / sqrt(max(v, eps1^2)),  p = p - alpha / max(1, RMS(u) / d) * u
// lerp(a, b, w) is torch's: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w).
// eps1 < 0 stands for torch's None: the machine epsilon of the params' dtype.
// Every mean and RMS is a sum in double (the drivers fix its order), then one
// rounding to the compute type S.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdafactorHyper {
  double lr;
  double beta2_decay;  // <= 0
  double eps1;         // >= 0, or < 0 for the dtype's machine epsilon
  double eps2;
  double d;            // >= 1
  double weight_decay;
  bool maximize;
  double grad_scale;
  bool store_scaled_grads;  // write s g back into the grads
};

// The scalars of one tensor's step, derived in double and narrowed to S.
template <class S>
struct AdafactorScalars {
  S grad_factor;        // s, or -s with maximize
  S grad_scale;         // s
  S new_weight;         // beta2_t' = t^beta2_decay
  S eps1;
  S eps1_squared;
  S decay;              // 1 - lr * weight_decay
  double rho;           // min(lr, 1/sqrt(t)), kept in double: alpha is formed in double
};

template <class S>
AdafactorScalars<S> adafactor_scalars(const AdafactorHyper& h, int64_t step) {
  const double t = static_cast<double>(step);
  const double eps1 = h.eps1 < 0.0 ? static_cast<double>(std::numeric_limits<S>::epsilon()) : h.eps1;
  // alpha <= max(eps2, RMS(p)) (rho <= 1): with eps2 within S's range, so is the step size.
  narrow<S>(h.eps2, "eps2");
  return {narrow<S>(h.maximize ? -h.grad_scale : h.grad_scale, "grad_scale"),
          narrow<S>(h.grad_scale, "grad_scale"),
          narrow<S>(std::pow(t, h.beta2_decay), "beta2_decay", "step**beta2_decay"),
          narrow<S>(eps1, "eps"),
          narrow<S>(eps1 * eps1, "eps", "eps1**2"),
          decoupled_decay_factor<S>(h.lr, h.weight_decay),
          std::min(h.lr, 1.0 / std::sqrt(t))};
}

// torch's lerp: start + weight (end - start), computed from the nearer end.
template <class S>
inline S torch_lerp(S start, S end, S weight) {
  return weight < S(0.5) ? start + weight * (end - start) : end - (end - start) * (S(1) - weight);
}

// u for one element from g' and its (estimated) second moment v.
template <class S>
inline S adafactor_direction(S scaled_grad, S variance, S eps1_squared) {
  return scaled_grad * (S(1) / std::sqrt(std::max(variance, eps1_squared)));
}

// The step size alpha / max(1, RMS(u) / d) that multiplies u (negated), from the
// sums of p^2 (before the decay) and u^2 over the tensor's `count` elements, in
// double, rounded once to S as torch rounds its Python-float alpha.
template <class S>
inline S adafactor_step_size(const AdafactorHyper& h, const AdafactorScalars<S>& s,
                             double param_squares, double update_squares, int64_t count) {
  const double root_count = std::sqrt(static_cast<double>(count));
  const double alpha = std::max(h.eps2, std::sqrt(param_squares) / root_count) * s.rho;
  const double clip = std::max(1.0, std::sqrt(update_squares) / (root_count * h.d));
  return static_cast<S>(-alpha / clip);
}

}  // namespace nnfast::ops
