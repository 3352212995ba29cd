// INTERIM (replaced by the precision branch): scalar 16-bit conversions.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "call/optimizer_call.h"
#include "simd/isa.h"

namespace nnfast::simd {
NNFAST_ISA_NAMESPACE_BEGIN

inline uint32_t bits_of_(float x) { uint32_t b; std::memcpy(&b, &x, 4); return b; }
inline float float_of_(uint32_t b) { float x; std::memcpy(&x, &b, 4); return x; }

inline void widen_bf16(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float_of_(uint32_t(src[i]) << 16);
}
inline uint16_t bf16_rne_(float x) {
  const uint32_t b = bits_of_(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) return uint16_t((b >> 16) | 0x40u);
  return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
inline void narrow_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_rne_(src[i]);
}
inline void widen_half(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) { _Float16 h; std::memcpy(&h, &src[i], 2); dst[i] = float(h); }
}
inline void narrow_half(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) { _Float16 h = _Float16(src[i]); std::memcpy(&dst[i], &h, 2); }
}
inline void narrow_bf16_stochastic(const float*, uint16_t*, int64_t, const StochasticKey&, uint32_t, int64_t) { std::abort(); }
inline void narrow_half_stochastic(const float*, uint16_t*, int64_t, const StochasticKey&, uint32_t, int64_t) { std::abort(); }
inline void join_masters(const uint16_t* p, const int16_t* r, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t hi = r[i] < 0 ? uint32_t(uint16_t(p[i] - 1)) : p[i];
    dst[i] = float_of_(hi << 16 | uint16_t(r[i]));
  }
}
inline void split_masters(const float* src, uint16_t* p, int16_t* r, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = bits_of_(src[i]);
    const uint16_t lo = uint16_t(b);
    p[i] = uint16_t((b >> 16) + (lo >= 0x8000u ? 1u : 0u));
    r[i] = int16_t(lo);
  }
}
NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::simd
