// CUDA driver of the optimizer steps: the functors of ops/optimizers/ over the
// chunked apply loop, one launch sequence per distinct scalars of the call (tensors
// at different step counts have different bias corrections).
#include <stdexcept>
#include <variant>

#include "apply.cuh"
#include "drivers.h"

namespace nnfast::cuda {

template <class S>
void Drivers::optimizer_step(const OptimizerCall<S>& call) {
  if (!call.native())
    throw std::logic_error("the CUDA optimizer steps run float32 and float64 arrays only");
  for (size_t group = 0; group < call.scalars.size(); ++group) {
    TensorList<S> list;
    for (size_t t = 0; t < call.sizes.size(); ++t) {
      if (call.scalars_of_tensor[t] != group) continue;
      std::array<S*, kMaxOperands> operands{};
      for (int k = 0; k < kMaxOperands; ++k) operands[k] = static_cast<S*>(call.operands[t][k]);
      list.operands.push_back(operands);
      list.sizes.push_back(call.sizes[t]);
    }
    std::visit([&](const auto& scalars) {
      ops::with_op(scalars, [&](const auto& op) { apply(list, op); });
    }, call.scalars[group]);
  }
}

template void Drivers::optimizer_step<float>(const OptimizerCall<float>&);
template void Drivers::optimizer_step<double>(const OptimizerCall<double>&);

}  // namespace nnfast::cuda
