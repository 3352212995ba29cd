// Conversions between float32 and 16-bit storage (bfloat16, IEEE binary16), and
// between float32 master weights and (bfloat16, int16 remainder) pairs: over arrays
// (the tiles) and one vector at a time (the in-register loops), vectorized for the ISA
// the translation unit is compiled for.
//
// Each function gives, for every input, exactly the bits of the scalar function of
// ops/precision.h applied element by element (which also handles the tails and
// whatever an ISA lacks). The bfloat16 and master-weight conversions are the
// integer formulas of ops/precision.h on vectors of 32-bit lanes. binary16 uses
// F16C (VCVTPH2PS, VCVTPS2PH with round-to-nearest-even) on AVX2 and AVX-512,
// which convert subnormals exactly and quiet NaNs as the scalar code does; SSE2 has
// no such instruction and runs the scalar code. The avx512bf16 set rounds bfloat16
// stores with VCVTNEPS2BF16, except for vectors holding a subnormal input, which that
// instruction reads as zero (store_bf16_as).
#pragma once

#include <cstdint>

#include "ops/precision.h"
#include "simd/isa.h"
#include "simd/vec.h"

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

namespace nnfast::simd {
NNFAST_ISA_NAMESPACE_BEGIN

namespace convert_detail {

// U32s: the widest vector of 32-bit integer lanes, with what the formulas use:
// broadcast, loads of 16-bit values widened (zero- or sign-extended) and stores of
// each lane's low 16 bits, the float bits as integers, + - & | ^, shifts by
// constants, an unsigned greater-than giving a Mask and select(mask, a, b); on AVX2
// and AVX-512 also per-lane shift counts, 32-bit loads and stores and the 32x32 ->
// 64-bit products (mulhilo) that Philox needs.
//
// The lane operations common to the ISAs, named by the intrinsics' prefix (_mm512,
// _mm256, _mm) and the suffix of the bitwise ones (si512, si256, si128).
#define NNFAST_U32_OPS(P, SI)                                                           \
  inline U32s broadcast(uint32_t s) { return {P##_set1_epi32(static_cast<int>(s))}; }  \
  inline U32s operator+(U32s a, U32s b) { return {P##_add_epi32(a.v, b.v)}; }           \
  inline U32s operator-(U32s a, U32s b) { return {P##_sub_epi32(a.v, b.v)}; }           \
  inline U32s operator&(U32s a, U32s b) { return {P##_and_##SI(a.v, b.v)}; }            \
  inline U32s operator|(U32s a, U32s b) { return {P##_or_##SI(a.v, b.v)}; }             \
  inline U32s operator^(U32s a, U32s b) { return {P##_xor_##SI(a.v, b.v)}; }            \
  template <int k> U32s shift_left(U32s a) { return {P##_slli_epi32(a.v, k)}; }         \
  template <int k> U32s shift_right(U32s a) { return {P##_srli_epi32(a.v, k)}; }

#if defined(__AVX512F__)

#define NNFAST_CONVERT_LANES 16
struct U32s {
  __m512i v;
};
using Mask = __mmask16;
NNFAST_U32_OPS(_mm512, si512)
inline U32s load_u16(const uint16_t* p) {
  return {_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline U32s load_i16(const int16_t* p) {
  return {_mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline void store_low16(void* p, U32s x) {
  _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi32_epi16(x.v));
}
inline U32s load_u32(const uint32_t* p) { return {_mm512_loadu_si512(p)}; }
inline void store_u32(uint32_t* p, U32s x) { _mm512_storeu_si512(p, x.v); }
inline U32s load_bits(const float* p) { return {_mm512_loadu_si512(p)}; }
inline void store_bits(float* p, U32s x) { _mm512_storeu_si512(p, x.v); }
// a >> count per lane; 0 where count >= 32.
inline U32s shift_right_by(U32s a, U32s count) { return {_mm512_srlv_epi32(a.v, count.v)}; }
inline Mask greater(U32s a, U32s b) { return _mm512_cmpgt_epu32_mask(a.v, b.v); }
inline U32s select(Mask m, U32s a, U32s b) { return {_mm512_mask_blend_epi32(m, b.v, a.v)}; }
// The 64-bit products m * a of each lane, as their high and low 32-bit halves
// (VPMULUDQ multiplies the even lanes; the odd ones are shifted down to them).
#define NNFAST_CONVERT_MULHILO
inline void mulhilo(uint32_t m, U32s a, U32s& high, U32s& low) {
  const __m512i factor = _mm512_set1_epi32(static_cast<int>(m));
  const __m512i even = _mm512_mul_epu32(a.v, factor);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a.v, 32), factor);
  high = {_mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(even, 32), odd)};
  low = {_mm512_mask_blend_epi32(0xaaaa, even, _mm512_slli_epi64(odd, 32))};
}
#if defined(__F16C__)
#define NNFAST_CONVERT_F16C
inline void widen_half_lanes(const uint16_t* src, float* dst) {
  _mm512_storeu_ps(dst, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))));
}
inline void narrow_half_lanes(const float* src, uint16_t* dst) {
  const __m256i half = _mm512_cvtps_ph(_mm512_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), half);
}
#endif

#elif defined(__AVX2__)

#define NNFAST_CONVERT_LANES 8
struct U32s {
  __m256i v;
};
using Mask = U32s;  // all ones in the lanes where it holds
NNFAST_U32_OPS(_mm256, si256)
inline U32s load_u16(const uint16_t* p) {
  return {_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline U32s load_i16(const int16_t* p) {
  return {_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
// (PACKUSDW saturates, so the lanes are first cut to 16 bits; it packs within each
// 128-bit half, and the permute joins the two halves' results.)
inline void store_low16(void* p, U32s x) {
  const __m256i low = _mm256_and_si256(x.v, _mm256_set1_epi32(0xffff));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(low, low), 0x08);
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
inline U32s load_u32(const uint32_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))};
}
inline void store_u32(uint32_t* p, U32s x) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x.v); }
inline U32s load_bits(const float* p) { return {_mm256_castps_si256(_mm256_loadu_ps(p))}; }
inline void store_bits(float* p, U32s x) { _mm256_storeu_ps(p, _mm256_castsi256_ps(x.v)); }
inline U32s shift_right_by(U32s a, U32s count) { return {_mm256_srlv_epi32(a.v, count.v)}; }
// Unsigned a > b as a signed comparison with both sign bits flipped.
inline Mask greater(U32s a, U32s b) {
  const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  return {_mm256_cmpgt_epi32(_mm256_xor_si256(a.v, flip), _mm256_xor_si256(b.v, flip))};
}
inline U32s select(Mask m, U32s a, U32s b) { return {_mm256_blendv_epi8(b.v, a.v, m.v)}; }
#define NNFAST_CONVERT_MULHILO
inline void mulhilo(uint32_t m, U32s a, U32s& high, U32s& low) {
  const __m256i factor = _mm256_set1_epi32(static_cast<int>(m));
  const __m256i even = _mm256_mul_epu32(a.v, factor);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a.v, 32), factor);
  high = {_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xaa)};
  low = {_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xaa)};
}
#if defined(__F16C__)
#define NNFAST_CONVERT_F16C
inline void widen_half_lanes(const uint16_t* src, float* dst) {
  _mm256_storeu_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src))));
}
inline void narrow_half_lanes(const float* src, uint16_t* dst) {
  const __m128i half = _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), half);
}
#endif

#elif defined(__SSE2__)

#define NNFAST_CONVERT_LANES 4
struct U32s {
  __m128i v;
};
using Mask = U32s;  // all ones in the lanes where it holds
NNFAST_U32_OPS(_mm, si128)
// (Interleaving with zeros below widens unsigned values; with the values
// themselves, then an arithmetic shift, signed ones.)
inline U32s load_u16(const uint16_t* p) {
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return {_mm_unpacklo_epi16(x, _mm_setzero_si128())};
}
inline U32s load_i16(const int16_t* p) {
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return {_mm_srai_epi32(_mm_unpacklo_epi16(x, x), 16)};
}
// (SSE2 packs only with signed saturation: the low 16 bits are sign-extended
// first, so every lane is in range and packs unchanged.)
inline void store_low16(void* p, U32s x) {
  const __m128i extended = _mm_srai_epi32(_mm_slli_epi32(x.v, 16), 16);
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packs_epi32(extended, extended));
}
inline U32s load_bits(const float* p) { return {_mm_castps_si128(_mm_loadu_ps(p))}; }
inline void store_bits(float* p, U32s x) { _mm_storeu_ps(p, _mm_castsi128_ps(x.v)); }
inline Mask greater(U32s a, U32s b) {
  const __m128i flip = _mm_set1_epi32(static_cast<int>(0x80000000u));
  return {_mm_cmpgt_epi32(_mm_xor_si128(a.v, flip), _mm_xor_si128(b.v, flip))};
}
inline U32s select(Mask m, U32s a, U32s b) {
  return {_mm_or_si128(_mm_and_si128(m.v, a.v), _mm_andnot_si128(m.v, b.v))};
}

#endif

#if defined(NNFAST_CONVERT_LANES)
constexpr int64_t kLanes = NNFAST_CONVERT_LANES;

// The formulas of ops/precision.h, on the float32 encodings in 32-bit lanes.
inline U32s bf16_quiet_nan(U32s bits) { return shift_right<16>(bits) | broadcast(0x0040u); }
inline Mask is_nan(U32s bits) { return greater(bits & broadcast(0x7fffffffu), broadcast(0x7f800000u)); }

inline U32s float_to_bf16(U32s bits) {
  const U32s rounded =
      shift_right<16>(bits + broadcast(0x7fffu) + (shift_right<16>(bits) & broadcast(1u)));
  return select(is_nan(bits), bf16_quiet_nan(bits), rounded);
}

inline U32s float_to_bf16_stochastic(U32s bits, U32s random16) {
  return select(is_nan(bits), bf16_quiet_nan(bits), shift_right<16>(bits + random16));
}
#endif

#if defined(NNFAST_CONVERT_F16C)
// ops::float_to_half_stochastic with its ranges chosen per lane by selects: every
// candidate is computed in every lane, and those out of their range are dropped
// (the subnormal shift count wraps above 31 there, which VPSRLVD turns into 0).
inline U32s float_to_half_stochastic(U32s bits, U32s random16) {
  const U32s sign = shift_right<16>(bits) & broadcast(0x8000u);
  const U32s magnitude = bits & broadcast(0x7fffffffu);
  const U32s normal = shift_left<3>(magnitude - broadcast(0x38000000u));
  const U32s significand = (magnitude & broadcast(0x7fffffu)) | broadcast(0x800000u);
  const U32s subnormal =
      shift_right_by(shift_left<2>(significand), broadcast(112u) - shift_right<23>(magnitude));
  const U32s scaled = select(greater(magnitude, broadcast(0x387fffffu)), normal, subnormal);
  const U32s finite = shift_right<16>(scaled + random16);
  const U32s quiet_nan = broadcast(0x7e00u) | (shift_right<13>(magnitude) & broadcast(0x3ffu));
  const U32s out_of_range =
      select(greater(magnitude, broadcast(0x7f800000u)), quiet_nan, broadcast(0x7c00u));
  return sign | select(greater(magnitude, broadcast(0x477fffffu)), out_of_range, finite);
}
#endif

// The 8 random 16-bit values of one block's Philox output words, in element order
// (ops::stochastic_bits_in_block: element j is half j & 1 of word j >> 1).
inline uint16_t* put_block(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, uint16_t* out) {
  const uint32_t words[4] = {w0, w1, w2, w3};
  for (int w = 0; w < 4; ++w) {
    out[2 * w] = static_cast<uint16_t>(words[w]);
    out[2 * w + 1] = static_cast<uint16_t>(words[w] >> 16);
  }
  return out + 8;
}

// The random bits of the elements of whole blocks [block, block + blocks), 8 per
// block, into out (ops::stochastic_block).
inline void fill_block_bits(const ops::StochasticKey& key, uint32_t tensor, int64_t block,
                            int64_t blocks, uint16_t* out) {
  int64_t b = 0;
#if defined(NNFAST_CONVERT_MULHILO)
  // kLanes blocks at once, one per lane: ops::philox4x32_10 on vectors.
  for (; b + kLanes <= blocks; b += kLanes) {
    uint32_t counter_low[kLanes], counter_high[kLanes];
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      const auto index = static_cast<uint64_t>(block + b + lane);
      counter_low[lane] = static_cast<uint32_t>(index);
      counter_high[lane] = static_cast<uint32_t>(index >> 32);
    }
    U32s c0 = load_u32(counter_low), c1 = load_u32(counter_high);
    U32s c2 = broadcast(tensor), c3 = broadcast(static_cast<uint32_t>(key.step));
    auto key0 = static_cast<uint32_t>(key.seed), key1 = static_cast<uint32_t>(key.seed >> 32);
    for (int round = 0; round < 10; ++round) {
      U32s hi0, lo0, hi1, lo1;
      mulhilo(ops::kPhiloxM0, c0, hi0, lo0);
      mulhilo(ops::kPhiloxM1, c2, hi1, lo1);
      c0 = hi1 ^ c1 ^ broadcast(key0);
      c1 = lo1;
      c2 = hi0 ^ c3 ^ broadcast(key1);
      c3 = lo0;
      key0 += ops::kPhiloxW0;
      key1 += ops::kPhiloxW1;
    }
    uint32_t words[4][kLanes];
    store_u32(words[0], c0);
    store_u32(words[1], c1);
    store_u32(words[2], c2);
    store_u32(words[3], c3);
    for (int64_t lane = 0; lane < kLanes; ++lane)
      out = put_block(words[0][lane], words[1][lane], words[2][lane], words[3][lane], out);
  }
#endif
  for (; b < blocks; ++b) {
    const ops::Philox4 r = ops::stochastic_block(key, tensor, block + b);
    out = put_block(r.v[0], r.v[1], r.v[2], r.v[3], out);
  }
}

// The stochastic narrowing loop over runs of whole blocks: round(run_start,
// run_count, random) rounds elements [run_start, run_start + run_count) of the
// tile, random[i] holding the bits of element run_start + i.
constexpr int64_t kRunBlocks = 32;
template <class Round>
void for_each_random_run(int64_t n, const ops::StochasticKey& key, uint32_t tensor,
                         int64_t first_element, Round round) {
  uint16_t random[kRunBlocks * 8];
  for (int64_t start = 0; start < n;) {
    // The run covers whole blocks from the block of element first_element + start;
    // its first `skip` bits belong to elements before the tile's start.
    const int64_t block = (first_element + start) >> 3;
    const int64_t skip = (first_element + start) & 7;
    const int64_t count = n - start < kRunBlocks * 8 - skip ? n - start : kRunBlocks * 8 - skip;
    fill_block_bits(key, tensor, block, (skip + count + 7) >> 3, random);
    round(start, count, random + skip);
    start += count;
  }
}

}  // namespace convert_detail

