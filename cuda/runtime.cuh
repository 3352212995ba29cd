// Device-side reductions shared by the CUDA drivers (.cu files only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "launch.h"

namespace nnfast::cuda {

// ---------------------------------------------------------------- reductions
// In an order fixed by the launch shape alone: each thread combines its own
// elements in index order, then a fixed butterfly over each warp and over the
// warps' results. The same inputs give the same bits on every run.

constexpr unsigned kFullMask = 0xffffffffu;

template <class V, class Combine>
__device__ __forceinline__ V warp_reduce(V v, const Combine& combine) {
  for (int offset = 16; offset > 0; offset /= 2) v = combine(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Reduces v over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. identity pads the missing warps; scratch holds 32 values.
template <class V, class Combine>
__device__ V block_reduce(V v, V identity, V* scratch, const Combine& combine) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_reduce(v, combine);
  if (blockDim.x == 32) return v;
  __syncthreads();  // scratch may still be read by the previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_reduce(lane < static_cast<int>(blockDim.x / 32) ? scratch[lane] : identity, combine);
}

struct Add {
  template <class V>
  __device__ V operator()(V a, V b) const { return a + b; }
};

// The sum of `count` partial sums on the device, in a fixed order, returned to
// the host (synchronizes).
double sum_on_device(const double* partials, int64_t count);

}  // namespace nnfast::cuda
