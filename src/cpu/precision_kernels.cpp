// cpu::PrecisionKernels for the ISA this unit is compiled for (NNFAST_ISA).
#include "cpu/precision_kernels.h"

#include "simd/convert.h"

namespace nnfast::cpu {
namespace NNFAST_ISA {

PrecisionKernels precision_kernels() {
  return {simd::widen_bf16,  simd::widen_half,
          simd::narrow_bf16, simd::narrow_half,
          simd::narrow_bf16_stochastic, simd::narrow_half_stochastic,
          simd::join_masters, simd::split_masters};
}

}  // namespace NNFAST_ISA
}  // namespace nnfast::cpu
