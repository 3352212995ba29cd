// CPU drivers of the losses. Each computes the loss and its gradient in one pass
// over the inputs; "none" writes per-element (MSE) or per-row losses to `losses`.
// Returned values are the reduced loss ("sum" or "mean"), summed in double over
// fixed chunks, so they do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/kernels.h"

namespace nnfast::cpu {

template <class T>
double mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n, Reduction reduction);

template <class T>
double cross_entropy(const T* probs, const T* target, T* grad, T* row_losses, int64_t rows,
                     int64_t classes, Reduction reduction);

// target_probs is null when options.rows.labels holds class ids.
template <class T>
double softmax_cross_entropy(const T* logits, const T* target_probs, T* grad, T* row_losses,
                             int64_t rows, int64_t classes,
                             const SoftmaxCrossEntropyOptions& options);

template <class T>
double l1_loss(const TensorList<T>& tensors);

template <class T>
double l2_loss(const TensorList<T>& tensors);

}  // namespace nnfast::cpu