// ------------------------------------------------------------ one vector at a time
// The fused loops of cpu/kernels.cpp convert in registers: V is the float vector of
// simd/vec.h (the same lanes as U32s) or float (one element, the scalar code), with
// the bits of the array functions above.

#if defined(NNFAST_CONVERT_LANES)
namespace convert_detail {
#if defined(__AVX512F__)
inline Vec<float> float_lanes(U32s bits) { return Vec<float>(_mm512_castsi512_ps(bits.v)); }
inline U32s bit_lanes(Vec<float> x) { return {_mm512_castps_si512(x.v)}; }
#elif defined(__AVX2__)
inline Vec<float> float_lanes(U32s bits) { return Vec<float>(_mm256_castsi256_ps(bits.v)); }
inline U32s bit_lanes(Vec<float> x) { return {_mm256_castps_si256(x.v)}; }
#else
inline Vec<float> float_lanes(U32s bits) { return Vec<float>(_mm_castsi128_ps(bits.v)); }
inline U32s bit_lanes(Vec<float> x) { return {_mm_castps_si128(x.v)}; }
#endif
static_assert(kLanes == lane_count<Vec<float>>(), "U32s and Vec<float> have the same lanes");
}  // namespace convert_detail
#endif

// f(As<Vec<float>>, i) for the vectors of [0, n), then f(As<float>, i) for the tail
// (As<V>::type names the value type), so both run the same code.
template <class T>
struct As {
  using type = T;
};

