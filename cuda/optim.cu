// CUDA driver of the optimizer steps: the functors of ops/optimizers/ over the
// chunked apply loop, one launch sequence per distinct scalars of the call (tensors
// at different step counts have different bias corrections).
//
// A call whose arrays all hold its compute type runs in place (NativeStorage). Any
// other (16-bit params, grads or states, float32 masters, int16 remainders,
// stochastic rounding; float32 compute) runs through storage.cuh's ConvertingStorage,
// with the CPU's semantics bit for bit (src/cpu/kernels.cpp, run_tiles): each operand
// is widened exactly to float32, the same float32 formula runs, and each written
// operand is rounded once by the conversions of ops/precision.h, stochastic
// rounding taking stochastic_bits of the tensor's index in the call and the
// element's index in its tensor.
//
// The gradient-scaling options: every block returns at once when the call's found_inf
// (a device float) is nonzero; every gradient is first multiplied by a device float
// (DeviceScaledGrads, grad_scale.cuh: a device grad_scale, else 1); StoresScaledGrads
// writes it back.
// LAMB's first two passes (the global gradient norm, the per-tensor sums of p^2 and
// u^2) are reductions over the same loop, their partials added on the host in chunk
// order.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <variant>
#include <vector>

#include "apply.cuh"
#include "drivers.h"
#include "grad_scale.cuh"
#include "storage.cuh"

