// The CPU driver of adafactor_step (ops/optimizers/adafactor.h has the math).
//
// A step of one tensor is three passes over its elements, each cut into blocks
// whose bounds depend only on the tensor's shape:
//   1. sums of g'^2 per block row and per block column (factored) and of p^2 per block,
//   2. the factored moments (or v elementwise) updated, and the sum of u^2 per block,
//   3. p updated with the tensor's step size.
// A block's sums are in double, in eight lanes fixed by the element's place in its run
// (adafactor.cpp), and the blocks' sums are added in block order, so a step has the same
// bits for any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/optimizers/adafactor.h"

namespace nnfast::cpu {

// One tensor of a call: params and grads of `count` elements; factored ones are
// viewed as (batch, rows, cols) with row_vars of batch * rows and col_vars of
// batch * cols elements, unfactored ones have variances of `count` elements.
template <class S>
struct AdafactorTensor {
  S* params;
  S* grads;  // written only with store_scaled_grads
  S* row_vars;   // null when unfactored
  S* col_vars;
  S* variances;  // null when factored
  int64_t count;
  int64_t batch;
  int64_t rows;
  int64_t cols;
  ops::AdafactorScalars<S> scalars;
};

// Runs the step of every tensor (the caller has checked the whole call and skips
// a step whose found_inf is set).
template <class S>
void adafactor_step(const ops::AdafactorHyper& h, const std::vector<AdafactorTensor<S>>& tensors);

}  // namespace nnfast::cpu
