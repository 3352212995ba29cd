// The tile conversions of simd/convert.h for one instruction set, as a table of
// function pointers (a member of cpu::KernelTable), so the 16-bit storage paths and
// the tests reach each ISA's conversions through the table in use.
#pragma once

#include <cstdint>

#include "ops/precision.h"

namespace nnfast::cpu {

struct PrecisionKernels {
  // dst[i] = the exact float32 value of the bfloat16 / binary16 encoding src[i].
  void (*widen_bf16)(const uint16_t* src, float* dst, int64_t n);
  void (*widen_half)(const uint16_t* src, float* dst, int64_t n);
  // dst[i] = src[i] rounded to nearest, ties to even.
  void (*narrow_bf16)(const float* src, uint16_t* dst, int64_t n);
  void (*narrow_half)(const float* src, uint16_t* dst, int64_t n);
  // dst[i] = src[i] rounded stochastically with the bits of element first_element + i
  // (ops::stochastic_bits).
  void (*narrow_bf16_stochastic)(const float* src, uint16_t* dst, int64_t n,
                                 const ops::StochasticKey& key, uint32_t tensor,
                                 int64_t first_element);
  void (*narrow_half_stochastic)(const float* src, uint16_t* dst, int64_t n,
                                 const ops::StochasticKey& key, uint32_t tensor,
                                 int64_t first_element);
  // Float32 master weights to and from (bfloat16 param, int16 remainder) (ops::split_master).
  void (*join_masters)(const uint16_t* params, const int16_t* remainders, float* dst, int64_t n);
  void (*split_masters)(const float* src, uint16_t* params, int16_t* remainders, int64_t n);
};

// The table of the ISA this translation unit is compiled for (precision_kernels.cpp
// is compiled once per ISA, as kernels.cpp is).
namespace NNFAST_ISA {
PrecisionKernels precision_kernels();
}  // namespace NNFAST_ISA

}  // namespace nnfast::cpu
