#include "cpu/activation.h"

#include "cpu/elementwise.h"
#include "ops/activation.h"

namespace nnfast::cpu {

namespace {

template <class T>
TensorList<T> single(int64_t n, T* a, T* b, T* c = nullptr) {
  return {{{a, b, c, nullptr, nullptr}}, {n}};
}

}  // namespace

// Operands: out, x.
template <class T>
void activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha) {
  const auto t = single<T>(n, out, const_cast<T*>(x));
  const T a = T(alpha);
  switch (kind) {
    case Activation::sigmoid:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::sigmoid_forward(o[1][i]); });
    case Activation::tanh:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::tanh_forward(o[1][i]); });
    case Activation::relu:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::relu_forward(o[1][i]); });
    case Activation::leaky_relu:
      return for_each_element(t, [a](const auto& o, int64_t i) { o[0][i] = ops::leaky_relu_forward(o[1][i], a); });
  }
}

// Operands: out, a (forward output or input), dy.
template <class T>
void activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n, double alpha) {
  const auto t = single<T>(n, out, const_cast<T*>(a), const_cast<T*>(dy));
  const T slope = T(alpha);
  switch (kind) {
    case Activation::sigmoid:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::sigmoid_backward(o[1][i], o[2][i]); });
    case Activation::tanh:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::tanh_backward(o[1][i], o[2][i]); });
    case Activation::relu:
      return for_each_element(t, [](const auto& o, int64_t i) { o[0][i] = ops::relu_backward(o[1][i], o[2][i]); });
    case Activation::leaky_relu:
      return for_each_element(t, [slope](const auto& o, int64_t i) {
        o[0][i] = ops::leaky_relu_backward(o[1][i], o[2][i], slope);
      });
  }
}

template void activation_forward<float>(Activation, const float*, float*, int64_t, double);
template void activation_forward<double>(Activation, const double*, double*, int64_t, double);
template void activation_backward<float>(Activation, const float*, const float*, float*, int64_t, double);
template void activation_backward<double>(Activation, const double*, const double*, double*, int64_t, double);

}  // namespace nnfast::cpu
