#include "cpu/parallel.h"

#include <algorithm>
#include <atomic>

#if defined(NNFAST_OPENMP)
#include <omp.h>
#endif

namespace nnfast::cpu {

namespace {
// 0: OpenMP's default (OMP_NUM_THREADS or the core count). Atomic: kernels read it
// without the GIL while another Python thread may set it.
std::atomic<int> g_num_threads{0};
}

std::vector<Chunk> make_chunks(const std::vector<int64_t>& sizes, int64_t chunk_elements) {
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < static_cast<int64_t>(sizes.size()); ++t) {
    for (int64_t begin = 0; begin < sizes[t]; begin += chunk_elements) {
      chunks.push_back({t, begin, std::min(sizes[t], begin + chunk_elements)});
    }
  }
  return chunks;
}

int max_threads() {
#if defined(NNFAST_OPENMP)
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) { g_num_threads.store(n, std::memory_order_relaxed); }

bool openmp_enabled() {
#if defined(NNFAST_OPENMP)
  return true;
#else
  return false;
#endif
}

}  // namespace nnfast::cpu