template <class F>
inline void each_vector(int64_t n, const F& f) {
  int64_t i = 0;
  constexpr int lanes = lane_count<Vec<float>>();
  if constexpr (lanes > 1) {
    for (; i + lanes <= n; i += lanes) f(As<Vec<float>>{}, i);
  }
  for (; i < n; ++i) f(As<float>{}, i);
}

template <class V>
inline V load_bf16_as(const uint16_t* p) {
  if constexpr (lane_count<V>() == 1) {
    return ops::bf16_to_float(*p);
  } else {
    using namespace convert_detail;
    return float_lanes(shift_left<16>(load_u16(p)));
  }
}

template <class V>
inline void store_bf16_as(uint16_t* p, V x) {
  if constexpr (lane_count<V>() == 1) {
    *p = ops::float_to_bf16(x);
  } else {
    using namespace convert_detail;
#if defined(__AVX512BF16__)
    // VCVTNEPS2BF16 rounds to nearest even and quiets NaNs as float_to_bf16 does, in one
    // instruction, but reads subnormal inputs as zero: a vector holding one (the only
    // inputs with subnormal bfloat16 results) takes the integer formula instead.
    if (_mm512_fpclass_ps_mask(x.v, 0x20) == 0) {  // 0x20: denormal
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x.v)));
      return;
    }
