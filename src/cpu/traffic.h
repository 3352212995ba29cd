// The benchmark's roofline kernel: the memory traffic of a real kernel (the same
// arrays read, updated in place, or written) with almost no math, run with the
// same chunks, threads and vector width as the real kernels.
#pragma once

#include <cstdint>
#include <vector>

namespace nnfast::cpu {

template <class T>
void memory_traffic(const std::vector<const T*>& reads, const std::vector<T*>& updates,
                    const std::vector<T*>& outs, int64_t n);

}  // namespace nnfast::cpu
