// Vector types for the per-element formulas of src/ops/.
//
// Vec<T> is the widest vector of T the translation unit was compiled for
// (AVX-512, AVX2 or SSE2), or T itself where there is none. Each type offers
// what the formulas use: broadcast construction V(s), + - * / and unary -,
// comparisons giving a mask, mask |, and the free functions load,
// store, select, sqrt_, fma_, exp_, log_, tanh_ (the polynomial forms of
// ops/common.h), and the primitives those use. Comparisons are
// IEEE ordered (false with NaN) except !=, which is true with NaN, as for scalars.
#pragma once

#include <cstdint>

#include "ops/common.h"
#include "simd/isa.h"

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace nnfast::simd {
NNFAST_ISA_NAMESPACE_BEGIN

template <class T>
struct Lanes {
  using type = T;  // no vector type: the scalar is its own one-lane vector
};

template <class T>
using Vec = typename Lanes<T>::type;

template <class V>
constexpr int lane_count() {
  if constexpr (sizeof(V) == sizeof(float) || sizeof(V) == sizeof(double)) return 1;
  else return V::lanes;
}

#define NNFAST_BINARY_OPS(V, ADD, SUB, MUL, DIV)                   \
  inline V operator+(V a, V b) { return V(ADD(a.v, b.v)); }        \
  inline V operator-(V a, V b) { return V(SUB(a.v, b.v)); }        \
  inline V operator*(V a, V b) { return V(MUL(a.v, b.v)); }        \
  inline V operator/(V a, V b) { return V(DIV(a.v, b.v)); }

#if defined(__AVX512F__)

// ------------------------------------------------------------------ AVX-512
struct Mask16 { __mmask16 m; };
struct Mask8 { __mmask8 m; };
inline Mask16 operator|(Mask16 a, Mask16 b) { return {static_cast<__mmask16>(a.m | b.m)}; }
inline Mask8 operator|(Mask8 a, Mask8 b) { return {static_cast<__mmask8>(a.m | b.m)}; }

struct F32x16 {
  using scalar = float;
  using mask = Mask16;
  static constexpr int lanes = 16;
  __m512 v;
  F32x16() = default;
  explicit F32x16(__m512 x) : v(x) {}
  F32x16(float s) : v(_mm512_set1_ps(s)) {}
};
struct F64x8 {
  using scalar = double;
  using mask = Mask8;
  static constexpr int lanes = 8;
  __m512d v;
  F64x8() = default;
  explicit F64x8(__m512d x) : v(x) {}
  F64x8(double s) : v(_mm512_set1_pd(s)) {}
};
template <> struct Lanes<float> { using type = F32x16; };
template <> struct Lanes<double> { using type = F64x8; };

inline F32x16 load(const float* p) { return F32x16(_mm512_loadu_ps(p)); }
inline void store(float* p, F32x16 x) { _mm512_storeu_ps(p, x.v); }
inline F64x8 load(const double* p) { return F64x8(_mm512_loadu_pd(p)); }
inline void store(double* p, F64x8 x) { _mm512_storeu_pd(p, x.v); }

NNFAST_BINARY_OPS(F32x16, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps)
NNFAST_BINARY_OPS(F64x8, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd, _mm512_div_pd)

// Negation flips the sign bit (0 - x would turn -0 into +0).
inline F32x16 operator-(F32x16 a) {
  return F32x16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN))));
}
inline F64x8 operator-(F64x8 a) {
  return F64x8(_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN))));
}

#define NNFAST_AVX512_CMP(V, M, CMP)                                              \
  inline M operator<(V a, V b) { return {CMP(a.v, b.v, _CMP_LT_OQ)}; }            \
  inline M operator<=(V a, V b) { return {CMP(a.v, b.v, _CMP_LE_OQ)}; }           \
  inline M operator>(V a, V b) { return {CMP(a.v, b.v, _CMP_GT_OQ)}; }            \
  inline M operator>=(V a, V b) { return {CMP(a.v, b.v, _CMP_GE_OQ)}; }           \
  inline M operator==(V a, V b) { return {CMP(a.v, b.v, _CMP_EQ_OQ)}; }           \
  inline M operator!=(V a, V b) { return {CMP(a.v, b.v, _CMP_NEQ_UQ)}; }
