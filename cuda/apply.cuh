// The one chunked apply loop of the elementwise CUDA drivers (optimizer steps,
// activations, MSE, l1/l2), after NVIDIA apex's multi_tensor_apply.
//
// The tensors of a call are cut into chunks of kChunkElements; each block of a
// launch runs one chunk. A launch carries, as kernel arguments, the pointers and
// sizes of as many tensors and the (tensor, chunk) of as many blocks as fit in
// the 32 KiB of kernel-argument space that CUDA 12.1+ gives on Volta and newer,
// so a list of tensors costs few launches. Indices are 64-bit, so tensors past
// 2^31 elements work. Where every operand of a tensor is 16-byte aligned, each
// thread moves 16 bytes per operand and access (float4, double2); otherwise one
// element at a time, in the same order.
//
// An Op is a functor of src/ops/functors.h (the CPU loop runs the same ones): it
// holds the call's scalars and runs the ops/ formula on x[0..], the operands of
// one element in TensorList order, those in Op::kRead loaded first and those in
// Op::kWrite stored after. An Op that returns a value is a reduction: the block's
// terms are summed in double, in a fixed order, into partials[the chunk's index
// in the call].
#pragma once

#include <algorithm>
#include <type_traits>

#include "call/tensor_list.h"
#include "ops/functors.h"
#include "runtime.cuh"

