// CUDA driver of adafactor_step: the passes of the CPU driver (src/cpu/adafactor.cpp)
// over the per-element math of ops/optimizers/adafactor.h (torch_lerp and the
// AdafactorRow functions), tensor after tensor, queued on the current launch's stream.
// Nothing waits for the GPU: the step size is derived on the device from the sums.
//
// A call whose arrays all hold S (float or double) runs in place. Any other layout the
// CPU runs (16-bit params, grads or states, float32 masters, int16 remainders,
// stochastic rounding; float32 compute) is converted per element by storage.cuh with
// the CPU's bits: every array widened exactly to float32 on load (p from its master,
// or from its param and remainder joined), each result rounded once on its store (p as
// the call stores it, stochastic rounding keyed by the tensor's index in the call and
// the element's in the tensor; v in the update; the grads stored scaled). Over 16-bit
// states, R and C are float32 in device scratch through the step, as on the CPU: the
// moments pass widens the old ones, keeps the new ones there for the later passes and
// stores them rounded once.
//
// A factored tensor, viewed as (batch, rows, cols), is cut into tiles of kTileRows x
// kTileCols fixed by its shape alone, one block per tile:
//   1. factored_sums: per tile, the sums of g'^2 along each of its rows and columns,
//      and of p^2 (before the decay);
//   2. factored_moments: per batch entry, R and C from their tiles' sums added in tile
//      order, and floor = max(sum(R) / rows, eps1);
//   3. factored_update_squares: per tile, the sum of u^2;
//   4. finish_step_size: the tiles' sums of p^2 and u^2, then the step size;
//   5. factored_update: p, and g with store_scaled_grads.
// An unfactored tensor takes the same passes over apply.cuh's chunks: the sums of p^2,
// of u^2 from v_new = lerp(v, g'^2, w) (not stored), the step size, then v_new
// recomputed and stored with p, so v is rounded once and p's u has the bits of the sum.
//
// Every sum is in double, in an order fixed by the launch shape: each thread adds its
// own terms in index order, then runtime.cuh's fixed butterflies combine the threads
// (and, for the sums along a column, the warps in warp order), and the partials of the
// tiles or chunks are added the same way. The same bits on every run; but not the
// CPU's order (eight lanes per run), so R, C, floor and the step size may differ from
// the CPU's in their last bits. Each element's formula is the CPU's (the same ops/
// functions).
//
// found_inf (a device float, or null) is read by every kernel: nonzero writes nothing.
// Every gradient is first multiplied by the device grad_scale (grad_scale.cuh), as the
// other optimizer steps do; a host grad_scale is in the scalars.
#include <type_traits>
#include <vector>

#include "apply.cuh"
#include "call/adafactor_call.h"
#include "drivers.h"
#include "grad_scale.cuh"
#include "storage.cuh"

namespace nnfast::cuda {

namespace {

__device__ __forceinline__ double square(double x) { return x * x; }

// What every kernel of a tensor's step reads besides its arrays.
template <class S>
struct StepScalars {
  ops::AdafactorScalars<S> scalars;
  ops::AdafactorRow<S> row;  // step_size set by the update, row_var and row_floor per row
  const float* grad_scale;   // device: the call's device grad_scale, else device_one()
  const float* found_inf;    // device, or null

  __device__ bool skipped() const { return found_inf && *found_inf != 0.0f; }
  // g * device grad_scale, what the ops/ row functions take as g.
  __device__ S with_device_scale(S g) const { return device_scaled(g, grad_scale); }
};

// ---------------------------------------------------------------- factored

// A tile: kTileCols columns (one per lane of a warp) by kTileRows rows, warp w taking
// rows w, w + kTileWarps, ... of it.
constexpr int kTileCols = 32;
constexpr int kTileWarps = 8;
constexpr int kTileThreads = kTileCols * kTileWarps;
constexpr int64_t kTileRows = 128;
constexpr int kMomentThreads = 256;
constexpr int kFinishThreads = 1024;

// The params and grads of a factored tensor's elements (k: the element's index in the
// tensor) and its moments' storage, in the compute type Value. NativeElements: arrays
// of S itself.
template <class S>
struct NativeElements {
  using Value = S;
  S* params;
  S* grads;

