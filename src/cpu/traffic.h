// The benchmark's roofline kernel: the memory traffic of a real kernel (the same
// arrays read, updated in place, or written) with almost no math, run with the
// same chunks, threads and vector width as the real kernels.
#pragma once

#include <cstdint>

namespace nnfast::cpu {

struct TrafficCounts {
  int reads, updates, outs;
};

// The operand counts the roofline kernel is compiled for (each a loop with its
// operands in registers, as the real kernels' apply() loop): those of the
// benchmark's cases (bench/cases.py): 1 read and 1-4 updates (the optimizers), 1-2
// reads and 1 out (activations, losses), 1 read alone (regularizers), 1 read, 3
// updates and 1 out (Adam with float32 masters beside 16-bit params), 4 reads (LAMB's
// pass of the trust-ratio sums).
inline constexpr TrafficCounts kTrafficCounts[] = {
    {1, 1, 0}, {1, 2, 0}, {1, 3, 0}, {1, 4, 0}, {1, 0, 1}, {2, 0, 1}, {1, 0, 0}, {1, 3, 1},
    {4, 0, 0}, {2, 0, 0},
};

// The index of these counts in kTrafficCounts, or -1 if the kernel has none.
int traffic_kind(int reads, int updates, int outs);

// Runs the roofline kernel of kTrafficCounts[kind] over n elements of the operands:
// the arrays read, then those updated, then those written, in that order.
template <class T>
void memory_traffic(int kind, T* const* operands, int64_t n);

}  // namespace nnfast::cpu
