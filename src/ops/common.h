// Shared building blocks of the per-element math in ops/.
//
// Every formula in ops/ is written once, as an inline template over the value
// type V: a scalar (float, double) in the CPU tails and in CUDA kernels, or a
// vector type of simd/vec.h in the CPU SIMD loops. Besides + - * / and
// comparisons, the formulas use only the functions below; vector types provide
// the same names (found by argument-dependent lookup). Data-dependent choices
// are written select(condition, a, b), never with ?: or if, so they vectorize.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd/isa.h"

#if defined(__CUDACC__)
#define NNFAST_HD __host__ __device__ __forceinline__
#else
#define NNFAST_HD inline
#endif

namespace nnfast::ops {
NNFAST_ISA_NAMESPACE_BEGIN

template <class V>
NNFAST_HD V select(bool condition, V a, V b) { return condition ? a : b; }

// a * b + c, rounded once where the instruction set has fused multiply-add
// (AVX2, AVX-512, CUDA), else twice. Used only inside the polynomial
// approximations below: their error bounds hold either way; the optimizer and
// loss formulas keep PyTorch's separate roundings.
// (The compiler builtins, not std::fma/std::sqrt: those are inline wrappers outside
// the ISA namespace, which an unoptimized build could emit once per ISA and link
// across code paths.)
NNFAST_HD float fma_(float a, float b, float c) {
#if defined(__CUDACC__)
  return fmaf(a, b, c);
#elif defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

NNFAST_HD double fma_(double a, double b, double c) {
#if defined(__CUDACC__)
  return fma(a, b, c);
#elif defined(__FMA__)
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}

#if defined(__GNUC__) && !defined(__CUDACC__)
NNFAST_HD float sqrt_(float x) { return __builtin_sqrtf(x); }
NNFAST_HD double sqrt_(double x) { return __builtin_sqrt(x); }
#else
NNFAST_HD float sqrt_(float x) { return std::sqrt(x); }
NNFAST_HD double sqrt_(double x) { return std::sqrt(x); }
#endif
NNFAST_HD double log_(double x) { return std::log(x); }

// Primitives of exp_float below, in plain arithmetic (no libm call, which would
// cost more than the whole polynomial):
// round to nearest even for |x| < 2^22: adding and removing 1.5 * 2^23 leaves no
// fraction bits (default rounding mode);
NNFAST_HD float round_even(float x) {
  const float shift = 12582912.0f;  // 1.5 * 2^23
  return (x + shift) - shift;
}
// 2^n for an integer-valued n in [-126, 127], built from its bits;
NNFAST_HD float exp2_int(float n) {
  // (NaN, which reaches here only to be replaced by a select, must not reach the cast.)
  const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.0f) + 127) * (1 << 23);
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}
// The same primitives for double: round to nearest even for |x| < 2^51 (1.5 * 2^52
// leaves no fraction bits), and 2^n for an integer-valued n in [-1022, 1023].
NNFAST_HD double round_even(double x) {
  const double shift = 6755399441055744.0;  // 1.5 * 2^52
  return (x + shift) - shift;
}
NNFAST_HD double exp2_int(double n) {
  const int64_t bits = (static_cast<int64_t>(n == n ? n : 0.0) + 1023) * (int64_t{1} << 52);
  double result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
}

// x = m 2^e with m in [1, 2), for positive finite x (subnormals included; other
// inputs give unspecified values that log_float replaces).
NNFAST_HD float split_exponent(float x, float& e) {
  const bool subnormal = x < 1.17549435e-38f;
  const float scaled = subnormal ? x * 8388608.0f : x;  // 2^23: subnormals become normal
  int32_t bits;
  std::memcpy(&bits, &scaled, sizeof bits);
  e = static_cast<float>(((bits >> 23) & 255) - 127 - (subnormal ? 23 : 0));
  bits = (bits & 0x007fffff) | 0x3f800000;
  float m;
  std::memcpy(&m, &bits, sizeof m);
  return m;
}
// y * 2^n for an integer-valued n in [-150, 128], rounded once: 2^n is applied in
// two exact halves so that results down to the subnormal range round only at the
// last multiply.
template <class V>
NNFAST_HD V scale_by_exp2(V y, V n) {
  const V half = round_even(n * V(0.5));
  return (y * exp2_int(half)) * exp2_int(n - half);
}

// e^x for x within [-103.972078, 88.7228317] (no limits applied): the core of
// exp_float and exp_nonpositive_float (contract below).
template <class V>
NNFAST_HD V exp_float_in_range(V x) {
  const V n = round_even(x * V(1.44269504088896341f));
  const V r = fma_(n, V(2.12194440e-4f), fma_(n, V(-0.693359375f), x));
  V p(1.98992755e-4f);
  p = fma_(p, r, V(1.39336439e-3f));
  p = fma_(p, r, V(8.33329838e-3f));
  p = fma_(p, r, V(4.16664667e-2f));
  p = fma_(p, r, V(1.66666672e-1f));
  p = fma_(p, r, V(0.5f));
  return scale_by_exp2(V(1.0f) + fma_(r * r, p, r), n);
}