namespace nnfast::cuda {

namespace {

// The tensors of one scalars group, in place in S.
template <class S, class Op>
void step_native(const OptimizerCall<S>& call, const std::vector<size_t>& tensors,
                 const std::vector<int64_t>& sizes, const Op& op) {
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  using Storage = NativeStorage<S, Depth>;
  apply_chunks(Storage{}, op, sizes, [&](size_t t, typename Storage::Table& table, int slot) {
    for (int k = 0; k < Depth; ++k) table.operands[k][slot] = call.operands[tensors[t]][k];
  }, nullptr, call.found_inf);
}

// The tensors of one scalars group, converted as the call's storage says.
template <class Op>
void step_converted(const OptimizerCall<float>& call, const std::vector<size_t>& tensors,
                    const std::vector<int64_t>& sizes, const Op& op) {
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  using Storage = ConvertingStorage<Depth>;
  const bool stochastic = call.param_storage == ParamStorage::stochastic;
  apply_chunks(Storage::of(call.dtypes.data(), call.param_storage, call.seed), op, sizes,
               [&](size_t t, typename Storage::Table& table, int slot) {
    const size_t tensor = tensors[t];
    Storage::set_tensor(table, slot, call.operands[tensor].data(), call.operands[tensor][kCompanionSlot],
                        {static_cast<uint32_t>(tensor),
                         stochastic ? static_cast<uint32_t>(call.steps[tensor]) : 0u});
  }, nullptr, call.found_inf);
}

// LAMB's sums: the square, in double, of one value of each element: the scaled
// gradient (pass 1), the parameter or the direction u (pass 2; ops/optimizers/lamb.h).
enum class LambTerm { grad, param, update };

template <class S, LambTerm Term>
struct LambSquareOp {
  static constexpr unsigned kRead = Term == LambTerm::update ? ops::LambSquaresOp<S>::kRead
                                    : Term == LambTerm::grad ? ops::slot_bit(ops::kGradsSlot)
                                                             : ops::slot_bit(ops::kParamsSlot);
  static constexpr unsigned kWrite = 0;
  ops::LambSquaresOp<S> terms;
  double scale;  // of the gradient, pass 1
  template <class V>
  __device__ double operator()(V* x) const {
    double value;
    if constexpr (Term == LambTerm::grad) value = scale * static_cast<double>(x[ops::kGradsSlot]);
    else if constexpr (Term == LambTerm::param) value = static_cast<double>(x[ops::kParamsSlot]);
    else value = static_cast<double>(terms.direction(x));
    return value * value;
  }
};

// The per-tensor sums of op's terms over the tensors of one scalars group, in
// sums[tensor] (chunk partials copied back and added in chunk order).
template <class S, class Op>
void lamb_sums(const OptimizerCall<S>& call, const std::vector<size_t>& tensors, const Op& op,
               double* sums) {
  std::vector<int64_t> sizes;
  int64_t chunks = 0;
  for (size_t t : tensors) {
    sizes.push_back(call.sizes[t]);
    chunks += (call.sizes[t] + kChunkElements - 1) / kChunkElements;
  }
  if (chunks == 0) return;
  DeviceBuffer<double> partials(chunks);
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  bool converted = false;
  if constexpr (std::is_same_v<S, float>) converted = !call.native();
  if constexpr (std::is_same_v<S, float>) {
    if (converted) {
      using Storage = ConvertingStorage<Depth>;
      apply_chunks(Storage::of(call.dtypes.data(), call.param_storage, call.seed), op, sizes,
                   [&](size_t t, typename Storage::Table& table, int slot) {
        const auto& operands = call.operands[tensors[t]];
        Storage::set_tensor(table, slot, operands.data(), operands[kCompanionSlot],
                            {static_cast<uint32_t>(tensors[t]), 0u});
      }, partials.get());
    }
  }
  if (!converted) {
    using Storage = NativeStorage<S, Depth>;
    apply_chunks(Storage{}, op, sizes, [&](size_t t, typename Storage::Table& table, int slot) {
      for (int k = 0; k < Depth; ++k) table.operands[k][slot] = call.operands[tensors[t]][k];
    }, partials.get());
  }
  std::vector<double> host(chunks);
  copy_to_host(host.data(), partials.get(), chunks);
  int64_t c = 0;
  for (size_t t : tensors) {
    double sum = 0.0;
    for (int64_t end = c + (call.sizes[t] + kChunkElements - 1) / kChunkElements; c < end; ++c)
      sum += host[c];
    sums[t] = sum;
  }
}

// The tensors of each scalars group of the call, in order.
template <class S>
std::vector<std::vector<size_t>> scalars_groups(const OptimizerCall<S>& call) {
  std::vector<std::vector<size_t>> groups(call.scalars.size());
  for (size_t t = 0; t < call.sizes.size(); ++t) groups[call.scalars_of_tensor[t]].push_back(t);
  return groups;
}

}  // namespace

template <class S>
double Drivers::lamb_grad_norm(const OptimizerCall<S>& call, double scale) {
  if (call.total() == 0) return 0.0;  // (touches no device, as optimizer_step)
  std::vector<double> sums(call.sizes.size(), 0.0);
  std::vector<size_t> all(call.sizes.size());
  for (size_t t = 0; t < all.size(); ++t) all[t] = t;
  // (The term reads no scalar but the scale: any tensor's scalars serve.)
  const auto& scalars = std::get<ops::LambScalars<S>>(call.scalars[0]);
  lamb_sums(call, all, LambSquareOp<S, LambTerm::grad>{{scalars}, scale}, sums.data());
  double total = 0.0;
  for (double s : sums) total += s;
  return std::sqrt(total);
}

template <class S>
void Drivers::lamb_squares(const OptimizerCall<S>& call, double* param_squares,
                           double* update_squares) {
  std::fill(param_squares, param_squares + call.sizes.size(), 0.0);
  std::fill(update_squares, update_squares + call.sizes.size(), 0.0);
  if (call.total() == 0) return;
  const auto groups = scalars_groups(call);
  for (size_t group = 0; group < groups.size(); ++group) {
    const auto& scalars = std::get<ops::LambScalars<S>>(call.scalars[group]);
    lamb_sums(call, groups[group], LambSquareOp<S, LambTerm::param>{{scalars}, 1.0}, param_squares);
    lamb_sums(call, groups[group], LambSquareOp<S, LambTerm::update>{{scalars}, 1.0}, update_squares);
  }
}

template <class S>
void Drivers::optimizer_step(const OptimizerCall<S>& call) {
  if (call.total() == 0) return;  // (touches no device: an empty call runs without one)
  for (size_t group = 0; group < call.scalars.size(); ++group) {
    std::vector<size_t> tensors;
    std::vector<int64_t> sizes;
    for (size_t t = 0; t < call.sizes.size(); ++t) {
      if (call.scalars_of_tensor[t] != group) continue;
      tensors.push_back(t);
      sizes.push_back(call.sizes[t]);
    }
    const float* grad_scale = call.device_grad_scale ? call.device_grad_scale : device_one();
    ops::with_step_op(call.scalars[group], call.stores_scaled_grads, [&](const auto& step_op) {
      const DeviceScaledGrads<std::decay_t<decltype(step_op)>> op{{step_op}, grad_scale};
      // (float32 compute only: a float64 call is float64 throughout, bind/optimizer.h)
      if constexpr (std::is_same_v<S, float>) {
        if (!call.native()) {
          step_converted(call, tensors, sizes, op);
          return;
        }
      }
      step_native(call, tensors, sizes, op);
    });
  }
}

template void Drivers::optimizer_step<float>(const OptimizerCall<float>&);
template void Drivers::optimizer_step<double>(const OptimizerCall<double>&);
template double Drivers::lamb_grad_norm<float>(const OptimizerCall<float>&, double);
template double Drivers::lamb_grad_norm<double>(const OptimizerCall<double>&, double);
template void Drivers::lamb_squares<float>(const OptimizerCall<float>&, double*, double*);
template void Drivers::lamb_squares<double>(const OptimizerCall<double>&, double*, double*);

}  // namespace nnfast::cuda
