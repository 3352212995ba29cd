// The element loops of the chunk kernels (kernels.cpp, compiled once per ISA; only it
// includes this): apply(), which runs a functor of ops/ over operand arrays in place,
// vector blocks then a scalar tail; and the loops of an optimizer call whose arrays
// are not all of its compute type: in registers for the layouts of the precision
// targets (converted_block), tile by tile through float32 rows otherwise (run_tiles),
// with the same bits either way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "call/optimizer_call.h"
#include "cpu/converted_rows.h"
#include "ops/optimizers.h"
#include "simd/convert.h"
#include "simd/vec.h"

namespace nnfast::cpu {
namespace NNFAST_ISA {

using simd::lane_count;
using simd::load_as;
using simd::store_as;
using simd::Vec;
using ops::slot_bit;

template <class X>
using ValueOf = std::remove_reference_t<decltype(std::declval<X>()[0])>;

// One block of V-many elements at offset i: load the operands in Read (a bit per
// operand), run update on them, store the operands in Write.
template <class V, unsigned Read, unsigned Write, class T, class Update>
inline void block(T* const* a, int64_t i, const Update& update) {
  V x[kMaxOperands];
  for (int k = 0; k < kMaxOperands; ++k)
    if (Read >> k & 1u) x[k] = load_as<V>(a[k] + i);
  update(x);
  for (int k = 0; k < kMaxOperands; ++k)
    if (Write >> k & 1u) store_as<V>(a[k] + i, x[k]);
}

// update(x) for every element in [begin, end): vector blocks, then a scalar tail.
template <unsigned Read, unsigned Write, class T, class Update>
void apply(T* const* operands, int64_t begin, int64_t end, const Update& update) {
  using V = Vec<T>;
  constexpr int lanes = lane_count<V>();
  T* a[kMaxOperands];
  for (int k = 0; k < kMaxOperands; ++k) a[k] = operands[k];
  int64_t i = begin;
  if constexpr (lanes > 1) {
    for (; i + lanes <= end; i += lanes) block<V, Read, Write>(a, i, update);
  }
  for (; i < end; ++i) block<T, Read, Write>(a, i, update);
}

// Runs op (an ops/functors.h functor) over elements [begin, end) of operands a.
template <class Op, class T>
void run(const Op& op, T* const* a, int64_t begin, int64_t end) {
  apply<Op::kRead, Op::kWrite>(a, begin, end, op);
}

// Storage conversion (simd/convert.h): a call whose arrays are not all of its
// compute type is run tile by tile. Each 16-bit (or master/remainder) operand of a
// tile is widened into a float32 scratch row, the formula runs on the rows (and on
// the float32 arrays in place), then the written rows are rounded back once. A tile
// of every operand fits in L1 (5 x 512 x 4 bytes), so the conversions cost a pass
// through L1, not through memory. Element i of a tile is element t0 + i of the
// tensor, whatever the tiling, so stochastic rounding's bits do not depend on it.
constexpr int64_t kTileElements = 512;

// This ISA's conversions, for converted_rows.h.
inline const PrecisionKernels& conversions() {
  static const PrecisionKernels table = precision_kernels();
  return table;
}

template <class Op>
void run_tiles(const Op& op, const OptimizerCall<float>& call, int64_t tensor, int64_t begin,
               int64_t end) {
  constexpr unsigned used = Op::kRead | Op::kWrite;
  const auto& slots = call.operands[tensor];
  const auto at = [&](int k, int64_t i) -> void* {
    return slots[k] ? static_cast<char*>(slots[k]) + i * itemsize(call.dtypes[k]) : nullptr;
  };
  const PrecisionKernels& k16 = conversions();
  const ops::StochasticKey key =
      call.param_storage == ParamStorage::stochastic ? call.key_of(tensor) : ops::StochasticKey{};
  alignas(64) float scratch[kMaxOperands][kTileElements];
  for (int64_t t0 = begin; t0 < end; t0 += kTileElements) {
    const int64_t n = std::min(kTileElements, end - t0);
    float* x[kMaxOperands] = {};
    for (int k = 0; k < kMaxOperands; ++k) {
      if (!(used >> k & 1u)) continue;
      x[k] = k == ops::kParamsSlot
                 ? param_row(k16, call.dtypes[k], call.param_storage, at(k, t0),
                             at(kCompanionSlot, t0), scratch[k], n)
                 : float_row(k16, call.dtypes[k], at(k, t0), scratch[k], n);
    }
    apply<Op::kRead, Op::kWrite>(x, 0, n, op);
    for (int k = 0; k < kMaxOperands; ++k) {
      if (!(Op::kWrite >> k & 1u)) continue;
      if (k == ops::kParamsSlot)
        store_param_row(k16, call.dtypes[k], call.param_storage, x[k], at(k, t0),
                        at(kCompanionSlot, t0), key, static_cast<uint32_t>(tensor), t0, n);
      else
        store_row(k16, call.dtypes[k], x[k], at(k, t0), n);
    }
  }
}

// The bfloat16 layouts the engine converts in registers, in one pass with the
// formula: the layouts of the precision targets (a bf16 model as torch's fused Adam
// keeps it; DeepSpeed's float32 states; float32 masters or remainders beside bf16
// params and grads). Every other layout goes through run_tiles, with the same bits.
enum class Stored : uint8_t {
  f32,        // float32, in place
  bf16,       // bfloat16, rounded to nearest on store
  master,     // params slot: the float32 companion is p; params get round_nearest(p)
  remainder,  // params slot: (bf16 params, int16 companion) is p (split_master)
};

template <Stored Params, Stored States>
struct Layout {
  static constexpr Stored of(int slot) {
    return slot == ops::kParamsSlot ? Params : slot == ops::kGradsSlot ? Stored::bf16 : States;
  }
};

template <class V, Stored How>
inline V load_slot(void* base, void* companion, int64_t i) {
  if constexpr (How == Stored::f32) return load_as<V>(static_cast<const float*>(base) + i);
  else if constexpr (How == Stored::bf16) return simd::load_bf16_as<V>(static_cast<const uint16_t*>(base) + i);
  else if constexpr (How == Stored::master) return load_as<V>(static_cast<const float*>(companion) + i);
  else return simd::load_master_as<V>(static_cast<const uint16_t*>(base) + i,
                                      static_cast<const int16_t*>(companion) + i);
}

template <class V, Stored How>
inline void store_slot(void* base, void* companion, int64_t i, V x) {
  if constexpr (How == Stored::f32) {
    store_as<V>(static_cast<float*>(base) + i, x);
  } else if constexpr (How == Stored::bf16) {
    simd::store_bf16_as<V>(static_cast<uint16_t*>(base) + i, x);
  } else if constexpr (How == Stored::master) {
    store_as<V>(static_cast<float*>(companion) + i, x);
    simd::store_bf16_as<V>(static_cast<uint16_t*>(base) + i, x);
  } else {
    simd::store_master_as<V>(static_cast<uint16_t*>(base) + i, static_cast<int16_t*>(companion) + i, x);
  }
}

template <class F, int... Slot>
inline void each_slot(std::integer_sequence<int, Slot...>, const F& f) {
  (f(std::integral_constant<int, Slot>{}), ...);
}

// One block of V-many elements at i, converted on load and store as L says.
template <class V, class L, unsigned Read, unsigned Write, class Update>
inline void converted_block(void* const* slots, void* companion, int64_t i, const Update& update) {
  constexpr auto all = std::make_integer_sequence<int, kMaxOperands>();
  V x[kMaxOperands];
  each_slot(all, [&](auto slot) {
    constexpr int k = decltype(slot)::value;
    if constexpr (Read >> k & 1u) x[k] = load_slot<V, L::of(k)>(slots[k], companion, i);
  });
  update(x);
  each_slot(all, [&](auto slot) {
    constexpr int k = decltype(slot)::value;
    if constexpr (Write >> k & 1u) store_slot<V, L::of(k)>(slots[k], companion, i, x[k]);
  });
}

// op over elements [begin, end) of operand slots stored as L says.
template <class L, class Op>
void run_converted(const Op& op, void* const* slots, void* companion, int64_t begin, int64_t end) {
  constexpr int lanes = lane_count<Vec<float>>();
  int64_t i = begin;
  if constexpr (lanes > 1) {
    for (; i + lanes <= end; i += lanes)
      converted_block<Vec<float>, L, Op::kRead, Op::kWrite>(slots, companion, i, op);
  }
  for (; i < end; ++i) converted_block<float, L, Op::kRead, Op::kWrite>(slots, companion, i, op);
}

template <class L, class Op>
void run_converted(const Op& op, const OptimizerCall<float>& call, int64_t tensor, int64_t begin,
                   int64_t end) {
  run_converted<L>(op, call.operands[tensor].data(), call.operands[tensor][kCompanionSlot], begin, end);
}

// Every operand bfloat16 (an activation and its gradient).
using AllBf16 = Layout<Stored::bf16, Stored::bf16>;

// Runs op through run_converted when the call's storage is one of its layouts.
template <class Op>
bool run_in_registers(const Op& op, const OptimizerCall<float>& call, int64_t tensor,
                      int64_t begin, int64_t end) {
  constexpr unsigned states = (Op::kRead | Op::kWrite) & ~(slot_bit(ops::kParamsSlot) | slot_bit(ops::kGradsSlot));
  if (call.dtypes[ops::kParamsSlot] != DType::bfloat16 || call.dtypes[ops::kGradsSlot] != DType::bfloat16)
    return false;
  DType state_dtype = DType::float32;
  for (int k = 0; k < kMaxOperands; ++k)
    if (states >> k & 1u) state_dtype = call.dtypes[k];  // (one dtype for all: bind/optimizer.h)
  const bool f32_states = state_dtype == DType::float32;
  switch (call.param_storage) {
    case ParamStorage::nearest:
      if (f32_states) run_converted<Layout<Stored::bf16, Stored::f32>>(op, call, tensor, begin, end);
      else if (state_dtype == DType::bfloat16) run_converted<Layout<Stored::bf16, Stored::bf16>>(op, call, tensor, begin, end);
      else return false;
      return true;
    case ParamStorage::master:
      if (!f32_states) return false;
      run_converted<Layout<Stored::master, Stored::f32>>(op, call, tensor, begin, end);
      return true;
    case ParamStorage::remainder:
      if (!f32_states) return false;
      run_converted<Layout<Stored::remainder, Stored::f32>>(op, call, tensor, begin, end);
      return true;
    case ParamStorage::stochastic:
      return false;
  }
  return false;
}

// Runs op over elements [begin, end) of a tensor: in place on the arrays when the
// call holds nothing but S, converting in registers for the layouts above, else
// tile by tile (float32 compute only: a float64 call is float64 throughout,
// bind/optimizer.h).
template <class Op, class S>
void run_optimizer(const Op& op, const OptimizerCall<S>& call, int64_t tensor, int64_t begin,
                   int64_t end) {
  if constexpr (std::is_same_v<S, float>) {
    if (!call.native()) {
      if (!run_in_registers(op, call, tensor, begin, end)) run_tiles(op, call, tensor, begin, end);
      return;
    }
  }
  S* a[kMaxOperands];
  for (int k = 0; k < kMaxOperands; ++k) a[k] = static_cast<S*>(call.operands[tensor][k]);
  apply<Op::kRead, Op::kWrite>(a, begin, end, op);
}

}  // namespace NNFAST_ISA
}  // namespace nnfast::cpu
