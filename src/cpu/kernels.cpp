// The chunk kernels of one instruction set (compiled once per ISA; see kernels.h).
//
// Every loop runs the ops/ formulas on the widest vector type of the ISA, then
// on scalars for the remaining elements: the same template code, so a tail
// element gets the same bits as it would in a vector lane.
#include <algorithm>
#include <array>
#include <iterator>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cpu/element_loops.h"
#include "cpu/kernels.h"
#include "cpu/traffic.h"
#include "ops/functors.h"
#include "ops/loss_scalars.h"
#include "ops/norms.h"
#include "ops/optimizers.h"
#include "simd/convert.h"
#include "simd/vec.h"

namespace nnfast::cpu {
namespace NNFAST_ISA {
namespace {

using ops::exp_nonpositive_;  // scalars; vector overloads are found by argument-dependent lookup
using ops::log_;
using ops::kOp0;
using ops::kOp1;
using ops::kOp2;
using ops::kOp3;

// ---------------------------------------------------------------- optimizers

template <class S>
void optimizer(const OptimizerCall<S>& call, int64_t tensor, int64_t begin, int64_t end) {
  ops::with_step_op(call.scalars[call.scalars_of_tensor[tensor]], call.stores_scaled_grads,
                    [&](const auto& op) { run_optimizer(op, call, tensor, begin, end); });
}

// ---------------------------------------------------------------- activations

template <class T>
void activation_forward(Activation kind, T alpha, T* out, const T* x, int64_t n) {
  T* const a[kMaxOperands] = {out, const_cast<T*>(x), nullptr, nullptr, nullptr};
  ops::with_activation_op<ops::ActivationForwardOp>(kind, alpha,
                                                    [&](const auto& op) { run(op, a, 0, n); });
}

template <class T>
void activation_backward(Activation kind, T alpha, T* out, const T* fwd, const T* dy, int64_t n) {
  T* const a[kMaxOperands] = {out, const_cast<T*>(fwd), const_cast<T*>(dy), nullptr, nullptr};
  ops::with_activation_op<ops::ActivationBackwardOp>(kind, alpha,
                                                     [&](const auto& op) { run(op, a, 0, n); });
}

// ---------------------------------------------------------------- losses

// Sums in double: float lanes are widened and added into double vectors, one
// accumulator lane per input lane, plus a scalar for the tail; total() adds them
// in a fixed order, so the result depends only on the data (not on threads).
template <class T>
struct LaneSums {
  using D = Vec<double>;
  D low = D(0.0), high = D(0.0);
  double tail = 0.0;

  // Adds term(x) for each lane of x, term applied in double (scalar or vector).
  template <class X, class Term>
  void add(X x, const Term& term) {
    if constexpr (lane_count<X>() == 1) {
      tail += term(static_cast<double>(x));
    } else if constexpr (std::is_same_v<T, float>) {
      low = low + term(simd::widen_low(x));
      high = high + term(simd::widen_high(x));
    } else {
      low = low + term(x);
    }
  }

  template <class X>
  void add(X x) {
    add(x, [](auto v) { return v; });
  }

  double total() const {
    double sum = tail;
    simd::for_each_lane(low, [&](double v) { sum += v; });
    simd::for_each_lane(high, [&](double v) { sum += v; });
    return sum;
  }