// e^x in float arithmetic, for float and float vectors alike (so a vector lane
// and a scalar tail give the same bits).
// Max error 1 ULP over all float inputs (0.94 measured, tests/test_activations.py
// sweeps it); +inf above 88.7228317, 0 below -103.972078 (subnormal results in
// between), NaN for NaN.
// Method: e^x = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 in two parts (Cody &
// Waite), e^r = 1 + r + r^2 P(r) on |r| <= ln(2)/2 with P of degree 5 from a
// Chebyshev fit of (e^r - 1 - r) / r^2; then scale_by_exp2 (exp_float_in_range).
template <class V>
NNFAST_HD V exp_float(V x) {
  const V overflow(88.7228317f);
  const V underflow(-103.972078f);
  const V xc = select(x > overflow, overflow, select(x < underflow, underflow, x));
  const V scaled = exp_float_in_range(xc);
  const V limited = select(x > overflow, V(INFINITY), select(x < underflow, V(0.0f), scaled));
  return select(x != x, x, limited);
}

// e^x for x <= 0 (or NaN, which propagates through the arithmetic): the same
// bits as exp_float there, without the overflow and NaN selects (softmax's
// x - max and sigmoid's -|x| are never positive).
template <class V>
NNFAST_HD V exp_nonpositive_float(V x) {
  const V underflow(-103.972078f);
  const auto below = x < underflow;
  return select(below, V(0.0f), exp_float_in_range(select(below, underflow, x)));
}

// e^x in double arithmetic, for double and double vectors alike.
// Max error 2 ULP over all double inputs (sigmoid built on it measures 2.6); +inf above
// 709.782712893384, 0 below -745.1332191019412, NaN for NaN.
// Method: as exp_float, with expm1_reduced_double for e^r - 1.
// e^r - 1 for |r| <= 0.7: r + r^2 P(r), P the Taylor polynomial of
// (e^r - 1 - r) / r^2 through r^15 (truncation < 2^-58 at |r| = 0.7; exp_double
// needs only |r| <= ln(2)/2, tanh_double the wider range to avoid cancellation).
template <class V>
NNFAST_HD V expm1_taylor_double(V r) {
  V p(2.81145725434552059811e-15);  // 1/17!
  p = fma_(p, r, V(4.77947733238738525345e-14));
  p = fma_(p, r, V(7.64716373181981640551e-13));
  p = fma_(p, r, V(1.14707455977297245073e-11));
  p = fma_(p, r, V(1.60590438368216133409e-10));
  p = fma_(p, r, V(2.08767569878681001866e-09));
  p = fma_(p, r, V(2.50521083854417202239e-08));
  p = fma_(p, r, V(2.75573192239858882758e-07));
  p = fma_(p, r, V(2.75573192239858925110e-06));
  p = fma_(p, r, V(2.48015873015873015658e-05));
  p = fma_(p, r, V(1.98412698412698412526e-04));
  p = fma_(p, r, V(1.38888888888888894189e-03));
  p = fma_(p, r, V(8.33333333333333321769e-03));
  p = fma_(p, r, V(4.16666666666666643537e-02));
  p = fma_(p, r, V(1.66666666666666657415e-01));
  p = fma_(p, r, V(5.00000000000000000000e-01));
  return fma_(r * r, p, r);
}

// n = round(x / ln 2) and r = x - n ln 2 (ln 2 split as in fdlibm: n ln2_hi is exact).
template <class V>
NNFAST_HD V reduce_ln2_double(V x, V& n) {
  n = round_even(x * V(1.4426950408889634));
  return fma_(n, V(-1.90821492927058770002e-10), fma_(n, V(-6.93147180369123816490e-01), x));
}

template <class V>
NNFAST_HD V exp_double(V x) {
  const V overflow(709.782712893384);
  const V underflow(-745.1332191019412);
  const V xc = select(x > overflow, overflow, select(x < underflow, underflow, x));
  V n;
  const V r = reduce_ln2_double(xc, n);
  const V scaled = scale_by_exp2(V(1.0) + expm1_taylor_double(r), n);
  const V limited = select(x > overflow, V(HUGE_VAL), select(x < underflow, V(0.0), scaled));
  return select(x != x, x, limited);
}

// tanh in double arithmetic, for double and double vectors alike.
// Max error 3 ULP over all double inputs (2.5 measured against extended precision,
// tests/test_activations.py); exactly +-1 beyond |x| = 22, sign of zero kept, NaN for NaN.
// Method: tanh|x| = -m / (m + 2) with m = e^{-2|x|} - 1 in (-1, 0]: directly from
// the Taylor form while -2|x| >= -0.7, else with -2|x| = n ln 2 + r,
// m = 2^n (e^r - 1) + (2^n - 1) (n <= -1, so m <= -0.5 and nothing cancels).
template <class V>
NNFAST_HD V tanh_double(V x) {
  const V a = select(x < V(0.0), -x, x);
  const V y = V(-2.0) * select(a > V(22.0), V(22.0), a);
  V n;
  const V reduced = reduce_ln2_double(y, n);
  const auto direct = y >= V(-0.7);  // no reduction: 2^n e^r - 1 would cancel near n = -1
  n = select(direct, V(0.0), n);
  const V r = select(direct, y, reduced);
  const V scale = exp2_int(n);
  const V m = fma_(scale, expm1_taylor_double(r), scale - V(1.0));
  const V magnitude = select(a > V(22.0), V(1.0), -m / (m + V(2.0)));
  const V odd = select(x < V(0.0), -magnitude, magnitude);
  return select((x == V(0.0)) | (x != x), x, odd);
}

