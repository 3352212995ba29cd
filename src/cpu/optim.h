// CPU drivers of the optimizer steps. Operand order in each TensorList:
//   sgd      p, g
//   sgdm     p, g, momentum_buffer
//   adagrad  p, g, sum
//   rmsprop  p, g, square_avg, grad_avg (centered) or null, momentum_buffer or null
//   adam     p, g, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad) or null
#pragma once

#include "calls.h"
#include "ops/optim_scalars.h"

namespace nnfast::cpu {

template <class T> void sgd_step(const TensorList<T>& t, const ops::SgdHyper& h);
template <class T> void sgdm_step(const TensorList<T>& t, const ops::SgdmHyper& h);
template <class T> void adagrad_step(const TensorList<T>& t, const ops::AdagradHyper& h);
template <class T> void rmsprop_step(const TensorList<T>& t, const ops::RmspropHyper& h);
template <class T> void adam_step(const TensorList<T>& t, const ops::AdamHyper& h);

}  // namespace nnfast::cpu
