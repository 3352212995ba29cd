// The per-element conversions of the optimizer steps' storage (call/optimizer_call.h's
// storage dtypes and ParamStorage) on the device, with the CPU's bits
// (src/cpu/converted_rows.h): each array is widened exactly to float32 on load, the
// float32 formula runs, and each written array is rounded once on store by the
// conversions of ops/precision.h, stochastic rounding taking stochastic_bits of the
// tensor's index in the call and the element's index in its tensor. The elementwise
// optimizers (optim.cu) and Adafactor (adafactor.cu) share them. .cu files only.
#pragma once

#include <cstdint>

#include "apply.cuh"
#include "call/dtype.h"
#include "call/optimizer_call.h"
#include "ops/optimizers/gradient.h"
#include "ops/precision.h"

namespace nnfast::cuda {

// Per tensor, beside its pointers: what its stochastic rounding's bits depend on.
struct TensorKey {
  uint32_t index;  // the tensor's index in the call (empty tensors, in no launch, count too)
  uint32_t step;   // the low 32 bits of its step: all of the step that enters the Philox counter
};

// Elements [i, i + N) of the array of W at base, loaded into out or stored from in.
template <class W, int N>
__device__ __forceinline__ void load_words(const void* base, int64_t i, bool vector, W (&out)[N]) {
  copy_words<N>(out, static_cast<const W*>(base) + i, vector);
}

template <class W, int N>
__device__ __forceinline__ void store_words(void* base, int64_t i, bool vector, const W (&in)[N]) {
  copy_words<N>(static_cast<W*>(base) + i, in, vector);
}

// Elements [i, i + N) of an array of dtype as float32: float32 as is, bfloat16 and
// float16 widened exactly.
template <int N>
__device__ void load_widened(DType dtype, const void* array, int64_t i, bool vector, float (&out)[N]) {
  if (dtype == DType::float32) {
    load_words(array, i, vector, out);
    return;
  }
  alignas(16) uint16_t bits[N];
  load_words(array, i, vector, bits);
#pragma unroll
  for (int j = 0; j < N; ++j)
    out[j] = dtype == DType::bfloat16 ? ops::bf16_to_float(bits[j]) : ops::half_to_float(bits[j]);
}

// Stores float32 values as elements [i, i + N) of an array of dtype: float32 as is,
// bfloat16 and float16 rounded to nearest even.
template <int N>
__device__ void store_rounded(DType dtype, void* array, int64_t i, bool vector, const float (&in)[N]) {
  if (dtype == DType::float32) {
    store_words(array, i, vector, in);
    return;
  }
  alignas(16) uint16_t bits[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    bits[j] = dtype == DType::bfloat16 ? ops::float_to_bf16(in[j]) : ops::float_to_half(in[j]);
  store_words(array, i, vector, bits);
}

// Params p of elements [i, i + N) as float32 (params of dtype, their companion, as
// `how` stores them):
//   master:    the float32 companion is p (the 16-bit params are not read);
//   remainder: p = join_master(params, companion);
//   else the params' dtype, widened exactly.
template <int N>
__device__ void load_params(DType dtype, ParamStorage how, const void* params, const void* companion,
                            int64_t i, bool vector, float (&out)[N]) {
  if (how == ParamStorage::master) {
    load_words(companion, i, vector, out);
  } else if (how == ParamStorage::remainder) {
    alignas(16) uint16_t high[N];
    alignas(16) int16_t low[N];
    load_words(params, i, vector, high);
    load_words(companion, i, vector, low);
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = ops::join_master(high[j], low[j]);
  } else {
    load_widened(dtype, params, i, vector, out);
  }
}

// Stores the float32 params p of elements [i, i + N) as `how` says:
//   remainder:  (params, companion) = split_master(p);
//   master:     companion = p, then params = round_nearest(p);
//   stochastic: params = p rounded stochastically, element e with
//               stochastic_bits(key, tensor, e);
//   nearest:    store_rounded.
template <int N>
__device__ void store_params(DType dtype, ParamStorage how, void* params, void* companion,
                             const ops::StochasticKey& key, uint32_t tensor, int64_t i, bool vector,
                             const float (&in)[N]) {
  if (how == ParamStorage::remainder) {
    alignas(16) uint16_t high[N];
    alignas(16) int16_t low[N];
#pragma unroll
    for (int j = 0; j < N; ++j) ops::split_master(in[j], high[j], low[j]);
    store_words(params, i, vector, high);
    store_words(companion, i, vector, low);
    return;
  }
  if (how == ParamStorage::master) store_words(companion, i, vector, in);
  if (how != ParamStorage::stochastic) {
    store_rounded(dtype, params, i, vector, in);
    return;
  }
  // [i, i + N) lies in one block of 8: a group starts at a multiple of 8 of its tensor
  // (apply_kernel), and a single element is a block of its own.
  static_assert(N == 1 || N == 8, "a group is one Philox block");
  const ops::Philox4 block = ops::stochastic_block(key, tensor, i >> 3);
  alignas(16) uint16_t bits[N];
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const uint32_t random16 = ops::stochastic_bits_in_block(block, i + j);
    bits[j] = dtype == DType::bfloat16 ? ops::float_to_bf16_stochastic(in[j], random16)
                                       : ops::float_to_half_stochastic(in[j], random16);
  }
  store_words(params, i, vector, bits);
}

// The storage policy (apply.cuh) of a float32-compute call that is not all float32:
// the dtype of each operand slot, how the params are stored, and the seed of
// stochastic rounding. These are uniform over the call, so branching on them per
// element costs no divergence (every thread takes the same branch) and little time in
// a loop bound by memory; one kernel per functor then serves every layout, where a
// template per layout would compile dozens of layouts times every functor.
template <int Depth>
struct ConvertingStorage {
  using Value = float;
  using Extra = TensorKey;
  static constexpr int kDepth = Depth;
  static constexpr int kSlots = Depth + 1;  // the operands, then the companion
  static constexpr int kCompanion = Depth;
  // A group of 8: one 16-byte access of a 16-bit array, two of a float32 one, and
  // exactly one Philox block of stochastic rounding's bits (ops/precision.h).
  static constexpr int kLanes = 8;
  using Table = ChunkTable<kSlots, Extra>;

