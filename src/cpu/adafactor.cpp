// cpu::Drivers::adafactor_step (ops/optimizers/adafactor.h has the math).
//
// A step of one tensor is three passes over its elements, each cut into blocks
// whose bounds depend only on the tensor's shape:
//   1. the sums of p^2 (before the decay) and, factored, of g'^2 along each row and
//      each column of each block,
//   2. the moments updated (factored: R and C, batch * (rows + cols) values, on one
//      thread), and the sum of u^2 (factored: from their reciprocals,
//      ops::adafactor_update_square),
//   3. p updated with the tensor's step size (unfactored: v stored).
// The kernels (kernels.h) add each term in double into lanes fixed by the element's
// place in its row of the block, a block's lanes are added in order and the blocks'
// sums in block order, so a step has the same bits for any thread count and ISA.
// Arrays not of the compute type are run as float32 rows (converted_rows.h) of at
// most kRowElements, with the bits of float32 arrays holding the same values: 16-bit
// arrays widened, p from its master or remainder, each result rounded once on its
// store (R and C are float32 through the step, rounded once when stored).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "cpu/converted_rows.h"
#include "cpu/drivers.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace nnfast::cpu {
namespace {

// Converted, a block's row is run in pieces of at most kRowElements elements: 4 KiB
// of float32 scratch per operand, in L1. A multiple of kNormLanes, so each element
// keeps the lane it has in the whole row.
constexpr int64_t kRowElements = 1024;

// The blocks of a tensor viewed as (batch, rows, cols), fixed by the shape alone: whole
// rows (rows wider than kBlockElements cut into that many columns; an unfactored run
// into kChunkElements) and as many of them as make about kBlockElements elements. A
// block of whole rows reads each array in one run, which streams from memory at the
// bandwidth, where a block of short row pieces (4 KiB) ran its sums at half of it
// (benchmarks/NOTES.md, item 32); the price is the column sums of each block, 8 bytes
// per column per row block.
constexpr int64_t kBlockElements = 4 * kChunkElements;

struct Blocks {
  int64_t block_rows, block_cols;
  int64_t row_blocks, col_blocks;  // per batch entry
  int64_t count() const { return row_blocks * col_blocks; }
};

Blocks blocks_of(int64_t rows, int64_t cols) {
  Blocks b;
  b.block_cols = std::min(cols, rows == 1 ? kChunkElements : kBlockElements);
  b.block_rows = std::max<int64_t>(1, kBlockElements / b.block_cols);
  b.row_blocks = (rows + b.block_rows - 1) / b.block_rows;
  b.col_blocks = (cols + b.block_cols - 1) / b.block_cols;
  return b;
}

double in_order(const std::vector<double>& partial) {
  double total = 0.0;
  for (double x : partial) total += x;
  return total;
}

// What a pass reads of each element: p, g and x (C_j of its column, or v).
enum Reads : unsigned { kParams = 1u, kGrads = 2u, kMoments = 4u };

// The elements of one tensor of a call, as rows of compute type S for the kernels:
// the arrays themselves when the call is native, else float32 pieces.
template <class S>
class TensorRows {
 public:
  TensorRows(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, uint32_t index,
             S* col_values)
      : call_(call), t_(t), index_(index), col_values_(col_values) {}

  // body(j0, p, g, x, n) over the pieces of columns [begin, end) of row `row` (of
  // batch * rows): the piece's first column and its p, g and x (null where not in
  // `reads`).
  template <class Body>
  void each(unsigned reads, bool stores, int64_t row, int64_t begin, int64_t end,
            const Body& body) const {
    const int64_t first = row * t_.cols;
    if constexpr (std::is_same_v<S, float>) {
      if (!call_.native()) return converted(reads, stores, first, begin, end, body);
    }
    S* g = static_cast<S*>(t_.grads) + first + begin;
    body(begin, static_cast<S*>(t_.params) + first + begin, g, moments(row, begin), end - begin);
    if (stores && call_.hyper.store_scaled_grads)
      kernels().get<S>().scale(t_.scalars.grad_scale, g, g, end - begin);
  }

