// The CPU drivers: what nnfast._core runs (bind/numpy_backend.h derives from this),
// the same functions with the same arguments as cuda::Drivers (cuda/drivers.h). Each
// cuts its call into chunks (parallel.h), spreads them over threads and runs the
// chunk kernels of the active ISA table (kernels.h).
//
// Activations: forward out = f(x); backward out = f'(a, dy), where a is the forward
// output y (sigmoid, tanh) or the input x (relu, leaky_relu). Losses compute the loss
// and its gradient in one pass over the inputs; "none" writes per-element (MSE) or
// per-row losses to `losses`; the value returned is the reduced loss ("sum" or
// "mean"), summed in double over fixed chunks, so it does not depend on the thread
// count.
//
// grad_norm and scale are the two passes of gradient clipping (python/nnfast/gradients.py).
//
// T is the arrays' element type: float or double, computed in itself, or Bfloat16
// or Float16 (call/dtype.h), computed in float32 by the float32 kernels on float32
// tiles; activations and losses only (optimizer steps carry their storage dtypes in
// the OptimizerCall).
#pragma once

#include <cstdint>

#include "call/activation_kind.h"
#include "call/adafactor_call.h"
#include "call/loss_options.h"
#include "call/norm_spec.h"
#include "call/optimizer_call.h"
#include "call/tensor_list.h"

namespace nnfast::cpu {

struct Drivers {
  // The activation and loss drivers take Bfloat16 and Float16 elements too.
  static constexpr bool kSixteenBitStorage = true;

  // Arrays live in host memory: a 1-element control array (found_inf, grad_scale)
  // can be read while the call is checked.
  static constexpr bool kHostMemory = true;

  // Skips the step when call.found_inf holds a nonzero value.
  template <class S> static void optimizer_step(const OptimizerCall<S>& call);
  // LAMB's first pass: the 2-norm of scale * g over the grads of a call (grad_norm).
  template <class S> static double lamb_grad_norm(const OptimizerCall<S>& call, double scale);
  // LAMB's second pass over a LAMB call (ops/optimizers/lamb.h): per tensor t,
  // param_squares[t] = sum p^2 and update_squares[t] = sum u^2, each chunk summed in
  // double in kNormLanes lanes, then its lanes in order, a tensor's chunks added in
  // order: the same bits for any thread count and ISA. Writes no operand.
  template <class S>
  static void lamb_squares(const OptimizerCall<S>& call, double* param_squares,
                           double* update_squares);
  // Adafactor's step (cpu/adafactor.cpp states its passes). Skips the step when
  // call.found_inf holds a nonzero value.
  template <class S> static void adafactor_step(const AdafactorCall<S>& call);
  // Every storage layout of the elementwise steps (16-bit arrays, masters, remainders,
  // stochastic rounding), as float32 rows.
  static constexpr bool kAdafactorConverts = true;

  template <class T>
  static void activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha);
  template <class T>
  static void activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n,
                                  double alpha);

  template <class T>
  static double mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n,
                         Reduction reduction);
  template <class T>
  static double cross_entropy(const T* probs, const T* target, T* grad, T* row_losses,
                              int64_t rows, int64_t classes, Reduction reduction);
  // target_probs is null when options.rows.labels holds class ids.
  template <class T>
  static double softmax_cross_entropy(const T* logits, const T* target_probs, T* grad,
                                      T* row_losses, int64_t rows, int64_t classes,
                                      const SoftmaxCrossEntropyOptions& options);
  template <class T> static double l1_loss(const TensorList<T>& tensors);
  template <class T> static double l2_loss(const TensorList<T>& tensors);

  // The norm of spec.scale * g over every tensor of the list (ops/norms.h), with
  // the norm of each tensor in per_tensor[t] where per_tensor is not null. Each
  // chunk combines its elements into kNormLanes lanes, then its lanes in order;
  // each tensor its chunks in order, the total the tensors' in order: the same
  // bits for any thread count and ISA. An empty list or tensor has norm 0.
  template <class T>
  static double grad_norm(const TensorList<T>& grads, const NormSpec& spec, double* per_tensor);
  // g *= factor in place, for every tensor of the list (factor rounded to T's
  // compute type; 16-bit products rounded once).
  template <class T> static void scale(const TensorList<T>& grads, double factor);
};

}  // namespace nnfast::cpu
