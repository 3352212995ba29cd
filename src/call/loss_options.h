// The options of a loss call, as every backend's driver takes them.
#pragma once

#include <cstdint>

namespace nnfast {

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
