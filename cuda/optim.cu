// CUDA drivers of the optimizer steps: one functor per optimizer, holding its
// scalars and running the ops/optim.h formula, over the chunked apply loop.
// Operand order as in src/cpu/optim.h.
#include "apply.cuh"
#include "drivers.h"
#include "ops/optim.h"

namespace nnfast::cuda {

namespace {

constexpr unsigned k0 = 1, k1 = 2, k2 = 4, k3 = 8, k4 = 16;

template <class T>
struct SgdOp {
  static constexpr unsigned kRead = k0 | k1, kWrite = k0;
  ops::SgdScalars<T> s;
  __device__ void operator()(T* x) const { ops::sgd_update(x[0], x[1], s); }
};

template <class T>
struct SgdmOp {
  static constexpr unsigned kRead = k0 | k1 | k2, kWrite = k0 | k2;
  ops::SgdmScalars<T> s;
  __device__ void operator()(T* x) const { ops::sgdm_update(x[0], x[1], x[2], s); }
};

template <class T>
struct AdagradOp {
  static constexpr unsigned kRead = k0 | k1 | k2, kWrite = k0 | k2;
  ops::AdagradScalars<T> s;
  __device__ void operator()(T* x) const { ops::adagrad_update(x[0], x[1], x[2], s); }
};

template <class T, bool Centered, bool Momentum>
struct RmspropOp {
  static constexpr unsigned kStates = (Centered ? k3 : 0u) | (Momentum ? k4 : 0u);
  static constexpr unsigned kRead = k0 | k1 | k2 | kStates, kWrite = k0 | k2 | kStates;
  ops::RmspropScalars<T> s;
  __device__ void operator()(T* x) const {
    ops::rmsprop_update<Centered, Momentum>(x[0], x[1], x[2], Centered ? &x[3] : nullptr,
                                            Momentum ? &x[4] : nullptr, s);
  }
};

template <class T, bool Amsgrad>
struct AdamOp {
  static constexpr unsigned kMax = Amsgrad ? k4 : 0u;
  static constexpr unsigned kRead = k0 | k1 | k2 | k3 | kMax, kWrite = k0 | k2 | k3 | kMax;
  ops::AdamScalars<T> s;
  __device__ void operator()(T* x) const {
    ops::adam_update<Amsgrad>(x[0], x[1], x[2], x[3], Amsgrad ? &x[4] : nullptr, s);
  }
};

}  // namespace

template <class T>
void Drivers::sgd_step(const TensorList<T>& t, const ops::SgdHyper& h) {
  apply<2>(t, SgdOp<T>{ops::sgd_scalars<T>(h)});
}

template <class T>
void Drivers::sgdm_step(const TensorList<T>& t, const ops::SgdmHyper& h) {
  apply<3>(t, SgdmOp<T>{ops::sgdm_scalars<T>(h)});
}

template <class T>
void Drivers::adagrad_step(const TensorList<T>& t, const ops::AdagradHyper& h) {
  apply<3>(t, AdagradOp<T>{ops::adagrad_scalars<T>(h)});
}

template <class T>
void Drivers::rmsprop_step(const TensorList<T>& t, const ops::RmspropHyper& h) {
  const auto s = ops::rmsprop_scalars<T>(h);
  const bool momentum = h.momentum > 0.0;
  if (h.centered) {
    momentum ? apply<5>(t, RmspropOp<T, true, true>{s}) : apply<4>(t, RmspropOp<T, true, false>{s});
  } else {
    momentum ? apply<5>(t, RmspropOp<T, false, true>{s}) : apply<3>(t, RmspropOp<T, false, false>{s});
  }
}

template <class T>
void Drivers::adam_step(const TensorList<T>& t, const ops::AdamHyper& h) {
  const auto s = ops::adam_scalars<T>(h);
  h.amsgrad ? apply<5>(t, AdamOp<T, true>{s}) : apply<4>(t, AdamOp<T, false>{s});
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
