"""The gradient-scaling options of every optimizer step: ``grad_scale``, ``found_inf`` and
``store_scaled_grads`` (the math of ``grad_scale`` is also swept against the reference by
the cases of ``_helpers.OPTIMIZER_CASES`` that set it, in every dtype and storage mode).

What is checked here: a step with ``grad_scale`` s gives the bits of a step without it on the
gradients ``s * g`` rounded to the compute type; ``store_scaled_grads`` writes those gradients
back (rounded to the grads' dtype) and changes nothing else; a nonzero ``found_inf`` writes
nothing at all; the arrays ``grad_scale`` and ``found_inf`` may be NumPy arrays or torch CPU
tensors; and bad options are refused with nothing written.
"""

from __future__ import annotations

import numpy as np
import pytest
from ml_dtypes import bfloat16

import nnfast
from _helpers import OPTIMIZER_CASES, assert_same_bits, call_step, case_id, make_states

#: One case of each optimizer and option path (every state list).
# LAMB without clipping: its clip factor c joins s in one scalar, so s c g is rounded once
# where a step on s g (clipped by c') rounds twice; the bits then differ by design.
CASES = [(kind, dict(hp, max_grad_norm=0.0) if kind == "lamb" else hp)
         for kind, hp in OPTIMIZER_CASES if "grad_scale" not in hp]

#: Storage layouts: (params dtype, grads dtype, states dtype, storage option).
LAYOUTS = [
    (np.float32, np.float32, np.float32, None),
    (np.float64, np.float64, np.float64, None),
    (bfloat16, bfloat16, bfloat16, None),
    (bfloat16, np.float32, np.float32, None),
    (np.float16, np.float16, np.float16, "stochastic_rounding"),
    (np.float16, bfloat16, np.float32, "master_params"),
    (bfloat16, bfloat16, np.float32, "param_remainders"),
]
LAYOUT_IDS = ["f32", "f64", "bf16", "bf16+f32", "f16-stochastic", "f16-master", "bf16-remainder"]


def _problem(kind, hp, layout, n=1000, tensors=3, seed=0):
    """(params, grads, states, storage options) of `tensors` tensors of n elements."""
    params_dtype, grads_dtype, states_dtype, option = layout
    rng = np.random.default_rng(seed)
    params, grads, states = [], [], []
    for _ in range(tensors):
        p32 = rng.standard_normal(n).astype(np.float32)
        params.append(p32.astype(params_dtype))
        grads.append((rng.standard_normal(n) * 300).astype(grads_dtype))
        states.append({k: v.astype(states_dtype)
                       for k, v in make_states(rng, kind, hp, (n,), np.float32).items()})
    storage = {}
    if option == "stochastic_rounding":
        storage = dict(stochastic_rounding=True, seed=7)
    elif option == "master_params":
        storage = dict(master_params=[p.astype(np.float32) for p in params])
    elif option == "param_remainders":
        masters = [p.astype(np.float32) + np.float32(1e-3) for p in params]
        pairs = [nnfast.split_master(m) for m in masters]
        params = [p for p, _ in pairs]
        storage = dict(param_remainders=[r for _, r in pairs])
    state_lists = {name: [s[name] for s in states] for name in states[0]}
    return params, grads, state_lists, storage


def _copy(problem):
    params, grads, states, storage = problem
    return ([p.copy() for p in params], [g.copy() for g in grads],
            {k: [a.copy() for a in v] for k, v in states.items()},
            {k: [a.copy() for a in v] if isinstance(v, list) else v for k, v in storage.items()})


def _step(kind, hp, problem, **options):
    params, grads, states, storage = problem
    call_step(nnfast, kind, params, grads, states, {**hp, **storage, **options})


def _written(problem):
    """Every array of a problem, in a fixed order (what a step may write, and grads)."""
    params, grads, states, storage = problem
    arrays = [*params, *grads]
    for name in sorted(states):
        arrays += states[name]
    for name in sorted(storage):
        if isinstance(storage[name], list):
            arrays += storage[name]
    return arrays


def _scaled(grads, scale, compute):
    """s * g in the compute type, rounded to the grads' dtype: what the kernel stores."""
    return [(g.astype(compute) * compute(scale)).astype(g.dtype) for g in grads]


