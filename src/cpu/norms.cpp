#include <array>
#include <vector>

#include "cpu/drivers.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "ops/norms.h"

namespace nnfast::cpu {

namespace {

template <NormOrder Order, class T>
double grad_norm_of(const TensorList<T>& grads, const NormSpec& spec, double* per_tensor) {
  const auto& k = kernels().get<T>();
  const std::vector<Chunk> chunks = make_chunks(grads.sizes);
  std::vector<double> partial(chunks.size(), 0.0);
  parallel_for(static_cast<int64_t>(chunks.size()), grads.total(), [&](int64_t i) {
    const Chunk& c = chunks[i];
    std::array<double, kNormLanes> lanes{};
    k.norm_terms(grads.operands[c.tensor][0] + c.begin, c.end - c.begin, spec, lanes.data());
    double chunk = 0.0;
    for (double lane : lanes) chunk = ops::norm_combine<Order>(chunk, lane);
    partial[i] = chunk;
  });
  // Chunks come tensor by tensor, in order.
  std::vector<double> tensor_acc(grads.sizes.size(), 0.0);
  for (size_t i = 0; i < chunks.size(); ++i)
    tensor_acc[chunks[i].tensor] = ops::norm_combine<Order>(tensor_acc[chunks[i].tensor], partial[i]);
  double total = 0.0;
  for (size_t t = 0; t < tensor_acc.size(); ++t) {
    total = ops::norm_combine<Order>(total, tensor_acc[t]);
    if (per_tensor) per_tensor[t] = ops::norm_finish<Order>(tensor_acc[t], spec.p);
  }
  return ops::norm_finish<Order>(total, spec.p);
}

}  // namespace

template <class T>
double Drivers::grad_norm(const TensorList<T>& grads, const NormSpec& spec, double* per_tensor) {
  return ops::with_norm_order(spec.order, [&](auto order) {
    return grad_norm_of<decltype(order)::value>(grads, spec, per_tensor);
  });
}

template <class T>
void Drivers::scale(const TensorList<T>& grads, double factor) {
  const auto& k = kernels().get<T>();
  const ComputeType<T> f = static_cast<ComputeType<T>>(factor);
  const std::vector<Chunk> chunks = make_chunks(grads.sizes);
  parallel_for(static_cast<int64_t>(chunks.size()), grads.total(), [&](int64_t i) {
    const Chunk& c = chunks[i];
    T* g = grads.operands[c.tensor][0] + c.begin;
    k.scale(f, g, g, c.end - c.begin);
  });
}

#define NNFAST_INSTANTIATE(T)                                                             \
  template double Drivers::grad_norm<T>(const TensorList<T>&, const NormSpec&, double*); \
  template void Drivers::scale<T>(const TensorList<T>&, double);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
NNFAST_INSTANTIATE(Bfloat16)
NNFAST_INSTANTIATE(Float16)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
