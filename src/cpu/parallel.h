// Threads and work division for the CPU drivers.
//
// Work is cut into chunks (per tensor, so a chunk never spans two tensors) before
// threads are involved. Chunk boundaries depend only on the tensor sizes, never on
// the thread count, so reductions summed per chunk and combined in chunk order
// give the same bits for any number of threads. The chunks of a call are the
// tasks of nnfast's thread pool (thread_pool.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/thread_pool.h"

namespace nnfast::cpu {

// The largest chunk, 16,384 elements: 64 KiB of float32, a multiple of every cache
// line and SIMD width, large enough that claiming it costs nothing next to its
// memory traffic.
constexpr int64_t kChunkElements = 16384;
// The smallest, for small calls: 2,048 elements (a few hundred nanoseconds of
// work) still amortize a claim (one contended compare-and-swap, ~50-100 ns).
constexpr int64_t kMinChunkElements = 2048;
// A call is cut into at least this many chunks where the sizes allow, so that
// two threads split even a 100,000-element call evenly.
constexpr int64_t kMinChunksPerCall = 32;

// Below this many elements in a whole call, threads cost more than they save.
constexpr int64_t kParallelThreshold = 1 << 15;

// The chunk length for a call of `total` elements (a multiple of 64 elements).
inline int64_t chunk_elements_for(int64_t total) {
  const int64_t even_share = (total / kMinChunksPerCall + 63) / 64 * 64;
  return std::clamp(even_share, kMinChunkElements, kChunkElements);
}

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

// Chunks of at most chunk_elements covering every tensor in order.
std::vector<Chunk> make_chunks(const std::vector<int64_t>& sizes, int64_t chunk_elements);

// Chunks of chunk_elements_for(the sizes' total) elements.
std::vector<Chunk> make_chunks(const std::vector<int64_t>& sizes);

// The threads a parallel call uses (set_num_threads; 1 until nnfast's import sets
// the default).
int max_threads();
// n in [1, kMaxThreads].
void set_num_threads(int n);

// Runs body(chunk_index) for every index in [0, count), on max_threads() threads
// when total_elements reaches kParallelThreshold.
template <class Body>
void parallel_for(int64_t count, int64_t total_elements, const Body& body) {
  const int threads = total_elements >= kParallelThreshold ? max_threads() : 1;
  run_tasks(count, threads,
            [](void* context, int64_t i) { (*static_cast<const Body*>(context))(i); },
            const_cast<Body*>(&body));
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