  // The per-lane sums (lane j of every vector added), in lane order.
  void lanes_to(double* out) const {
    int j = 0;
    simd::for_each_lane(low, [&](double v) { out[j++] = v; });
    if constexpr (std::is_same_v<T, float>) simd::for_each_lane(high, [&](double v) { out[j++] = v; });
  }
};

// Runs op, a functor that returns a loss term, adding the terms to sums.
template <class Op, class T>
void run_summed(const Op& op, T* const* a, int64_t begin, int64_t end, LaneSums<T>& sums) {
  apply<Op::kRead, Op::kWrite>(a, begin, end, [&](auto* x) { sums.add(op(x)); });
}

// Operands: pred, target, grad, losses (optional).
template <class T>
double mse(const T* pred, const T* target, T* grad, T* losses, T grad_scale, int64_t n) {
  T* const a[kMaxOperands] = {const_cast<T*>(pred), const_cast<T*>(target), grad, losses, nullptr};
  LaneSums<T> sums;
  if (losses) run_summed(ops::MseOp<T, true>{grad_scale}, a, 0, n, sums);
  else run_summed(ops::MseOp<T, false>{grad_scale}, a, 0, n, sums);
  return sums.total();
}

// Rows of `classes` probabilities; returns the sum of the row losses.
template <class T>
double cross_entropy_rows(const T* probs, const T* target, T* grad, T* row_losses, T grad_scale,
                          int64_t classes, int64_t rows) {
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t offset = r * classes;
    T* const a[kMaxOperands] = {const_cast<T*>(probs + offset), const_cast<T*>(target + offset),
                             grad + offset, nullptr, nullptr};
    LaneSums<T> row;
    apply<kOp0 | kOp1, kOp2>(a, 0, classes, [&](auto* x) {
      using V = ValueOf<decltype(x)>;
      row.add(ops::cross_entropy_term(x[0], x[1], V(grad_scale), x[2]));
    });
    const double loss = row.total();
    if (row_losses) row_losses[r] = T(loss);
    total += loss;
  }
  return total;
}

// max over x[0..n) for the softmax shift (ops::max_: a NaN is passed over, and
// reaches the row's result through its exp). Four running maxima break the
// dependency chain of compare-and-select (max is exact, so their order does not
// matter, but for the sign of a zero maximum, which no result depends on). Every
// maximum starts from x[0] and takes each loaded value as max_'s second operand,
// so a NaN in x is passed over and never stops a maximum from growing: every
// non-NaN x_c - max is then <= 0, as exp_nonpositive_ requires.
template <class T>
T row_max(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int lanes = lane_count<V>();
  T best = x[0];
  int64_t i = 0;
  if constexpr (lanes > 1) {
    if (n >= 4 * lanes) {
      V m0(best), m1(best), m2(best), m3(best);
      for (; i + 4 * lanes <= n; i += 4 * lanes) {
        m0 = ops::max_(m0, load_as<V>(x + i));
        m1 = ops::max_(m1, load_as<V>(x + i + lanes));
        m2 = ops::max_(m2, load_as<V>(x + i + 2 * lanes));
        m3 = ops::max_(m3, load_as<V>(x + i + 3 * lanes));
      }
      const V m = ops::max_(ops::max_(m0, m1), ops::max_(m2, m3));
      simd::for_each_lane(m, [&](T v) { best = ops::max_(best, v); });
    }
  }
  for (; i < n; ++i) best = ops::max_(best, x[i]);
  return best;
}

// A running maximum (ops::max_, as row_max) of vector lanes and scalar tails.
template <class T>
struct LaneMax {
  Vec<T> lanes;
  T tail;

