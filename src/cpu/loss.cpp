#include "cpu/loss.h"

#include <algorithm>
#include <limits>

#include "cpu/parallel.h"
#include "ops/loss.h"

namespace nnfast::cpu {

namespace {

// Rows grouped so that a chunk holds about kChunkElements values.
std::vector<Chunk> row_chunks(int64_t rows, int64_t classes) {
  return make_chunks({rows}, std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, classes)));
}

double reduce(double total, int64_t count, Reduction reduction) {
  if (reduction == Reduction::mean) return total / static_cast<double>(count);
  return reduction == Reduction::sum ? total : 0.0;
}

}  // namespace

template <class T>
double mse_loss(const T* pred, const T* target, T* grad, T* losses, int64_t n, Reduction reduction) {
  const T grad_scale = reduction == Reduction::mean ? T(2.0 / static_cast<double>(n)) : T(2);
  const double total = deterministic_sum(make_chunks({n}), n, [&](const Chunk& c) {
    double sum = 0.0;
    for (int64_t i = c.begin; i < c.end; ++i) {
      const T term = ops::mse_term(pred[i], target[i], grad_scale, grad[i]);
      if (losses) losses[i] = term;
      sum += term;
    }
    return sum;
  });
  return reduce(total, n, reduction);
}

template <class T>
double cross_entropy(const T* probs, const T* target, T* grad, T* row_losses, int64_t rows,
                     int64_t classes, Reduction reduction) {
  const T grad_scale = reduction == Reduction::mean ? T(1.0 / static_cast<double>(rows)) : T(1);
  const double total = deterministic_sum(row_chunks(rows, classes), rows * classes, [&](const Chunk& c) {
    double chunk_sum = 0.0;
    for (int64_t r = c.begin; r < c.end; ++r) {
      double row = 0.0;
      for (int64_t k = r * classes; k < (r + 1) * classes; ++k) {
        row += ops::cross_entropy_term(probs[k], target[k], grad_scale, grad[k]);
      }
      if (row_losses) row_losses[r] = T(row);
      chunk_sum += row;
    }
    return chunk_sum;
  });
  return reduce(total, rows, reduction);
}

// One row of softmax cross-entropy (Milakov & Gimelshein's max-shifted softmax):
//   lse = max + log(sum_c e_c), e_c = exp(x_c - max)
//   class id y:    loss = lse - (1 - eps) x_y - (eps / C) sum_c x_c
//   probabilities: t'_c = (1 - eps) t_c + eps / C;  loss = lse sum_c t'_c - sum_c t'_c x_c
// The gradient (ops::softmax_cross_entropy_grad) is written in the same pass.
// e_c is parked in grad, so x is read from memory once and grad may alias x.
template <class T>
double softmax_cross_entropy_row(const T* x, int64_t label, const T* probs, T* g, int64_t classes,
                                 double eps, T grad_scale) {
  const T smooth = T(eps / static_cast<double>(classes));
  const T keep = T(1.0 - eps);
  const double x_label = probs ? 0.0 : static_cast<double>(x[label]);
  T max = x[0];
  for (int64_t c = 1; c < classes; ++c) max = ops::max_nan_(max, x[c]);
  double sum_e = 0.0;
  double sum_x = 0.0;          // sum_c x_c (label smoothing with class ids)
  double sum_tx = 0.0;         // sum_c t'_c x_c (probability targets)
  double target_mass = 1.0;    // sum_c t'_c
  if (probs) target_mass = 0.0;
  for (int64_t c = 0; c < classes; ++c) {
    const T xc = x[c];
    if (probs) {
      const T t = keep * probs[c] + smooth;
      target_mass += t;
      sum_tx += static_cast<double>(t) * static_cast<double>(xc);
    } else {
      sum_x += xc;
    }
    const T e = ops::exp_(xc - max);
    sum_e += e;
    g[c] = e;
  }
  const double lse = static_cast<double>(max) + std::log(sum_e);
  const T inv_sum = T(1.0 / sum_e);
  const T mass = T(target_mass);
  for (int64_t c = 0; c < classes; ++c) {
    const T t = probs ? keep * probs[c] + smooth : (c == label ? keep + smooth : smooth);
    g[c] = ops::softmax_cross_entropy_grad(g[c], inv_sum, mass, t, grad_scale);
  }
  if (probs) return lse * target_mass - sum_tx;
  return lse - static_cast<double>(keep) * x_label - static_cast<double>(smooth) * sum_x;
}

template <class T>
double softmax_cross_entropy(const T* logits, const int64_t* labels, const T* target_probs,
                             T* grad, T* row_losses, int64_t rows, int64_t classes,
                             const SoftmaxCrossEntropyOptions& o) {
  const int64_t divisor = labels ? o.counted_rows : rows;
  const T grad_scale = o.reduction == Reduction::mean ? T(1.0 / static_cast<double>(divisor)) : T(1);
  const double total = deterministic_sum(row_chunks(rows, classes), rows * classes, [&](const Chunk& c) {
    double chunk_sum = 0.0;
    for (int64_t r = c.begin; r < c.end; ++r) {
      T* g = grad + r * classes;
      double row = 0.0;
      if (labels && o.has_ignore_index && labels[r] == o.ignore_index) {
        std::fill(g, g + classes, T(0));
      } else {
        row = softmax_cross_entropy_row(logits + r * classes, labels ? labels[r] : 0,
                                        target_probs ? target_probs + r * classes : nullptr, g,
                                        classes, o.label_smoothing, grad_scale);
      }
      if (row_losses) row_losses[r] = T(row);
      chunk_sum += row;
    }
    return chunk_sum;
  });
  return reduce(total, divisor, o.reduction);
}

template <class T, class Term>
double sum_terms(const TensorList<T>& tensors, const Term& term) {
  return deterministic_sum(make_chunks(tensors.sizes), tensors.total(), [&](const Chunk& c) {
    const T* w = tensors.operands[c.tensor][0];
    double sum = 0.0;
    for (int64_t i = c.begin; i < c.end; ++i) sum += term(static_cast<double>(w[i]));
    return sum;
  });
}

template <class T>
double l1_loss(const TensorList<T>& tensors) {
  return sum_terms(tensors, [](double w) { return ops::l1_term(w); });
}

template <class T>
double l2_loss(const TensorList<T>& tensors) {
  return ops::kL2LossFactor * sum_terms(tensors, [](double w) { return ops::l2_term(w); });
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template double mse_loss<T>(const T*, const T*, T*, T*, int64_t, Reduction);                 \
  template double cross_entropy<T>(const T*, const T*, T*, T*, int64_t, int64_t, Reduction);   \
  template double softmax_cross_entropy<T>(const T*, const int64_t*, const T*, T*, T*, int64_t, \
                                           int64_t, const SoftmaxCrossEntropyOptions&);         \
  template double l1_loss<T>(const TensorList<T>&);                                            \
  template double l2_loss<T>(const TensorList<T>&);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::cpu