NNFAST_AVX512_CMP(F32x16, Mask16, _mm512_cmp_ps_mask)
NNFAST_AVX512_CMP(F64x8, Mask8, _mm512_cmp_pd_mask)
#undef NNFAST_AVX512_CMP

inline F32x16 select(Mask16 m, F32x16 a, F32x16 b) { return F32x16(_mm512_mask_blend_ps(m.m, b.v, a.v)); }
inline F64x8 select(Mask8 m, F64x8 a, F64x8 b) { return F64x8(_mm512_mask_blend_pd(m.m, b.v, a.v)); }
inline F32x16 sqrt_(F32x16 a) { return F32x16(_mm512_sqrt_ps(a.v)); }
inline F32x16 fma_(F32x16 a, F32x16 b, F32x16 c) { return F32x16(_mm512_fmadd_ps(a.v, b.v, c.v)); }
inline F64x8 sqrt_(F64x8 a) { return F64x8(_mm512_sqrt_pd(a.v)); }

// Integer-valued float -> 2^n (n in [-126, 127]) and round-to-nearest-even.
inline F32x16 round_even(F32x16 a) {
  return F32x16(_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// The low and high halves of a float vector, widened to double.
inline F64x8 widen_low(F32x16 a) { return F64x8(_mm512_cvtps_pd(_mm512_castps512_ps256(a.v))); }
inline F64x8 widen_high(F32x16 a) {
  return F64x8(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1))));
}
inline F32x16 exp2_int(F32x16 n) {
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23);
  return F32x16(_mm512_castsi512_ps(bits));
}
inline F32x16 split_exponent(F32x16 x, F32x16& e) {
  e = F32x16(_mm512_getexp_ps(x.v));  // floor(log2 x), subnormals included
  return F32x16(_mm512_getmant_ps(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero));
}
// y * 2^n in one instruction, rounded once: the same bits as the generic two-step
// scale_by_exp2 of ops/common.h (both exact except for the one final rounding).
inline F32x16 scale_by_exp2(F32x16 y, F32x16 n) { return F32x16(_mm512_scalef_ps(y.v, n.v)); }
inline F64x8 fma_(F64x8 a, F64x8 b, F64x8 c) { return F64x8(_mm512_fmadd_pd(a.v, b.v, c.v)); }
inline F64x8 round_even(F64x8 a) {
  return F64x8(_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline F64x8 scale_by_exp2(F64x8 y, F64x8 n) { return F64x8(_mm512_scalef_pd(y.v, n.v)); }
inline F64x8 exp2_int(F64x8 n) { return scale_by_exp2(F64x8(1.0), n); }

#elif defined(__AVX2__)

// ------------------------------------------------------------------ AVX2
struct MaskPs { __m256 m; };
struct MaskPd { __m256d m; };
inline MaskPs operator|(MaskPs a, MaskPs b) { return {_mm256_or_ps(a.m, b.m)}; }
inline MaskPd operator|(MaskPd a, MaskPd b) { return {_mm256_or_pd(a.m, b.m)}; }

struct F32x8 {
  using scalar = float;
  using mask = MaskPs;
  static constexpr int lanes = 8;
  __m256 v;
  F32x8() = default;
  explicit F32x8(__m256 x) : v(x) {}
  F32x8(float s) : v(_mm256_set1_ps(s)) {}
};
struct F64x4 {
  using scalar = double;
  using mask = MaskPd;
  static constexpr int lanes = 4;
  __m256d v;
  F64x4() = default;
  explicit F64x4(__m256d x) : v(x) {}
  F64x4(double s) : v(_mm256_set1_pd(s)) {}
};
template <> struct Lanes<float> { using type = F32x8; };
template <> struct Lanes<double> { using type = F64x4; };

inline F32x8 load(const float* p) { return F32x8(_mm256_loadu_ps(p)); }
inline void store(float* p, F32x8 x) { _mm256_storeu_ps(p, x.v); }
inline F64x4 load(const double* p) { return F64x4(_mm256_loadu_pd(p)); }
inline void store(double* p, F64x4 x) { _mm256_storeu_pd(p, x.v); }

NNFAST_BINARY_OPS(F32x8, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps)
NNFAST_BINARY_OPS(F64x4, _mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd, _mm256_div_pd)
inline F32x8 operator-(F32x8 a) { return F32x8(_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))); }
inline F64x4 operator-(F64x4 a) { return F64x4(_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))); }

