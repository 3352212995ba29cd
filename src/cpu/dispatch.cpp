// Picks the chunk-kernel table: at import, the widest ISA the CPU (and OS)
// support, lowered by the environment variable NNFAST_SIMD=sse2|avx2|avx512|avx512bf16 if
// set (a request above what the CPU has is not honored). Tests switch tables with
// use_kernels() to hold every ISA's kernels to the reference on one machine.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/kernels.h"

namespace nnfast::cpu {

#if defined(NNFAST_X86_DISPATCH)
namespace sse2 { const KernelTable& kernel_table(); }
namespace avx2 { const KernelTable& kernel_table(); }
namespace avx512 { const KernelTable& kernel_table(); }
namespace avx512bf16 { const KernelTable& kernel_table(); }
#else
namespace generic { const KernelTable& kernel_table(); }
#endif

namespace {

const KernelTable* initial_table() {
  const std::vector<const KernelTable*> tables = supported_kernels();
  if (const char* requested = std::getenv("NNFAST_SIMD")) {
    for (const KernelTable* t : tables)
      if (std::strcmp(t->isa, requested) == 0) return t;
  }
  return tables.front();
}

// Atomic: kernels read it without the GIL while use_kernels may switch it.
std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{initial_table()};
  return table;
}

}  // namespace

std::vector<const KernelTable*> supported_kernels() {
#if defined(NNFAST_X86_DISPATCH)
  __builtin_cpu_init();
  std::vector<const KernelTable*> tables;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  if (avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16"))
    tables.push_back(&avx512bf16::kernel_table());
  if (avx512) tables.push_back(&avx512::kernel_table());
  if (avx2) tables.push_back(&avx2::kernel_table());
  tables.push_back(&sse2::kernel_table());
  return tables;
#else
  return {&generic::kernel_table()};
#endif
}

const KernelTable& kernels() { return *active().load(std::memory_order_relaxed); }

bool use_kernels(const std::string& isa) {
  for (const KernelTable* t : supported_kernels()) {
    if (isa == t->isa) {
      active().store(t, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

}  // namespace nnfast::cpu
