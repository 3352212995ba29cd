// The table of chunk kernels: the innermost loops, one set per instruction set.
//
// src/cpu/kernels.cpp is compiled once per ISA (baseline, AVX2, AVX-512 on
// x86-64; one generic build elsewhere) into nnfast::cpu::<isa>::kernel_table().
// At import, dispatch.cpp picks the best table the CPU supports. Each entry
// processes one chunk over raw pointers; the drivers (drivers.h) cut the work into chunks and spread them over threads.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "call/activation_kind.h"
#include "call/adafactor_call.h"
#include "call/dtype.h"
#include "call/loss_options.h"
#include "call/norm_spec.h"
#include "call/optimizer_call.h"
#include "call/tensor_list.h"
#include "cpu/precision_kernels.h"

namespace nnfast::cpu {

// The double accumulators of a norm_terms call: 16, a multiple of every ISA's
// double lanes (2, 4, 8), so each ISA holds them in whole vectors.
constexpr int kNormLanes = 16;

// The sum of kNormLanes lanes, in lane order.
inline double lanes_total(const double* lanes) {
  double sum = 0.0;
  for (int k = 0; k < kNormLanes; ++k) sum += lanes[k];
  return sum;
}

// The activations and losses over elements of type T (float, double, Bfloat16,
// Float16), computed in C: T itself, or float32 for the 16-bit types, whose kernels
// run the float32 ones on float32 copies, tile by tile (kernels.cpp).
template <class T, class C = ComputeType<T>>
struct OpKernels {
  // out[i] = f(x[i]) and out[i] = f'(a[i], dy[i]) for i in [0, n).
  void (*activation_forward)(Activation, C alpha, T* out, const T* x, int64_t n);
  void (*activation_backward)(Activation, C alpha, T* out, const T* a, const T* dy, int64_t n);
  // Losses return the chunk's sum of loss terms, accumulated in double.
  double (*mse)(const T* pred, const T* target, T* grad, T* losses, C grad_scale, int64_t n);
  double (*cross_entropy_rows)(const T* probs, const T* target, T* grad, T* row_losses,
                               C grad_scale, int64_t classes, int64_t rows);
  double (*softmax_cross_entropy_rows)(const T* logits, const T* target_probs, T* grad,
                                       T* row_losses, C grad_scale, int64_t classes,
                                       int64_t first_row, int64_t rows,
                                       const SoftmaxCrossEntropyRows& options);
  double (*l1_sum)(const T* w, int64_t n);
  double (*l2_sum)(const T* w, int64_t n);
  // The norm terms |spec.scale * x_i|^spec.p of x[0..n) (ops/norms.h), element i
  // combined into lanes[i % kNormLanes]: the lane of an element, and so the order
  // of every double operation, is the same for every ISA.
  void (*norm_terms)(const T* x, int64_t n, const NormSpec& spec, double* lanes);
  // out[i] = factor * x[i] for i in [0, n), rounded once to T; out may be x.
  void (*scale)(C factor, T* out, const T* x, int64_t n);
};

// Every chunk kernel of a compute type T (float or double).
template <class T>
struct ChunkKernels : OpKernels<T> {
  // An optimizer step over elements [begin, end) of one tensor of the call (the
  // scalars, operands and storage the call gives that tensor).
  void (*optimizer)(const OptimizerCall<T>& call, int64_t tensor, int64_t begin, int64_t end);
  // LAMB's second pass (ops/optimizers/lamb.h) over elements [begin, end) of one tensor
  // of a LAMB call: sums[0] = sum p^2, sums[1] = sum u^2, in double; writes nothing.
  void (*lamb_squares)(const OptimizerCall<T>& call, int64_t tensor, int64_t begin, int64_t end,
                       double* sums);
  // Adafactor's passes (ops/optimizers/adafactor.h) over n elements of one row of a
  // factored tensor (x = its C_j, factored) or of an unfactored one (x = v), each term
  // added in double into kNormLanes lanes, element i of the n into lane i % kNormLanes:
  // p^2 into param_lanes and, unless g is null (unfactored), (s g)^2 into row_lanes
  // and into col_sums[i];
  void (*adafactor_squares)(const T* p, const T* g, T grad_factor, int64_t n, double* param_lanes,
                            double* row_lanes, double* col_sums);
  // u^2 into lanes, unfactored (x = v before the step), and factored from the column
  // reciprocals 1 / C_j (double, the run's), the row's floor / R_i and 1 / eps1^2
  // (ops::adafactor_update_square);
  void (*adafactor_variance_squares)(const ops::AdafactorRow<T>& row, const T* g, const T* v,
                                     int64_t n, double* lanes);
  void (*adafactor_factored_squares)(const T* g, T grad_factor, const double* col_reciprocals,
                                     double row_reciprocal, double max_reciprocal, int64_t n,
                                     double* lanes);
  // p updated, and x = v stored when unfactored.
  void (*adafactor_update)(const ops::AdafactorRow<T>& row, bool factored, T* p, const T* g, T* x,
                           int64_t n);
  // The benchmark's roofline (traffic.h), almost no math: s = the sum of the reads,
  // each update += s, each out = s, for the counts kTrafficCounts[kind], over
  // elements [begin, end) of the operands (reads, then updates, then outs).
  void (*memory_traffic)(int kind, T* const* operands, int64_t begin, int64_t end);
};

struct KernelTable {
  const char* isa;
  ChunkKernels<float> f32;
  ChunkKernels<double> f64;
  PrecisionKernels precision;
  OpKernels<Bfloat16> bf16;
  OpKernels<Float16> f16;

  // The kernels of element type T: ChunkKernels for float and double, OpKernels for
  // the 16-bit types.
  template <class T>
  const auto& get() const {
    if constexpr (std::is_same_v<T, float>) return f32;
    else if constexpr (std::is_same_v<T, double>) return f64;
    else if constexpr (std::is_same_v<T, Bfloat16>) return bf16;
    else return f16;
  }
};

// The table in use: the best the CPU supports, or a lower one named by the
// environment variable NNFAST_SIMD (sse2, avx2, avx512, avx512bf16) at import.
const KernelTable& kernels();

// The tables this CPU can run, widest first.
std::vector<const KernelTable*> supported_kernels();

// Switches to the table of the named ISA; false (and no change) if unsupported.
bool use_kernels(const std::string& isa);

}  // namespace nnfast::cpu