def _compute_type(layout):
    return np.float64 if layout[0] == np.float64 else np.float32


def _is_float(dtype):
    return np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_grad_scale_is_the_step_on_scaled_gradients(case, layout):
    """grad_scale s gives the bits of the same step on the gradients s * g (computed in the
    compute type); with store_scaled_grads those are written back and nothing else changes."""
    kind, hp = case
    # 16-bit grads times 0.5 stay exact in their dtype, so a step can be given s * g itself
    scale = 0.3 if _is_float(layout[1]) else 0.5
    scaled = _problem(kind, hp, layout)
    stored, on_scaled = _copy(scaled), _copy(scaled)
    grads = [g.copy() for g in scaled[1]]
    scaled_grads = _scaled(grads, scale, _compute_type(layout))
    if not _is_float(layout[1]):
        assert all(np.array_equal(a.astype(np.float64), b.astype(np.float64) * 0.5)
                   for a, b in zip(scaled_grads, grads))
    on_scaled[1][:] = [g.copy() for g in scaled_grads]
    _step(kind, hp, scaled, grad_scale=scale)
    _step(kind, hp, stored, grad_scale=scale, store_scaled_grads=True)
    _step(kind, hp, on_scaled)
    n = len(grads)
    for i in range(n):
        assert_same_bits(scaled[1][i], grads[i], f"grads[{i}] without store_scaled_grads")
        assert_same_bits(stored[1][i], scaled_grads[i], f"grads[{i}] with store_scaled_grads")
    for i, (a, b, c) in enumerate(zip(_written(scaled), _written(stored), _written(on_scaled))):
        if n <= i < 2 * n:
            continue
        assert_same_bits(a, b, f"array {i}: with and without store_scaled_grads")
        assert_same_bits(a, c, f"array {i}: grad_scale vs the step on s * g")


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_found_inf_writes_nothing(case, layout):
    """A nonzero found_inf (1, or NaN) skips the step whole, store_scaled_grads included;
    a zero one is a step like any other."""
    kind, hp = case
    for flag in (1.0, np.nan):
        problem = _problem(kind, hp, layout)
        before = [a.copy() for a in _written(problem)]
        _step(kind, hp, problem, grad_scale=0.5, store_scaled_grads=True,
              found_inf=np.array([flag], np.float32))
        for i, (a, b) in enumerate(zip(_written(problem), before)):
            assert_same_bits(a, b, f"array {i} after a step with found_inf={flag}")
    stepped, plain = _problem(kind, hp, layout), _problem(kind, hp, layout)
    _step(kind, hp, stepped, found_inf=np.zeros(1, np.float32))
    _step(kind, hp, plain)
    for i, (a, b) in enumerate(zip(_written(stepped), _written(plain))):
        assert_same_bits(a, b, f"array {i}: found_inf=0 vs no found_inf")


def _adam_problem(n=100):
    rng = np.random.default_rng(3)
    return [rng.standard_normal(n).astype(np.float32) for _ in range(4)]


def _adam(arrays, **options):
    p, g, m, v = arrays
    nnfast.adam_step(p, g, m, v, step=1, lr=0.1, **options)


@pytest.mark.parametrize("shape", [(1,), ()], ids=["shape(1,)", "shape()"])
def test_control_arrays_may_be_numpy_arrays_or_torch_tensors(shape):
    torch = pytest.importorskip("torch")
    want = _adam_problem()
    _adam(want, grad_scale=0.25)
    for make in (lambda x: np.full(shape, x, np.float32),
                 lambda x: torch.full(shape, x, dtype=torch.float32)):
        got = _adam_problem()
        _adam(got, grad_scale=make(0.25), found_inf=make(0.0))
        for a, b in zip(got, want):
            assert_same_bits(a, b, "a step with control arrays")
        skipped = _adam_problem()
        _adam(skipped, found_inf=make(1.0))
        for a, b in zip(skipped, _adam_problem()):
            assert_same_bits(a, b, "a step skipped by a found_inf tensor")
    # torch CPU tensors as the operands too, with a tensor scale
    tensors = [torch.from_numpy(a) for a in _adam_problem()]
    nnfast.adam_step(*tensors, step=1, lr=0.1, grad_scale=torch.tensor(0.25))
    for a, b in zip(tensors, want):
        assert_same_bits(a.numpy(), b, "torch tensors with a tensor grad_scale")


