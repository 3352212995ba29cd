// CUDA drivers of the losses: MSE and l1/l2 over the chunked apply loop, the
// row losses (cross-entropy, softmax cross-entropy) one row per warp (short
// rows) or per block (long rows). Every sum is in double, per chunk or per row,
// then over chunks or rows in a fixed order (runtime.cuh): the same bits on
// every run. The formulas are those of ops/loss.h, as on the CPU.
//
// Arrays of storage type S compute in C = ComputeType<S>: bfloat16 and float16
// elements are widened exactly to float32 and every written value (gradient,
// per-element or per-row loss) is the float32 result rounded once to nearest even,
// a row's loss rounded from double to float32 first, as the CPU's 16-bit kernels
// round their float32 kernels' results (src/cpu/kernels.cpp, Tiled).
//
// Against the CPU: the terms are the same (the same float32 or float64 formula on
// the same values), but the CPU adds them per SIMD lane and chunk, this file per
// thread, warp and chunk or row, so a reduced loss and a row's loss (before it is
// rounded to S) may differ from the CPU's in the last bits of the double sum.
// Softmax cross-entropy's gradient takes 1 / sum(e) and a probability target's
// mass from such sums, rounded to C, so it may differ from the CPU's by a rounding
// of C there; every other elementwise result (activations, MSE's gradient and
// per-element losses, cross-entropy's gradient) is the CPU's bit for bit.
#include <cmath>
#include <stdexcept>
#include <string>

#include "apply.cuh"
#include "drivers.h"
#include "ops/loss.h"
#include "ops/loss_scalars.h"

