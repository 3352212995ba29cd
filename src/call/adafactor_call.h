// An adafactor_step as every backend's driver takes it, checked whole by
// bind/adafactor.h: per tensor, its arrays as raw pointers, its shape viewed as
// (batch, rows, cols) and its scalars; one storage dtype per role, and how the
// updated parameter is stored (call/optimizer_call.h's ParamStorage). Its states are
// not shaped like the params, so it is not an OptimizerCall.
#pragma once

#include <cstdint>
#include <vector>

#include "call/dtype.h"
#include "call/optimizer_call.h"
#include "ops/optimizers/adafactor.h"

namespace nnfast {

template <class S>
struct AdafactorTensor {
  void* params;
  void* grads;      // written only with hyper.store_scaled_grads
  void* companion;  // the float32 master or int16 remainders of the params, or null
  // Factored (params of >= 2 dims): row_vars of batch * rows and col_vars of
  // batch * cols elements, variances null; unfactored: variances of count elements,
  // row_vars and col_vars null, batch = rows = 1, cols = count.
  void* row_vars;
  void* col_vars;
  void* variances;
  bool factored;
  int64_t count;
  int64_t batch;
  int64_t rows;
  int64_t cols;
  int64_t step;  // stochastic rounding's key is (seed, step)
  ops::AdafactorScalars<S> scalars;
};

template <class S>
struct AdafactorCall {
  ops::AdafactorHyper hyper;
  std::vector<AdafactorTensor<S>> tensors;
  DType params_dtype = dtype_of<S>();
  DType grads_dtype = dtype_of<S>();
  DType states_dtype = dtype_of<S>();  // of row_vars, col_vars and variances alike
  ParamStorage param_storage = ParamStorage::nearest;
  uint64_t seed = 0;
  // As in OptimizerCall: null, or one float32 in the call's memory (nonzero skips the
  // step with nothing written); null, or a device grad_scale every gradient is
  // multiplied by too.
  const float* found_inf = nullptr;
  const float* device_grad_scale = nullptr;

  // Whether every array holds S itself (no conversion anywhere).
  bool native() const {
    return param_storage == ParamStorage::nearest && params_dtype == dtype_of<S>() &&
           grads_dtype == dtype_of<S>() && states_dtype == dtype_of<S>();
  }

  int64_t total() const {
    int64_t n = 0;
    for (const AdafactorTensor<S>& t : tensors) n += t.count;
    return n;
  }
};

}  // namespace nnfast
