#include "cpu/drivers.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

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

}  // namespace nnfast::cpu
