#include "cpu/drivers.h"

#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "ops/loss.h"
#include "ops/loss_scalars.h"

namespace nnfast::cpu {

namespace {

// Rows grouped so that a chunk holds about chunk_elements_for(rows * classes) values.
std::vector<Chunk> row_chunks(int64_t rows, int64_t classes) {
  const int64_t values = chunk_elements_for(rows * classes);
  return make_chunks({rows}, std::max<int64_t>(1, values / std::max<int64_t>(1, classes)));
}

}  // namespace

template <class T>
double Drivers::mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n, Reduction reduction) {
  const ComputeType<T> grad_scale = ops::grad_scale<ComputeType<T>>(reduction, n, 2.0);
  const auto& k = kernels().get<T>();
  const double total = deterministic_sum(make_chunks({n}), n, [&](const Chunk& c) {
    return k.mse(pred + c.begin, target + c.begin, grad + c.begin, losses ? losses + c.begin : nullptr,
                 grad_scale, c.end - c.begin);
  });
  return ops::reduce_loss(total, n, reduction);
}

template <class T>
double Drivers::cross_entropy(const T* probs, const T* target, T* grad, T* row_losses, int64_t rows,
                     int64_t classes, Reduction reduction) {
  const ComputeType<T> grad_scale = ops::grad_scale<ComputeType<T>>(reduction, rows);
  const auto& k = kernels().get<T>();
  const double total = deterministic_sum(row_chunks(rows, classes), rows * classes, [&](const Chunk& c) {
    const int64_t offset = c.begin * classes;
    return k.cross_entropy_rows(probs + offset, target + offset, grad + offset,
                                row_losses ? row_losses + c.begin : nullptr, grad_scale, classes,
                                c.end - c.begin);
  });
  return ops::reduce_loss(total, rows, reduction);
}

template <class T>
double Drivers::softmax_cross_entropy(const T* logits, const T* target_probs, T* grad, T* row_losses,
                             int64_t rows, int64_t classes, const SoftmaxCrossEntropyOptions& o) {
  const int64_t divisor = ops::mean_divisor(o, rows);
  const ComputeType<T> grad_scale = ops::grad_scale<ComputeType<T>>(o.reduction, divisor);
  const auto& k = kernels().get<T>();
  const double total = deterministic_sum(row_chunks(rows, classes), rows * classes, [&](const Chunk& c) {
    return k.softmax_cross_entropy_rows(logits, target_probs, grad, row_losses, grad_scale, classes,
                                        c.begin, c.end - c.begin, o.rows);
  });
  return ops::reduce_loss(total, divisor, o.reduction);
}

template <class T>
double Drivers::l1_loss(const TensorList<T>& tensors) {
  const auto& k = kernels().get<T>();
  return deterministic_sum(make_chunks(tensors.sizes), tensors.total(), [&](const Chunk& c) {
    return k.l1_sum(tensors.operands[c.tensor][0] + c.begin, c.end - c.begin);
  });
}

template <class T>
double Drivers::l2_loss(const TensorList<T>& tensors) {
  const auto& k = kernels().get<T>();
  return ops::kL2LossFactor * deterministic_sum(make_chunks(tensors.sizes), tensors.total(), [&](const Chunk& c) {
    return k.l2_sum(tensors.operands[c.tensor][0] + c.begin, c.end - c.begin);
  });
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template double Drivers::mse_loss<T>(const T*, const T*, T*, T*, int64_t, Reduction);                 \
  template double Drivers::cross_entropy<T>(const T*, const T*, T*, T*, int64_t, int64_t, Reduction);   \
  template double Drivers::softmax_cross_entropy<T>(const T*, const T*, T*, T*, int64_t, int64_t,     \
                                           const SoftmaxCrossEntropyOptions&);                  \
  template double Drivers::l1_loss<T>(const TensorList<T>&);                                            \
  template double Drivers::l2_loss<T>(const TensorList<T>&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
NNFAST_INSTANTIATE(Bfloat16)
NNFAST_INSTANTIATE(Float16)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