#endif
    store_low16(p, float_to_bf16(bit_lanes(x)));
  }
}

template <class V>
inline V load_master_as(const uint16_t* params, const int16_t* remainders) {
  if constexpr (lane_count<V>() == 1) {
    return ops::join_master(*params, *remainders);
  } else {
    using namespace convert_detail;
    // remainder < 0 exactly when the sign-extended lane's top bit is set.
    const U32s remainder = load_i16(remainders);
    const U32s high = load_u16(params) - shift_right<31>(remainder);
    return float_lanes(shift_left<16>(high) | (remainder & broadcast(0xffffu)));
  }
}

template <class V>
inline void store_master_as(uint16_t* params, int16_t* remainders, V x) {
  if constexpr (lane_count<V>() == 1) {
    ops::split_master(x, *params, *remainders);
  } else {
    using namespace convert_detail;
    // param = hi + (lo >= 0x8000) = hi + bit 15; the store keeps 16 bits (mod 2^16).
    const U32s bits = bit_lanes(x);
    store_low16(params, shift_right<16>(bits) + (shift_right<15>(bits) & broadcast(1u)));
    store_low16(remainders, bits);
  }
}

// dst[i] = the float32 value of the bfloat16 encoding src[i] (exact), i in [0, n).
inline void widen_bf16(const uint16_t* src, float* dst, int64_t n) {
  each_vector(n, [&](auto as, int64_t i) {
    using V = typename decltype(as)::type;
    store_as<V>(dst + i, load_bf16_as<V>(src + i));
  });
}