  explicit LaneMax(T first) : lanes(first), tail(first) {}
  template <class X>
  void add(X x) {
    if constexpr (lane_count<X>() == 1) tail = ops::max_(tail, x);
    else lanes = ops::max_(lanes, x);
  }
  T total() const {
    T best = tail;
    simd::for_each_lane(lanes, [&](T v) { best = ops::max_(best, v); });
    return best;
  }
};

// One row of softmax cross-entropy, given its max: lse = max + log(sum_c e_c),
// e_c = exp(x_c - max), then the row loss of ops/loss.h and the gradient of each
// logit. e_c is parked in g between the passes, so x is read from memory once and g
// may alias x (x_c is consumed before g_c is written). With next_x (the next row),
// the max of the next row is taken during the exp pass and stored in *next_max:
// the next row's first (memory-bound) read then overlaps this row's exps
// (compute-bound) instead of following them.
template <class T>
double softmax_cross_entropy_row(const T* x, T max, int64_t label, const T* probs, T* g,
                                 int64_t classes, double eps, T grad_scale, const T* next_x,
                                 T* next_max) {
  const ops::LabelSmoothing<T> smoothing_of = ops::label_smoothing<T>(eps, classes);
  const T keep = smoothing_of.keep, smooth = smoothing_of.smooth;
  const double x_label = probs ? 0.0 : static_cast<double>(x[label]);
  const bool smoothing = eps != 0.0;  // sum_c x_c is needed only then
  LaneSums<T> sum_e, sum_x, sum_tx, mass;
  LaneMax<T> following(next_x ? next_x[0] : T(0));
  T* const a[kMaxOperands] = {const_cast<T*>(x), const_cast<T*>(probs), g, const_cast<T*>(next_x),
                              nullptr};
  const auto parked = [&](auto* v) {
    using V = ValueOf<decltype(v)>;
    if (next_x) following.add(v[3]);
    if (probs) {
      const V t = V(keep) * v[1] + V(smooth);
      mass.add(t);
      sum_tx.add(t * v[0]);
    } else if (smoothing) {
      sum_x.add(v[0]);
    }
    v[2] = exp_nonpositive_(v[0] - V(max));
    sum_e.add(v[2]);
  };
  if (probs) {
    next_x ? apply<kOp0 | kOp1 | kOp3, kOp2>(a, 0, classes, parked) : apply<kOp0 | kOp1, kOp2>(a, 0, classes, parked);
  } else {
    next_x ? apply<kOp0 | kOp3, kOp2>(a, 0, classes, parked) : apply<kOp0, kOp2>(a, 0, classes, parked);
  }
  if (next_x) *next_max = following.total();

  const double sum = sum_e.total();
  // ln in T, as softmax_cross_entropy_lanes takes it, so that a row's loss does not
  // depend on which of the two paths computed it.
  const double lse = static_cast<double>(max) + static_cast<double>(log_(T(sum)));
  const T inv_sum = T(1.0 / sum);
  const double target_mass = probs ? mass.total() : 1.0;
  const auto gradient = [&](auto* v) {
    using V = ValueOf<decltype(v)>;
    v[2] = ops::softmax_cross_entropy_grad(v[2], V(inv_sum), V(T(target_mass)),
                                           V(keep) * v[1] + V(smooth), V(grad_scale));
  };
  if (probs) {
    apply<kOp1 | kOp2, kOp2>(a, 0, classes, gradient);
    return ops::softmax_cross_entropy_soft_loss(lse, target_mass, sum_tx.total());
  }
  // Class ids: the target is eps / C everywhere, plus 1 - eps at the label.
  const T e_label = g[label];
  T* const parked_e[kMaxOperands] = {nullptr, nullptr, g, nullptr, nullptr};
  apply<kOp2, kOp2>(parked_e, 0, classes, [&](auto* v) {
    using V = ValueOf<decltype(v)>;
    v[2] = ops::softmax_cross_entropy_grad(v[2], V(inv_sum), V(T(1)), V(smooth), V(grad_scale));
  });
  g[label] = ops::softmax_cross_entropy_grad(e_label, inv_sum, T(1), keep + smooth, grad_scale);
  return ops::softmax_cross_entropy_class_loss(lse, x_label, sum_x.total(), keep, smooth);
}

// Softmax cross-entropy with class ids for rows shorter than a vector
// (classes < lanes): one row per lane, the class loop outermost, the same
// formulas (and bits) as softmax_cross_entropy_row. ln(sum) is taken in T from
// the double sum (sum is in [1, C], so the absolute error of lse stays at the
// rounding of ln C in T). Processes `lanes` rows.
template <class T>
double softmax_cross_entropy_lanes(const T* x, const int64_t* labels, T* g, T* row_losses,
                                   int64_t classes, const SoftmaxCrossEntropyRows& o,
                                   T grad_scale) {
  using V = Vec<T>;
  constexpr int lanes = lane_count<V>();
  alignas(64) T buffer[lanes];
  const auto column = [&](const T* base) {
    for (int j = 0; j < lanes; ++j) buffer[j] = base[j * classes];
    return load_as<V>(buffer);
  };
  const auto per_lane = [&](auto value_of_lane) {
    for (int j = 0; j < lanes; ++j) buffer[j] = value_of_lane(j);
    return load_as<V>(buffer);
  };
  const ops::LabelSmoothing<T> smoothing_of = ops::label_smoothing<T>(o.label_smoothing, classes);
  const T keep = smoothing_of.keep, smooth = smoothing_of.smooth;
  bool ignored[lanes];
  T x_label[lanes];
  for (int j = 0; j < lanes; ++j) {
    ignored[j] = o.has_ignore_index && labels[j] == o.ignore_index;
    x_label[j] = ignored[j] ? T(0) : x[j * classes + labels[j]];
  }
  V e[lanes];  // the columns of x (classes >= 1 of them), then exp(x - max)
  V max = e[0] = column(x);
  for (int64_t c = 1; c < classes; ++c) max = ops::max_(max, e[c] = column(x + c));
  LaneSums<T> sum_e, sum_x;
  for (int64_t c = 0; c < classes; ++c) {
    if (o.label_smoothing != 0.0) sum_x.add(e[c]);
    e[c] = exp_nonpositive_(e[c] - max);
    sum_e.add(e[c]);
  }
  double sums[lanes], sums_x[lanes] = {};
  sum_e.lanes_to(sums);
  if (o.label_smoothing != 0.0) sum_x.lanes_to(sums_x);
  const V log_sum = log_(per_lane([&](int j) { return T(sums[j]); }));
  alignas(64) T maxima[lanes], logs[lanes];
  store_as<V>(maxima, max);
  store_as<V>(logs, log_sum);
  double total = 0.0;
  for (int j = 0; j < lanes; ++j) {
    const double lse = static_cast<double>(maxima[j]) + static_cast<double>(logs[j]);
    const double loss =
        ignored[j] ? 0.0 : ops::softmax_cross_entropy_class_loss(lse, x_label[j], sums_x[j], keep, smooth);
    if (row_losses) row_losses[j] = T(loss);
    total += loss;
  }
  const V inv_sum = per_lane([&](int j) { return T(1.0 / sums[j]); });
  const V label = per_lane([&](int j) { return T(ignored[j] ? -1 : labels[j]); });
  const V skip = per_lane([&](int j) { return T(ignored[j] ? 1 : 0); });
  for (int64_t c = 0; c < classes; ++c) {
    const V t = select(label == V(T(c)), V(keep + smooth), V(smooth));
    const V grad = ops::softmax_cross_entropy_grad(e[c], inv_sum, V(T(1)), t, V(grad_scale));
    store_as<V>(buffer, select(skip != V(T(0)), V(T(0)), grad));
    for (int j = 0; j < lanes; ++j) g[j * classes + c] = buffer[j];
  }
  return total;
}

template <class T>
double softmax_cross_entropy_rows(const T* logits, const T* target_probs, T* grad, T* row_losses,
                                  T grad_scale, int64_t classes, int64_t first_row, int64_t rows,
                                  const SoftmaxCrossEntropyRows& o) {
  double total = 0.0;
  int64_t r = first_row;
  constexpr int lanes = lane_count<Vec<T>>();
  if constexpr (lanes > 1) {
    if (o.labels && !target_probs && classes < lanes) {
      for (; r + lanes <= first_row + rows; r += lanes)
        total += softmax_cross_entropy_lanes(logits + r * classes, o.labels + r, grad + r * classes,
                                             row_losses ? row_losses + r : nullptr, classes, o,
                                             grad_scale);
    }
  }
  const int64_t end = first_row + rows;
  const auto ignored = [&](int64_t row) {
    return o.labels && o.has_ignore_index && o.labels[row] == o.ignore_index;
  };
  bool have_max = false;  // the max of row r, taken with row r - 1
  T max = T(0);
  for (; r < end; ++r) {
    T* g = grad + r * classes;
    double loss = 0.0;
    if (ignored(r)) {
      for (int64_t c = 0; c < classes; ++c) g[c] = T(0);
      have_max = false;
    } else {
      const T* x = logits + r * classes;
      if (!have_max) max = row_max(x, classes);
      // (the next row's logits are read before this row's gradient is written:
      // g may alias x, but only within one row)
      const bool next = r + 1 < end && !ignored(r + 1);
      loss = softmax_cross_entropy_row(x, max, o.labels ? o.labels[r] : 0,
                                       target_probs ? target_probs + r * classes : nullptr, g,
                                       classes, o.label_smoothing, grad_scale,
                                       next ? x + classes : nullptr, &max);
      have_max = next;
    }
    if (row_losses) row_losses[r] = T(loss);
    total += loss;
  }
  return total;
}

template <class T, class Term>
double sum_terms(const T* w, int64_t n, const Term& term) {
  T* const a[kMaxOperands] = {const_cast<T*>(w), nullptr, nullptr, nullptr, nullptr};
  LaneSums<T> sums;
  apply<kOp0, 0u>(a, 0, n, [&](auto* x) { sums.add(x[0], term); });
  return sums.total();
}

template <class T>
double l1_sum(const T* w, int64_t n) {
  return sum_terms(w, n, [](auto v) { return ops::l1_term(v); });
}

template <class T>
double l2_sum(const T* w, int64_t n) {
  return sum_terms(w, n, [](auto v) { return ops::l2_term(v); });
}

// ---------------------------------------------------------------- sums in fixed lanes

// f(piece, offset) for the double pieces of x (a value or vector of S): x itself in
// double, or a float vector's two halves widened, at their offsets in x.
template <class S, class X, class F>
inline void each_double_piece(X x, const F& f) {
  if constexpr (lane_count<X>() == 1) {
    f(static_cast<double>(x), 0);
  } else if constexpr (std::is_same_v<S, float>) {
    f(simd::widen_low(x), 0);
    f(simd::widen_high(x), lane_count<X>() / 2);
  } else {
    f(x, 0);
  }
}

// at[0..width) += piece.
template <class D>
inline void add_at(double* at, D piece) {
  store_as<D>(at, load_as<D>(at) + piece);
}

// A run's sum in double with its element i in lane i % kNormLanes, whatever the vector
// width (16 is a multiple of every ISA's lanes, and vector blocks start at multiples
// of theirs), the lanes then added in order: the same bits on every ISA. The lanes
// are the caller's, so consecutive runs of one sum share them.
template <class S>
struct FixedLaneSums {
  double* lanes;     // kNormLanes of them
  int64_t next = 0;  // the index in the run of the next element added