namespace nnfast::cuda {

namespace {

// The l1/l2 term of w (of the compute type C), formed in double (as the CPU forms it).
template <class C, bool L2>
struct NormOp {
  static constexpr unsigned kRead = ops::kOp0, kWrite = 0;
  __device__ double operator()(C* x) const {
    const double w = static_cast<double>(x[0]);
    return L2 ? ops::l2_term(w) : ops::l1_term(w);
  }
};

template <class S, class Op>
double sum_over(const TensorList<S>& t, const Op& op) {
  DeviceBuffer<double> partials(chunk_count(t));
  apply(t, op, partials.get());
  return sum_on_device(partials.get(), chunk_count(t));
}

// ---------------------------------------------------------------- rows

// Rows of up to kWarpRowClasses classes run one per warp, 8 per block; longer
// rows one per block of 1024 threads.
constexpr int64_t kWarpRowClasses = 1024;
constexpr int kWarpRowsPerBlock = 8;

// The threads of one row: a warp (Warp) or the whole block.
template <bool Warp>
struct RowGroup {
  __device__ static int lane() { return Warp ? threadIdx.x % 32 : threadIdx.x; }
  __device__ static int size() { return Warp ? 32 : blockDim.x; }
  __device__ static int64_t first_row() {
    return Warp ? static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32
                : static_cast<int64_t>(blockIdx.x);
  }
  __device__ static int64_t row_stride() {
    return Warp ? static_cast<int64_t>(gridDim.x) * (blockDim.x / 32) : gridDim.x;
  }
  template <class V, class Combine>
  __device__ static V reduce(V v, V identity, V* scratch, const Combine& combine) {
    if constexpr (Warp) return warp_reduce(v, combine);
    else return block_reduce(v, identity, scratch, combine);
  }
};

struct Max {
  template <class V>
  __device__ V operator()(V a, V b) const { return ops::max_(a, b); }
};

template <bool Warp>
unsigned row_blocks(int64_t rows) {
  const int64_t per_block = Warp ? kWarpRowsPerBlock : 1;
  return static_cast<unsigned>(std::min<int64_t>((rows + per_block - 1) / per_block, 1 << 30));
}

template <bool Warp>
unsigned row_threads() { return Warp ? 32 * kWarpRowsPerBlock : 1024; }

// A row's loss, summed in double, as stored in S: rounded to the compute type,
// then (16-bit S) to S, the two roundings of the CPU's 16-bit kernels.
template <class S>
__device__ S stored_row_loss(double loss) {
  return to_storage<S>(static_cast<ComputeType<S>>(loss));
}

// Cross-entropy on probabilities: row loss sum_c -t ln p, gradient -t / p * grad_scale.
template <class S, bool Warp>
__global__ void __launch_bounds__(1024)
cross_entropy_rows(const S* probs, const S* target, S* grad, S* row_losses, double* partials,
                   ComputeType<S> grad_scale, int64_t rows, int64_t classes) {
  using G = RowGroup<Warp>;
  using C = ComputeType<S>;
  __shared__ double scratch[32];
  for (int64_t r = G::first_row(); r < rows; r += G::row_stride()) {
    const int64_t base = r * classes;
    double loss = 0.0;
    for (int64_t c = G::lane(); c < classes; c += G::size()) {
      C g;
      loss += static_cast<double>(ops::cross_entropy_term(to_compute(probs[base + c]),
                                                          to_compute(target[base + c]), grad_scale, g));
      grad[base + c] = to_storage<S>(g);
    }
    loss = G::reduce(loss, 0.0, scratch, Add{});
    if (G::lane() == 0) {
      if (row_losses) row_losses[r] = stored_row_loss<S>(loss);
      partials[r] = loss;
    }
  }
}

// Softmax cross-entropy, one row per group: max, then the sums of e = exp(x - max)
// (and of the target terms), then the gradient from e recomputed (cheaper than a
// second trip to memory). x_label is read before any gradient is written, so
// grad may alias logits.
template <class S, bool Warp>
__global__ void __launch_bounds__(1024)
softmax_cross_entropy_rows(const S* logits, const S* target_probs, S* grad, S* row_losses,
                           double* partials, ComputeType<S> grad_scale, int64_t rows,
                           int64_t classes, SoftmaxCrossEntropyRows o,
                           ops::LabelSmoothing<ComputeType<S>> eps) {
  using G = RowGroup<Warp>;
  using C = ComputeType<S>;
  __shared__ double scratch[32];
  __shared__ C scratch_t[32];
  const C smooth = eps.smooth, keep = eps.keep;
  const bool smoothing = o.label_smoothing != 0.0;
  for (int64_t r = G::first_row(); r < rows; r += G::row_stride()) {
    const S* x = logits + r * classes;
    const S* p = target_probs ? target_probs + r * classes : nullptr;
    S* g = grad + r * classes;
    const int64_t label = o.labels ? o.labels[r] : -1;
    if (o.labels && o.has_ignore_index && label == o.ignore_index) {
      for (int64_t c = G::lane(); c < classes; c += G::size()) g[c] = to_storage<S>(C(0));
      if (G::lane() == 0) {
        if (row_losses) row_losses[r] = stored_row_loss<S>(0.0);
        partials[r] = 0.0;
      }
      continue;
    }
    const double x_label = o.labels ? static_cast<double>(to_compute(x[label])) : 0.0;
    C max = to_compute(x[0]);
    for (int64_t c = G::lane(); c < classes; c += G::size()) max = ops::max_(max, to_compute(x[c]));
    max = G::reduce(max, max, scratch_t, Max{});
    double sum_e = 0.0, sum_x = 0.0, sum_tx = 0.0, mass = 0.0;
    for (int64_t c = G::lane(); c < classes; c += G::size()) {
      const C xc = to_compute(x[c]);
      sum_e += static_cast<double>(ops::exp_nonpositive_(xc - max));
      if (p) {
        const C t = keep * to_compute(p[c]) + smooth;
        mass += static_cast<double>(t);
        sum_tx += static_cast<double>(t * xc);
      } else if (smoothing) {
        sum_x += static_cast<double>(xc);
      }
    }
    sum_e = G::reduce(sum_e, 0.0, scratch, Add{});
    if (p) {
      mass = G::reduce(mass, 0.0, scratch, Add{});
      sum_tx = G::reduce(sum_tx, 0.0, scratch, Add{});
    } else if (smoothing) {
      sum_x = G::reduce(sum_x, 0.0, scratch, Add{});
    }
    // ln in C, as the CPU kernels take it.
    const double lse = static_cast<double>(max) + static_cast<double>(ops::log_(C(sum_e)));
    const C inv_sum = C(1.0 / sum_e);
    const C target_mass = p ? C(mass) : C(1);
    // Every lane has read x[0] and x[label] before any lane writes g (which may be x):
    // shuffles order no memory, a warp barrier does (a block's barriers already have).
    if constexpr (Warp) __syncwarp();
    for (int64_t c = G::lane(); c < classes; c += G::size()) {
      const C e = ops::exp_nonpositive_(to_compute(x[c]) - max);
      const C t = p ? keep * to_compute(p[c]) + smooth : (c == label ? keep + smooth : smooth);
      g[c] = to_storage<S>(ops::softmax_cross_entropy_grad(e, inv_sum, target_mass, t, grad_scale));
    }
    if (G::lane() == 0) {
      const double loss = p ? ops::softmax_cross_entropy_soft_loss(lse, mass, sum_tx)
                            : ops::softmax_cross_entropy_class_loss(lse, x_label, sum_x,
                                                                    static_cast<double>(keep),
                                                                    static_cast<double>(smooth));
      if (row_losses) row_losses[r] = stored_row_loss<S>(loss);
      partials[r] = loss;
    }
  }
}

// Launches Kernel<T, warp-per-row?> over the rows, then returns the reduced loss.
template <class T, class Launcher>
double run_rows(int64_t rows, int64_t classes, Reduction reduction, int64_t divisor,
                const Launcher& launcher) {
  if (rows == 0) return ops::reduce_loss(0.0, divisor, reduction);
  DeviceBuffer<double> partials(rows);
  if (classes <= kWarpRowClasses) launcher(std::true_type{}, partials.get());
  else launcher(std::false_type{}, partials.get());
  if (reduction == Reduction::none) return 0.0;
  return ops::reduce_loss(sum_on_device(partials.get(), rows), divisor, reduction);
}

template <class Index>
__global__ void class_id_check(const Index* labels, int64_t* ids, int64_t rows, int64_t classes,
                               bool has_ignore, int64_t ignore, unsigned long long* first_bad,
                               unsigned long long* counted) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t id = static_cast<int64_t>(labels[r]);
    ids[r] = id;
    if (has_ignore && id == ignore) continue;
    if (id < 0 || id >= classes) atomicMin(first_bad, static_cast<unsigned long long>(r));
    else atomicAdd(counted, 1ull);
  }
}

}  // namespace

