// The CUDA drivers: the same functions, with the same arguments, as the CPU
// drivers of src/cpu/drivers.h, on device pointers, queued on the current launch's
// stream (launch.h). They return without waiting, except those that return a
// loss value, which wait for it. Host code; defined in the .cu files.
//
// T is the arrays' element type, as on the CPU: float or double, computed in
// itself, or Bfloat16 or Float16 (call/dtype.h), computed in float32 with the CPU's
// rounding (apply.cuh, loss.cu); activations and losses only (optimizer steps carry
// their storage dtypes in the OptimizerCall).
#pragma once

#include <cstdint>

#include "call/activation_kind.h"
#include "call/adafactor_call.h"
#include "call/loss_options.h"
#include "call/norm_spec.h"
#include "call/optimizer_call.h"
#include "call/tensor_list.h"

namespace nnfast::cuda {

struct Drivers {
  // The activation and loss drivers take Bfloat16 and Float16 elements too.
  static constexpr bool kSixteenBitStorage = true;

  // Every layout the CPU runs (call/optimizer_call.h): arrays of the compute type S
  // in place; 16-bit params, grads and states, float32 masters, int16 remainders and
  // stochastic rounding converted per element, with the CPU's bits (storage.cuh).
  template <class S> static void optimizer_step(const OptimizerCall<S>& call);
  // LAMB's first two passes (src/cpu/drivers.h states them), each chunk summed in
  // double on the device, a tensor's chunks added in order on the host: both wait.
  template <class S> static double lamb_grad_norm(const OptimizerCall<S>& call, double scale);
  template <class S>
  static void lamb_squares(const OptimizerCall<S>& call, double* param_squares,
                           double* update_squares);

  // Adafactor (adafactor.cu states its passes): every layout the CPU runs, arrays of
  // the compute type S in place, any other converted per element with the CPU's bits
  // (storage.cuh); found_inf and the device grad_scale read by the kernels, the step
  // size derived on the device: nothing waits.
  template <class S> static void adafactor_step(const AdafactorCall<S>& call);
  // Adafactor's GPU kernels run 16-bit storage too (bind/adafactor.h refuses nothing
  // for the GPU).
  static constexpr bool kAdafactorConverts = true;

  // Arrays live in device memory: control arrays (found_inf, grad_scale) are read by
  // the kernels (optim.cu), not by the host (but for LAMB, whose trust ratios are
  // derived on the host: bind/optimizer.h).
  static constexpr bool kHostMemory = false;

  template <class T>
  static void activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha);
  template <class T>
  static void activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n,
                                  double alpha);

  template <class T>
  static double mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n, Reduction r);
  template <class T>
  static double cross_entropy(const T* probs, const T* target, T* grad, T* row_losses, int64_t rows,
                              int64_t classes, Reduction r);
  template <class T>
  static double softmax_cross_entropy(const T* logits, const T* target_probs, T* grad,
                                      T* row_losses, int64_t rows, int64_t classes,
                                      const SoftmaxCrossEntropyOptions& o);
  template <class T> static double l1_loss(const TensorList<T>& t);
  template <class T> static double l2_loss(const TensorList<T>& t);

  // Gradient norms (norms.cu; src/cpu/drivers.h states the norm): the norm of
  // spec.scale * g over the list into *total, each tensor's into per_tensor[t] where
  // per_tensor is not null, in device memory, without waiting. clip_to_norm scales
  // every g in place by ops::clip_coefficient of *total (a device pointer) and
  // max_norm; norm_value copies *total back (synchronizes).
  template <class T>
  static void grad_norm_to(const TensorList<T>& grads, const NormSpec& spec, T* total,
                           T* per_tensor);
  template <class T>
  static void clip_to_norm(const TensorList<T>& grads, const T* total, double max_norm);
  template <class T> static T norm_value(const T* total);
};

// Class ids on the device (Index int32 or int64, `rows` of them), copied to
// `ids` as int64 and checked: returns the number of rows not equal to
// ignore_index, or raises ValueError naming the first id outside [0, classes).
// Synchronizes.
template <class Index>
int64_t check_class_ids(const Index* labels, int64_t* ids, int64_t rows, int64_t classes,
                        const SoftmaxCrossEntropyRows& o);

}  // namespace nnfast::cuda