  // Adds term(x) (applied in double) for each element of x.
  template <class X, class Term>
  void add(X x, const Term& term) {
    double* at = lanes + next % kNormLanes;
    each_double_piece<S>(x, [&](auto piece, int offset) { add_at(at + offset, term(piece)); });
    next += lane_count<X>();
  }
};

constexpr auto kSquare = [](auto a) { return a * a; };

// Sums in double of terms of elements [0, n), element i's term of sum k combined into
// lanes[k][i % kNormLanes] (by combine: + for a sum, max for the inf-norm), in lane order
// as FixedLaneSums adds them, but with the lanes held in registers through the loop
// (a pass that reads one or two arrays and kept its lanes in memory, stored and
// reloaded every vector, would be bound by that). terms(x, i, add) loads element i as x
// (a vector of T, or T in the tail) and passes each double piece of its terms to
// add(k, piece, offset), piece at offset in x.
template <class T, int Sums, class Terms, class Combine>
void combine_in_fixed_lanes(double* const (&lanes)[Sums], int64_t n, const Terms& terms,
                            const Combine& combine) {
  using D = Vec<double>;
  using F = Vec<T>;
  constexpr int d_lanes = lane_count<D>(), f_lanes = lane_count<F>();
  constexpr int per_sum = kNormLanes / d_lanes;
  static_assert(kNormLanes % f_lanes == 0 && (f_lanes == d_lanes || f_lanes == 2 * d_lanes));
  D acc[Sums][per_sum];
  for (int k = 0; k < Sums; ++k)
    for (int a = 0; a < per_sum; ++a) acc[k][a] = load_as<D>(lanes[k] + a * d_lanes);
  int64_t i = 0;
  for (; i + kNormLanes <= n; i += kNormLanes) {
    for (int j = 0; j < kNormLanes / f_lanes; ++j) {
      terms(F{}, i + j * f_lanes, [&](int k, auto piece, int offset) {
        D& a = acc[k][(j * f_lanes + offset) / d_lanes];
        a = combine(a, piece);
      });
    }
  }
  for (int k = 0; k < Sums; ++k)
    for (int a = 0; a < per_sum; ++a) store_as<D>(lanes[k] + a * d_lanes, acc[k][a]);
  for (; i < n; ++i)
    terms(T{}, i, [&](int k, double piece, int) {
      double& lane = lanes[k][i % kNormLanes];
      lane = combine(lane, piece);
    });
}

template <class T, int Sums, class Terms>
void sum_in_fixed_lanes(double* const (&lanes)[Sums], int64_t n, const Terms& terms) {
  combine_in_fixed_lanes<T>(lanes, n, terms, [](auto a, auto b) { return a + b; });
}

// ---------------------------------------------------------------- gradient norms

// The norm terms of x, each element's in the lane of its position (combine_in_fixed_lanes).
template <NormOrder Order, class T>
void norm_terms_of(const T* x, int64_t n, double scale, double p, double* lanes) {
  double* const sums[1] = {lanes};
  combine_in_fixed_lanes<T>(
      sums, n,
      [&](auto v, int64_t i, const auto& add) {
        using X = decltype(v);
        each_double_piece<T>(load_as<X>(x + i), [&](auto piece, int offset) {
          add(0, ops::norm_term<Order>(piece, scale, p), offset);
        });
      },
      [](auto acc, auto term) { return ops::norm_combine<Order>(acc, term); });
}

template <class T>
void norm_terms(const T* x, int64_t n, const NormSpec& spec, double* lanes) {
  ops::with_norm_order(spec.order, [&](auto order) {
    norm_terms_of<decltype(order)::value>(x, n, spec.scale, spec.p, lanes);
  });
}

template <class T>
void scale(T factor, T* out, const T* x, int64_t n) {
  T* const a[kMaxOperands] = {out, const_cast<T*>(x), nullptr, nullptr, nullptr};
  run(ops::ScaleOp<T>{factor}, a, 0, n);
}

// ---------------------------------------------------------------- 16-bit activations and losses

// The kernels over bfloat16 and float16 arrays are the float32 kernels above, run
// on float32 copies tile by tile (as run_tiles runs the optimizers), so each
// result is the float32 kernel's, rounded once to nearest even. A tile holds
// whole units of work (elements, or rows of a row kernel): as many as fit
// kWidenedTileValues float32 values over all its operands (a multiple of 64 units
// where that many fit), at least one. 16 KiB of scratch, half of a 32 KiB L1: the
// conversions of an elementwise kernel pass through L1, not memory, and a tile is
// long enough (1,024 to 4,096 elements) that the per-tile work of the float32 kernel
// (its dispatch, its vector loop's start and end) costs little. A row longer than
// that is a tile of its own, in scratch rows of its length (4 bytes per value of
// each operand, per thread, during the call).
constexpr int64_t kWidenedTileValues = 4096;

// One operand of a 16-bit kernel: its storage (null where unused), whether the
// kernel writes it (else reads it), and its values per unit of work (1 for an
// element or a per-row loss, `classes` for a row of a matrix).
template <class S>
struct TiledOperand {
  S* data = nullptr;
  bool written = false;
  int64_t per_unit = 1;
};

template <class S>
TiledOperand<S> read_operand(const S* data, int64_t per_unit = 1) {
  return {const_cast<S*>(data), false, per_unit};
}

template <class S>
TiledOperand<S> written_operand(S* data, int64_t per_unit = 1) {
  return {data, true, per_unit};
}

// Runs kernel(x, first_unit, units) on the tiles of [0, units): x[k] holds the
// tile's values of operand k in float32 (null where unused), widened before for
// operands read, rounded back after for operands written. An output may be an
// input itself (in place): each tile is read before it is written. Returns the
// sum of kernel's results, in tile order.
template <class S, class Kernel>
double in_float32_tiles(const std::array<TiledOperand<S>, kMaxOperands>& operands, int64_t units,
                        const Kernel& kernel) {
  int64_t values = 0;  // per unit, over all operands
  for (const TiledOperand<S>& o : operands) values += o.data ? o.per_unit : 0;
  int64_t tile_units = std::max<int64_t>(1, kWidenedTileValues / std::max<int64_t>(1, values));
  if (tile_units >= 64) tile_units -= tile_units % 64;
  alignas(64) float scratch[kWidenedTileValues];
  std::vector<float> long_rows;
  if (tile_units * values > kWidenedTileValues) long_rows.resize(static_cast<size_t>(values));
  float* const base = long_rows.empty() ? scratch : long_rows.data();
  float* x[kMaxOperands] = {};
  int64_t offset = 0;
  for (int k = 0; k < kMaxOperands; ++k) {
    if (!operands[k].data) continue;
    x[k] = base + offset;
    offset += tile_units * operands[k].per_unit;
  }
  constexpr DType dtype = dtype_of<S>();
  double total = 0.0;
  for (int64_t u0 = 0; u0 < units; u0 += tile_units) {
    const int64_t n = std::min(tile_units, units - u0);
    for (int k = 0; k < kMaxOperands; ++k) {
      const TiledOperand<S>& o = operands[k];
      if (o.data && !o.written) widen_row(conversions(), dtype, o.data + u0 * o.per_unit, x[k], n * o.per_unit);
    }
    total += kernel(x, u0, n);
    for (int k = 0; k < kMaxOperands; ++k) {
      const TiledOperand<S>& o = operands[k];
      if (o.data && o.written) round_row(conversions(), dtype, x[k], o.data + u0 * o.per_unit, n * o.per_unit);
    }
  }
  return total;
}

// The OpKernels entries of 16-bit storage S, each the float32 kernel of the same
// name on the tiles of its operands.
template <class S>
struct Tiled {
  static void activation_forward(Activation kind, float alpha, S* out, const S* x, int64_t n) {
    if constexpr (std::is_same_v<S, Bfloat16>) {  // converted in registers: one pass
      void* const slots[kMaxOperands] = {out, const_cast<S*>(x)};
      return ops::with_activation_op<ops::ActivationForwardOp>(
          kind, alpha, [&](const auto& op) { run_converted<AllBf16>(op, slots, nullptr, 0, n); });
    }
    in_float32_tiles<S>({written_operand(out), read_operand(x)}, n,
                        [&](float* const* f, int64_t, int64_t units) {
                          NNFAST_ISA::activation_forward<float>(kind, alpha, f[0], f[1], units);
                          return 0.0;
                        });
  }

