// The one chunked apply loop under every elementwise kernel (optimizer steps,
// activations): chunks over all tensors of a call, one parallel region per call.
#pragma once

#include "cpu/parallel.h"
#include "cpu/tensors.h"

namespace nnfast::cpu {

// Calls update(operands_of_tensor, i) for every element i of every tensor.
template <class T, class Update>
void for_each_element(const TensorList<T>& tensors, const Update& update) {
  const std::vector<Chunk> chunks = make_chunks(tensors.sizes);
  parallel_for(static_cast<int64_t>(chunks.size()), tensors.total(), [&](int64_t c) {
    const Chunk& chunk = chunks[c];
    // Local copies: stores through the operand pointers provably cannot alias
    // them, so scalars stay in registers and the loop can vectorize.
    const Update local_update = update;
    const std::array<T*, kMaxOperands> a = tensors.operands[chunk.tensor];
    for (int64_t i = chunk.begin; i < chunk.end; ++i) local_update(a, i);
  });
}

}  // namespace nnfast::cpu