  DType dtypes[Depth];
  ParamStorage param_storage;
  uint64_t seed;

  // The storage of slots 0 .. Depth - 1 of dtypes.
  static ConvertingStorage of(const DType* slot_dtypes, ParamStorage how, uint64_t seed) {
    ConvertingStorage storage{};
    for (int k = 0; k < Depth; ++k) storage.dtypes[k] = slot_dtypes[k];
    storage.param_storage = how;
    storage.seed = seed;
    return storage;
  }

  // Writes a tensor's entry `slot` of the table: its operands (slots 0 .. Depth - 1),
  // companion (or null) and key.
  static void set_tensor(Table& table, int slot, void* const* operands, void* companion, TensorKey key) {
    for (int k = 0; k < Depth; ++k) table.operands[k][slot] = operands[k];
    table.operands[kCompanion][slot] = companion;
    table.extra[slot] = key;
  }

  __host__ __device__ bool has_companion() const {
    return param_storage == ParamStorage::master || param_storage == ParamStorage::remainder;
  }

  struct Arrays {
    ConvertingStorage storage;
    void* a[Depth];
    void* companion;
    TensorKey key;
    bool aligned;  // every array used 16-byte aligned

    // Elements [i, i + N) of operand k as float32: a group (N = kLanes) or one element
    // (N = 1); the params slot as the call stores its params.
    template <int N>
    __device__ void load_slot(int k, int64_t i, bool vector, float (&out)[N]) const {
      if (k == ops::kParamsSlot)
        load_params(storage.dtypes[k], storage.param_storage, a[k], companion, i, vector, out);
      else
        load_widened(storage.dtypes[k], a[k], i, vector, out);
    }

    template <int N>
    __device__ void store_slot(int k, int64_t i, bool vector, const float (&in)[N]) const {
      if (k == ops::kParamsSlot)
        store_params(storage.dtypes[k], storage.param_storage, a[k], companion, {storage.seed, key.step},
                     key.index, i, vector, in);
      else
        store_rounded(storage.dtypes[k], a[k], i, vector, in);
    }

    template <unsigned Read>
    __device__ void load(int64_t i, float (&lane)[Depth][kLanes]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k)
        if (Read >> k & 1u) load_slot(k, i, aligned, lane[k]);
    }

    template <unsigned Write>
    __device__ void store(int64_t i, const float (&lane)[Depth][kLanes]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k)
        if (Write >> k & 1u) store_slot(k, i, aligned, lane[k]);
    }

    template <unsigned Read>
    __device__ void load_one(int64_t i, float (&x)[Depth]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k) {
        if (!(Read >> k & 1u)) continue;
        float one[1];
        load_slot(k, i, false, one);
        x[k] = one[0];
      }
    }

    template <unsigned Write>
    __device__ void store_one(int64_t i, const float (&x)[Depth]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k) {
        if (!(Write >> k & 1u)) continue;
        const float one[1] = {x[k]};
        store_slot(k, i, false, one);
      }
    }
  };

  template <unsigned Used>
  __device__ Arrays arrays(const Table& table, int tensor) const {
    Arrays arrays{*this, {}, table.operands[kCompanion][tensor], table.extra[tensor], true};
#pragma unroll
    for (int k = 0; k < Depth; ++k) {
      arrays.a[k] = table.operands[k][tensor];
      if (Used >> k & 1u) arrays.aligned &= reinterpret_cast<uintptr_t>(arrays.a[k]) % 16 == 0;
    }
    if (has_companion()) arrays.aligned &= reinterpret_cast<uintptr_t>(arrays.companion) % 16 == 0;
    return arrays;
  }
};

}  // namespace nnfast::cuda
