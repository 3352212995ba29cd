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
// torch's eps1=None is the machine epsilon of the params' dtype (the binding resolves
// it: call/dtype.h's machine_epsilon).
// Every mean and RMS is a sum in double (the drivers fix its order), then one
// rounding to the compute type S.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/common.h"
#include "ops/optimizers/gradient.h"

namespace nnfast::ops {

struct AdafactorHyper {
  double lr;
  double beta2_decay;  // <= 0
  double eps1;         // >= 0 (adafactor_hyper's -1 for None, resolved by the binding)
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
  const double eps1 = h.eps1;
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

// What the per-element passes of one tensor's step need beyond the elements, over one
// row of a factored tensor (x_j = C_j, its column's moment, with the row's R_i and
// floor) or over elements of an unfactored one (x = v before the step).
template <class S>
struct AdafactorRow {
  S grad_factor;   // s, or -s with maximize
  S eps1_squared;
  S new_weight;    // w = t^beta2_decay (unfactored)
  S row_var;       // R_i (factored)
  S row_floor;     // max(mean_i R_i, eps1) of the row's batch entry (factored)
  S step_size;     // -alpha / max(1, RMS(u) / d), once the sum of u^2 is known
  S decay;         // 1 - lr * weight_decay
  bool decays;     // weight_decay != 0
};

template <class S>
AdafactorRow<S> adafactor_row(const AdafactorHyper& h, const AdafactorScalars<S>& s) {
  return {s.grad_factor, s.eps1_squared, s.new_weight, S(0), S(1), S(0), s.decay, h.weight_decay != 0.0};
}

NNFAST_ISA_NAMESPACE_BEGIN

// torch's lerp: start + weight (end - start), computed from the nearer end (the
// weight is one per tensor, so the choice is not data-dependent).
template <class V, class S>
NNFAST_HD V torch_lerp(V start, V end, S weight) {
  return weight < S(0.5) ? start + V(weight) * (end - start) : end - (end - start) * V(S(1) - weight);
}

// u for one element from g' and its (estimated) second moment v: torch's
// clamp_(min=eps1^2).rsqrt_() then mul_(g'), where a NaN v stays NaN.
template <class V, class S>
NNFAST_HD V adafactor_direction(V scaled_grad, V variance, S eps1_squared) {
  return scaled_grad * (V(S(1)) / sqrt_(max_(variance, V(eps1_squared))));
}

// v of an element: R_i C_j / floor (factored, torch's (R @ C) / floor), or
// lerp(v, g'^2, w) (unfactored).
template <bool Factored, class V, class S>
NNFAST_HD V adafactor_variance(const AdafactorRow<S>& r, V scaled_grad, V x) {
  if constexpr (Factored) return V(r.row_var) * x / V(r.row_floor);
  else return torch_lerp(x, scaled_grad * scaled_grad, r.new_weight);
}

// u = g' / sqrt(max(v, eps1^2)) of an element.
template <bool Factored, class V, class S>
NNFAST_HD V adafactor_row_direction(const AdafactorRow<S>& r, V g, V x) {
  const V scaled_grad = V(r.grad_factor) * g;
  return adafactor_direction(scaled_grad, adafactor_variance<Factored>(r, scaled_grad, x), r.eps1_squared);
}

// A factored element's term of the sum of u^2, in double: g'^2 min(a_i b_j, 1/eps1^2),
// a_i = floor / R_i and b_j = 1 / C_j, which is u^2 = g'^2 / max(v, eps1^2) to a few
// roundings. The sum sets the tensor's step size only, so it skips u's two divides and
// square root, which bound the pass's speed (the update computes u as torch does). A
// NaN moment keeps the term NaN.
template <class D>
NNFAST_HD D adafactor_update_square(D scaled_grad, D row_reciprocal, D col_reciprocal,
                                    D max_reciprocal) {
  const D reciprocal = row_reciprocal * col_reciprocal;
  return scaled_grad * scaled_grad * select(max_reciprocal < reciprocal, max_reciprocal, reciprocal);
}

// p = p * decay (with weight decay) + step_size * u; x = v (unfactored). The
// unfactored v is recomputed here from the old v, not read back: so this u has
// the bits of the one the sum of u^2 took, and a 16-bit v is rounded once, on its
// store.
template <bool Factored, class V, class S>
NNFAST_HD void adafactor_row_update(const AdafactorRow<S>& r, V& p, V g, V& x) {
  const V scaled_grad = V(r.grad_factor) * g;
  const V v = adafactor_variance<Factored>(r, scaled_grad, x);
  const V decayed = r.decays ? p * V(r.decay) : p;
  p = decayed + V(r.step_size) * adafactor_direction(scaled_grad, v, r.eps1_squared);
  if constexpr (!Factored) x = v;
}

// A moment R_i (C_j) from the sum of g'^2 over its `count` columns (rows), in double:
// lerp(R, S(sum) / S(count), w), the mean rounded once and divided in S as torch's.
template <class S>
NNFAST_HD S adafactor_moment(S moment, double sum, int64_t count, S new_weight) {
  return torch_lerp(moment, static_cast<S>(sum) / static_cast<S>(count), new_weight);
}

// The floor of a batch entry's v: max(mean_i R_i, eps1) from the sum of its `rows` new R
// in double.
template <class S>
NNFAST_HD S adafactor_row_floor(double row_var_sum, int64_t rows, S eps1) {
  return max_(static_cast<S>(row_var_sum) / static_cast<S>(rows), eps1);
}

// The step size alpha / max(1, RMS(u) / d) that multiplies u (negated), from the
// sums of p^2 (before the decay) and u^2 over the tensor's `count` elements, in
// double, rounded once to S as torch rounds its Python-float alpha.
template <class S>
NNFAST_HD S adafactor_step_size(const AdafactorHyper& h, const AdafactorScalars<S>& s,
                                double param_squares, double update_squares, int64_t count) {
  const double root_count = sqrt_(static_cast<double>(count));
  const double alpha = max_(h.eps2, sqrt_(param_squares) / root_count) * s.rho;
  const double clip = max_(1.0, sqrt_(update_squares) / (root_count * h.d));
  return static_cast<S>(-alpha / clip);
}

NNFAST_ISA_NAMESPACE_END

}  // namespace nnfast::ops