  __device__ S param(int64_t k) const { return params[k]; }
  __device__ S grad(int64_t k) const { return grads[k]; }
  __device__ void store_param(int64_t k, S p) const { params[k] = p; }
  __device__ void store_grad(int64_t k, S g) const { grads[k] = g; }
  // Moment k (R_i or C_j) of a state array.
  __device__ S state(const void* states, int64_t k) const { return static_cast<const S*>(states)[k]; }
  __device__ void store_state(void* states, int64_t k, S value) const { static_cast<S*>(states)[k] = value; }
};

// Arrays stored as the call says (float32 compute): storage.cuh's conversions, one
// element at a time (a warp's lanes take consecutive columns, so each access of the
// warp is still one run of memory).
struct ConvertedElements {
  using Value = float;
  void* params;
  void* grads;
  void* companion;  // the float32 masters or int16 remainders, or null
  DType params_dtype, grads_dtype, states_dtype;
  ParamStorage param_storage;
  ops::StochasticKey key;  // (seed, the tensor's step)
  uint32_t tensor;         // the tensor's index in the call

  __device__ float param(int64_t k) const {
    float p[1];
    load_params(params_dtype, param_storage, params, companion, k, false, p);
    return p[0];
  }
  __device__ float grad(int64_t k) const { return widened(grads_dtype, grads, k); }
  __device__ void store_param(int64_t k, float p) const {
    const float value[1] = {p};
    store_params(params_dtype, param_storage, params, companion, key, tensor, k, false, value);
  }
  __device__ void store_grad(int64_t k, float g) const { rounded(grads_dtype, grads, k, g); }
  __device__ float state(const void* states, int64_t k) const { return widened(states_dtype, states, k); }
  __device__ void store_state(void* states, int64_t k, float value) const {
    rounded(states_dtype, states, k, value);
  }

 private:
  __device__ static float widened(DType dtype, const void* array, int64_t k) {
    float x[1];
    load_widened(dtype, array, k, false, x);
    return x[0];
  }
  __device__ static void rounded(DType dtype, void* array, int64_t k, float x) {
    const float value[1] = {x};
    store_rounded(dtype, array, k, false, value);
  }
};

template <class E>
struct Factored : StepScalars<typename E::Value> {
  using S = typename E::Value;
  E elements;
  // R (batch * rows) and C (batch * cols) as stored, and their S values through the
  // step: the states themselves, or float32 scratch over 16-bit states.
  void* row_states;
  void* col_states;
  S* row_vars;
  S* col_vars;
  int64_t batch, rows, cols;
  int64_t row_tiles, col_tiles;  // per batch entry

  __device__ int64_t element(int64_t entry, int64_t i, int64_t j) const {
    return (entry * rows + i) * cols + j;
  }

  // The row of R_i (and its entry's floor), for ops' row functions.
  __device__ ops::AdafactorRow<S> row_of(S row_var, S floor) const {
    ops::AdafactorRow<S> r = this->row;
    r.row_var = row_var;
    r.row_floor = floor;
    return r;
  }
};

// The tile of this block (blockIdx.x = (entry * row_tiles + row tile) * col_tiles +
// column tile) and this thread's column and first row in it.
struct Tile {
  int64_t entry, row_tile, col_tile;
  int64_t col;        // this thread's
  int64_t first_row;  // this thread's (its warp's)
  int64_t row_end;    // of the tile
  bool in_cols;       // col < cols