// tanh in float arithmetic, for float and float vectors alike.
// Max error 2 ULP over all float inputs (1.50 measured; tests sweep it); exactly
// +-1 beyond |x| ~ 9.01, sign of zero kept, NaN for NaN.
// Method: |x| < 0.625: x + x^3 Q(x^2), Q of degree 4 from a Chebyshev fit of
// (tanh(x) - x) / x^3 (no cancellation near 0); otherwise (1 - e) / (1 + e) with
// e = e^{-2|x|} <= 0.29 from exp_nonpositive_float (1 - e >= 0.71: no cancellation;
// e = 0 gives exactly 1). Odd symmetry restores the sign.
template <class V>
NNFAST_HD V tanh_float(V x) {
  const V negative = -x;
  const V a = select(x < V(0.0f), negative, x);
  const V z = a * a;
  V q(-6.10494753e-3f);
  q = fma_(q, z, V(2.10036412e-2f));
  q = fma_(q, z, V(-5.38524985e-2f));
  q = fma_(q, z, V(1.33327827e-1f));
  q = fma_(q, z, V(-3.33333284e-1f));
  const V small = fma_(a, z * q, a);
  const V e = exp_nonpositive_float(V(-2.0f) * a);  // e^{-2|x|} in (0, 1]
  const V large = (V(1.0f) - e) / (V(1.0f) + e);
  const V magnitude = select(a < V(0.625f), small, large);
  const V odd = select(x < V(0.0f), -magnitude, magnitude);
  return select(x == V(0.0f), x, odd);  // -0 + 0 would round to +0
}

// ln x in float arithmetic, for float and float vectors alike.
// Max error 2 ULP over all float inputs (1.35 measured); ln 0 = -inf, ln inf =
// inf, NaN for x < 0 and for NaN.
// Method: x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln x = e ln 2 + ln(1 + f),
// f = m - 1, ln(1 + f) = f - f^2/2 + f^3 P(f) with P of degree 7 from a
// Chebyshev fit of (ln(1 + f) - f + f^2/2) / f^3; ln 2 in two parts (Cody & Waite).
template <class V>
NNFAST_HD V log_float(V x) {
  V e;
  V m = split_exponent(x, e);
  const auto above = m > V(1.41421356f);
  m = select(above, m * V(0.5f), m);
  e = select(above, e + V(1.0f), e);
  const V f = m - V(1.0f);
  const V f2 = f * f;
  V p(-8.10155794e-2f);
  p = fma_(p, f, V(1.27123073e-1f));
  p = fma_(p, f, V(-1.29722387e-1f));
  p = fma_(p, f, V(1.42021745e-1f));
  p = fma_(p, f, V(-1.66422471e-1f));
  p = fma_(p, f, V(2.00014681e-1f));
  p = fma_(p, f, V(-2.50002980e-1f));
  p = fma_(p, f, V(3.33333284e-1f));
  const V r = fma_(f2 * f, p, fma_(V(-0.5f), f2, f));
  const V y = fma_(e, V(0.693359375f), fma_(e, V(-2.12194440e-4f), r));
  const V limits = select(x == V(INFINITY), x, select(x == V(0.0f), V(-INFINITY), y));
  return select((x < V(0.0f)) | (x != x), V(NAN), limits);
}

NNFAST_HD float exp_(float x) { return exp_float(x); }
NNFAST_HD float exp_nonpositive_(float x) { return exp_nonpositive_float(x); }
NNFAST_HD double exp_nonpositive_(double x) { return exp_double(x); }
NNFAST_HD float log_(float x) { return log_float(x); }
NNFAST_HD double exp_(double x) { return exp_double(x); }
NNFAST_HD float tanh_(float x) { return tanh_float(x); }
NNFAST_HD double tanh_(double x) { return tanh_double(x); }

// sign(x) as np.sign: -1, 0 (keeping the sign of a zero) or +1; NaN stays NaN.
template <class V>
NNFAST_HD V sign_(V x) {
  return select(x > V(0), V(1), select(x < V(0), V(-1), x));
}

// max(a, b) for ordered inputs: b where b > a, else a, so a NaN b is passed over
// (and a NaN a kept). Half the work of max_nan_: the softmax shift uses it, where
// a NaN logit reaches the result through its own exp and the row's sum anyway.
template <class V>
NNFAST_HD V max_(V a, V b) {
  return select(b > a, b, a);
}

// max(a, b) that propagates NaN from either side (np.maximum, torch.maximum).
template <class V>
NNFAST_HD V max_nan_(V a, V b) {
  return select((a != a) | (a > b), a, b);
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
