// Per-element math of the activations and their gradients, written once.
//
// Accuracy (float32, against float64, over all finite inputs; enforced by
// tests/test_activations.py):
//   sigmoid  <= 4 ULP   exp_float (<= 1 ULP) with one add, one divide and one
//                       multiply; saturates to exactly 1 above ~17 and to tiny
//                       positive / 0 below ~-88, never NaN for non-NaN input.
//   tanh     <= 2 ULP   tanh_float (ops/common.h).
// float64: exp_double and tanh_double (ops/common.h), at most 3 ULP for both.
//   relu, leaky_relu and all backward formulas are exact up to the one or two
//   roundings of the products they contain.
#pragma once

#include "ops/common.h"

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

// sigmoid(x) = 1 / (1 + e^-x). For x < 0 the equal form e^x / (1 + e^x) is used:
// 1 / (1 + e^-x) would overflow e^-x to inf and lose the subnormal results.
template <class V>
NNFAST_HD V sigmoid_forward(V x) {
  const V e = exp_nonpositive_(select(x < V(0), x, -x));  // e^-|x|, in (0, 1]
  const V r = V(1) / (V(1) + e);
  return select(x < V(0), e * r, r);
}

// d/dx sigmoid = y (1 - y), from the forward output y; PyTorch's order: dy (1 - y) y.
template <class V>
NNFAST_HD V sigmoid_backward(V y, V dy) {
  return dy * (V(1) - y) * y;
}

template <class V>
NNFAST_HD V tanh_forward(V x) {
  return tanh_(x);
}

// d/dx tanh = 1 - y^2, from the forward output y.
template <class V>
NNFAST_HD V tanh_backward(V y, V dy) {
  return dy * (V(1) - y * y);
}

// relu(x) = max(x, 0), as torch.relu (clamp_min): "x < 0 ? 0 : x", so NaN
// propagates and -0 stays -0.
template <class V>
NNFAST_HD V relu_forward(V x) {
  return select(x < V(0), V(0), x);
}

// Gradient 0 at x <= 0 (PyTorch's choice at the kink x = 0); NaN input passes dy.
template <class V>
NNFAST_HD V relu_backward(V x, V dy) {
  return select(x <= V(0), V(0), dy);
}

// leaky_relu(x) = x for x > 0, else alpha x (PyTorch's definition; for alpha <= 1
// it equals max(alpha x, x)).
template <class V>
NNFAST_HD V leaky_relu_forward(V x, V alpha) {
  return select(x > V(0), x, alpha * x);
}

// Gradient alpha at x <= 0, including the kink x = 0, as PyTorch.
template <class V>
NNFAST_HD V leaky_relu_backward(V x, V dy, V alpha) {
  return select(x > V(0), dy, alpha * dy);
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