  static void activation_backward(Activation kind, float alpha, S* out, const S* a, const S* dy,
                                  int64_t n) {
    if constexpr (std::is_same_v<S, Bfloat16>) {
      void* const slots[kMaxOperands] = {out, const_cast<S*>(a), const_cast<S*>(dy)};
      return ops::with_activation_op<ops::ActivationBackwardOp>(
          kind, alpha, [&](const auto& op) { run_converted<AllBf16>(op, slots, nullptr, 0, n); });
    }
    in_float32_tiles<S>({written_operand(out), read_operand(a), read_operand(dy)}, n,
                        [&](float* const* f, int64_t, int64_t units) {
                          NNFAST_ISA::activation_backward<float>(kind, alpha, f[0], f[1], f[2],
                                                                 units);
                          return 0.0;
                        });
  }

  static double mse(const S* pred, const S* target, S* grad, S* losses, float grad_scale,
                    int64_t n) {
    return in_float32_tiles<S>(
        {read_operand(pred), read_operand(target), written_operand(grad), written_operand(losses)},
        n, [&](float* const* f, int64_t, int64_t units) {
          return NNFAST_ISA::mse<float>(f[0], f[1], f[2], f[3], grad_scale, units);
        });
  }

  static double cross_entropy_rows(const S* probs, const S* target, S* grad, S* row_losses,
                                   float grad_scale, int64_t classes, int64_t rows) {
    return in_float32_tiles<S>(
        {read_operand(probs, classes), read_operand(target, classes),
         written_operand(grad, classes), written_operand(row_losses)},
        rows, [&](float* const* f, int64_t, int64_t units) {
          return NNFAST_ISA::cross_entropy_rows<float>(f[0], f[1], f[2], f[3], grad_scale, classes,
                                                       units);
        });
  }

