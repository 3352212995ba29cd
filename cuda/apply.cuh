// The one chunked apply loop of the elementwise CUDA drivers (optimizer steps,
// activations, MSE, l1/l2), after NVIDIA apex's multi_tensor_apply.
//
// The tensors of a call are cut into chunks of kChunkElements; each block of a
// launch runs one chunk. A launch carries, as kernel arguments, the pointers and
// sizes of as many tensors and the (tensor, chunk) of as many blocks as fit in
// the 32 KiB of kernel-argument space that CUDA 12.1+ gives on Volta and newer,
// so a list of tensors costs few launches. Indices are 64-bit, so tensors past
// 2^31 elements work.
//
// How the operands of an element are loaded and stored is the launch's storage
// policy. NativeStorage (below) holds every operand in the call's one storage type
// S (float, double, Bfloat16 or Float16), computed in ComputeType<S>: where every
// operand of a tensor is 16-byte aligned, each thread moves 16 bytes per operand
// and access (4 floats, 2 doubles, 8 16-bit values); otherwise one element at a
// time, in the same order. The optimizer steps' converting policy (storage.cuh) reads
// and writes mixed 16-bit and float32 arrays, float32 masters and int16
// remainders. A policy P gives:
//   P::Value               the type the Op computes in
//   P::kDepth              the Op's operand count (ops::operand_count)
//   P::kLanes              the consecutive elements a thread takes at once (a group)
//   P::kSlots, P::Extra    the pointers per tensor in the ChunkTable, and the
//                          per-tensor facts beside them (void: none)
//   p.arrays<Used>(table, tensor), on the device: the tensor's arrays, with
//     load<Read>(i, lane) / store<Write>(i, lane)   the group of elements
//         [i, i + kLanes), lane[k][j] operand k of element i + j
//     load_one<Read>(i, x) / store_one<Write>(i, x)  element i alone, x[k] operand k
//   (i is the element's index in its tensor; a group starts at a multiple of kLanes).
//
// An Op is a functor of src/ops/functors.h or ops/optimizers/ (the CPU loop runs
// the same ones): it holds the call's scalars and runs the ops/ formula on x[0..],
// the operands of one element in TensorList order, those in Op::kRead loaded
// first and those in Op::kWrite stored after. An Op that returns a value is a
// reduction: the block's terms are summed in double (or combined by the Op's
// Combine), in a fixed order, into partials[the chunk's index in the call].
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "call/dtype.h"
#include "call/tensor_list.h"
#include "ops/functors.h"
#include "ops/precision.h"
#include "runtime.cuh"

