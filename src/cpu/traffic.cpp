#include "cpu/traffic.h"

#include <iterator>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace nnfast::cpu {

int traffic_kind(int reads, int updates, int outs) {
  for (int kind = 0; kind < static_cast<int>(std::size(kTrafficCounts)); ++kind) {
    const TrafficCounts& c = kTrafficCounts[kind];
    if (c.reads == reads && c.updates == updates && c.outs == outs) return kind;
  }
  return -1;
}

template <class T>
void memory_traffic(int kind, T* const* operands, int64_t n) {
  const auto& k = kernels().get<T>();
  const std::vector<Chunk> chunks = make_chunks({n});
  parallel_for(static_cast<int64_t>(chunks.size()), n, [&](int64_t c) {
    k.memory_traffic(kind, operands, chunks[c].begin, chunks[c].end);
  });
}

template void memory_traffic<float>(int, float* const*, int64_t);
template void memory_traffic<double>(int, double* const*, int64_t);

}  // namespace nnfast::cpu
