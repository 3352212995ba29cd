#include "cpu/traffic.h"

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace nnfast::cpu {

template <class T>
void memory_traffic(const std::vector<const T*>& reads, const std::vector<T*>& updates,
                    const std::vector<T*>& outs, int64_t n) {
  const auto& k = kernels().get<T>();
  const std::vector<Chunk> chunks = make_chunks({n});
  parallel_for(static_cast<int64_t>(chunks.size()), n, [&](int64_t c) {
    k.memory_traffic(reads.data(), static_cast<int>(reads.size()), updates.data(),
                     static_cast<int>(updates.size()), outs.data(), static_cast<int>(outs.size()),
                     chunks[c].begin, chunks[c].end);
  });
}

template void memory_traffic<float>(const std::vector<const float*>&, const std::vector<float*>&,
                                    const std::vector<float*>&, int64_t);
template void memory_traffic<double>(const std::vector<const double*>&, const std::vector<double*>&,
                                     const std::vector<double*>&, int64_t);

}  // namespace nnfast::cpu