namespace nnfast::cuda {

constexpr int64_t kChunkElements = 65536;
constexpr int kApplyThreads = 512;
constexpr int kMaxBlocksPerLaunch = 2048;
// Kernel arguments: 32,764 bytes on sm_70+ with CUDA 12.1+ (kArgumentLimit); the
// table is sized to kArgumentBytes, leaving a margin for the Op and the policy.
constexpr int kArgumentLimit = 32764;
constexpr int kArgumentBytes = 31744;

// The per-tensor facts a storage policy keeps beside the pointers and sizes:
// none (void) takes no bytes, as an empty base.
template <class Extra, int Tensors>
struct ExtraColumn {
  Extra extra[Tensors];
};
template <int Tensors>
struct ExtraColumn<void, Tensors> {};

template <class Extra>
struct ExtraBytes {
  static constexpr int value = sizeof(Extra);
};
template <>
struct ExtraBytes<void> {
  static constexpr int value = 0;
};

// Tensors per launch: what the argument space holds after the blocks' (tensor,
// chunk) pairs (6 bytes each), at Slots pointers, a size and the extra per tensor.
template <int Slots, class Extra>
constexpr int tensors_per_launch() {
  return (kArgumentBytes - 256 - kMaxBlocksPerLaunch * 6) / (8 * Slots + 8 + ExtraBytes<Extra>::value);
}

template <int Slots, class Extra = void>
struct ChunkTable : ExtraColumn<Extra, tensors_per_launch<Slots, Extra>()> {
  static constexpr int kTensors = tensors_per_launch<Slots, Extra>();
  void* operands[Slots][kTensors];
  int64_t sizes[kTensors];
  int32_t chunk_of_block[kMaxBlocksPerLaunch];
  uint16_t tensor_of_block[kMaxBlocksPerLaunch];
};

// An element of storage type S in its compute type C = ComputeType<S>, and a C
// value stored as S: float and double as they are; bfloat16 and float16 widened
// exactly and rounded once to nearest even by the conversions of ops/precision.h,
// which the CPU's 16-bit kernels are held to bit for bit.
template <class S>
__device__ __forceinline__ ComputeType<S> to_compute(S x) {
  if constexpr (std::is_same_v<S, Bfloat16>) return ops::bf16_to_float(x.bits);
  else if constexpr (std::is_same_v<S, Float16>) return ops::half_to_float(x.bits);
  else return x;
}

template <class S>
__device__ __forceinline__ S to_storage(ComputeType<S> v) {
  if constexpr (std::is_same_v<S, Bfloat16>) return {ops::float_to_bf16(v)};
  else if constexpr (std::is_same_v<S, Float16>) return {ops::float_to_half(v)};
  else return v;
}

// N consecutive elements from src to dst (one side the global array, the other
// registers): as 16-byte accesses when vector (both 16-byte aligned, N elements a whole
// number of 16 bytes), else one element at a time.
template <int N, class W>
__device__ __forceinline__ void copy_words(W* dst, const W* src, bool vector) {
  if constexpr (N * sizeof(W) % 16 == 0) {
    if (vector) {
#pragma unroll
      for (int v = 0; v < static_cast<int>(N * sizeof(W) / 16); ++v)
        reinterpret_cast<uint4*>(dst)[v] = reinterpret_cast<const uint4*>(src)[v];
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < N; ++j) dst[j] = src[j];
}

// Every operand in the storage type S, computed in ComputeType<S> (to_compute on
// load, to_storage on store): 16-byte accesses where the tensor's operands are all
// 16-byte aligned, else element by element.
template <class S, int Depth>
struct NativeStorage {
  using Value = ComputeType<S>;
  using Extra = void;
  static constexpr int kDepth = Depth;
  static constexpr int kSlots = Depth;
  static constexpr int kLanes = 16 / sizeof(S);
  using Table = ChunkTable<kSlots, Extra>;

  struct Arrays {
    S* a[Depth];
    bool aligned;

    template <unsigned Read>
    __device__ void load(int64_t i, Value (&lane)[Depth][kLanes]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k) {
        if (!(Read >> k & 1u)) continue;
        alignas(16) S group[kLanes];
        copy_words<kLanes>(group, a[k] + i, aligned);
#pragma unroll
        for (int j = 0; j < kLanes; ++j) lane[k][j] = to_compute(group[j]);
      }
    }

    template <unsigned Write>
    __device__ void store(int64_t i, const Value (&lane)[Depth][kLanes]) const {
#pragma unroll
      for (int k = 0; k < Depth; ++k) {
        if (!(Write >> k & 1u)) continue;
        alignas(16) S group[kLanes];
#pragma unroll
        for (int j = 0; j < kLanes; ++j) group[j] = to_storage<S>(lane[k][j]);
        copy_words<kLanes>(a[k] + i, group, aligned);
      }
    }

    template <unsigned Read>
    __device__ void load_one(int64_t i, Value (&x)[Depth]) const {
      for (int k = 0; k < Depth; ++k)
        if (Read >> k & 1u) x[k] = to_compute(a[k][i]);
    }

    template <unsigned Write>
    __device__ void store_one(int64_t i, const Value (&x)[Depth]) const {
      for (int k = 0; k < Depth; ++k)
        if (Write >> k & 1u) a[k][i] = to_storage<S>(x[k]);
    }
  };

  template <unsigned Used>
  __device__ Arrays arrays(const Table& table, int tensor) const {
    Arrays arrays;
    arrays.aligned = true;
    for (int k = 0; k < Depth; ++k) {
      arrays.a[k] = static_cast<S*>(table.operands[k][tensor]);
      if (Used >> k & 1u) arrays.aligned &= reinterpret_cast<uintptr_t>(arrays.a[k]) % 16 == 0;
    }
    return arrays;
  }
};

template <class Op, class T>
constexpr bool kIsReduction = !std::is_void_v<decltype(std::declval<const Op&>()(std::declval<T*>()))>;

// How a reduction combines its terms: Op::Combine where the Op names one (the
// max of an inf-norm), else Add. 0 must be its identity.
template <class Op, class = void>
struct CombineOf {
  using type = Add;
};
template <class Op>
struct CombineOf<Op, std::void_t<typename Op::Combine>> {
  using type = typename Op::Combine;
};

template <class T, class Op>
__device__ __forceinline__ double apply_one(const Op& op, T* x) {
  if constexpr (kIsReduction<Op, T>) {
    return static_cast<double>(op(x));
  } else {
    op(x);
    return 0.0;
  }
}

template <class Storage, class Op>
__global__ void __launch_bounds__(kApplyThreads)
apply_kernel(const __grid_constant__ typename Storage::Table table, const __grid_constant__ Op op,
             const __grid_constant__ Storage storage, double* partials, int64_t first_partial,
             const float* skip) {
  if (skip && *skip != 0.0f) return;
  using T = typename Storage::Value;
  constexpr int Depth = Storage::kDepth;
  constexpr int lanes = Storage::kLanes;
  static_assert(kChunkElements % lanes == 0, "groups start at multiples of kLanes in their tensor");
  const int tensor = table.tensor_of_block[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(table.chunk_of_block[blockIdx.x]) * kChunkElements;
  const int64_t end = min(begin + kChunkElements, table.sizes[tensor]);
  const auto arrays = storage.template arrays<Op::kRead | Op::kWrite>(table, tensor);
  // Each thread takes groups of `lanes` consecutive elements, then the tail one
  // element at a time: the same elements in the same order however the policy
  // moves them, so a reduction's bits do not depend on the arrays' alignment.
  const int64_t groups = (end - begin) / lanes;
  const typename CombineOf<Op>::type combine{};
  double sum = 0.0;
  T x[Depth];
  for (int64_t v = threadIdx.x; v < groups; v += blockDim.x) {
    const int64_t i = begin + v * lanes;
    alignas(16) T lane[Depth][lanes];
    arrays.template load<Op::kRead>(i, lane);
#pragma unroll
    for (int j = 0; j < lanes; ++j) {
      for (int k = 0; k < Depth; ++k) x[k] = lane[k][j];
      sum = combine(sum, apply_one<T>(op, x));
      for (int k = 0; k < Depth; ++k) lane[k][j] = x[k];
    }
    arrays.template store<Op::kWrite>(i, lane);
  }
  for (int64_t i = begin + groups * lanes + threadIdx.x; i < end; i += blockDim.x) {
    arrays.template load_one<Op::kRead>(i, x);
    sum = combine(sum, apply_one<T>(op, x));
    arrays.template store_one<Op::kWrite>(i, x);
  }
  if constexpr (kIsReduction<Op, T>) {
    __shared__ double scratch[32];
    sum = block_reduce(sum, 0.0, scratch, combine);
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

// Runs op over every element of the tensors of the given sizes, moved by storage,
// on the current launch's stream; partials (chunk_count entries) for a reduction.
// fill(t, table, slot) writes tensor t's pointers (and extra facts) into the
// table's entry `slot`. A nonzero *skip (a device float, read by every block)
// leaves everything unwritten.
template <class Storage, class Op, class Fill>
void apply_chunks(const Storage& storage, const Op& op, const std::vector<int64_t>& sizes,
                  const Fill& fill, double* partials, const float* skip = nullptr) {
  using Table = typename Storage::Table;
  static_assert(Storage::kDepth == ops::operand_count(Op::kRead | Op::kWrite));
  static_assert(sizeof(Table) + sizeof(Op) + sizeof(Storage) + 2 * sizeof(int64_t) + 32 <= kArgumentLimit,
                "the kernel's arguments exceed CUDA's kernel-argument space");
  const cudaStream_t stream = current_stream();
  // Built on the host, passed by value as the kernel's argument at each launch.
  static thread_local Table table;
  int tensors = 0, blocks = 0;
  int64_t launched = 0;
  const auto launch = [&] {
    apply_kernel<Storage, Op><<<blocks, kApplyThreads, 0, stream>>>(table, op, storage, partials, launched,
                                                                   skip);
    check_launch("apply_kernel");
    launched += blocks;
    blocks = 0;
  };
  for (size_t t = 0; t < sizes.size(); ++t) {
    const int64_t size = sizes[t];
    if (size == 0) continue;
    const int slot = tensors++;
    fill(t, table, slot);
    table.sizes[slot] = size;
    const int64_t chunks = (size + kChunkElements - 1) / kChunkElements;
    for (int64_t c = 0; c < chunks; ++c) {
      table.tensor_of_block[blocks] = static_cast<uint16_t>(tensors - 1);
      table.chunk_of_block[blocks] = static_cast<int32_t>(c);
      ++blocks;
      const bool last_chunk = c + 1 == chunks;
      if (blocks == kMaxBlocksPerLaunch || (tensors == Table::kTensors && last_chunk)) {
        launch();
        if (last_chunk) {
          tensors = 0;
        } else {  // the tensor goes on in the next launch, as its first
          fill(t, table, 0);
          table.sizes[0] = size;
          tensors = 1;
        }
      }
    }
  }
  if (blocks > 0) launch();
}

// Runs op (a functor over ComputeType<S>) over every element of every tensor of
// list, whose arrays all hold S (NativeStorage).
template <class S, class Op>
void apply(const TensorList<S>& list, const Op& op, double* partials = nullptr) {
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  using Storage = NativeStorage<S, Depth>;
  apply_chunks(Storage{}, op, list.sizes, [&](size_t t, typename Storage::Table& table, int slot) {
    for (int k = 0; k < Depth; ++k) table.operands[k][slot] = list.operands[t][k];
  }, partials);
}

}  // namespace nnfast::cuda
