// CUDA drivers of the activations: the functors of ops/functors.h over the
// chunked apply loop (one tensor; operands out, x or out, a, dy).
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
  ops::with_activation_op<ops::ActivationForwardOp>(kind, ops::narrow<T>(alpha, "alpha"),
                                                    [&](const auto& op) { apply(t, op); });
}

template <class T>
void Drivers::activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n,
                                  double alpha) {
  const TensorList<T> t = one_tensor(n, out, a, dy);
  ops::with_activation_op<ops::ActivationBackwardOp>(kind, ops::narrow<T>(alpha, "alpha"),
                                                     [&](const auto& op) { apply(t, op); });
}

template void Drivers::activation_forward<float>(Activation, const float*, float*, int64_t, double);
template void Drivers::activation_forward<double>(Activation, const double*, double*, int64_t, double);
template void Drivers::activation_backward<float>(Activation, const float*, const float*, float*, int64_t, double);
template void Drivers::activation_backward<double>(Activation, const double*, const double*, double*, int64_t, double);

}  // namespace nnfast::cuda
