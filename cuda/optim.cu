// CUDA drivers of the optimizer steps: the functors of ops/functors.h over the
// chunked apply loop. Operand order as in src/cpu/optim.h.
#include "apply.cuh"
#include "drivers.h"

namespace nnfast::cuda {

template <class T>
void Drivers::sgd_step(const TensorList<T>& t, const ops::SgdHyper& h) {
  apply(t, ops::SgdOp<T>{ops::sgd_scalars<T>(h)});
}

template <class T>
void Drivers::sgdm_step(const TensorList<T>& t, const ops::SgdmHyper& h) {
  apply(t, ops::SgdmOp<T>{ops::sgdm_scalars<T>(h)});
}

template <class T>
void Drivers::adagrad_step(const TensorList<T>& t, const ops::AdagradHyper& h) {
  apply(t, ops::AdagradOp<T>{ops::adagrad_scalars<T>(h)});
}

template <class T>
void Drivers::rmsprop_step(const TensorList<T>& t, const ops::RmspropHyper& h) {
  ops::with_rmsprop_op(ops::rmsprop_scalars<T>(h), h.centered, h.momentum > 0.0,
                       [&](const auto& op) { apply(t, op); });
}

template <class T>
void Drivers::adam_step(const TensorList<T>& t, const ops::AdamHyper& h) {
  ops::with_adam_op(ops::adam_scalars<T>(h), h.amsgrad, [&](const auto& op) { apply(t, op); });
}

#define NNFAST_INSTANTIATE(T)                                                                    \
  template void Drivers::sgd_step<T>(const TensorList<T>&, const ops::SgdHyper&);                \
  template void Drivers::sgdm_step<T>(const TensorList<T>&, const ops::SgdmHyper&);              \
  template void Drivers::adagrad_step<T>(const TensorList<T>&, const ops::AdagradHyper&);        \
  template void Drivers::rmsprop_step<T>(const TensorList<T>&, const ops::RmspropHyper&);        \
  template void Drivers::adam_step<T>(const TensorList<T>&, const ops::AdamHyper&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cuda
