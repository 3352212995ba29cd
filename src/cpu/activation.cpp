#include "cpu/drivers.h"
#include "cpu/kernels.h"

#include "cpu/parallel.h"
#include "ops/narrow.h"

namespace nnfast::cpu {

template <class T>
void Drivers::activation_forward(Activation kind, const T* x, T* out, int64_t n, double alpha) {
  const auto& k = kernels().get<T>();
  const ComputeType<T> alpha_t = ops::narrow<ComputeType<T>>(alpha, "alpha");
  const std::vector<Chunk> chunks = make_chunks({n});
  parallel_for(static_cast<int64_t>(chunks.size()), n, [&](int64_t c) {
    const Chunk& ch = chunks[c];
    k.activation_forward(kind, alpha_t, out + ch.begin, x + ch.begin, ch.end - ch.begin);
  });
}

template <class T>
void Drivers::activation_backward(Activation kind, const T* a, const T* dy, T* out, int64_t n, double alpha) {
  const auto& k = kernels().get<T>();
  const ComputeType<T> alpha_t = ops::narrow<ComputeType<T>>(alpha, "alpha");
  const std::vector<Chunk> chunks = make_chunks({n});
  parallel_for(static_cast<int64_t>(chunks.size()), n, [&](int64_t c) {
    const Chunk& ch = chunks[c];
    k.activation_backward(kind, alpha_t, out + ch.begin, a + ch.begin, dy + ch.begin,
                          ch.end - ch.begin);
  });
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template void Drivers::activation_forward<T>(Activation, const T*, T*, int64_t, double);       \
  template void Drivers::activation_backward<T>(Activation, const T*, const T*, T*, int64_t, double);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
NNFAST_INSTANTIATE(Bfloat16)
NNFAST_INSTANTIATE(Float16)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
