// Shared building blocks of the per-element math in ops/.
//
// Every formula in ops/ is written once, as an inline template over the value
// type V, and is called from the CPU drivers (src/cpu/) and, later, from SIMD
// vector types and CUDA kernels. The helpers below are the only operations the
// formulas use besides + - * / and comparisons; a vector type supplies the same
// names.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define NNFAST_HD __host__ __device__ __forceinline__
#else
#define NNFAST_HD inline
#endif

namespace nnfast::ops {

template <class V>
NNFAST_HD V sqrt_(V x) { return std::sqrt(x); }

template <class V>
NNFAST_HD V exp_(V x) { return std::exp(x); }

template <class V>
NNFAST_HD V log_(V x) { return std::log(x); }

template <class V>
NNFAST_HD V tanh_(V x) { return std::tanh(x); }

// sign(x) as np.sign: -1, 0 (keeping the sign of a zero) or +1; NaN stays NaN.
template <class V>
NNFAST_HD V sign_(V x) {
  return x > V(0) ? V(1) : (x < V(0) ? V(-1) : x);
}

// max(a, b) that propagates NaN from either side (np.maximum, torch.maximum).
template <class V>
NNFAST_HD V max_nan_(V a, V b) {
  return (a != a || a > b) ? a : b;
}

}  // namespace nnfast::ops
