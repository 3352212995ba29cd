#include "cpu/adafactor.h"

#include <algorithm>

#include "cpu/parallel.h"

namespace nnfast::cpu {
namespace {

// The blocks of a factored tensor: at most kBlockCols columns by as many rows as
// make about kChunkElements elements, fixed by the shape alone.
constexpr int64_t kBlockCols = 1024;

struct Blocks {
  int64_t block_rows, block_cols;
  int64_t row_blocks, col_blocks;  // per batch entry
  int64_t count() const { return row_blocks * col_blocks; }
};

Blocks blocks_of(int64_t rows, int64_t cols) {
  Blocks b;
  b.block_cols = std::min(cols, kBlockCols);
  b.block_rows = std::max<int64_t>(1, kChunkElements / b.block_cols);
  b.row_blocks = (rows + b.block_rows - 1) / b.block_rows;
  b.col_blocks = (cols + b.block_cols - 1) / b.block_cols;
  return b;
}

double square(double x) { return x * x; }

// A sum in double over kLanes lanes: element k of a run goes to lane k % kLanes (the lanes
// let the adds run in parallel; the assignment depends on the run's bounds only), and the
// lanes are added in order.
constexpr int kLanes = 8;

struct Lanes {
  double lane[kLanes] = {};
  double total() const {
    double sum = 0.0;
    for (double x : lane) sum += x;
    return sum;
  }
};

// term(k) for k in [begin, end), each passed to add(lane, k).
template <class Add>
void over_lanes(int64_t begin, int64_t end, const Add& add) {
  int64_t k = begin;
  for (; k + kLanes <= end; k += kLanes)
    for (int l = 0; l < kLanes; ++l) add(l, k + l);
  for (int l = 0; k < end; ++k, ++l) add(l, k);
}

double in_order(const std::vector<double>& partial) {
  double total = 0.0;
  for (double x : partial) total += x;
  return total;
}

template <class S>
void factored_step(const ops::AdafactorHyper& h, const AdafactorTensor<S>& t) {
  const ops::AdafactorScalars<S>& s = t.scalars;
  const int64_t m = t.rows, n = t.cols;
  const Blocks b = blocks_of(m, n);
  const int64_t tasks = t.batch * b.count();
  // Task k covers batch entry k / count, rows of block (k % count) / col_blocks and
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

  // Pass 1: per block, the sums of g'^2 along each of its rows and columns, and of p^2.
  std::vector<double> row_partial(t.batch * m * b.col_blocks, 0.0);
  std::vector<double> col_partial(t.batch * b.row_blocks * n, 0.0);
  std::vector<double> param_partial(tasks, 0.0);
  for_each_block([&](int64_t k, int64_t entry, int64_t rb, int64_t cb, int64_t r0, int64_t r1,
                     int64_t c0, int64_t c1) {
    double* cols = &col_partial[(entry * b.row_blocks + rb) * n];
    Lanes params;
    for (int64_t i = r0; i < r1; ++i) {
      const S* g = t.grads + (entry * m + i) * n;
      const S* p = t.params + (entry * m + i) * n;
      Lanes along_row;
      over_lanes(c0, c1, [&](int l, int64_t j) {
        const double g2 = square(static_cast<double>(s.grad_factor * g[j]));
        along_row.lane[l] += g2;
        cols[j] += g2;
        params.lane[l] += square(static_cast<double>(p[j]));
      });
      row_partial[(entry * m + i) * b.col_blocks + cb] = along_row.total();
    }
    param_partial[k] = params.total();
  });

  // The moments: small (batch * (rows + cols) elements), updated in order on this thread.
  std::vector<S> row_mean_floor(t.batch);  // max(mean_i R_i, eps1) per batch entry
  for (int64_t entry = 0; entry < t.batch; ++entry) {
    double row_var_sum = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t cb = 0; cb < b.col_blocks; ++cb) sum += row_partial[(entry * m + i) * b.col_blocks + cb];
      S& r = t.row_vars[entry * m + i];
      r = ops::torch_lerp(r, static_cast<S>(sum) / static_cast<S>(n), s.new_weight);
      row_var_sum += r;
    }
    row_mean_floor[entry] = std::max(static_cast<S>(row_var_sum) / static_cast<S>(m), s.eps1);
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t rb = 0; rb < b.row_blocks; ++rb) sum += col_partial[(entry * b.row_blocks + rb) * n + j];
      S& c = t.col_vars[entry * n + j];
      c = ops::torch_lerp(c, static_cast<S>(sum) / static_cast<S>(m), s.new_weight);
    }
  }

  // u of element j of row i: g' / sqrt(max(R_i C_j / floor, eps1^2)), torch's roundings.
  const auto direction = [&s](S g, S row_var, S col_var, S floor) {
    return ops::adafactor_direction(s.grad_factor * g, row_var * col_var / floor, s.eps1_squared);
  };

  // Pass 2: the sum of u^2 per block.
  std::vector<double> update_partial(tasks, 0.0);
  for_each_block([&](int64_t k, int64_t entry, int64_t, int64_t, int64_t r0, int64_t r1, int64_t c0,
                     int64_t c1) {
    Lanes updates;
    const S floor = row_mean_floor[entry];
    const S* col = t.col_vars + entry * n;
    for (int64_t i = r0; i < r1; ++i) {
      const S* g = t.grads + (entry * m + i) * n;
      const S row = t.row_vars[entry * m + i];
      over_lanes(c0, c1, [&](int l, int64_t j) {
        updates.lane[l] += square(static_cast<double>(direction(g[j], row, col[j], floor)));
      });
    }
    update_partial[k] = updates.total();
  });

  // Pass 3: the update, u recomputed with the same bits as pass 2's (before g is stored).
  const S step_size = ops::adafactor_step_size(h, s, in_order(param_partial),
                                               in_order(update_partial), t.count);
  const bool decays = h.weight_decay != 0.0;
  for_each_block([&](int64_t, int64_t entry, int64_t, int64_t, int64_t r0, int64_t r1, int64_t c0,
                     int64_t c1) {
    const S floor = row_mean_floor[entry];
    const S* col = t.col_vars + entry * n;
    for (int64_t i = r0; i < r1; ++i) {
      S* p = t.params + (entry * m + i) * n;
      S* g = t.grads + (entry * m + i) * n;
      const S row = t.row_vars[entry * m + i];
      for (int64_t j = c0; j < c1; ++j) {
        const S decayed = decays ? p[j] * s.decay : p[j];
        p[j] = decayed + step_size * direction(g[j], row, col[j], floor);
      }
      if (h.store_scaled_grads)
        for (int64_t j = c0; j < c1; ++j) g[j] = s.grad_scale * g[j];
    }
  });
}