 private:
  // x of columns from `begin` of a row: C of the row's batch entry, or v.
  S* moments(int64_t row, int64_t begin) const {
    if (t_.factored) return col_values_ + (row / t_.rows) * t_.cols + begin;
    return static_cast<S*>(t_.variances) + row * t_.cols + begin;
  }

  template <class Body>
  void converted(unsigned reads, bool stores, int64_t first, int64_t begin, int64_t end,
                 const Body& body) const {
    const PrecisionKernels& k16 = kernels().precision;
    const auto at = [&](void* base, DType dtype, int64_t i) -> void* {
      return base ? static_cast<char*>(base) + i * itemsize(dtype) : nullptr;
    };
    const DType companion_dtype =
        call_.param_storage == ParamStorage::remainder ? DType::int16 : DType::float32;
    const ops::StochasticKey key{call_.seed, static_cast<uint64_t>(t_.step)};
    alignas(64) float scratch[3][kRowElements];
    for (int64_t j0 = begin; j0 < end; j0 += kRowElements) {
      const int64_t n = std::min(kRowElements, end - j0), i = first + j0;
      void* params = at(t_.params, call_.params_dtype, i);
      void* companion = at(t_.companion, companion_dtype, i);
      void* grads = at(t_.grads, call_.grads_dtype, i);
      void* variances = at(t_.variances, call_.states_dtype, i);
      float* p = reads & kParams ? param_row(k16, call_.params_dtype, call_.param_storage, params,
                                             companion, scratch[0], n)
                                 : nullptr;
      float* g = reads & kGrads ? float_row(k16, call_.grads_dtype, grads, scratch[1], n) : nullptr;
      float* x = nullptr;
      if (reads & kMoments)
        x = t_.factored ? moments(first / t_.cols, j0)
                        : float_row(k16, call_.states_dtype, variances, scratch[2], n);
      body(j0, p, g, x, n);
      if (!stores) continue;
      store_param_row(k16, call_.params_dtype, call_.param_storage, p, params, companion, key,
                      index_, i, n);
      if (!t_.factored) store_row(k16, call_.states_dtype, x, variances, n);
      if (call_.hyper.store_scaled_grads) {
        kernels().f32.scale(t_.scalars.grad_scale, g, g, n);
        store_row(k16, call_.grads_dtype, g, grads, n);
      }
    }
  }

