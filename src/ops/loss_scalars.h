// Scalars of the losses, derived on the host once per call (like optim_scalars.h):
// the reduction of the summed terms, the gradient's scale, label smoothing.
// Shared by the CPU and CUDA drivers; not in an ISA namespace.
#pragma once

#include <cstdint>

#include "call/loss_options.h"

namespace nnfast::ops {

// The reduced loss from the float64 sum of its terms: "sum" the sum, "mean" over
// count; "none" returns 0 (the per-element or per-row losses are the result).
inline double reduce_loss(double total, int64_t count, Reduction reduction) {
  if (reduction == Reduction::mean) return total / static_cast<double>(count);
  return reduction == Reduction::sum ? total : 0.0;
}

// The factor every term's gradient is scaled by: factor / count for "mean", else
// factor (MSE's factor is 2, from d/dp (p - t)^2), rounded once to T.
template <class T>
T grad_scale(Reduction reduction, int64_t count, double factor = 1.0) {
  return reduction == Reduction::mean ? T(factor / static_cast<double>(count)) : T(factor);
}

// The count "mean" divides softmax cross-entropy by: the rows not ignored for
// class ids (PyTorch's), every row for probability targets.
inline int64_t mean_divisor(const SoftmaxCrossEntropyOptions& o, int64_t rows) {
  return o.rows.labels ? o.counted_rows : rows;
}

// PyTorch's label smoothing over C classes: t' = keep * t + smooth, keep = 1 - eps,
// smooth = eps / C (a class id's one-hot target gives keep + smooth and smooth).
template <class T>
struct LabelSmoothing {
  T keep;
  T smooth;
};

template <class T>
LabelSmoothing<T> label_smoothing(double eps, int64_t classes) {
  return {T(1.0 - eps), T(eps / static_cast<double>(classes))};
}

}  // namespace nnfast::ops