template <class T>
double Drivers::mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n, Reduction r) {
  using C = ComputeType<T>;
  const C grad_scale = ops::grad_scale<C>(r, n, 2.0);
  TensorList<T> t;
  t.operands.push_back({const_cast<T*>(pred), const_cast<T*>(target), grad, losses, nullptr});
  t.sizes.push_back(n);
  const double total = losses ? sum_over(t, ops::MseOp<C, true>{grad_scale})
                              : sum_over(t, ops::MseOp<C, false>{grad_scale});
  return ops::reduce_loss(total, n, r);
}

template <class T>
double Drivers::cross_entropy(const T* probs, const T* target, T* grad, T* row_losses, int64_t rows,
                              int64_t classes, Reduction r) {
  const ComputeType<T> grad_scale = ops::grad_scale<ComputeType<T>>(r, rows);
  return run_rows<T>(rows, classes, r, rows, [&](auto warp, double* partials) {
    constexpr bool W = decltype(warp)::value;
    cross_entropy_rows<T, W><<<row_blocks<W>(rows), row_threads<W>(), 0, current_stream()>>>(
        probs, target, grad, row_losses, partials, grad_scale, rows, classes);
    check_launch("cross_entropy_rows");
  });
}

template <class T>
double Drivers::softmax_cross_entropy(const T* logits, const T* target_probs, T* grad,
                                      T* row_losses, int64_t rows, int64_t classes,
                                      const SoftmaxCrossEntropyOptions& o) {
  const int64_t divisor = ops::mean_divisor(o, rows);
  const ComputeType<T> grad_scale = ops::grad_scale<ComputeType<T>>(o.reduction, divisor);
  return run_rows<T>(rows, classes, o.reduction, divisor, [&](auto warp, double* partials) {
    constexpr bool W = decltype(warp)::value;
    softmax_cross_entropy_rows<T, W><<<row_blocks<W>(rows), row_threads<W>(), 0, current_stream()>>>(
        logits, target_probs, grad, row_losses, partials, grad_scale, rows, classes, o.rows,
        ops::label_smoothing<ComputeType<T>>(o.rows.label_smoothing, classes));
    check_launch("softmax_cross_entropy_rows");
  });
}

