// 16-bit floating-point storage: conversions between float32 and bfloat16 or IEEE
// binary16 (round to nearest even, and stochastic rounding), the split of a float32
// master weight into a bfloat16 parameter and an int16 remainder, and the Philox
// counter-based generator that supplies the random bits of stochastic rounding.
//
// Everything here is integer and bit arithmetic on the IEEE encodings, so the
// results do not depend on the floating-point environment (no flush-to-zero or
// rounding-mode effects) and are the same on every CPU code path and in CUDA
// device code (NNFAST_HD). The SIMD tile loops of simd/convert.h are held to
// these functions bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/common.h"

namespace nnfast::ops {

// The key of stochastic rounding's random bits (stochastic_bits below): plain data,
// outside the ISA namespace, so that one call description serves every ISA's code.
struct StochasticKey {
  uint64_t seed;
  uint64_t step;
};

NNFAST_ISA_NAMESPACE_BEGIN

// The IEEE-754 encoding of x, and the float with encoding bits. (Device code has
// an intrinsic for it; host code copies the bytes, which compilers turn into a move.)
NNFAST_HD uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

NNFAST_HD float float_of(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// ------------------------------------------------------------------ bfloat16
// bfloat16 is the upper half of a float32: sign, the same 8 exponent bits, and 7
// of the 23 fraction bits. Widening appends 16 zero bits, so it is exact.
NNFAST_HD float bf16_to_float(uint16_t bits) { return float_of(static_cast<uint32_t>(bits) << 16); }

// The bfloat16 NaN of a float32 NaN encoding: sign and upper payload kept, made quiet
// (fraction bit 6 set), since truncating might leave no payload at all.
NNFAST_HD uint16_t bf16_quiet_nan(uint32_t bits) { return static_cast<uint16_t>((bits >> 16) | 0x0040u); }

// x rounded to the nearest bfloat16, ties to even: adding 0x7fff plus the lowest
// kept bit to the encoding carries into the kept half exactly when the dropped
// half exceeds one half (or equals it and the kept half is odd); a carry out of
// the fraction increments the exponent, which is the correct next magnitude, up to
// infinity past the largest finite. NaN: bf16_quiet_nan.
NNFAST_HD uint16_t float_to_bf16(float x) {
  const uint32_t bits = bits_of(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16_quiet_nan(bits);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// ------------------------------------------------------------------ float16
// IEEE binary16: sign, 5 exponent bits (bias 15), 10 fraction bits. Normal
// numbers have exponents 1..30, subnormals are m * 2^-24 for m in 1..1023.
// The float32 exponent bias is 127, so re-biasing subtracts 112 from the exponent.

// The exact float32 value of a binary16 encoding. NaN keeps its sign and payload
// and is made quiet (fraction bit 22), as the F16C instruction VCVTPH2PS does.
NNFAST_HD float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t fraction = bits & 0x3ffu;
  if (exponent == 0x1f) {
    const uint32_t quiet = fraction != 0 ? 0x00400000u : 0u;
    return float_of(sign | 0x7f800000u | quiet | (fraction << 13));
  }
  if (exponent == 0) {
    if (fraction == 0) return float_of(sign);
    // m * 2^-24 = 1.f * 2^(e - 15) after shifting the leading one up to bit 10,
    // decrementing e from 1 once per shift.
    int32_t e = 1;
    while ((fraction & 0x400u) == 0) {
      fraction <<= 1;
      --e;
    }
    return float_of(sign | static_cast<uint32_t>(e + 112) << 23 | (fraction & 0x3ffu) << 13);
  }
  return float_of(sign | (exponent + 112u) << 23 | fraction << 13);
}

// The binary16 NaN of a float32 NaN of the given sign (bit 15) and magnitude bits:
// the upper payload kept and made quiet (fraction bit 9), as VCVTPS2PH does.
NNFAST_HD uint16_t half_quiet_nan(uint32_t sign, uint32_t magnitude) {
  return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
}

// x rounded to the nearest binary16, ties to even, as IEEE-754 says:
//   |x| >= 65520 (the midpoint of 65504, the largest finite, and 2^16) -> inf;
//   |x| >= 2^-14 (normal range): re-bias the exponent, then round off 13 fraction
//     bits as float_to_bf16 does 16 (a carry is the next binade, or inf);
//   |x| <  2^-14: the subnormal m = RNE(|x| / 2^-24), from the 24-bit significand
//     s * 2^(e - 150): m = RNE(s / 2^(126 - e)); below 2^-25 (e < 102) that is 0,
//     at 2^-25 exactly a tie rounding to the even 0. m = 1024 is 2^-14, encoded
//     correctly by the carry into the exponent field.
// NaN: half_quiet_nan. The sign is kept for every input, zero included.
NNFAST_HD uint16_t float_to_half(float x) {
  const uint32_t bits = bits_of(x);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return half_quiet_nan(sign, magnitude);
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (magnitude >= 0x38800000u) {
    const uint32_t rebiased = magnitude - 0x38000000u;
    return static_cast<uint16_t>(sign | (rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13);
  }
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return static_cast<uint16_t>(sign);
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // 14..24
  const uint32_t half_ulp = 1u << (shift - 1);
  const uint32_t dropped = significand & ((1u << shift) - 1);
  uint32_t m = significand >> shift;
  if (dropped > half_ulp || (dropped == half_ulp && (m & 1u))) ++m;
  return static_cast<uint16_t>(sign | m);
}

// ------------------------------------------------------------------ stochastic rounding
// x is rounded to one of the two representable neighbours around it: toward zero
// (the truncation t) or away from zero (t plus one unit in the last place).
// With frac in [0, 1) the distance from t to |x| in units of that place, and
// r = random16 in [0, 2^16) uniform, the result is the larger magnitude iff
//     floor(frac * 2^16) + r >= 2^16,
// which happens for floor(frac * 2^16) of the 2^16 values of r: P(up) = frac to
// within 2^-16, so the expected stored value is x (to that resolution). An exact
// x (frac = 0) never moves. A carry past the largest finite magnitude gives inf,
// only with that probability; NaN becomes quiet NaN and inf stays inf as in the
// round-to-nearest conversions. Only the low 16 bits of random16 are used.

// bfloat16: the dropped half of the float32 encoding is floor(frac * 2^16) itself,
// so the rule is: add r to the encoding and truncate.
NNFAST_HD uint16_t float_to_bf16_stochastic(float x, uint32_t random16) {
  const uint32_t bits = bits_of(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16_quiet_nan(bits);
  return static_cast<uint16_t>((bits + (random16 & 0xffffu)) >> 16);
}

// binary16: the same rule at the precision binary16 has in x's binade. The
// magnitude is written as a fixed-point number with 16 bits below the last place
// kept, floor'd: scaled = floor(|x| / ulp * 2^16); then the result is
// (scaled + r) >> 16, the encoding's bits below the sign (a carry enters the
// exponent field, the next binade or inf, as in float_to_half).
//   normal range, 2^-14 <= |x| < 2^16: the re-biased encoding has 13 dropped
//     bits, so scaled = (magnitude - (112 << 23)) << 3;
//   below 2^-14, where the last place is 2^-24: |x| = s * 2^(e - 150) with the
//     24-bit significand s, so scaled = s * 2^(e - 110) = floor((s << 2) / 2^(112 - e))
//     (0 once the shift reaches 32: such x is below 2^-65 and never rounds up);
//   |x| >= 2^16 (both neighbours are beyond the largest finite): inf.
NNFAST_HD uint16_t float_to_half_stochastic(float x, uint32_t random16) {
  const uint32_t bits = bits_of(x);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return half_quiet_nan(sign, magnitude);
  if (magnitude >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t scaled;
  if (magnitude >= 0x38800000u) {
    scaled = (magnitude - 0x38000000u) << 3;
  } else {
    const uint32_t shift = 112 - (magnitude >> 23);
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    scaled = shift < 32 ? (significand << 2) >> shift : 0u;
  }
  return static_cast<uint16_t>(sign | (scaled + (random16 & 0xffffu)) >> 16);
}

// ------------------------------------------------------------------ master weights
// A float32 master weight stored as a bfloat16 parameter plus an int16 remainder
// (the encoding TransformerEngine uses for FP32 master weights, so the model keeps
// one bf16 copy and the optimizer recovers float32 exactly). With bits the float32
// encoding, hi = bits >> 16 and lo = bits & 0xffff:
//   param     = hi + 1 (mod 2^16) if lo >= 0x8000 else hi
//   remainder = lo as int16 (negative exactly when lo >= 0x8000)
// so param is the float32 rounded to bfloat16 with ties away from zero (a useful
// bf16 copy), and join_master inverts it: hi = param - 1 (mod 2^16) if remainder < 0
// else param, bits = hi << 16 | uint16(remainder). The pair is a bijection of all
// 2^32 encodings, NaN payloads included.
NNFAST_HD void split_master(float master, uint16_t& param_bits, int16_t& remainder) {
  const uint32_t bits = bits_of(master);
  const uint32_t low = bits & 0xffffu;
  param_bits = static_cast<uint16_t>((bits >> 16) + (low >> 15));
  remainder = static_cast<int16_t>(static_cast<uint16_t>(low));
}

NNFAST_HD float join_master(uint16_t param_bits, int16_t remainder) {
  const uint32_t high = static_cast<uint16_t>(param_bits - (remainder < 0 ? 1u : 0u));
  return float_of(high << 16 | static_cast<uint16_t>(remainder));
}

// ------------------------------------------------------------------ Philox4x32-10
// The counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3" (SC 2011): ten rounds of a keyed bijection of 128
// bits. One round, with 32x32 -> 64-bit products of the constants M0, M1:
//   (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2,
//   c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0),
// and the key advances by the Weyl constants W0, W1 (mod 2^32) between rounds.
// Output i of counter c is a pure function of (c, key): any element's random bits
// can be computed independently, in any order, on any device.
struct Philox4 {
  uint32_t v[4];
};

// The round multipliers and the key's Weyl increments (the golden ratio and sqrt(3) - 1,
// as 32-bit fractions), from the paper.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

NNFAST_HD Philox4 philox4x32_10(Philox4 counter, uint32_t key0, uint32_t key1) {
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    const uint64_t product0 = static_cast<uint64_t>(kPhiloxM0) * c0;
    const uint64_t product1 = static_cast<uint64_t>(kPhiloxM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(product0 >> 32), lo0 = static_cast<uint32_t>(product0);
    const uint32_t hi1 = static_cast<uint32_t>(product1 >> 32), lo1 = static_cast<uint32_t>(product1);
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
    key0 += kPhiloxW0;
    key1 += kPhiloxW1;
  }
  return {{c0, c1, c2, c3}};
}

// ------------------------------------------------------------------ random bits of stochastic rounding
// The one definition of which random bits round which element, shared by the CPU
// and CUDA code: the bits depend only on (seed, step, tensor, element), never on
// the thread count, the chunking, the SIMD level or the device, so every engine
// stores the same values. For element index e >= 0 of tensor number `tensor` at
// optimizer step `step`:
//   block   = e >> 3                      (8 elements share one Philox call)
//   out     = philox4x32_10({lo32(block), hi32(block), tensor, lo32(step)},
//                           key0 = lo32(seed), key1 = hi32(seed))
//   bits(e) = (out.v[(e & 7) >> 1] >> (16 * (e & 1))) & 0xffff
// (lo32/hi32: the low and high 32 bits). Only the low 32 bits of step enter the
// counter: steps 2^32 apart reuse the same bits.
// The Philox output for the 8 elements [8 * block, 8 * block + 8).
NNFAST_HD Philox4 stochastic_block(const StochasticKey& key, uint32_t tensor, int64_t block) {
  const uint64_t b = static_cast<uint64_t>(block);
  return philox4x32_10({{static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), tensor,
                         static_cast<uint32_t>(key.step)}},
                       static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32));
}

// The 16 bits of element `element` within its block's Philox output.
NNFAST_HD uint32_t stochastic_bits_in_block(const Philox4& block_bits, int64_t element) {
  return (block_bits.v[(element & 7) >> 1] >> (16 * (element & 1))) & 0xffffu;
}

NNFAST_HD uint32_t stochastic_bits(const StochasticKey& key, uint32_t tensor, int64_t element) {
  return stochastic_bits_in_block(stochastic_block(key, tensor, element >> 3), element);
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::ops