#define NNFAST_AVX_CMP(V, M, CMP)                                        \
  inline M operator<(V a, V b) { return {CMP(a.v, b.v, _CMP_LT_OQ)}; }   \
  inline M operator<=(V a, V b) { return {CMP(a.v, b.v, _CMP_LE_OQ)}; }  \
  inline M operator>(V a, V b) { return {CMP(a.v, b.v, _CMP_GT_OQ)}; }   \
  inline M operator>=(V a, V b) { return {CMP(a.v, b.v, _CMP_GE_OQ)}; }  \
  inline M operator==(V a, V b) { return {CMP(a.v, b.v, _CMP_EQ_OQ)}; }  \
  inline M operator!=(V a, V b) { return {CMP(a.v, b.v, _CMP_NEQ_UQ)}; }
NNFAST_AVX_CMP(F32x8, MaskPs, _mm256_cmp_ps)
NNFAST_AVX_CMP(F64x4, MaskPd, _mm256_cmp_pd)
#undef NNFAST_AVX_CMP

inline F32x8 select(MaskPs m, F32x8 a, F32x8 b) { return F32x8(_mm256_blendv_ps(b.v, a.v, m.m)); }
inline F64x4 select(MaskPd m, F64x4 a, F64x4 b) { return F64x4(_mm256_blendv_pd(b.v, a.v, m.m)); }
inline F32x8 sqrt_(F32x8 a) { return F32x8(_mm256_sqrt_ps(a.v)); }
inline F32x8 fma_(F32x8 a, F32x8 b, F32x8 c) { return F32x8(_mm256_fmadd_ps(a.v, b.v, c.v)); }
inline F64x4 sqrt_(F64x4 a) { return F64x4(_mm256_sqrt_pd(a.v)); }

inline F32x8 round_even(F32x8 a) {
  return F32x8(_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline F64x4 widen_low(F32x8 a) { return F64x4(_mm256_cvtps_pd(_mm256_castps256_ps128(a.v))); }
inline F64x4 widen_high(F32x8 a) { return F64x4(_mm256_cvtps_pd(_mm256_extractf128_ps(a.v, 1))); }
inline F32x8 split_exponent(F32x8 x, F32x8& e) {
  const __m256 subnormal = _mm256_cmp_ps(x.v, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
  const __m256 scaled = _mm256_blendv_ps(x.v, _mm256_mul_ps(x.v, _mm256_set1_ps(8388608.0f)), subnormal);
  const __m256i bits = _mm256_castps_si256(scaled);
  __m256i exponent = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(255)),
                                      _mm256_set1_epi32(127));
  exponent = _mm256_sub_epi32(exponent, _mm256_and_si256(_mm256_castps_si256(subnormal), _mm256_set1_epi32(23)));
  e = F32x8(_mm256_cvtepi32_ps(exponent));
  return F32x8(_mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f800000))));
}
inline F64x4 fma_(F64x4 a, F64x4 b, F64x4 c) { return F64x4(_mm256_fmadd_pd(a.v, b.v, c.v)); }
inline F64x4 round_even(F64x4 a) {
  return F64x4(_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// 2^n for integer-valued n in [-1022, 1023]: n + 1.5 * 2^52 holds n in its low bits.
inline F64x4 exp2_int(F64x4 n) {
  const __m256d shift = _mm256_set1_pd(6755399441055744.0);
  const __m256i k = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(n.v, shift)), _mm256_castpd_si256(shift));
  return F64x4(_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52)));
}
inline F32x8 exp2_int(F32x8 n) {
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
  return F32x8(_mm256_castsi256_ps(bits));
}

#elif defined(__SSE2__)

// ------------------------------------------------------------------ SSE2
struct MaskPs { __m128 m; };
struct MaskPd { __m128d m; };
inline MaskPs operator|(MaskPs a, MaskPs b) { return {_mm_or_ps(a.m, b.m)}; }
inline MaskPd operator|(MaskPd a, MaskPd b) { return {_mm_or_pd(a.m, b.m)}; }