  // Whole rows widened: the float32 rows read the logits from memory once (their
  // max, exps and gradient passes run on the tile), the gradient is rounded once.
  static double softmax_cross_entropy_rows(const S* logits, const S* target_probs, S* grad,
                                           S* row_losses, float grad_scale, int64_t classes,
                                           int64_t first_row, int64_t rows,
                                           const SoftmaxCrossEntropyRows& o) {
    const int64_t offset = first_row * classes;
    return in_float32_tiles<S>(
        {read_operand(logits + offset, classes),
         read_operand(target_probs ? target_probs + offset : nullptr, classes),
         written_operand(grad + offset, classes),
         written_operand(row_losses ? row_losses + first_row : nullptr)},
        rows, [&](float* const* f, int64_t first, int64_t units) {
          SoftmaxCrossEntropyRows tile = o;
          if (o.labels) tile.labels = o.labels + first_row + first;
          return NNFAST_ISA::softmax_cross_entropy_rows<float>(f[0], f[1], f[2], f[3], grad_scale,
                                                               classes, 0, units, tile);
        });
  }

  static double l1_sum(const S* w, int64_t n) {
    return in_float32_tiles<S>({read_operand(w)}, n, [&](float* const* f, int64_t, int64_t units) {
      return NNFAST_ISA::l1_sum<float>(f[0], units);
    });
  }

