// An optimizer step as every backend's driver takes it: the operand arrays of each
// tensor as raw pointers with the storage dtype of each slot, the scalars of each
// tensor, and how the updated parameter is stored. Already validated (src/bind/).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "call/dtype.h"
#include "call/tensor_list.h"
#include "ops/optimizers.h"
#include "ops/precision.h"

namespace nnfast {

// The slot beside the formula's operands that holds a parameter's companion: its
// float32 master, or the int16 low halves of it.
constexpr int kCompanionSlot = kMaxOperands;
constexpr int kOperandSlots = kMaxOperands + 1;

// How a step stores the updated parameter p, computed in S:
enum class ParamStorage : uint8_t {
  nearest,     // params hold p, rounded to nearest even when they are 16-bit
  stochastic,  // 16-bit params hold p rounded stochastically (ops/precision.h)
  master,      // the float32 companion is p (read and written); params = round_nearest(p)
  remainder,   // bfloat16 params and the int16 companion are p, bit for bit
};

template <class S>
struct OptimizerCall {
  std::vector<std::array<void*, kOperandSlots>> operands;  // per tensor; unused slots null
  std::vector<int64_t> sizes;                               // elements per tensor
  std::vector<ops::OptimizerScalars<S>> scalars;            // the distinct scalars of the call
  std::vector<uint32_t> scalars_of_tensor;                  // index into scalars, per tensor
  std::array<DType, kOperandSlots> dtypes{};                // storage of each slot
  ParamStorage param_storage = ParamStorage::nearest;
  uint64_t seed = 0;           // stochastic rounding: the key of tensor i is (seed, steps[i])
  std::vector<int64_t> steps;  // per tensor, with stochastic rounding
  // grads[i] = grad_scale * grads[i] as well (ops::StoresScaledGrads).
  bool stores_scaled_grads = false;
  // Null, or one float32 in the call's memory (host or device): nonzero skips the
  // whole step, with nothing written (GradScaler's found_inf). Read by the driver's
  // own side, so a GPU caller needs no sync (LAMB's aside, which reads it on the host).
  const float* found_inf = nullptr;
  // Null, or one float32 on the device that every gradient is multiplied by too
  // (GPU calls whose grad_scale is a device array; a host value is in the scalars).
  const float* device_grad_scale = nullptr;

  ops::StochasticKey key_of(int64_t tensor) const {
    return {seed, static_cast<uint64_t>(steps[tensor])};
  }

  int64_t total() const {
    int64_t n = 0;
    for (int64_t s : sizes) n += s;
    return n;
  }

  // Whether every slot used holds S itself (no conversion anywhere).
  bool native() const {
    if (param_storage != ParamStorage::nearest) return false;
    for (int k = 0; k < kMaxOperands; ++k)
      if (dtypes[k] != dtype_of<S>()) return false;
    return true;
  }
};

}  // namespace nnfast