  template <class E>
  __device__ explicit Tile(const Factored<E>& t) {
    const int64_t per_entry = t.row_tiles * t.col_tiles;
    entry = blockIdx.x / per_entry;
    row_tile = blockIdx.x % per_entry / t.col_tiles;
    col_tile = blockIdx.x % t.col_tiles;
    col = col_tile * kTileCols + threadIdx.x % kTileCols;
    first_row = row_tile * kTileRows + threadIdx.x / kTileCols;
    row_end = min(t.rows, (row_tile + 1) * kTileRows);
    in_cols = col < t.cols;
  }
};

// Pass 1. row_partials[(entry * rows + i) * col_tiles + column tile]: row i's sum over
// the tile's columns (a warp's butterfly); col_partials[(entry * row_tiles + row tile) *
// cols + j]: column j's over the tile's rows (each warp's rows in order, the warps in
// order); param_partials[tile]: p^2 over the tile.
template <class E>
__global__ void __launch_bounds__(kTileThreads)
factored_sums(const __grid_constant__ Factored<E> t, double* row_partials, double* col_partials,
              double* param_partials) {
  if (t.skipped()) return;
  const auto& s = t.scalars;
  const Tile tile(t);
  const int lane = threadIdx.x % kTileCols, warp = threadIdx.x / kTileCols;
  double along_col = 0.0, params = 0.0;
  // (The bounds are the warp's alone: every lane reaches each warp_reduce.)
  for (int64_t i = tile.first_row; i < tile.row_end; i += kTileWarps) {
    double grad_square = 0.0;
    if (tile.in_cols) {
      const int64_t k = t.element(tile.entry, i, tile.col);
      grad_square = square(static_cast<double>(s.grad_factor * t.with_device_scale(t.elements.grad(k))));
      params += square(static_cast<double>(t.elements.param(k)));
    }
    along_col += grad_square;
    const double along_row = warp_reduce(grad_square, Add{});
    if (lane == 0) row_partials[(tile.entry * t.rows + i) * t.col_tiles + tile.col_tile] = along_row;
  }
  __shared__ double cols[kTileWarps][kTileCols];
  __shared__ double scratch[32];
  cols[warp][lane] = along_col;
  params = block_reduce(params, 0.0, scratch, Add{});
  __syncthreads();  // every warp's cols written
  if (warp == 0 && tile.in_cols) {
    double sum = 0.0;
    for (int w = 0; w < kTileWarps; ++w) sum += cols[w][lane];
    col_partials[(tile.entry * t.row_tiles + tile.row_tile) * t.cols + tile.col] = sum;
  }
  if (threadIdx.x == 0) param_partials[blockIdx.x] = params;
}

// The new value of moment k of a state: kept in vars (the S values the later passes
// read) and, where vars is scratch, stored rounded once into the state.
template <class E, class S>
__device__ void keep_moment(const E& elements, S* vars, void* states, int64_t k, S value) {
  vars[k] = value;
  if (static_cast<void*>(vars) != states) elements.store_state(states, k, value);
}

// Pass 2, one block per batch entry: R_i = lerp(R_i, S(sum_j g'^2) / S(cols), w) and
// C_j likewise over the rows, each sum its tiles' partials in tile order;
// floors[entry] = max(S(sum_i R_i) / S(rows), eps1), the sum of the new R in double.
template <class E, class S = typename E::Value>
__global__ void __launch_bounds__(kMomentThreads)
factored_moments(const __grid_constant__ Factored<E> t, const double* row_partials,
                 const double* col_partials, S* floors) {
  if (t.skipped()) return;
  const ops::AdafactorScalars<S>& s = t.scalars;
  const int64_t entry = blockIdx.x;
  double row_var_sum = 0.0;
  for (int64_t i = threadIdx.x; i < t.rows; i += blockDim.x) {
    const double* partial = row_partials + (entry * t.rows + i) * t.col_tiles;
    double sum = 0.0;
    for (int64_t c = 0; c < t.col_tiles; ++c) sum += partial[c];
    const int64_t k = entry * t.rows + i;
    const S r = ops::adafactor_moment(t.elements.state(t.row_states, k), sum, t.cols, s.new_weight);
    keep_moment(t.elements, t.row_vars, t.row_states, k, r);
    row_var_sum += r;
  }
  __shared__ double scratch[32];
  row_var_sum = block_reduce(row_var_sum, 0.0, scratch, Add{});
  if (threadIdx.x == 0)
    floors[entry] = ops::adafactor_row_floor(row_var_sum, t.rows, s.eps1);
  for (int64_t j = threadIdx.x; j < t.cols; j += blockDim.x) {
    double sum = 0.0;
    for (int64_t r = 0; r < t.row_tiles; ++r) sum += col_partials[(entry * t.row_tiles + r) * t.cols + j];
    const int64_t k = entry * t.cols + j;
    keep_moment(t.elements, t.col_vars, t.col_states, k,
                ops::adafactor_moment(t.elements.state(t.col_states, k), sum, t.rows, s.new_weight));
  }
}

// Pass 3: update_partials[tile] = u^2 over the tile.
template <class E, class S = typename E::Value>
__global__ void __launch_bounds__(kTileThreads)
factored_update_squares(const __grid_constant__ Factored<E> t, const S* floors, double* update_partials) {
  if (t.skipped()) return;
  const Tile tile(t);
  double updates = 0.0;
  if (tile.in_cols) {
    const double floor = floors[tile.entry];
    const double col_reciprocal = 1.0 / static_cast<double>(t.col_vars[tile.entry * t.cols + tile.col]);
    const double max_reciprocal = 1.0 / static_cast<double>(t.row.eps1_squared);
    for (int64_t i = tile.first_row; i < tile.row_end; i += kTileWarps) {
      const S g = t.with_device_scale(t.elements.grad(t.element(tile.entry, i, tile.col)));
      const double row_reciprocal = floor / static_cast<double>(t.row_vars[tile.entry * t.rows + i]);
      updates += ops::adafactor_update_square(static_cast<double>(t.row.grad_factor * g), row_reciprocal,
                                              col_reciprocal, max_reciprocal);
    }
  }
  __shared__ double scratch[32];
  updates = block_reduce(updates, 0.0, scratch, Add{});
  if (threadIdx.x == 0) update_partials[blockIdx.x] = updates;
}

// Pass 5: p = (p * decay, or p without weight decay) + step_size * u; g stored scaled.
template <class E, class S = typename E::Value>
__global__ void __launch_bounds__(kTileThreads)
factored_update(const __grid_constant__ Factored<E> t, const S* floors, const S* step_size,
                bool stores_scaled_grads) {
  if (t.skipped()) return;
  const Tile tile(t);
  if (!tile.in_cols) return;
  const S floor = floors[tile.entry];
  const S col_var = t.col_vars[tile.entry * t.cols + tile.col];
  const S step = *step_size;
  for (int64_t i = tile.first_row; i < tile.row_end; i += kTileWarps) {
    const int64_t k = t.element(tile.entry, i, tile.col);
    ops::AdafactorRow<S> r = t.row_of(t.row_vars[tile.entry * t.rows + i], floor);
    r.step_size = step;
    const S g = t.with_device_scale(t.elements.grad(k));
    S p = t.elements.param(k), x = col_var;
    ops::adafactor_row_update<true>(r, p, g, x);
    t.elements.store_param(k, p);
    if (stores_scaled_grads) t.elements.store_grad(k, t.scalars.grad_scale * g);
  }
}

// Pass 4, one block: the step size from the sums of p^2 and u^2, each its `partials`
// partials combined by block_reduce's fixed order.
template <class S>
__global__ void __launch_bounds__(kFinishThreads)
finish_step_size(const ops::AdafactorHyper h, const ops::AdafactorScalars<S> s, const double* param_partials,
                 const double* update_partials, int64_t partials, int64_t count, const float* found_inf,
                 S* step_size) {
  if (found_inf && *found_inf != 0.0f) return;
  double params = 0.0, updates = 0.0;
  for (int64_t k = threadIdx.x; k < partials; k += blockDim.x) {
    params += param_partials[k];
    updates += update_partials[k];
  }
  __shared__ double scratch[32];
  params = block_reduce(params, 0.0, scratch, Add{});
  updates = block_reduce(updates, 0.0, scratch, Add{});
  if (threadIdx.x == 0) *step_size = ops::adafactor_step_size(h, s, params, updates, count);
}

template <class S>
void launch_step_size(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, const double* param_partials,
                      const double* update_partials, int64_t partials, S* step_size) {
  finish_step_size<S><<<1, kFinishThreads, 0, current_stream()>>>(
      call.hyper, t.scalars, param_partials, update_partials, partials, t.count, call.found_inf, step_size);
  check_launch("finish_step_size");
}

// The passes of one factored tensor over elements E, R and C as S values in row_vars
// and col_vars (the states themselves, or scratch).
template <class S, class E>
void factored_passes(const AdafactorCall<S>& call, const AdafactorTensor<S>& tensor, const E& elements,
                     S* row_vars, S* col_vars, const float* grad_scale) {
  Factored<E> t{{tensor.scalars, ops::adafactor_row(call.hyper, tensor.scalars), grad_scale, call.found_inf},
                elements, tensor.row_vars, tensor.col_vars, row_vars, col_vars,
                tensor.batch, tensor.rows, tensor.cols,
                (tensor.rows + kTileRows - 1) / kTileRows, (tensor.cols + kTileCols - 1) / kTileCols};
  const int64_t tiles = t.batch * t.row_tiles * t.col_tiles;
  const int64_t row_partials = t.batch * t.rows * t.col_tiles;
  const int64_t col_partials = t.batch * t.row_tiles * t.cols;
  DeviceBuffer<double> sums(row_partials + col_partials + 2 * tiles);
  double* const rows = sums.get();
  double* const cols = rows + row_partials;
  double* const params = cols + col_partials;
  double* const updates = params + tiles;
  DeviceBuffer<S> floors_and_step(t.batch + 1);
  S* const floors = floors_and_step.get();
  S* const step_size = floors + t.batch;
  // (tiles < 2^31 for any tensor under 2^43 elements: the grid's limit.)
  const auto blocks = static_cast<unsigned>(tiles);
  const cudaStream_t stream = current_stream();
  factored_sums<E><<<blocks, kTileThreads, 0, stream>>>(t, rows, cols, params);
  check_launch("factored_sums");
  factored_moments<E><<<static_cast<unsigned>(t.batch), kMomentThreads, 0, stream>>>(t, rows, cols, floors);
  check_launch("factored_moments");
  factored_update_squares<E><<<blocks, kTileThreads, 0, stream>>>(t, floors, updates);
  check_launch("factored_update_squares");
  launch_step_size(call, tensor, params, updates, tiles, step_size);
  factored_update<E><<<blocks, kTileThreads, 0, stream>>>(t, floors, step_size,
                                                          call.hyper.store_scaled_grads);
  check_launch("factored_update");
}

// A factored tensor, number `index` of the call.
template <class S>
void factored_step(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, uint32_t index,
                   const float* grad_scale) {
  if constexpr (std::is_same_v<S, float>) {
    if (!call.native()) {
      const ConvertedElements elements{t.params, t.grads, t.companion, call.params_dtype, call.grads_dtype,
                                       call.states_dtype, call.param_storage,
                                       {call.seed, static_cast<uint64_t>(t.step)}, index};
      // float32 states are R and C themselves; 16-bit ones get float32 scratch.
      const bool in_scratch = call.states_dtype != DType::float32;
      DeviceBuffer<float> moments(in_scratch ? t.batch * (t.rows + t.cols) : 0);
      float* const row_vars = in_scratch ? moments.get() : static_cast<float*>(t.row_vars);
      float* const col_vars = in_scratch ? moments.get() + t.batch * t.rows : static_cast<float*>(t.col_vars);
      factored_passes(call, t, elements, row_vars, col_vars, grad_scale);
      return;
    }
  }
  factored_passes(call, t, NativeElements<S>{static_cast<S*>(t.params), static_cast<S*>(t.grads)},
                  static_cast<S*>(t.row_vars), static_cast<S*>(t.col_vars), grad_scale);
}

// ---------------------------------------------------------------- unfactored
// The functors of apply.cuh's loop over operands (params, grads, variances), the
// gradient already multiplied by the device grad_scale (DeviceScaledGrads).

constexpr int kVariancesSlot = 2;

template <class S>
struct ParamSquareOp {
  static constexpr unsigned kRead = ops::slot_bit(ops::kParamsSlot), kWrite = 0;
  __device__ double operator()(S* x) const { return square(static_cast<double>(x[ops::kParamsSlot])); }
};

template <class S>
struct UpdateSquareOp {
  static constexpr unsigned kRead = ops::slot_bit(ops::kGradsSlot) | ops::slot_bit(kVariancesSlot);
  static constexpr unsigned kWrite = 0;
  ops::AdafactorRow<S> row;
  // u from v_new = lerp(v, g'^2, w), which is not stored.
  __device__ double operator()(S* x) const {
    return square(static_cast<double>(
        ops::adafactor_row_direction<false>(row, x[ops::kGradsSlot], x[kVariancesSlot])));
  }
};

template <class S, bool StoresScaledGrads>
struct UnfactoredUpdateOp {
  static constexpr unsigned kRead =
      ops::slot_bit(ops::kParamsSlot) | ops::slot_bit(ops::kGradsSlot) | ops::slot_bit(kVariancesSlot);
  static constexpr unsigned kWrite = ops::slot_bit(ops::kParamsSlot) | ops::slot_bit(kVariancesSlot) |
                                     (StoresScaledGrads ? ops::slot_bit(ops::kGradsSlot) : 0u);
  ops::AdafactorRow<S> row;
  S grad_scale;  // the host one, of store_scaled_grads
  const S* step_size;
  __device__ void operator()(S* x) const {
    ops::AdafactorRow<S> r = row;
    r.step_size = *step_size;
    ops::adafactor_row_update<false>(r, x[ops::kParamsSlot], x[ops::kGradsSlot], x[kVariancesSlot]);
    if constexpr (StoresScaledGrads) x[ops::kGradsSlot] = grad_scale * x[ops::kGradsSlot];
  }
};

// op over the elements of tensor t, number `index` of the call: in place, or through
// storage.cuh's ConvertingStorage (params, grads and variances of the call's dtypes).
template <class S, class Op>
void apply_to_tensor(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, uint32_t index, const Op& op,
                     double* partials) {
  constexpr int Depth = ops::operand_count(Op::kRead | Op::kWrite);
  void* const operands[3] = {t.params, t.grads, t.variances};
  if constexpr (std::is_same_v<S, float>) {
    if (!call.native()) {
      using Storage = ConvertingStorage<Depth>;
      const DType dtypes[3] = {call.params_dtype, call.grads_dtype, call.states_dtype};
      const TensorKey key{index, static_cast<uint32_t>(t.step)};
      apply_chunks(Storage::of(dtypes, call.param_storage, call.seed), op, {t.count},
                   [&](size_t, typename Storage::Table& table, int slot) {
        Storage::set_tensor(table, slot, operands, t.companion, key);
      }, partials, call.found_inf);
      return;
    }
  }
  using Storage = NativeStorage<S, Depth>;
  apply_chunks(Storage{}, op, {t.count}, [&](size_t, typename Storage::Table& table, int slot) {
    for (int k = 0; k < Depth; ++k) table.operands[k][slot] = operands[k];
  }, partials, call.found_inf);
}

template <class S>
void unfactored_step(const AdafactorCall<S>& call, const AdafactorTensor<S>& t, uint32_t index,
                     const float* grad_scale) {
  const int64_t chunks = (t.count + kChunkElements - 1) / kChunkElements;
  DeviceBuffer<double> sums(2 * chunks);
  double* const params = sums.get();
  double* const updates = params + chunks;
  DeviceBuffer<S> step_size(1);
  const ops::AdafactorRow<S> row = ops::adafactor_row(call.hyper, t.scalars);
  apply_to_tensor(call, t, index, ParamSquareOp<S>{}, params);
  apply_to_tensor(call, t, index, DeviceScaledGrads<UpdateSquareOp<S>>{{row}, grad_scale}, updates);
  launch_step_size(call, t, params, updates, chunks, step_size.get());
  const auto update = [&](auto op) {
    apply_to_tensor(call, t, index, DeviceScaledGrads<decltype(op)>{{op}, grad_scale}, nullptr);
  };
  if (call.hyper.store_scaled_grads)
    update(UnfactoredUpdateOp<S, true>{row, t.scalars.grad_scale, step_size.get()});
  else
    update(UnfactoredUpdateOp<S, false>{row, t.scalars.grad_scale, step_size.get()});
}

}  // namespace

template <class S>
void Drivers::adafactor_step(const AdafactorCall<S>& call) {
  if (call.total() == 0) return;  // (touches no device: an empty call runs without one)
  const float* grad_scale = call.device_grad_scale ? call.device_grad_scale : device_one();
  for (size_t i = 0; i < call.tensors.size(); ++i) {
    const AdafactorTensor<S>& t = call.tensors[i];
    if (t.count == 0) continue;  // no element: nothing to estimate (as on the CPU)
    const auto index = static_cast<uint32_t>(i);
    if (t.factored) factored_step(call, t, index, grad_scale);
    else unfactored_step(call, t, index, grad_scale);
  }
}

template void Drivers::adafactor_step<float>(const AdafactorCall<float>&);
template void Drivers::adafactor_step<double>(const AdafactorCall<double>&);

}  // namespace nnfast::cuda