struct F32x4 {
  using scalar = float;
  using mask = MaskPs;
  static constexpr int lanes = 4;
  __m128 v;
  F32x4() = default;
  explicit F32x4(__m128 x) : v(x) {}
  F32x4(float s) : v(_mm_set1_ps(s)) {}
};
struct F64x2 {
  using scalar = double;
  using mask = MaskPd;
  static constexpr int lanes = 2;
  __m128d v;
  F64x2() = default;
  explicit F64x2(__m128d x) : v(x) {}
  F64x2(double s) : v(_mm_set1_pd(s)) {}
};
template <> struct Lanes<float> { using type = F32x4; };
template <> struct Lanes<double> { using type = F64x2; };

inline F32x4 load(const float* p) { return F32x4(_mm_loadu_ps(p)); }
inline void store(float* p, F32x4 x) { _mm_storeu_ps(p, x.v); }
inline F64x2 load(const double* p) { return F64x2(_mm_loadu_pd(p)); }
inline void store(double* p, F64x2 x) { _mm_storeu_pd(p, x.v); }

NNFAST_BINARY_OPS(F32x4, _mm_add_ps, _mm_sub_ps, _mm_mul_ps, _mm_div_ps)
NNFAST_BINARY_OPS(F64x2, _mm_add_pd, _mm_sub_pd, _mm_mul_pd, _mm_div_pd)
inline F32x4 operator-(F32x4 a) { return F32x4(_mm_xor_ps(a.v, _mm_set1_ps(-0.0f))); }
inline F64x2 operator-(F64x2 a) { return F64x2(_mm_xor_pd(a.v, _mm_set1_pd(-0.0))); }

