// Per-element math of the gradient norms and of clipping, written once for the
// CPU chunk kernels and the CUDA apply loop.
//
// The p-norm of scale * g over every element of every tensor of a call:
//   ||scale g||_p   = (sum_i |scale g_i|^p)^(1/p)    p > 0 (p = 1, 2 without pow)
//   ||scale g||_inf = max_i |scale g_i|
// The terms |scale g_i|^p are formed in double from the widened element and
// accumulated in double (summed, or the NaN-propagating max for p = inf); a
// NaN anywhere makes the norm NaN, an infinity (and no NaN) makes it inf, as
// torch.linalg.vector_norm.
#pragma once

#include <cmath>
#include <type_traits>

#include "call/norm_spec.h"
#include "ops/common.h"

namespace nnfast::ops {

NNFAST_ISA_NAMESPACE_BEGIN

// The spec of the p-norm of scale * g (p > 0, or inf).
inline NormSpec norm_spec(double p, double scale) {
  NormSpec s;
  s.p = p;
  s.scale = scale;
  if (p == 1.0) s.order = NormOrder::one;
  else if (p == 2.0) s.order = NormOrder::two;
  else if (std::isinf(p)) s.order = NormOrder::inf;
  else s.order = NormOrder::p;
  return s;
}

// a^p (the C library's pow; vectors lane by lane, simd/vec.h).
NNFAST_HD double pow_(double a, double p) { return pow(a, p); }

// |scale x|^p for x in double (a double or a vector of doubles). |.| keeps the
// sign of a zero (-0 stays -0): a sum adds it away, and norm_combine keeps the
// +0 it starts from for the max.
template <NormOrder Order, class V>
NNFAST_HD V norm_term(V x, double scale, double p) {
  const V scaled = V(scale) * x;
  const V a = select(scaled < V(0), -scaled, scaled);
  if constexpr (Order == NormOrder::two) return a * a;
  else if constexpr (Order == NormOrder::p) return pow_(a, p);
  else return a;
}

// The running sum of terms, or for inf their maximum: max_nan_(term, acc) keeps
// a NaN from either side and, on a tie of zeros, the +0 acc starts from.
template <NormOrder Order, class V>
NNFAST_HD V norm_combine(V acc, V term) {
  if constexpr (Order == NormOrder::inf) return max_nan_(term, acc);
  else return acc + term;
}

// The norm from the accumulated terms: the sum itself (1), its square root (2),
// the maximum (inf), or sum^(1/p).
template <NormOrder Order>
NNFAST_HD double norm_finish(double acc, double p) {
  if constexpr (Order == NormOrder::two) return sqrt_(acc);
  else if constexpr (Order == NormOrder::p) return pow_(acc, 1.0 / p);
  else return acc;
}

template <NormOrder Order>
using NormOrderTag = std::integral_constant<NormOrder, Order>;

// f(NormOrderTag<order>{}) for the runtime order: f is instantiated for every
// order, so each inner loop knows its term at compile time.
template <class F>
auto with_norm_order(NormOrder order, const F& f) {
  switch (order) {
    case NormOrder::one: return f(NormOrderTag<NormOrder::one>{});
    case NormOrder::two: return f(NormOrderTag<NormOrder::two>{});
    case NormOrder::inf: return f(NormOrderTag<NormOrder::inf>{});
    case NormOrder::p: break;
  }
  return f(NormOrderTag<NormOrder::p>{});
}

// torch.nn.utils.clip_grad_norm_'s coefficient min(1, max_norm / (total + 1e-6)),
// rounded as torch rounds it for grads of compute type C: total and both constants
// in C, and the quotient as torch's Tensor.__rtruediv__ forms it, the reciprocal of
// the denominator times max_norm. A NaN total gives a NaN coefficient (clamp keeps
// NaN), an infinite one 0.
template <class C>
NNFAST_HD C clip_coefficient(double total, double max_norm) {
  const C denominator = C(total) + C(1e-6);
  const C coefficient = (C(1) / denominator) * C(max_norm);
  return coefficient > C(1) ? C(1) : coefficient;
}

// Clipping's second pass, in place: out = factor * x (operands out, x; out may be
// x itself), the product rounded once to the storage type.
template <class S>
struct ScaleOp {
  static constexpr unsigned kRead = 2u, kWrite = 1u;
  S factor;
  template <class V>
  NNFAST_HD void operator()(V* v) const {
    v[0] = V(factor) * v[1];
  }
};

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
