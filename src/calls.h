// What the drivers of every backend (src/cpu, cuda/) take: the arrays of one call
// as raw pointers, already validated (src/bind/), and the options of a call.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace nnfast {

// The most arrays one optimizer touches per parameter: p, g and three states
// (Adam with AMSGrad: m, v, vmax; centered RMSprop with momentum: q, c, b).
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

enum class Activation { sigmoid, tanh, relu, leaky_relu };

enum class Reduction { none = 0, sum = 1, mean = 2 };

// What the rows of one softmax cross-entropy call share.
struct SoftmaxCrossEntropyRows {
  const int64_t* labels;  // class ids, or null with probability targets
  bool has_ignore_index;
  int64_t ignore_index;
  double label_smoothing;
};

// Exactly one of rows.labels (class ids, one per row) and the probability targets
// (rows x classes) is given. Labels were checked to lie in [0, classes) or equal
// rows.ignore_index; counted_rows is the number of rows that are not ignored.
struct SoftmaxCrossEntropyOptions {
  Reduction reduction;
  SoftmaxCrossEntropyRows rows;
  int64_t counted_rows;
};

}  // namespace nnfast