  const AdafactorCall<S>& call_;
  const AdafactorTensor<S>& t_;
  uint32_t index_;
  S* col_values_;
};

// The calling thread's buffer of column partial sums (the workers reach it through the
// reference the driver takes: a thread_local named in their code would be their own).
std::vector<double>& column_workspace() {
  thread_local std::vector<double> partials;
  return partials;
}

// The n moments (R or C) of a factored tensor at data as S values for the step: the
// state array itself when it holds S, else widened into scratch (16-bit states under
// float32 compute), to be rounded back once by store_moments.
template <class S>
S* moment_values(const AdafactorCall<S>& call, void* data, std::vector<S>& scratch, int64_t n) {
  if constexpr (std::is_same_v<S, float>) {
    if (call.states_dtype != DType::float32) scratch.resize(n);
    return float_row(kernels().precision, call.states_dtype, data, scratch.data(), n);
  } else {
    return static_cast<S*>(data);
  }
}

template <class S>
void store_moments(const AdafactorCall<S>& call, const S* values, void* data, int64_t n) {
  if constexpr (std::is_same_v<S, float>) store_row(kernels().precision, call.states_dtype, values, data, n);
}

template <class S>
void tensor_step(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, uint32_t index) {
  const ChunkKernels<S>& k = kernels().get<S>();
  const ops::AdafactorScalars<S>& s = t.scalars;
  const int64_t m = t.rows, n = t.cols;
  const Blocks b = blocks_of(m, n);
  const int64_t tasks = t.batch * b.count();
  // R and C (factored) as S values through the step.
  std::vector<S> row_scratch, col_scratch;
  S* const row_values = t.factored ? moment_values(call, t.row_vars, row_scratch, t.batch * m) : nullptr;
  S* const col_values = t.factored ? moment_values(call, t.col_vars, col_scratch, t.batch * n) : nullptr;
  const TensorRows<S> rows(call, t, index, col_values);
  // body(task, entry, row block, column block, rows [r0, r1), columns [c0, c1)):
  // task k covers batch entry k / count, rows of block (k % count) / col_blocks and
  // columns of block (k % count) % col_blocks.
  const auto for_each_block = [&](const auto& body) {
    parallel_for(tasks, t.count, [&](int64_t k) {
      const int64_t entry = k / b.count(), within = k % b.count();
      const int64_t rb = within / b.col_blocks, cb = within % b.col_blocks;
      const int64_t row_end = std::min(m, (rb + 1) * b.block_rows);
      const int64_t col_begin = cb * b.block_cols, col_end = std::min(n, col_begin + b.block_cols);
      body(k, entry, rb, cb, rb * b.block_rows, row_end, col_begin, col_end);
    });
  };

  // Pass 1: per block, the sum of p^2, and of g'^2 along each of its rows and columns.
  std::vector<double> row_partial(t.factored ? t.batch * m * b.col_blocks : 0);
  // (Kept between calls by the calling thread: 8 bytes per column per row block, which a
  // new allocation would page-fault in at every step. Each block zeroes its own part.)
  std::vector<double>& col_partial = column_workspace();
  if (t.factored && col_partial.size() < static_cast<size_t>(t.batch * b.row_blocks * n))
    col_partial.resize(t.batch * b.row_blocks * n);
  std::vector<double> param_partial(tasks);
  const unsigned squares_reads = t.factored ? kParams | kGrads : kParams;
  for_each_block([&](int64_t task, int64_t entry, int64_t rb, int64_t cb, int64_t r0, int64_t r1,
                     int64_t c0, int64_t c1) {
    alignas(64) double lanes[2][kNormLanes] = {};  // p^2 of the block, g'^2 of a row
    double* cols = t.factored ? &col_partial[(entry * b.row_blocks + rb) * n] : nullptr;
    if (cols) std::fill(cols + c0, cols + c1, 0.0);
    for (int64_t i = r0; i < r1; ++i) {
      std::fill_n(lanes[1], kNormLanes, 0.0);
      rows.each(squares_reads, false, entry * m + i, c0, c1,
                [&](int64_t j0, S* p, S* g, S*, int64_t count) {
                  k.adafactor_squares(p, cols ? g : nullptr, s.grad_factor, count, lanes[0],
                                      lanes[1], cols ? cols + j0 : nullptr);
                });
      if (t.factored) row_partial[(entry * m + i) * b.col_blocks + cb] = lanes_total(lanes[1]);
    }
    param_partial[task] = lanes_total(lanes[0]);
  });

  // The moments, updated in order on this thread.
  std::vector<S> row_floor(t.batch);  // max(mean_i R_i, eps1) per batch entry
  if (t.factored) {
    for (int64_t entry = 0; entry < t.batch; ++entry) {
      double row_var_sum = 0.0;
      for (int64_t i = 0; i < m; ++i) {
        double sum = 0.0;
        for (int64_t cb = 0; cb < b.col_blocks; ++cb) sum += row_partial[(entry * m + i) * b.col_blocks + cb];
        S& r = row_values[entry * m + i];
        r = ops::adafactor_moment(r, sum, n, s.new_weight);
        row_var_sum += r;
      }
      row_floor[entry] = ops::adafactor_row_floor(row_var_sum, m, s.eps1);
      // Each column's partials added in row-block order, a row block at a time (the
      // partials are rows of n doubles: read in memory order).
      std::vector<double> col_sums(n, 0.0);
      for (int64_t rb = 0; rb < b.row_blocks; ++rb) {
        const double* partial = &col_partial[(entry * b.row_blocks + rb) * n];
        for (int64_t j = 0; j < n; ++j) col_sums[j] += partial[j];
      }
      for (int64_t j = 0; j < n; ++j) {
        S& c = col_values[entry * n + j];
        c = ops::adafactor_moment(c, col_sums[j], m, s.new_weight);
      }
    }
    store_moments(call, row_values, t.row_vars, t.batch * m);
    store_moments(call, col_values, t.col_vars, t.batch * n);
  }
  ops::AdafactorRow<S> base = ops::adafactor_row(call.hyper, s);
  const auto row_of = [&](int64_t entry, int64_t i) {
    ops::AdafactorRow<S> r = base;
    if (t.factored) {
      r.row_var = row_values[entry * m + i];
      r.row_floor = row_floor[entry];
    }
    return r;
  };

  // Pass 2: the sum of u^2 per block (factored, from the reciprocal moments).
  std::vector<double> col_reciprocals(t.factored ? t.batch * n : 0);
  for (size_t j = 0; j < col_reciprocals.size(); ++j) col_reciprocals[j] = 1.0 / static_cast<double>(col_values[j]);
  const double max_reciprocal = 1.0 / static_cast<double>(s.eps1_squared);
  std::vector<double> update_partial(tasks);
  for_each_block([&](int64_t task, int64_t entry, int64_t, int64_t, int64_t r0, int64_t r1,
                     int64_t c0, int64_t c1) {
    alignas(64) double lanes[kNormLanes] = {};
    for (int64_t i = r0; i < r1; ++i) {
      if (!t.factored) {
        rows.each(kGrads | kMoments, false, i, c0, c1, [&](int64_t, S*, S* g, S* v, int64_t count) {
          k.adafactor_variance_squares(base, g, v, count, lanes);
        });
        continue;
      }
      const double row_reciprocal = static_cast<double>(row_floor[entry]) / static_cast<double>(row_values[entry * m + i]);
      const double* cols = &col_reciprocals[entry * n];
      rows.each(kGrads, false, entry * m + i, c0, c1, [&](int64_t j0, S*, S* g, S*, int64_t count) {
        k.adafactor_factored_squares(g, s.grad_factor, cols + j0, row_reciprocal, max_reciprocal,
                                     count, lanes);
      });
    }
    update_partial[task] = lanes_total(lanes);
  });

  // Pass 3: the update, u recomputed with pass 2's bits (before g is stored).
  base.step_size = ops::adafactor_step_size(call.hyper, s, in_order(param_partial),
                                            in_order(update_partial), t.count);
  for_each_block([&](int64_t, int64_t entry, int64_t, int64_t, int64_t r0, int64_t r1, int64_t c0,
                     int64_t c1) {
    for (int64_t i = r0; i < r1; ++i) {
      const ops::AdafactorRow<S> r = row_of(entry, i);
      rows.each(kParams | kGrads | kMoments, true, entry * m + i, c0, c1,
                [&](int64_t, S* p, S* g, S* x, int64_t count) {
                  k.adafactor_update(r, t.factored, p, g, x, count);
                });
    }
  });
}

}  // namespace

template <class S>
void Drivers::adafactor_step(const AdafactorCall<S>& call) {
  if (call.found_inf && *call.found_inf != 0.0f) return;
  for (size_t i = 0; i < call.tensors.size(); ++i) {
    // No element: nothing to estimate (torch's means would be 0/0).
    if (call.tensors[i].count > 0) tensor_step(call, call.tensors[i], static_cast<uint32_t>(i));
  }
}

template void Drivers::adafactor_step<float>(const AdafactorCall<float>&);
template void Drivers::adafactor_step<double>(const AdafactorCall<double>&);

}  // namespace nnfast::cpu