namespace nnfast::cuda {

constexpr int64_t kChunkElements = 65536;
constexpr int kApplyThreads = 512;
constexpr int kMaxBlocksPerLaunch = 2048;
// Kernel arguments: 32,764 bytes on sm_70+ with CUDA 12.1+; a margin for the Op.
constexpr int kArgumentBytes = 31744;

template <int Depth>
struct ChunkTable {
  static constexpr int kTensors =
      (kArgumentBytes - 256 - kMaxBlocksPerLaunch * 6) / (8 * Depth + 8);
  void* operands[Depth][kTensors];
  int64_t sizes[kTensors];
  int32_t chunk_of_block[kMaxBlocksPerLaunch];
  uint16_t tensor_of_block[kMaxBlocksPerLaunch];
};

template <class T>
struct Vector16;
template <>
struct Vector16<float> {
  using type = float4;
  static constexpr int lanes = 4;
};
template <>
struct Vector16<double> {
  using type = double2;
  static constexpr int lanes = 2;
};

template <class Op, class T>
constexpr bool kIsReduction = !std::is_void_v<decltype(std::declval<const Op&>()(std::declval<T*>()))>;

template <class T, class Op>
__device__ __forceinline__ double apply_one(const Op& op, T* x) {
  if constexpr (kIsReduction<Op, T>) {
    return static_cast<double>(op(x));
  } else {
    op(x);
    return 0.0;
  }
}

template <class T, int Depth, class Op>
__global__ void __launch_bounds__(kApplyThreads)
apply_kernel(const __grid_constant__ ChunkTable<Depth> table, const __grid_constant__ Op op,
             double* partials, int64_t first_partial) {
  const int tensor = table.tensor_of_block[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(table.chunk_of_block[blockIdx.x]) * kChunkElements;
  const int64_t end = min(begin + kChunkElements, table.sizes[tensor]);
  T* a[Depth];
  bool aligned = true;
  for (int k = 0; k < Depth; ++k) {
    a[k] = static_cast<T*>(table.operands[k][tensor]);
    if ((Op::kRead | Op::kWrite) >> k & 1u) aligned &= reinterpret_cast<uintptr_t>(a[k]) % 16 == 0;
  }
  // Each thread takes groups of `lanes` consecutive elements, loaded as one
  // 16-byte vector per operand where aligned, else element by element: the same
  // elements in the same order either way, so a reduction's bits do not depend
  // on the arrays' alignment.
  using Vec = typename Vector16<T>::type;
  constexpr int lanes = Vector16<T>::lanes;
  const int64_t groups = (end - begin) / lanes;
  double sum = 0.0;
  T x[Depth];
  for (int64_t v = threadIdx.x; v < groups; v += blockDim.x) {
    const int64_t i = begin + v * lanes;
    alignas(16) T lane[Depth][lanes];
    for (int k = 0; k < Depth; ++k) {
      if (!(Op::kRead >> k & 1u)) continue;
      if (aligned) {
        *reinterpret_cast<Vec*>(lane[k]) = *reinterpret_cast<const Vec*>(a[k] + i);
      } else {
        for (int j = 0; j < lanes; ++j) lane[k][j] = a[k][i + j];
      }
    }
    for (int j = 0; j < lanes; ++j) {
      for (int k = 0; k < Depth; ++k) x[k] = lane[k][j];
      sum += apply_one<T>(op, x);
      for (int k = 0; k < Depth; ++k) lane[k][j] = x[k];
    }
    for (int k = 0; k < Depth; ++k) {
      if (!(Op::kWrite >> k & 1u)) continue;
      if (aligned) {
        *reinterpret_cast<Vec*>(a[k] + i) = *reinterpret_cast<const Vec*>(lane[k]);
      } else {
        for (int j = 0; j < lanes; ++j) a[k][i + j] = lane[k][j];
      }
    }
  }
  for (int64_t i = begin + groups * lanes + threadIdx.x; i < end; i += blockDim.x) {
    for (int k = 0; k < Depth; ++k)
      if (Op::kRead >> k & 1u) x[k] = a[k][i];
    sum += apply_one<T>(op, x);
    for (int k = 0; k < Depth; ++k)
      if (Op::kWrite >> k & 1u) a[k][i] = x[k];
  }
  if constexpr (kIsReduction<Op, T>) {
    __shared__ double scratch[32];
    sum = block_reduce(sum, 0.0, scratch, Add{});
    if (threadIdx.x == 0) partials[first_partial + blockIdx.x] = sum;
  }
}

// The number of chunks of a call: the size of its partials for a reduction.
template <class T>
int64_t chunk_count(const TensorList<T>& list) {
  int64_t chunks = 0;
  for (int64_t size : list.sizes) chunks += (size + kChunkElements - 1) / kChunkElements;
  return chunks;
}

// Runs op over every element of every tensor, on the current launch's stream;
// partials (chunk_count entries) for a reduction.
template <class T, class Op>
void apply(const TensorList<T>& list, const Op& op, double* partials = nullptr) {
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  const cudaStream_t stream = current_stream();
  // Built on the host, passed by value as the kernel's argument at each launch.
  static thread_local ChunkTable<Depth> table;
  int tensors = 0, blocks = 0;
  int64_t launched = 0;
  const auto launch = [&] {
    apply_kernel<T, Depth, Op><<<blocks, kApplyThreads, 0, stream>>>(table, op, partials, launched);
    check_launch("apply_kernel");
    launched += blocks;
    blocks = 0;
  };
  for (size_t t = 0; t < list.sizes.size(); ++t) {
    const int64_t size = list.sizes[t];
    if (size == 0) continue;
    const int slot = tensors++;
    for (int k = 0; k < Depth; ++k) table.operands[k][slot] = list.operands[t][k];
    table.sizes[slot] = size;
    const int64_t chunks = (size + kChunkElements - 1) / kChunkElements;
    for (int64_t c = 0; c < chunks; ++c) {
      table.tensor_of_block[blocks] = static_cast<uint16_t>(tensors - 1);
      table.chunk_of_block[blocks] = static_cast<int32_t>(c);
      ++blocks;
      const bool last_chunk = c + 1 == chunks;
      if (blocks == kMaxBlocksPerLaunch || (tensors == ChunkTable<Depth>::kTensors && last_chunk)) {
        launch();
        if (last_chunk) {
          tensors = 0;
        } else {  // the tensor goes on in the next launch, as its first
          for (int k = 0; k < Depth; ++k) table.operands[k][0] = table.operands[k][tensors - 1];
          table.sizes[0] = size;
          tensors = 1;
        }
      }
    }
  }
  if (blocks > 0) launch();
}

}  // namespace nnfast::cuda