template <class S>
void unfactored_step(const ops::AdafactorHyper& h, const AdafactorTensor<S>& t) {
  const ops::AdafactorScalars<S>& s = t.scalars;
  const std::vector<Chunk> chunks = make_chunks({t.count}, kChunkElements);
  const auto tasks = static_cast<int64_t>(chunks.size());
  std::vector<double> param_partial(tasks, 0.0), update_partial(tasks, 0.0);
  // Pass 1 reads p before pass 2 writes anything, as torch takes RMS(p) first.
  parallel_for(tasks, t.count, [&](int64_t k) {
    Lanes params;
    over_lanes(chunks[k].begin, chunks[k].end, [&](int l, int64_t i) {
      params.lane[l] += square(static_cast<double>(t.params[i]));
    });
    param_partial[k] = params.total();
  });
  parallel_for(tasks, t.count, [&](int64_t k) {
    Lanes updates;
    over_lanes(chunks[k].begin, chunks[k].end, [&](int l, int64_t i) {
      const S g = s.grad_factor * t.grads[i];
      t.variances[i] = ops::torch_lerp(t.variances[i], g * g, s.new_weight);
      updates.lane[l] += square(static_cast<double>(ops::adafactor_direction(g, t.variances[i], s.eps1_squared)));
    });
    update_partial[k] = updates.total();
  });
  const S step_size = ops::adafactor_step_size(h, s, in_order(param_partial),
                                               in_order(update_partial), t.count);
  const bool decays = h.weight_decay != 0.0;
  parallel_for(tasks, t.count, [&](int64_t k) {
    for (int64_t i = chunks[k].begin; i < chunks[k].end; ++i) {
      const S u = ops::adafactor_direction(s.grad_factor * t.grads[i], t.variances[i], s.eps1_squared);
      const S decayed = decays ? t.params[i] * s.decay : t.params[i];
      t.params[i] = decayed + step_size * u;
      if (h.store_scaled_grads) t.grads[i] = s.grad_scale * t.grads[i];
    }
  });
}

}  // namespace

template <class S>
void adafactor_step(const ops::AdafactorHyper& h, const std::vector<AdafactorTensor<S>>& tensors) {
  for (const AdafactorTensor<S>& t : tensors) {
    if (t.count == 0) continue;  // no element: nothing to estimate (torch's means would be 0/0)
    if (t.row_vars) factored_step(h, t);
    else unfactored_step(h, t);
  }
}

template void adafactor_step<float>(const ops::AdafactorHyper&, const std::vector<AdafactorTensor<float>>&);
template void adafactor_step<double>(const ops::AdafactorHyper&, const std::vector<AdafactorTensor<double>>&);

}  // namespace nnfast::cpu