  static double l2_sum(const S* w, int64_t n) {
    return in_float32_tiles<S>({read_operand(w)}, n, [&](float* const* f, int64_t, int64_t units) {
      return NNFAST_ISA::l2_sum<float>(f[0], units);
    });
  }

  // Every tile but the last holds a multiple of kNormLanes elements, so each
  // element lands in the lane it would in one pass over float32 values.
  static void norm_terms(const S* x, int64_t n, const NormSpec& spec, double* lanes) {
    in_float32_tiles<S>({read_operand(x)}, n, [&](float* const* f, int64_t, int64_t units) {
      NNFAST_ISA::norm_terms<float>(f[0], units, spec, lanes);
      return 0.0;
    });
  }

  static void scale(float factor, S* out, const S* x, int64_t n) {
    in_float32_tiles<S>({written_operand(out), read_operand(x)}, n,
                        [&](float* const* f, int64_t, int64_t units) {
                          NNFAST_ISA::scale<float>(factor, f[0], f[1], units);
                          return 0.0;
                        });
  }
};

// ---------------------------------------------------------------- LAMB's sums

// LambSquaresOp's terms p and u squared and added in double into the two sums
// (held by pointer: the element loops take the functor as const).
template <class S>
struct LambSumsOp {
  static constexpr unsigned kRead = ops::LambSquaresOp<S>::kRead;
  static constexpr unsigned kWrite = 0;
  ops::LambSquaresOp<S> terms;
  FixedLaneSums<S>* param_squares;
  FixedLaneSums<S>* update_squares;
  template <class V>
  void operator()(V* x) const {
    const V u = terms.direction(x);
    param_squares->add(x[ops::LambOperands::params], kSquare);
    update_squares->add(u, kSquare);
  }
};

template <class S>
void lamb_squares(const OptimizerCall<S>& call, int64_t tensor, int64_t begin, int64_t end,
                  double* sums) {
  const auto& scalars = std::get<ops::LambScalars<S>>(call.scalars[call.scalars_of_tensor[tensor]]);
  alignas(64) double lanes[2][kNormLanes] = {};
  FixedLaneSums<S> param_squares{lanes[0]}, update_squares{lanes[1]};
  run_optimizer(LambSumsOp<S>{{scalars}, &param_squares, &update_squares}, call, tensor, begin, end);
  sums[0] = lanes_total(lanes[0]);
  sums[1] = lanes_total(lanes[1]);
}

// ---------------------------------------------------------------- Adafactor's passes

template <class T>
void adafactor_squares(const T* p, const T* g, T grad_factor, int64_t n, double* param_lanes,
                       double* row_lanes, double* col_sums) {
  if (!g) {
    double* const lanes[1] = {param_lanes};
    return sum_in_fixed_lanes<T>(lanes, n, [&](auto x, int64_t i, const auto& add) {
      using X = decltype(x);
      each_double_piece<T>(load_as<X>(p + i), [&](auto piece, int offset) { add(0, piece * piece, offset); });
    });
  }
  double* const lanes[2] = {param_lanes, row_lanes};
  sum_in_fixed_lanes<T>(lanes, n, [&](auto x, int64_t i, const auto& add) {
    using X = decltype(x);
    each_double_piece<T>(load_as<X>(p + i), [&](auto piece, int offset) { add(0, piece * piece, offset); });
    const X scaled_grad = X(grad_factor) * load_as<X>(g + i);
    each_double_piece<T>(scaled_grad, [&](auto piece, int offset) {
      const auto square = piece * piece;
      add(1, square, offset);
      add_at(col_sums + i + offset, square);
    });
  });
}

template <class T>
void adafactor_variance_squares(const ops::AdafactorRow<T>& r, const T* g, const T* v, int64_t n,
                                double* lanes) {
  double* const sums[1] = {lanes};
  sum_in_fixed_lanes<T>(sums, n, [&](auto x, int64_t i, const auto& add) {
    using X = decltype(x);
    const X u = ops::adafactor_row_direction<false>(r, load_as<X>(g + i), load_as<X>(v + i));
    each_double_piece<T>(u, [&](auto piece, int offset) { add(0, piece * piece, offset); });
  });
}

template <class T>
void adafactor_factored_squares(const T* g, T grad_factor, const double* col_reciprocals,
                                double row_reciprocal, double max_reciprocal, int64_t n,
                                double* lanes) {
  double* const sums[1] = {lanes};
  sum_in_fixed_lanes<T>(sums, n, [&](auto x, int64_t i, const auto& add) {
    using X = decltype(x);
    each_double_piece<T>(X(grad_factor) * load_as<X>(g + i), [&](auto piece, int offset) {
      using D = decltype(piece);
      add(0, ops::adafactor_update_square(piece, D(row_reciprocal), load_as<D>(col_reciprocals + i + offset),
                                          D(max_reciprocal)),
          offset);
    });
  });
}

// The update: p, g and x (C_j of the row, or v) at slots 0, 1 and 2.
template <bool Factored, class S>
struct AdafactorUpdateOp {
  static constexpr unsigned kRead = 7u;
  static constexpr unsigned kWrite = Factored ? 1u : 5u;
  ops::AdafactorRow<S> row;
  template <class V>
  void operator()(V* x) const { ops::adafactor_row_update<Factored>(row, x[0], x[1], x[2]); }
};

template <class T>
void adafactor_update(const ops::AdafactorRow<T>& r, bool factored, T* p, const T* g, T* x,
                      int64_t n) {
  T* const a[kMaxOperands] = {p, const_cast<T*>(g), x};
  if (factored) run(AdafactorUpdateOp<true, T>{r}, a, 0, n);
  else run(AdafactorUpdateOp<false, T>{r}, a, 0, n);
}

// The roofline kernel for R arrays only read, U updated in place and W only written,
// operands in that order: s = the sum of the reads, each update += s, each out = s. The
// counts are template arguments, so this is the apply() loop of the real kernels with
// every operand pointer in a register and the operand loops unrolled.
template <int R, int U, int W, class T>
void traffic_fixed(T* const* a, int64_t begin, int64_t end) {
  static_assert(R >= 1 && R + U + W <= kMaxOperands);
  constexpr unsigned loaded = (1u << (R + U)) - 1u;
  constexpr unsigned stored = ((1u << (U + W)) - 1u) << R;
  const auto sum_of_reads = [](auto* x) {
    auto s = x[0];
    for (int k = 1; k < R; ++k) s = s + x[k];
    return s;
  };
  if constexpr (U + W == 0) {
    // Nothing is stored: the reads are summed into a value the compiler must keep,
    // or it would drop the loads.
    Vec<T> lanes(T(0));
    T tail(0);
    apply<loaded, 0u>(a, begin, end, [&](auto* x) {
      const auto s = sum_of_reads(x);
      if constexpr (lane_count<decltype(s)>() == 1) tail = tail + s;
      else lanes = lanes + s;
    });
    simd::for_each_lane(lanes, [&](T v) { tail = tail + v; });
    volatile T sink = tail;
    (void)sink;
  } else {
    apply<loaded, stored>(a, begin, end, [&](auto* x) {
      const auto s = sum_of_reads(x);
      for (int k = R; k < R + U; ++k) x[k] = x[k] + s;
      for (int k = R + U; k < R + U + W; ++k) x[k] = s;
    });
  }
}

template <class T, size_t... Kind>
constexpr auto traffic_kernels(std::index_sequence<Kind...>) {
  return std::array<void (*)(T* const*, int64_t, int64_t), sizeof...(Kind)>{
      traffic_fixed<kTrafficCounts[Kind].reads, kTrafficCounts[Kind].updates,
                    kTrafficCounts[Kind].outs, T>...};
}

template <class T>
void memory_traffic(int kind, T* const* operands, int64_t begin, int64_t end) {
  static constexpr auto kernels =
      traffic_kernels<T>(std::make_index_sequence<std::size(kTrafficCounts)>());
  kernels[kind](operands, begin, end);
}

template <class T>
constexpr ChunkKernels<T> chunk_kernels() {
  return {{activation_forward<T>, activation_backward<T>, mse<T>, cross_entropy_rows<T>,
           softmax_cross_entropy_rows<T>, l1_sum<T>, l2_sum<T>, norm_terms<T>, scale<T>},
          optimizer<T>,
          lamb_squares<T>,
          adafactor_squares<T>,
          adafactor_variance_squares<T>,
          adafactor_factored_squares<T>,
          adafactor_update<T>,
          memory_traffic<T>};
}

template <class S>
constexpr OpKernels<S> tiled_kernels() {
  using K = Tiled<S>;
  return {K::activation_forward, K::activation_backward, K::mse, K::cross_entropy_rows,
          K::softmax_cross_entropy_rows, K::l1_sum, K::l2_sum, K::norm_terms, K::scale};
}

#define NNFAST_STRINGIFY_(x) #x
#define NNFAST_STRINGIFY(x) NNFAST_STRINGIFY_(x)

}  // namespace

const KernelTable& kernel_table() {
  static const KernelTable table{NNFAST_STRINGIFY(NNFAST_ISA), chunk_kernels<float>(),
                                 chunk_kernels<double>(), precision_kernels(),
                                 tiled_kernels<Bfloat16>(), tiled_kernels<Float16>()};
  return table;
}

}  // namespace NNFAST_ISA
}  // namespace nnfast::cpu