// dst[i] = the float32 value of the binary16 encoding src[i] (exact), i in [0, n).
inline void widen_half(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(NNFAST_CONVERT_F16C)
  using namespace convert_detail;
  for (; i + kLanes <= n; i += kLanes) widen_half_lanes(src + i, dst + i);
#endif
  for (; i < n; ++i) dst[i] = ops::half_to_float(src[i]);
}

// dst[i] = src[i] rounded to the nearest bfloat16, ties to even (ops::float_to_bf16).
inline void narrow_bf16(const float* src, uint16_t* dst, int64_t n) {
  each_vector(n, [&](auto as, int64_t i) {
    using V = typename decltype(as)::type;
    store_bf16_as<V>(dst + i, load_as<V>(src + i));
  });
}

// dst[i] = src[i] rounded to the nearest binary16, ties to even (ops::float_to_half).
inline void narrow_half(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(NNFAST_CONVERT_F16C)
  using namespace convert_detail;
  for (; i + kLanes <= n; i += kLanes) narrow_half_lanes(src + i, dst + i);
#endif
  for (; i < n; ++i) dst[i] = ops::float_to_half(src[i]);
}

// dst[i] = ops::float_to_bf16_stochastic(src[i], ops::stochastic_bits(key, tensor,
// first_element + i)): the result depends only on the element's index in its
// tensor, never on how the tensor is cut into calls.
inline void narrow_bf16_stochastic(const float* src, uint16_t* dst, int64_t n,
                                   const ops::StochasticKey& key, uint32_t tensor,
                                   int64_t first_element) {
  convert_detail::for_each_random_run(n, key, tensor, first_element,
                                      [&](int64_t start, int64_t count, const uint16_t* random) {
    int64_t i = 0;
#if defined(NNFAST_CONVERT_LANES)
    using namespace convert_detail;
    for (; i + kLanes <= count; i += kLanes)
      store_low16(dst + start + i,
                  float_to_bf16_stochastic(load_bits(src + start + i), load_u16(random + i)));
#endif
    for (; i < count; ++i) dst[start + i] = ops::float_to_bf16_stochastic(src[start + i], random[i]);
  });
}

