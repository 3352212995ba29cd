#include "cpu/parallel.h"

#include <algorithm>

#if defined(NNFAST_OPENMP)
#include <omp.h>
#endif

namespace nnfast::cpu {

namespace {
int g_num_threads = 0;  // 0: OpenMP's default (OMP_NUM_THREADS or the core count)
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
  return g_num_threads > 0 ? g_num_threads : omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) { g_num_threads = n; }

bool openmp_enabled() {
#if defined(NNFAST_OPENMP)
  return true;
#else
  return false;
#endif
}

}  // namespace nnfast::cpu