BAD_OPTIONS = [
    (dict(grad_scale=-1.0), ValueError, "grad_scale: must be >= 0"),
    (dict(grad_scale=float("nan")), ValueError, "grad_scale: must not be NaN"),
    (dict(grad_scale=float("inf")), ValueError, "grad_scale: must be finite"),
    (dict(grad_scale=1e39), ValueError, "grad_scale"),
    (dict(grad_scale=np.array([-2.0], np.float32)), ValueError, "grad_scale: must be finite and >= 0"),
    (dict(grad_scale=np.array([np.inf], np.float32)), ValueError, "grad_scale: must be finite and >= 0"),
    (dict(grad_scale=np.ones(2, np.float32)), ValueError, r"grad_scale: expected one element, got shape \(2,\)"),
    (dict(grad_scale=np.ones(1, np.float64)), TypeError, "grad_scale: expected a float32 array"),
    (dict(grad_scale="2"), TypeError, "grad_scale: expected a numpy.ndarray"),
    (dict(found_inf=np.zeros((1, 2), np.float32)), ValueError, "found_inf: expected one element"),
    (dict(found_inf=np.zeros(0, np.float32)), ValueError, "found_inf: expected one element"),
    (dict(found_inf=np.zeros(1, np.float16)), TypeError, "found_inf: expected a float32 array"),
    (dict(found_inf=0.0), TypeError, "found_inf: expected a numpy.ndarray"),
    (dict(store_scaled_grads=1), TypeError, "store_scaled_grads"),
]


@pytest.mark.parametrize("options, error, message", BAD_OPTIONS,
                         ids=[str(o) for o, _, _ in BAD_OPTIONS])
def test_bad_options_are_refused_with_nothing_written(options, error, message):
    arrays = _adam_problem()
    with pytest.raises(error, match=message):
        _adam(arrays, **options)
    for a, b in zip(arrays, _adam_problem()):
        assert_same_bits(a, b, "arrays after a refused call")


def test_stored_grads_must_be_writable():
    arrays = _adam_problem()
    arrays[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[0\]: array is read-only"):
        _adam(arrays, store_scaled_grads=True)
    _adam(arrays, grad_scale=0.5)  # only read without it
    aliased = _adam_problem()
    with pytest.raises(ValueError, match="grads"):
        nnfast.adam_step(aliased[0], aliased[0], aliased[2], aliased[3], step=1, lr=0.1,
                         store_scaled_grads=True)


def test_a_gpu_found_inf_in_a_host_call_is_refused():
    from test_cuda import FakeDlpackGpuArray  # a DLPack array that says it is on a GPU

    arrays = _adam_problem()
    with pytest.raises(ValueError, match="found_inf: a GPU array"):
        _adam(arrays, found_inf=FakeDlpackGpuArray(np.zeros(1, np.float32)))


def test_nnfast_optim_steps_take_the_scale_and_the_flag():
    rng = np.random.default_rng(5)
    p0, g = rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32)
    scaled, plain = nnfast.optim.Adam([p0.copy()], lr=0.1), nnfast.optim.Adam([p0.copy()], lr=0.1)
    scaled.step([g * np.float32(4)], grad_scale=0.25)
    plain.step([g])
    assert_same_bits(scaled.params[0], plain.params[0], "grad_scale=0.25 on 4 g vs g")
    before = scaled.state_dict()
    scaled.step([g], found_inf=np.ones(1, np.float32))
    assert scaled.steps_taken == 1 and scaled.state[0]["step"] == 1
    after = scaled.state_dict()
    for name in ("exp_avg", "exp_avg_sq"):
        assert_same_bits(after["state"][0][name], before["state"][0][name], name)
    assert_same_bits(scaled.params[0], plain.params[0], "params after a skipped step")
    scaled.step([g], found_inf=np.zeros(1, np.float32))
    assert scaled.steps_taken == 2 and scaled.state[0]["step"] == 2
