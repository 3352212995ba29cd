// CPU drivers of the activations. Forward: out = f(x). Backward: out = f'(a, dy),
// where a is the forward output y (sigmoid, tanh) or the input x (relu, leaky_relu).
#pragma once

#include <cstdint>

#include "cpu/kernels.h"

namespace nnfast::cpu {

template <class T>
void activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha);

template <class T>
void activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n, double alpha);

}  // namespace nnfast::cpu
