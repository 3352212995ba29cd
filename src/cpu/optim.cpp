#include "cpu/optim.h"

#include "cpu/elementwise.h"

namespace nnfast::cpu {


template <class T>
void sgd_step(const TensorList<T>& t, const ops::SgdHyper& h) {
  const auto s = ops::sgd_scalars<T>(h);
  for_each_element(t, [&](const auto& a, int64_t i) { ops::sgd_update(a[0][i], a[1][i], s); });
}

template <class T>
void sgdm_step(const TensorList<T>& t, const ops::SgdmHyper& h) {
  const auto s = ops::sgdm_scalars<T>(h);
  for_each_element(t, [&](const auto& a, int64_t i) {
    ops::sgdm_update(a[0][i], a[1][i], a[2][i], s);
  });
}

template <class T>
void adagrad_step(const TensorList<T>& t, const ops::AdagradHyper& h) {
  const auto s = ops::adagrad_scalars<T>(h);
  for_each_element(t, [&](const auto& a, int64_t i) {
    ops::adagrad_update(a[0][i], a[1][i], a[2][i], s);
  });
}

template <bool Centered, bool Momentum, class T>
void rmsprop_variant(const TensorList<T>& t, const ops::RmspropScalars<T>& s) {
  for_each_element(t, [&](const auto& a, int64_t i) {
    ops::rmsprop_update<Centered, Momentum>(a[0][i], a[1][i], a[2][i],
                                            Centered ? a[3] + i : nullptr,
                                            Momentum ? a[4] + i : nullptr, s);
  });
}

template <class T>
void rmsprop_step(const TensorList<T>& t, const ops::RmspropHyper& h) {
  const auto s = ops::rmsprop_scalars<T>(h);
  const bool momentum = h.momentum > 0.0;
  if (h.centered) {
    momentum ? rmsprop_variant<true, true>(t, s) : rmsprop_variant<true, false>(t, s);
  } else {
    momentum ? rmsprop_variant<false, true>(t, s) : rmsprop_variant<false, false>(t, s);
  }
}

template <bool Amsgrad, class T>
void adam_variant(const TensorList<T>& t, const ops::AdamScalars<T>& s) {
  for_each_element(t, [&](const auto& a, int64_t i) {
    ops::adam_update<Amsgrad>(a[0][i], a[1][i], a[2][i], a[3][i], Amsgrad ? a[4] + i : nullptr, s);
  });
}

template <class T>
void adam_step(const TensorList<T>& t, const ops::AdamHyper& h) {
  const auto s = ops::adam_scalars<T>(h);
  h.amsgrad ? adam_variant<true>(t, s) : adam_variant<false>(t, s);
}

#define NNFAST_INSTANTIATE(T)                                               \
  template void sgd_step<T>(const TensorList<T>&, const ops::SgdHyper&);    \
  template void sgdm_step<T>(const TensorList<T>&, const ops::SgdmHyper&);  \
  template void adagrad_step<T>(const TensorList<T>&, const ops::AdagradHyper&); \
  template void rmsprop_step<T>(const TensorList<T>&, const ops::RmspropHyper&); \
  template void adam_step<T>(const TensorList<T>&, const ops::AdamHyper&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
