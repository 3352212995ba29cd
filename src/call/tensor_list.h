// The arrays of a multi-tensor call of one dtype (activations, losses, l1/l2), as
// every backend's driver takes them: raw pointers, already validated (src/bind/).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace nnfast {

// The most arrays one formula touches per element: p, g and three states (Adam
// with AMSGrad: m, v, vmax; centered RMSprop with momentum: q, c, b).
constexpr int kMaxOperands = 5;

// The arrays of a multi-tensor call, all of one dtype T and contiguous.
template <class T>
struct TensorList {
  std::vector<std::array<T*, kMaxOperands>> operands;  // per tensor; unused slots null
  std::vector<int64_t> sizes;                           // elements per tensor

  int64_t total() const {
    int64_t n = 0;
    for (int64_t s : sizes) n += s;
    return n;
  }
};

}  // namespace nnfast
