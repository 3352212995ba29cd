// The arrays of one kernel call, as the CPU drivers see them: validated,
// contiguous, all of one dtype T.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "cpu/kernels.h"

namespace nnfast::cpu {

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

}  // namespace nnfast::cpu
