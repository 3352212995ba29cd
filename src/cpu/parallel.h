// Threads and work division for the CPU drivers.
//
// Work is cut into fixed chunks of kChunkElements elements (per tensor, so a chunk
// never spans two tensors) before threads are involved. Chunk boundaries depend
// only on the tensor sizes, never on the thread count, so reductions summed per
// chunk and combined in chunk order give the same bits for any number of threads.
#pragma once

#include <cstdint>
#include <vector>

namespace nnfast::cpu {

// 16384 elements: 64 KiB of float32, a multiple of every cache line and SIMD width,
// large enough that scheduling costs nothing next to the memory traffic.
constexpr int64_t kChunkElements = 16384;

// Below this many elements in a whole call, threads cost more than they save.
constexpr int64_t kParallelThreshold = 1 << 17;

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

// Chunks of at most chunk_elements covering every tensor in order.
std::vector<Chunk> make_chunks(const std::vector<int64_t>& sizes,
                               int64_t chunk_elements = kChunkElements);

int max_threads();
void set_num_threads(int n);
bool openmp_enabled();

// Runs body(chunk_index) for every index in [0, count), in parallel when
// total_elements reaches kParallelThreshold.
// (A serial call never enters an OpenMP region: even an if(false) region costs
// about a microsecond, the whole budget of a small call.)
template <class Body>
void parallel_for(int64_t count, int64_t total_elements, const Body& body) {
#if defined(NNFAST_OPENMP)
  const int threads = max_threads();
  if (total_elements >= kParallelThreshold && count > 1 && threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
#else
  (void)total_elements;
#endif
  for (int64_t i = 0; i < count; ++i) body(i);
}

// Sum of chunk_sum(chunk) over chunks, each partial summed by the caller in
// double and the partials added in chunk order: thread-count independent.
template <class ChunkSum>
double deterministic_sum(const std::vector<Chunk>& chunks, int64_t total_elements,
                         const ChunkSum& chunk_sum) {
  std::vector<double> partial(chunks.size(), 0.0);
  parallel_for(static_cast<int64_t>(chunks.size()), total_elements,
               [&](int64_t i) { partial[i] = chunk_sum(chunks[i]); });
  double total = 0.0;
  for (double x : partial) total += x;
  return total;
}

}  // namespace nnfast::cpu
