#include "cpu/optim.h"

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace nnfast::cpu {

namespace {

// Runs kernel(operands of a tensor, begin, end) over every chunk of the call.
template <class T, class Kernel>
void for_each_chunk(const TensorList<T>& t, const Kernel& kernel) {
  const std::vector<Chunk> chunks = make_chunks(t.sizes);
  parallel_for(static_cast<int64_t>(chunks.size()), t.total(), [&](int64_t c) {
    const Chunk& ch = chunks[c];
    kernel(t.operands[ch.tensor].data(), ch.begin, ch.end);
  });
}

}  // namespace

template <class T>
void sgd_step(const TensorList<T>& t, const ops::SgdHyper& h) {
  const auto s = ops::sgd_scalars<T>(h);
  const auto& k = kernels().get<T>();
  for_each_chunk(t, [&](T* const* a, int64_t b, int64_t e) { k.sgd(s, a, b, e); });
}

template <class T>
void sgdm_step(const TensorList<T>& t, const ops::SgdmHyper& h) {
  const auto s = ops::sgdm_scalars<T>(h);
  const auto& k = kernels().get<T>();
  for_each_chunk(t, [&](T* const* a, int64_t b, int64_t e) { k.sgdm(s, a, b, e); });
}

template <class T>
void adagrad_step(const TensorList<T>& t, const ops::AdagradHyper& h) {
  const auto s = ops::adagrad_scalars<T>(h);
  const auto& k = kernels().get<T>();
  for_each_chunk(t, [&](T* const* a, int64_t b, int64_t e) { k.adagrad(s, a, b, e); });
}

template <class T>
void rmsprop_step(const TensorList<T>& t, const ops::RmspropHyper& h) {
  const auto s = ops::rmsprop_scalars<T>(h);
  const auto& k = kernels().get<T>();
  const bool momentum = h.momentum > 0.0;
  for_each_chunk(t, [&](T* const* a, int64_t b, int64_t e) {
    k.rmsprop(s, h.centered, momentum, a, b, e);
  });
}

template <class T>
void adam_step(const TensorList<T>& t, const ops::AdamHyper& h) {
  const auto s = ops::adam_scalars<T>(h);
  const auto& k = kernels().get<T>();
  for_each_chunk(t, [&](T* const* a, int64_t b, int64_t e) { k.adam(s, h.amsgrad, a, b, e); });
}

#define NNFAST_INSTANTIATE(T)                                                    \
  template void sgd_step<T>(const TensorList<T>&, const ops::SgdHyper&);         \
  template void sgdm_step<T>(const TensorList<T>&, const ops::SgdmHyper&);       \
  template void adagrad_step<T>(const TensorList<T>&, const ops::AdagradHyper&); \
  template void rmsprop_step<T>(const TensorList<T>&, const ops::RmspropHyper&); \
  template void adam_step<T>(const TensorList<T>&, const ops::AdamHyper&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
