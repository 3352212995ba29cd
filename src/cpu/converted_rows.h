// Float32 rows of arrays stored otherwise (call/optimizer_call.h's storage dtypes and
// ParamStorage), through one ISA's conversions (precision_kernels.h): widened exactly
// on load, rounded once on store. The optimizers' tiles (element_loops.h), the 16-bit
// activations and losses (kernels.cpp) and Adafactor's rows (adafactor.cpp) share them.
#pragma once

#include <cstdint>

#include "call/dtype.h"
#include "call/optimizer_call.h"
#include "cpu/precision_kernels.h"

namespace nnfast::cpu {

// dst[i] = the float32 value of the bfloat16 or float16 src[i].
inline void widen_row(const PrecisionKernels& k, DType dtype, const void* src, float* dst, int64_t n) {
  if (dtype == DType::bfloat16) k.widen_bf16(static_cast<const uint16_t*>(src), dst, n);
  else k.widen_half(static_cast<const uint16_t*>(src), dst, n);
}

// dst[i] = src[i] rounded to nearest even, to bfloat16 or float16.
inline void round_row(const PrecisionKernels& k, DType dtype, const float* src, void* dst, int64_t n) {
  if (dtype == DType::bfloat16) k.narrow_bf16(src, static_cast<uint16_t*>(dst), n);
  else k.narrow_half(src, static_cast<uint16_t*>(dst), n);
}

// n float32 values of an array of dtype at data: the array itself when float32, else
// widened into scratch.
inline float* float_row(const PrecisionKernels& k, DType dtype, void* data, float* scratch, int64_t n) {
  if (dtype == DType::float32) return static_cast<float*>(data);
  widen_row(k, dtype, data, scratch, n);
  return scratch;
}

// Stores the values of a float_row back: rounded once when the array is 16-bit (a
// float32 row is the array itself).
inline void store_row(const PrecisionKernels& k, DType dtype, const float* row, void* data, int64_t n) {
  if (dtype != DType::float32) round_row(k, dtype, row, data, n);
}

// n params p as float32 (params of dtype at params, their companion at companion):
// the master itself, the param and its remainder joined into scratch, or float_row.
inline float* param_row(const PrecisionKernels& k, DType dtype, ParamStorage storage, void* params,
                        void* companion, float* scratch, int64_t n) {
  switch (storage) {
    case ParamStorage::master:
      return static_cast<float*>(companion);
    case ParamStorage::remainder:
      k.join_masters(static_cast<const uint16_t*>(params), static_cast<const int16_t*>(companion),
                     scratch, n);
      return scratch;
    case ParamStorage::nearest:
    case ParamStorage::stochastic:
      break;
  }
  return float_row(k, dtype, params, scratch, n);
}

// Stores updated params p (a param_row) as storage says: a master is p already (its
// param gets round_nearest(p)); stochastic rounding takes the bits of element
// first_element of tensor `tensor` under key; a remainder splits p.
inline void store_param_row(const PrecisionKernels& k, DType dtype, ParamStorage storage,
                            const float* p, void* params, void* companion,
                            const ops::StochasticKey& key, uint32_t tensor, int64_t first_element,
                            int64_t n) {
  switch (storage) {
    case ParamStorage::nearest:
    case ParamStorage::master:
      store_row(k, dtype, p, params, n);
      return;
    case ParamStorage::stochastic: {
      auto* out = static_cast<uint16_t*>(params);
      if (dtype == DType::bfloat16) k.narrow_bf16_stochastic(p, out, n, key, tensor, first_element);
      else k.narrow_half_stochastic(p, out, n, key, tensor, first_element);
      return;
    }
    case ParamStorage::remainder:
      k.split_masters(p, static_cast<uint16_t*>(params), static_cast<int16_t*>(companion), n);
      return;
  }
}

}  // namespace nnfast::cpu
