// The device grad_scale of the optimizer steps (optim.cu, adafactor.cu): every
// gradient is first multiplied by a float the kernels read from device memory, a
// grad_scale given as a device array, else a device 1 (so that one instantiation
// serves both; the multiply is exact and costs no traffic). .cu files only.
#pragma once

#include "ops/optimizers/gradient.h"

namespace nnfast::cuda {

// The address of a float 1 in the current device's memory (each device has its own
// copy): the grad_scale of a call without a device one.
const float* device_one();

// g * (*grad_scale), rounded once in V.
template <class V>
__device__ __forceinline__ V device_scaled(V g, const float* grad_scale) {
  return g * V(*grad_scale);
}

// Op with every gradient first multiplied by the device grad_scale; it returns what
// Op returns (a reduction's term, or nothing).
template <class Op>
struct DeviceScaledGrads : Op {
  const float* grad_scale;
  template <class V>
  __device__ auto operator()(V* x) const {
    x[ops::kGradsSlot] = device_scaled(x[ops::kGradsSlot], grad_scale);
    return Op::operator()(x);
  }
};

}  // namespace nnfast::cuda