// dst[i] = ops::float_to_half_stochastic(src[i], ops::stochastic_bits(key, tensor,
// first_element + i)), as narrow_bf16_stochastic. (Vectorized where F16C is: the
// ISAs that also have per-lane variable shifts, which the subnormal range needs.)
inline void narrow_half_stochastic(const float* src, uint16_t* dst, int64_t n,
                                   const ops::StochasticKey& key, uint32_t tensor,
                                   int64_t first_element) {
  convert_detail::for_each_random_run(n, key, tensor, first_element,
                                      [&](int64_t start, int64_t count, const uint16_t* random) {
    int64_t i = 0;
#if defined(NNFAST_CONVERT_F16C)
    using namespace convert_detail;
    for (; i + kLanes <= count; i += kLanes)
      store_low16(dst + start + i,
                  float_to_half_stochastic(load_bits(src + start + i), load_u16(random + i)));
#endif
    for (; i < count; ++i) dst[start + i] = ops::float_to_half_stochastic(src[start + i], random[i]);
  });
}

// dst[i] = ops::join_master(params[i], remainders[i]): the float32 master weight.
inline void join_masters(const uint16_t* params, const int16_t* remainders, float* dst, int64_t n) {
  each_vector(n, [&](auto as, int64_t i) {
    using V = typename decltype(as)::type;
    store_as<V>(dst + i, load_master_as<V>(params + i, remainders + i));
  });
}

// (params[i], remainders[i]) = ops::split_master(src[i]).
inline void split_masters(const float* src, uint16_t* params, int16_t* remainders, int64_t n) {
  each_vector(n, [&](auto as, int64_t i) {
    using V = typename decltype(as)::type;
    store_master_as<V>(params + i, remainders + i, load_as<V>(src + i));
  });
}

NNFAST_ISA_NAMESPACE_END
}  // namespace nnfast::simd