#define NNFAST_SSE_CMP(V, M, SFX)                                                   \
  inline M operator<(V a, V b) { return {_mm_cmplt_##SFX(a.v, b.v)}; }               \
  inline M operator<=(V a, V b) { return {_mm_cmple_##SFX(a.v, b.v)}; }              \
  inline M operator>(V a, V b) { return {_mm_cmpgt_##SFX(a.v, b.v)}; }               \
  inline M operator>=(V a, V b) { return {_mm_cmpge_##SFX(a.v, b.v)}; }              \
  inline M operator==(V a, V b) { return {_mm_cmpeq_##SFX(a.v, b.v)}; }              \
  inline M operator!=(V a, V b) { return {_mm_cmpneq_##SFX(a.v, b.v)}; }
NNFAST_SSE_CMP(F32x4, MaskPs, ps)
NNFAST_SSE_CMP(F64x2, MaskPd, pd)
#undef NNFAST_SSE_CMP

inline F32x4 select(MaskPs m, F32x4 a, F32x4 b) {
  return F32x4(_mm_or_ps(_mm_and_ps(m.m, a.v), _mm_andnot_ps(m.m, b.v)));
}
inline F64x2 select(MaskPd m, F64x2 a, F64x2 b) {
  return F64x2(_mm_or_pd(_mm_and_pd(m.m, a.v), _mm_andnot_pd(m.m, b.v)));
}
inline F32x4 sqrt_(F32x4 a) { return F32x4(_mm_sqrt_ps(a.v)); }
inline F32x4 fma_(F32x4 a, F32x4 b, F32x4 c) { return a * b + c; }  // SSE2 has no fused form
inline F64x2 sqrt_(F64x2 a) { return F64x2(_mm_sqrt_pd(a.v)); }

// cvtps_epi32 rounds to nearest even under the default MXCSR; the argument of
// round_even is always within int32 range here (|x| < 2^31).
inline F32x4 round_even(F32x4 a) { return F32x4(_mm_cvtepi32_ps(_mm_cvtps_epi32(a.v))); }
inline F64x2 widen_low(F32x4 a) { return F64x2(_mm_cvtps_pd(a.v)); }
inline F64x2 widen_high(F32x4 a) { return F64x2(_mm_cvtps_pd(_mm_movehl_ps(a.v, a.v))); }
inline F32x4 split_exponent(F32x4 x, F32x4& e) {
  const __m128 subnormal = _mm_cmplt_ps(x.v, _mm_set1_ps(1.17549435e-38f));
  const __m128 scaled = _mm_or_ps(_mm_and_ps(subnormal, _mm_mul_ps(x.v, _mm_set1_ps(8388608.0f))),
                                  _mm_andnot_ps(subnormal, x.v));
  const __m128i bits = _mm_castps_si128(scaled);
  __m128i exponent = _mm_sub_epi32(_mm_and_si128(_mm_srli_epi32(bits, 23), _mm_set1_epi32(255)),
                                   _mm_set1_epi32(127));
  exponent = _mm_sub_epi32(exponent, _mm_and_si128(_mm_castps_si128(subnormal), _mm_set1_epi32(23)));
  e = F32x4(_mm_cvtepi32_ps(exponent));
  return F32x4(_mm_castsi128_ps(_mm_or_si128(_mm_and_si128(bits, _mm_set1_epi32(0x007fffff)),
                                             _mm_set1_epi32(0x3f800000))));
}
inline F64x2 fma_(F64x2 a, F64x2 b, F64x2 c) { return a * b + c; }  // SSE2 has no fused form
inline F64x2 round_even(F64x2 a) {
  const F64x2 shift(6755399441055744.0);  // 1.5 * 2^52: no fraction bits survive
  return (a + shift) - shift;
}
inline F64x2 exp2_int(F64x2 n) {
  const __m128d shift = _mm_set1_pd(6755399441055744.0);
  const __m128i k = _mm_sub_epi64(_mm_castpd_si128(_mm_add_pd(n.v, shift)), _mm_castpd_si128(shift));
  return F64x2(_mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(k, _mm_set1_epi64x(1023)), 52)));
}
inline F32x4 exp2_int(F32x4 n) {
  const __m128i bits = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n.v), _mm_set1_epi32(127)), 23);
  return F32x4(_mm_castsi128_ps(bits));
}

#endif

#undef NNFAST_BINARY_OPS

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::simd

namespace nnfast::simd {
NNFAST_ISA_NAMESPACE_BEGIN

// load_as<V>(p): a vector V from p, or the scalar *p when V is the scalar type.
template <class V, class T>
inline V load_as(const T* p) {
  if constexpr (lane_count<V>() == 1) return *p;
  else return load(p);
}

template <class V, class T>
inline void store_as(T* p, V x) {
  if constexpr (lane_count<V>() == 1) *p = x;
  else store(p, x);
}

// Calls f(lane) for each lane of x, in lane order.
template <class V, class F>
inline void for_each_lane(V x, const F& f) {
  if constexpr (lane_count<V>() == 1) {
    f(x);
  } else {
    alignas(64) typename V::scalar lanes[V::lanes];
    store(lanes, x);
    for (int j = 0; j < V::lanes; ++j) f(lanes[j]);
  }
}

// x with f applied to each lane (for functions without a vector form).
template <class V, class F>
inline V map_lanes(V x, const F& f) {
  if constexpr (lane_count<V>() == 1) {
    return f(x);
  } else {
    alignas(64) typename V::scalar lanes[V::lanes];
    store(lanes, x);
    for (int j = 0; j < V::lanes; ++j) lanes[j] = f(lanes[j]);
    return load(lanes);
  }
}

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
using F32 = Vec<float>;
using F64 = Vec<double>;
// The polynomial forms of ops/common.h, bit-identical to the scalar tail; double
// log and pow: the C library lane by lane.
inline F32 exp_(F32 x) { return ops::exp_float(x); }
inline F32 exp_nonpositive_(F32 x) { return ops::exp_nonpositive_float(x); }
inline F64 exp_nonpositive_(F64 x) { return ops::exp_double(x); }
inline F32 tanh_(F32 x) { return ops::tanh_float(x); }
inline F32 log_(F32 x) { return ops::log_float(x); }
inline F64 exp_(F64 x) { return ops::exp_double(x); }
inline F64 tanh_(F64 x) { return ops::tanh_double(x); }
inline F64 log_(F64 x) { return map_lanes(x, [](double v) { return std::log(v); }); }
inline F64 pow_(F64 x, double p) { return map_lanes(x, [p](double v) { return std::pow(v, p); }); }
#endif

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::simd
