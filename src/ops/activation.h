// Per-element math of the activations and their gradients, written once.
//
// Accuracy (float32, against float64, over all finite inputs; enforced by
// tests/test_activations.py):
//   sigmoid  <= 4 ULP   built on exp (glibc expf: <= 1 ULP) with one add and one
//                       divide; saturates to exactly 1 above ~17 and to tiny
//                       positive / 0 below ~-88, never NaN for non-NaN input.
//   tanh     <= 4 ULP   the C library's tanh (glibc tanhf: <= 2 ULP).
//   relu, leaky_relu and all backward formulas are exact up to the one or two
//   roundings of the products they contain.
#pragma once

#include "ops/common.h"

namespace nnfast::ops {

// sigmoid(x) = 1 / (1 + e^-x). For x < 0 the equal form e^x / (1 + e^x) is used:
// 1 / (1 + e^-x) would overflow e^-x to inf and lose the subnormal results.
template <class V>
NNFAST_HD V sigmoid_forward(V x) {
  const V e = exp_(x < V(0) ? x : -x);  // e^-|x|, in (0, 1]
  const V r = V(1) / (V(1) + e);
  const V negative_branch = e * r;  // both arms computed: a branch-free select vectorizes
  return x < V(0) ? negative_branch : r;
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
  return x < V(0) ? V(0) : x;
}

// Gradient 0 at x <= 0 (PyTorch's choice at the kink x = 0); NaN input passes dy.
template <class V>
NNFAST_HD V relu_backward(V x, V dy) {
  return x <= V(0) ? V(0) : dy;
}

// leaky_relu(x) = x for x > 0, else alpha x (PyTorch's definition; for alpha <= 1
// it equals max(alpha x, x)).
template <class V>
NNFAST_HD V leaky_relu_forward(V x, V alpha) {
  const V scaled = alpha * x;
  return x > V(0) ? x : scaled;
}

// Gradient alpha at x <= 0, including the kink x = 0, as PyTorch.
template <class V>
NNFAST_HD V leaky_relu_backward(V x, V dy, V alpha) {
  const V scaled = alpha * dy;
  return x > V(0) ? dy : scaled;
}

}  // namespace nnfast::ops
