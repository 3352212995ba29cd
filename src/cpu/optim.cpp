#include <algorithm>
#include <array>
#include <vector>

#include "cpu/drivers.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "ops/norms.h"

namespace nnfast::cpu {

template <class S>
void Drivers::optimizer_step(const OptimizerCall<S>& call) {
  if (call.found_inf && *call.found_inf != 0.0f) return;
  const auto& k = kernels().get<S>();
  const std::vector<Chunk> chunks = make_chunks(call.sizes);
  parallel_for(static_cast<int64_t>(chunks.size()), call.total(), [&](int64_t c) {
    const Chunk& ch = chunks[c];
    k.optimizer(call, ch.tensor, ch.begin, ch.end);
  });
}

template void Drivers::optimizer_step<float>(const OptimizerCall<float>&);
template void Drivers::optimizer_step<double>(const OptimizerCall<double>&);

template <class S>
double Drivers::lamb_grad_norm(const OptimizerCall<S>& call, double scale) {
  const auto norm_of = [&](auto tag) {
    using T = decltype(tag);
    TensorList<T> grads;
    grads.sizes = call.sizes;
    for (const auto& slots : call.operands)
      grads.operands.push_back({static_cast<T*>(slots[ops::kGradsSlot])});
    return grad_norm(grads, ops::norm_spec(2.0, scale), nullptr);
  };
  switch (call.dtypes[ops::kGradsSlot]) {
    case DType::bfloat16: return norm_of(Bfloat16{});
    case DType::float16: return norm_of(Float16{});
    case DType::float32: return norm_of(float{});
    default: return norm_of(double{});
  }
}

template <class S>
void Drivers::lamb_squares(const OptimizerCall<S>& call, double* param_squares,
                           double* update_squares) {
  const auto& k = kernels().get<S>();
  const std::vector<Chunk> chunks = make_chunks(call.sizes);
  std::vector<std::array<double, 2>> partial(chunks.size());
  parallel_for(static_cast<int64_t>(chunks.size()), call.total(), [&](int64_t c) {
    const Chunk& ch = chunks[c];
    k.lamb_squares(call, ch.tensor, ch.begin, ch.end, partial[c].data());
  });
  std::fill(param_squares, param_squares + call.sizes.size(), 0.0);
  std::fill(update_squares, update_squares + call.sizes.size(), 0.0);
  for (size_t c = 0; c < chunks.size(); ++c) {  // (chunks come tensor by tensor, in order)
    param_squares[chunks[c].tensor] += partial[c][0];
    update_squares[chunks[c].tensor] += partial[c][1];
  }
}

template double Drivers::lamb_grad_norm<float>(const OptimizerCall<float>&, double);
template double Drivers::lamb_grad_norm<double>(const OptimizerCall<double>&, double);
template void Drivers::lamb_squares<float>(const OptimizerCall<float>&, double*, double*);
template void Drivers::lamb_squares<double>(const OptimizerCall<double>&, double*, double*);

}  // namespace nnfast::cpu
