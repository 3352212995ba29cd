#include "cpu/parallel.h"

#include <atomic>

namespace nnfast::cpu {

namespace {
// Atomic: kernels read it without the GIL while another Python thread may set it.
std::atomic<int> g_num_threads{1};
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

std::vector<Chunk> make_chunks(const std::vector<int64_t>& sizes) {
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  return make_chunks(sizes, chunk_elements_for(total));
}

int max_threads() { return g_num_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) { g_num_threads.store(n, std::memory_order_relaxed); }

}  // namespace nnfast::cpu
