// CUDA drivers of the activations: the functors of ops/functors.h over the
// chunked apply loop (one tensor; operands out, x or out, a, dy), computed in
// ComputeType<T>: bfloat16 and float16 elements are widened to float32 and each
// result rounded once to nearest even (apply.cuh), the CPU's 16-bit semantics.
#include "apply.cuh"
#include "drivers.h"
#include "ops/narrow.h"

namespace nnfast::cuda {

namespace {

template <class T>
TensorList<T> one_tensor(int64_t n, T* a, const T* b, const T* c = nullptr) {
  TensorList<T> t;
  t.operands.push_back({a, const_cast<T*>(b), const_cast<T*>(c), nullptr, nullptr});
  t.sizes.push_back(n);
  return t;
}

}  // namespace

template <class T>
void Drivers::activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha) {
  const TensorList<T> t = one_tensor(n, out, x);
  ops::with_activation_op<ops::ActivationForwardOp>(kind, ops::narrow<ComputeType<T>>(alpha, "alpha"),
                                                    [&](const auto& op) { apply(t, op); });
}

template <class T>
void Drivers::activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n,
                                  double alpha) {
  const TensorList<T> t = one_tensor(n, out, a, dy);
  ops::with_activation_op<ops::ActivationBackwardOp>(kind, ops::narrow<ComputeType<T>>(alpha, "alpha"),
                                                     [&](const auto& op) { apply(t, op); });
}

#define NNFAST_INSTANTIATE(T)                                                                   \
  template void Drivers::activation_forward<T>(Activation, const T*, T*, int64_t, double);         \
  template void Drivers::activation_backward<T>(Activation, const T*, const T*, T*, int64_t, double);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
NNFAST_INSTANTIATE(Bfloat16)
NNFAST_INSTANTIATE(Float16)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cuda