template <class T>
double Drivers::l1_loss(const TensorList<T>& t) {
  return sum_over(t, NormOp<ComputeType<T>, false>{});
}

template <class T>
double Drivers::l2_loss(const TensorList<T>& t) {
  return ops::kL2LossFactor * sum_over(t, NormOp<ComputeType<T>, true>{});
}

template <class Index>
int64_t check_class_ids(const Index* labels, int64_t* ids, int64_t rows, int64_t classes,
                        const SoftmaxCrossEntropyRows& o) {
  if (rows == 0) return 0;
  DeviceBuffer<unsigned long long> flags(2);  // first bad row, rows counted
  const unsigned long long initial[2] = {~0ull, 0ull};
  const cudaStream_t stream = current_stream();
  check(cudaMemcpyAsync(flags.get(), initial, sizeof initial, cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync");
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((rows + 255) / 256, 4096));
  class_id_check<<<blocks, 256, 0, stream>>>(labels, ids, rows, classes, o.has_ignore_index,
                                             o.ignore_index, flags.get(), flags.get() + 1);
  check_launch("class_id_check");
  unsigned long long result[2];
  copy_to_host(result, flags.get(), 2);
  if (result[0] != ~0ull) {
    int64_t bad = 0;
    copy_to_host(&bad, ids + result[0], 1);
    throw std::invalid_argument("target[" + std::to_string(result[0]) + "] = " +
                                std::to_string(bad) + " is outside [0, " + std::to_string(classes) + ")");
  }
  return static_cast<int64_t>(result[1]);
}

#define NNFAST_INSTANTIATE(T)                                                                     \
  template double Drivers::mse_loss<T>(const T*, const T*, T*, T*, int64_t, Reduction);           \
  template double Drivers::cross_entropy<T>(const T*, const T*, T*, T*, int64_t, int64_t, Reduction); \
  template double Drivers::softmax_cross_entropy<T>(const T*, const T*, T*, T*, int64_t, int64_t, \
                                                    const SoftmaxCrossEntropyOptions&);           \
  template double Drivers::l1_loss<T>(const TensorList<T>&);                                      \
  template double Drivers::l2_loss<T>(const TensorList<T>&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
NNFAST_INSTANTIATE(Bfloat16)
NNFAST_INSTANTIATE(Float16)
#undef NNFAST_INSTANTIATE

template int64_t check_class_ids<int32_t>(const int32_t*, int64_t*, int64_t, int64_t, const SoftmaxCrossEntropyRows&);
template int64_t check_class_ids<int64_t>(const int64_t*, int64_t*, int64_t, int64_t, const SoftmaxCrossEntropyRows&);

}  // namespace nnfast::cuda
