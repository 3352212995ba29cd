// CUDA drivers of the gradient norms and clipping: the norm terms over the chunked
// apply loop (one double partial per chunk), then one block that combines each
// tensor's chunks in order, the tensors in a fixed order, and writes the norms to
// device memory; clipping derives its coefficient on the device from that total
// and scales the gradients in place. Nothing waits for the GPU. The per-element
// math is that of ops/norms.h, as on the CPU.
#include <vector>

#include "apply.cuh"
#include "drivers.h"
#include "ops/norms.h"

namespace nnfast::cuda {

namespace {

template <NormOrder Order>
struct NormCombine {
  __device__ double operator()(double acc, double term) const {
    return ops::norm_combine<Order>(acc, term);
  }
};

// The term |scale x|^p of one element, in double.
template <class T, NormOrder Order>
struct NormTermOp {
  static constexpr unsigned kRead = ops::kOp0, kWrite = 0;
  using Combine = NormCombine<Order>;
  double scale, p;
  __device__ double operator()(T* x) const {
    return ops::norm_term<Order>(static_cast<double>(x[0]), scale, p);
  }
};

// One block: thread j takes tensors j, j + blockDim.x, ..., each tensor's chunk
// partials [first_chunk[t], first_chunk[t + 1]) in order; the threads' results
// are then combined by block_reduce's fixed butterfly.
template <class T, NormOrder Order>
__global__ void __launch_bounds__(1024)
finish_norms(const double* partials, const int64_t* first_chunk, int64_t tensors, double p,
             T* total, T* per_tensor) {
  const NormCombine<Order> combine;
  double acc = 0.0;
  for (int64_t t = threadIdx.x; t < tensors; t += blockDim.x) {
    double tensor_acc = 0.0;
    for (int64_t c = first_chunk[t]; c < first_chunk[t + 1]; ++c)
      tensor_acc = combine(tensor_acc, partials[c]);
    if (per_tensor) per_tensor[t] = static_cast<T>(ops::norm_finish<Order>(tensor_acc, p));
    acc = combine(acc, tensor_acc);
  }
  __shared__ double scratch[32];
  acc = block_reduce(acc, 0.0, scratch, combine);
  if (threadIdx.x == 0) *total = static_cast<T>(ops::norm_finish<Order>(acc, p));
}

template <class T>
__global__ void clip_coefficient_kernel(const T* total, double max_norm, T* coefficient) {
  *coefficient = ops::clip_coefficient<T>(static_cast<double>(*total), max_norm);
}

// g = coefficient * g, the coefficient read from device memory (operands g, g).
template <class T>
struct DeviceScaleOp {
  static constexpr unsigned kRead = ops::ScaleOp<T>::kRead, kWrite = ops::ScaleOp<T>::kWrite;
  const T* coefficient;
  __device__ void operator()(T* v) const { ops::ScaleOp<T>{*coefficient}(v); }
};

}  // namespace

template <class T>
void Drivers::grad_norm_to(const TensorList<T>& grads, const NormSpec& spec, T* total,
                           T* per_tensor) {
  const int64_t tensors = static_cast<int64_t>(grads.sizes.size());
  std::vector<int64_t> first_chunk(tensors + 1, 0);
  for (int64_t t = 0; t < tensors; ++t)
    first_chunk[t + 1] = first_chunk[t] + (grads.sizes[t] + kChunkElements - 1) / kChunkElements;
  DeviceBuffer<double> partials(first_chunk[tensors]);
  DeviceBuffer<int64_t> chunk_offsets(tensors + 1);
  const cudaStream_t stream = current_stream();
  // (From pageable memory: the copy is staged before cudaMemcpyAsync returns.)
  check(cudaMemcpyAsync(chunk_offsets.get(), first_chunk.data(), (tensors + 1) * sizeof(int64_t),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  ops::with_norm_order(spec.order, [&](auto order) {
    constexpr NormOrder Order = decltype(order)::value;
    apply(grads, NormTermOp<T, Order>{spec.scale, spec.p}, partials.get());
    finish_norms<T, Order><<<1, 1024, 0, stream>>>(partials.get(), chunk_offsets.get(), tensors,
                                                   spec.p, total, per_tensor);
    check_launch("finish_norms");
  });
}

template <class T>
void Drivers::clip_to_norm(const TensorList<T>& grads, const T* total, double max_norm) {
  DeviceBuffer<T> coefficient(1);
  clip_coefficient_kernel<T><<<1, 1, 0, current_stream()>>>(total, max_norm, coefficient.get());
  check_launch("clip_coefficient_kernel");
  TensorList<T> in_place;
  in_place.sizes = grads.sizes;
  for (const auto& operands : grads.operands)
    in_place.operands.push_back({operands[0], operands[0], nullptr, nullptr, nullptr});
  apply(in_place, DeviceScaleOp<T>{coefficient.get()});
}

template <class T>
T Drivers::norm_value(const T* total) {
  T host;
  copy_to_host(&host, total, 1);
  return host;
}

#define NNFAST_INSTANTIATE(T)                                                          \
  template void Drivers::grad_norm_to<T>(const TensorList<T>&, const NormSpec&, T*, T*); \
  template void Drivers::clip_to_norm<T>(const TensorList<T>&, const T*, double);       \
  template T Drivers::norm_value<T>(const T*);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cuda
