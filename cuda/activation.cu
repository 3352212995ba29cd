// CUDA drivers of the activations: the ops/activation.h formulas over the
// chunked apply loop (one tensor; operands out, x or out, a, dy).
#include "apply.cuh"
#include "drivers.h"
#include "ops/activation.h"

namespace nnfast::cuda {

namespace {

template <class T, Activation Kind>
struct ForwardOp {
  static constexpr unsigned kRead = 2, kWrite = 1;
  T alpha;
  __device__ void operator()(T* v) const {
    if constexpr (Kind == Activation::sigmoid) v[0] = ops::sigmoid_forward(v[1]);
    else if constexpr (Kind == Activation::tanh) v[0] = ops::tanh_forward(v[1]);
    else if constexpr (Kind == Activation::relu) v[0] = ops::relu_forward(v[1]);
    else v[0] = ops::leaky_relu_forward(v[1], alpha);
  }
};

template <class T, Activation Kind>
struct BackwardOp {
  static constexpr unsigned kRead = 2 | 4, kWrite = 1;
  T alpha;
  __device__ void operator()(T* v) const {
    if constexpr (Kind == Activation::sigmoid) v[0] = ops::sigmoid_backward(v[1], v[2]);
    else if constexpr (Kind == Activation::tanh) v[0] = ops::tanh_backward(v[1], v[2]);
    else if constexpr (Kind == Activation::relu) v[0] = ops::relu_backward(v[1], v[2]);
    else v[0] = ops::leaky_relu_backward(v[1], v[2], alpha);
  }
};

template <class T>
TensorList<T> one_tensor(int64_t n, T* a, const T* b, const T* c = nullptr) {
  TensorList<T> t;
  t.operands.push_back({a, const_cast<T*>(b), const_cast<T*>(c), nullptr, nullptr});
  t.sizes.push_back(n);
  return t;
}

// Runs Op<T, kind> for the runtime kind.
template <template <class, Activation> class Op, int Depth, class T>
void run(Activation kind, const TensorList<T>& t, T alpha) {
  switch (kind) {
    case Activation::sigmoid: return apply<Depth>(t, Op<T, Activation::sigmoid>{alpha});
    case Activation::tanh: return apply<Depth>(t, Op<T, Activation::tanh>{alpha});
    case Activation::relu: return apply<Depth>(t, Op<T, Activation::relu>{alpha});
    case Activation::leaky_relu: return apply<Depth>(t, Op<T, Activation::leaky_relu>{alpha});
  }
}

}  // namespace

template <class T>
void Drivers::activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha) {
  run<ForwardOp, 2>(kind, one_tensor(n, out, x), T(alpha));
}

template <class T>
void Drivers::activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n,
                                  double alpha) {
  run<BackwardOp, 3>(kind, one_tensor(n, out, a, dy), T(alpha));
}

template void Drivers::activation_forward<float>(Activation, const float*, float*, int64_t, double);
template void Drivers::activation_forward<double>(Activation, const double*, double*, int64_t, double);
template void Drivers::activation_backward<float>(Activation, const float*, const float*, float*, int64_t, double);
template void Drivers::activation_backward<double>(Activation, const double*, const double*, double*, int64_t, double);

}  // namespace nnfast::cuda
