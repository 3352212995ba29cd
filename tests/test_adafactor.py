"""Adafactor: nnfast.adafactor_step and nnfast.optim.Adafactor against torch.optim.Adafactor
(its single-tensor path is the spec) and the float64 NumPy reference, over 50 steps of
1-D, 2-D, 3-D, (1, n), (n, 1) and 0-d parameters; the same bits for one and two threads;
the gradient-scaling options; checkpoints; the checks of the call.

Tolerance after k steps: ``k * 8 * u * (|p| + 1)`` with u the compute type's unit
roundoff. nnfast sums every mean and RMS in float64, torch in the compute type: a few
roundings per step apart, while one wrong term moves p by about ``lr * RMS(p)`` (1e-2).
"""

import numpy as np
from ml_dtypes import bfloat16
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnfast
from _helpers import num_threads

SHAPES = [(7,), (5, 9), (3, 4, 6), (1, 8), (8, 1), ()]
STEPS = 50


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: the torch comparisons "
                                               "need it (pip install \"nnfast[torch]\")")


def new_states(p):
    """(row_var, col_var, variance) for parameter p, torch's shapes, None where unused."""
    if p.ndim >= 2:
        return (np.zeros(p.shape[:-1] + (1,), p.dtype),
                np.zeros(p.shape[:-2] + (1,) + p.shape[-1:], p.dtype), None)
    return None, None, np.zeros(p.shape, p.dtype)


def assert_close(actual, expected, steps, dtype):
    tolerance = steps * 8 * np.finfo(dtype).eps * (np.abs(expected) + 1)
    assert np.all(np.abs(np.asarray(actual, np.float64) - expected) <= tolerance), (
        np.max(np.abs(np.asarray(actual, np.float64) - expected)))


def run_functional(params, grad_stream, step_fn, **kwargs):
    states = [new_states(p) for p in params]
    for t, grads in enumerate(grad_stream, start=1):
        step_fn(params, grads, [s[0] for s in states], [s[1] for s in states],
                [s[2] for s in states], step=t, **kwargs)
    return states


def grad_stream(dtype, seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def initial_params(dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


OPTIONS = [
    {},
    dict(maximize=True),
    dict(weight_decay=0.1),
    dict(d=1.5, lr=0.05),
    dict(eps=(1e-20, 1e-2), beta2_decay=-0.5),
]


def _functional_kwargs(options):
    kwargs = {k: v for k, v in options.items() if k != "eps"}
    if "eps" in options:
        kwargs["eps1"], kwargs["eps2"] = options["eps"]
    return kwargs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_functional_step_follows_torch_for_50_steps(dtype, options):
    torch = _torch()
    params = initial_params(dtype)
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch.optim.Adafactor(tensors, foreach=False, **options)
    stream = grad_stream(dtype)
    states = run_functional(params, stream, nnfast.adafactor_step, **_functional_kwargs(options))
    for grads in stream:
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        opt.step()
    for p, t, (row, col, var) in zip(params, tensors, states):
        assert_close(p, t.detach().numpy(), STEPS, dtype)
        st = opt.state[t]
        if p.ndim >= 2:
            assert row.shape == tuple(st["row_var"].shape) and col.shape == tuple(st["col_var"].shape)
            assert_close(row, st["row_var"].numpy(), STEPS, dtype)
            assert_close(col, st["col_var"].numpy(), STEPS, dtype)
        else:
            assert_close(var, st["variance"].numpy(), STEPS, dtype)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_functional_step_follows_the_float64_reference(options):
    """float64 kernel and float64 reference: the same formula, summation order apart."""
    kwargs = _functional_kwargs(options)
    stream = grad_stream(np.float64)
    params, expected = initial_params(np.float64), initial_params(np.float64)
    run_functional(params, stream, nnfast.adafactor_step, **kwargs)
    run_functional(expected, stream, nnfast.reference.adafactor_step, **kwargs)
    for p, e in zip(params, expected):
        assert_close(p, e, STEPS, np.float64)


def test_float32_step_follows_the_float64_reference():
    """eps1 given (its default is the params' machine epsilon, float32's vs float64's)."""
    stream = grad_stream(np.float32, steps=10)
    params = initial_params(np.float32)
    expected = [p.astype(np.float64) for p in params]
    run_functional(params, stream, nnfast.adafactor_step, eps1=1e-30)
    run_functional(expected, [[g.astype(np.float64) for g in gs] for gs in stream],
                   nnfast.reference.adafactor_step, eps1=1e-30)
    for p, e in zip(params, expected):
        assert_close(p, e, 10, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_give_the_same_bits(dtype):
    """Large enough to be cut into many blocks and threaded: (300, 700), (3, 90, 200),
    (40000, 2), (70000,)."""
    shapes = [(300, 700), (3, 90, 200), (40000, 2), (70000,)]

    def run(threads):
        rng = np.random.default_rng(3)
        params = [rng.standard_normal(s).astype(dtype) for s in shapes]
        states = [new_states(p) for p in params]
        with num_threads(threads):
            for t in range(1, 4):
                grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
                nnfast.adafactor_step(params, grads, [s[0] for s in states],
                                      [s[1] for s in states], [s[2] for s in states], step=t,
                                      weight_decay=0.01, d=1.2)
        return params + [a for s in states for a in s if a is not None]

    for a, b in zip(run(1), run(2)):
        np.testing.assert_array_equal(a, b)


def test_grad_scale_and_found_inf():
    params, scaled = initial_params(np.float32), initial_params(np.float32)
    stream = grad_stream(np.float32, steps=3)
    run_functional(params, stream, nnfast.adafactor_step)
    # A power-of-two scale is exact: s * (g / s) is g.
    run_functional(scaled, [[4 * g for g in gs] for gs in stream], nnfast.adafactor_step,
                   grad_scale=np.full(1, 0.25, np.float32))
    for a, b in zip(params, scaled):
        np.testing.assert_array_equal(a, b)
    stored = [np.array(4 * g) for g in stream[0]]
    run_functional([p.copy() for p in params], [stored], nnfast.adafactor_step, grad_scale=0.25,
                   store_scaled_grads=True)
    for a, b in zip(stored, stream[0]):
        np.testing.assert_array_equal(a, b)
    before = [p.copy() for p in params]
    states = [new_states(p) for p in params]
    nan_grads = [np.full(p.shape, np.nan, np.float32) for p in params]
    nnfast.adafactor_step(params, nan_grads, [s[0] for s in states], [s[1] for s in states],
                          [s[2] for s in states], step=1, found_inf=np.ones(1, np.float32))
    for a, b in zip(params, before):
        np.testing.assert_array_equal(a, b)
    assert all((a == 0).all() for s in states for a in s if a is not None)


def test_empty_parameters_are_left_alone():
    p, g = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    row, col, _ = new_states(p)
    nnfast.adafactor_step([p], [g], [row], [col], [None], step=1)
    assert (col == 0).all()


def test_bad_calls_are_refused_before_anything_is_written():
    p, g = np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    row, col, _ = new_states(p)
    v = np.zeros(3, np.float32)
    step = nnfast.adafactor_step
    with pytest.raises(ValueError, match=r"^variances\[0\]: must be None"):
        step([p], [g], [row], [col], [np.zeros((2, 3), np.float32)], step=1)
    with pytest.raises(ValueError, match=r"^row_vars\[0\]: required"):
        step([p], [g], [None], [col], [None], step=1)
    with pytest.raises(ValueError, match=r"^col_vars\[0\]: shape \(2, 3\) must be \(1, 3\)"):
        step([p], [g], [row], [np.zeros((2, 3), np.float32)], [None], step=1)
    with pytest.raises(TypeError, match=r"^row_vars\[0\]: dtype float64 is not allowed here"):
        step([p], [g], [row.astype(np.float64)], [col], [None], step=1)
    with pytest.raises(TypeError, match=r"^col_vars\[0\]: .*share one dtype, here float32"):
        step([p], [g], [row], [col.astype(bfloat16)], [None], step=1)
    with pytest.raises(TypeError, match=r"^grads\[0\]: dtype float64 is not allowed here"):
        step([p], [g.astype(np.float64)], [row], [col], [None], step=1)
    with pytest.raises(ValueError, match="^row_vars: expected 2 entries"):
        step([p, v.copy()], [g, v.copy()], [row], [col, None], [None, v], step=1)
    with pytest.raises(TypeError, match="^row_vars: expected a list"):
        step([p], [g], row, [col], [None], step=1)
    with pytest.raises(ValueError, match="^d: must be >= 1"):
        step([p], [g], [row], [col], [None], step=1, d=0.5)
    with pytest.raises(ValueError, match="^beta2_decay: must be <= 0"):
        step([p], [g], [row], [col], [None], step=1, beta2_decay=0.1)
    with pytest.raises(ValueError, match="^eps1: must be >= 0"):
        step([p], [g], [row], [col], [None], step=1, eps1=-1.0)
    with pytest.raises(ValueError, match="^eps2: .*rounds to infinity in float32"):
        step([p], [g], [row], [col], [None], step=1, eps2=1e39,
             found_inf=np.ones(1, np.float32))
    with pytest.raises(ValueError, match="^step: "):
        step([p], [g], [row], [col], [None], step=0)
    with pytest.raises(TypeError, match="master_params go with bfloat16 or float16 params"):
        step([p], [g], [row], [col], [None], step=1, master_params=[p.copy()])
    with pytest.raises(ValueError, match="^stochastic_rounding: applies to bfloat16 or float16"):
        step([p], [g], [row], [col], [None], step=1, stochastic_rounding=True)
    one = np.ones((1, 1), np.float32)
    with pytest.raises(ValueError, match="shares memory"):
        step([one], [one.copy()], [one], [np.zeros((1, 1), np.float32)], [None], step=1)
    assert (p == 1).all() and (row == 0).all() and (col == 0).all()


def test_optim_class_follows_the_functional_step_and_resumes_a_checkpoint():
    stream = grad_stream(np.float32)
    params = initial_params(np.float32)
    opt = nnfast.optim.Adafactor(params, weight_decay=0.05, maximize=True)
    expected = initial_params(np.float32)
    run_functional(expected, stream, nnfast.adafactor_step, weight_decay=0.05, maximize=True)
    resumed = None
    for k, grads in enumerate(stream):
        if k == 20:
            resumed = nnfast.optim.Adafactor([p.copy() for p in params], weight_decay=0.05,
                                             maximize=True)
            resumed.load_state_dict(opt.state_dict())
        opt.step(grads)
        if resumed is not None:
            resumed.step(grads)
    for p, q, e in zip(params, resumed.params, expected):
        np.testing.assert_array_equal(p, e)
        np.testing.assert_array_equal(q, e)
    assert set(opt.state[1]) == {"step", "row_var", "col_var"} and opt.state[1]["step"] == STEPS
    assert set(opt.state[0]) == {"step", "variance"}
    assert opt.state[2]["row_var"].shape == (3, 4, 1) and opt.state[2]["col_var"].shape == (3, 1, 6)


def test_optim_class_refuses_bad_hyperparameters_and_checkpoints():
    p = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="^d: must be >= 1"):
        nnfast.optim.Adafactor([p], d=0.9)
    with pytest.raises(ValueError, match="^eps: expected a pair"):
        nnfast.optim.Adafactor([p], eps=(1e-3,))
    with pytest.raises(ValueError, match="master_weights"):
        nnfast.optim.Adafactor([p], master_weights=True)
    opt = nnfast.optim.Adafactor([p])
    opt.step([np.ones_like(p)])
    state = opt.state_dict()
    state["state"][0]["row_var"] = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"\['row_var'\] must be an array of shape \(2, 1\)"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_torch_class_follows_torch_for_50_steps_and_keeps_its_state_format(dtype_name, options):
    """Every shape of SHAPES in one group (1-D, 2-D, 3-D, (1, n), (n, 1), 0-d), and a
    transposed (non-contiguous) parameter, stepped through a contiguous copy."""
    torch = _torch()
    import nnfast.torch as nt

    dtype = getattr(torch, dtype_name)
    theirs = [torch.tensor(p) for p in initial_params(getattr(np, dtype_name))]
    theirs.append(torch.randn(6, 4, dtype=dtype).t())
    ours = [t.clone() if t.is_contiguous() else t.t().clone().t() for t in theirs]
    their_opt = torch.optim.Adafactor(theirs, **options)
    our_opt = nt.Adafactor(ours, **options)
    rng = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        for t, o in zip(theirs, ours):
            t.grad = torch.randn(t.shape, generator=rng, dtype=dtype)
            o.grad = t.grad.clone()
        their_opt.step()
        our_opt.step()
    for t, o in zip(theirs, ours):
        assert_close(o.numpy(), t.numpy().astype(np.float64), STEPS, np.dtype(dtype_name))
    theirs_sd, ours_sd = their_opt.state_dict(), our_opt.state_dict()
    assert ours_sd["param_groups"] == theirs_sd["param_groups"]
    for i, st in theirs_sd["state"].items():
        assert list(ours_sd["state"][i]) == list(st)
        for key, value in st.items():
            assert ours_sd["state"][i][key].shape == value.shape
            assert ours_sd["state"][i][key].dtype == value.dtype


def test_torch_class_refuses_what_it_cannot_run_before_anything_changes():
    torch = _torch()
    import nnfast.torch as nt

    with pytest.raises(ValueError, match="beta2_decay"):
        nt.Adafactor([torch.zeros(3)], beta2_decay=0.5)
    p = torch.ones(4, 3)
    opt = nt.Adafactor([p])
    p.grad = torch.ones(4, 3)
    opt.step()
    state = opt.state_dict()
    state["state"][0]["row_var"] = torch.zeros(4, 3)
    opt.load_state_dict(state)
    before = p.clone()
    with pytest.raises(ValueError, match=r"'row_var'.* has shape \(4, 3\), expected \(4, 1\)"):
        opt.step()
    assert torch.equal(p, before)
    assert opt.state[p]["step"].item() == 1


# ----------------------------------------------------------------------------- 16-bit storage
#
# The contract: every array not of the compute type runs as float32 holding its values
# (16-bit widened, p from its master or remainder), each result rounded once on its store.
# So a 16-bit step is, bit for bit, the float32 step of the widened values (its twin) with
# each output rounded once: exact equalities, no tolerance. Shapes cross every path: rows
# longer than one converted piece (1,024 elements), several column blocks, a batch, an
# unfactored run longer than a piece, 0-d, and sizes that are no multiple of a vector width.

SHAPES_16 = [(37, 53), (2, 5, 1100), (3001,), (), (1, 2500), (700, 3)]
HALF = [bfloat16, np.float16]


def _storage_case(rng, params_dtype, grads_dtype, states_dtype, storage):
    """(params, grads, states, master) of SHAPES_16 in their storage dtypes, states random
    positive (a later step's), and the float32 values the twin starts from."""
    params = [np.array(rng.standard_normal(s), params_dtype) for s in SHAPES_16]
    grads = [np.array(rng.standard_normal(s), grads_dtype) for s in SHAPES_16]
    states = []
    for p in params:
        st = new_states(p)
        states.append(tuple(None if a is None else
                            np.array(rng.random(a.shape) + 0.1, states_dtype) for a in st))
    master = None
    if storage == "master":
        master = [np.array(rng.standard_normal(s), np.float32) for s in SHAPES_16]
        params = [m.astype(params_dtype) for m in master]
    elif storage == "remainders":
        master = [np.array(rng.standard_normal(s), np.float32) for s in SHAPES_16]
        params, remainders = zip(*(nnfast.split_master(m) for m in master))
        params, master = list(params), list(remainders)
    return params, grads, states, master


def _bits(a):
    """The bytes of a, for comparing bit for bit (-0 with 0, NaN with NaN included)."""
    return np.ascontiguousarray(np.atleast_1d(a)).view(np.uint8)


def _widened(arrays):
    return [None if a is None else np.array(a, np.float32) for a in arrays]


def _step(params, grads, states, **kwargs):
    nnfast.adafactor_step(params, grads, [s[0] for s in states], [s[1] for s in states],
                          [s[2] for s in states], step=4, weight_decay=0.05, **kwargs)


@pytest.mark.parametrize("params_dtype", HALF + [np.float32], ids=["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("roles", ["same", "float32-grads", "float32-states", "bfloat16-states"])
@pytest.mark.parametrize("options", [{}, dict(maximize=True, grad_scale=0.5, eps1=1e-6)],
                         ids=["defaults", "options"])
def test_16bit_step_is_the_float32_step_rounded_once(params_dtype, roles, options):
    rng = np.random.default_rng(11)
    grads_dtype = np.float32 if roles == "float32-grads" else params_dtype
    states_dtype = {"float32-states": np.float32, "bfloat16-states": bfloat16}.get(roles, params_dtype)
    params, grads, states, _ = _storage_case(rng, params_dtype, grads_dtype, states_dtype, None)
    twin_p, twin_g = _widened(params), _widened(grads)
    twin_states = [tuple(_widened(s)) for s in states]
    eps1 = options.get("eps1", float(np.finfo(params_dtype).eps))  # torch's None: the params'
    _step(twin_p, twin_g, twin_states, **{**options, "eps1": eps1})
    _step(params, grads, states, **options)
    for got, want in zip(params, twin_p):
        np.testing.assert_array_equal(_bits(got), _bits(want.astype(params_dtype)))
    for got_states, want_states in zip(states, twin_states):
        for got, want in zip(got_states, want_states):
            if got is not None:
                np.testing.assert_array_equal(np.asarray(got, np.float64),
                                              want.astype(states_dtype).astype(np.float64))


@pytest.mark.parametrize("storage", ["master", "remainders"])
def test_masters_and_remainders_are_the_float32_step_bit_for_bit(storage):
    rng = np.random.default_rng(12)
    params, grads, states, companion = _storage_case(rng, bfloat16, bfloat16, np.float32, storage)
    masters = (companion if storage == "master"
               else [nnfast.join_master(p, r) for p, r in zip(params, companion)])
    twin_p = [m.copy() for m in masters]
    twin_states = [tuple(None if a is None else a.copy() for a in s) for s in states]
    _step(twin_p, _widened(grads), twin_states, eps1=float(np.finfo(bfloat16).eps))
    key = "master_params" if storage == "master" else "param_remainders"
    _step(params, grads, states, **{key: companion})
    for k, want in enumerate(twin_p):
        got = companion[k] if storage == "master" else nnfast.join_master(params[k], companion[k])
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        np.testing.assert_array_equal(params[k].view(np.uint16), want.astype(bfloat16).view(np.uint16))
    for got_states, want_states in zip(states, twin_states):
        for got, want in zip(got_states, want_states):
            if got is not None:
                np.testing.assert_array_equal(got, want)


def test_stochastic_rounding_lands_next_to_the_float32_step_and_repeats():
    rng = np.random.default_rng(13)
    params, grads, states, _ = _storage_case(rng, bfloat16, bfloat16, np.float32, None)
    twin_p = _widened(params)
    _step(twin_p, _widened(grads), [tuple(_widened(s)) for s in states],
          eps1=float(np.finfo(bfloat16).eps))
    runs = []
    for threads in (1, 2):
        p = [a.copy() for a in params]
        st = [tuple(None if a is None else a.copy() for a in s) for s in states]
        with num_threads(threads):
            _step(p, grads, st, stochastic_rounding=True, seed=5)
        runs.append(p)
    rounded_away = rounded_toward_zero = 0
    for got, again, want in zip(*runs, twin_p):
        np.testing.assert_array_equal(got.view(np.uint16), again.view(np.uint16))
        # got is one of the two bfloat16 values around the float32 result: its bits with
        # the low half cut off (toward zero), or the next value away from zero.
        toward_zero = np.atleast_1d(want).view(np.uint32) & 0xFFFF0000
        away = toward_zero + 0x10000
        got_bits = np.atleast_1d(got).astype(np.float32).view(np.uint32)
        assert np.all((got_bits == toward_zero) | (got_bits == away))
        inexact = toward_zero != np.atleast_1d(want).view(np.uint32)
        rounded_away += np.count_nonzero(inexact & (got_bits == away))
        rounded_toward_zero += np.count_nonzero(inexact & (got_bits == toward_zero))
    assert rounded_away > 1000 and rounded_toward_zero > 1000  # both ways, as the bits fall


def test_16bit_store_scaled_grads_rounds_the_scaled_gradient_once():
    rng = np.random.default_rng(14)
    params, grads, states, _ = _storage_case(rng, bfloat16, bfloat16, np.float32, None)
    want = [(np.asarray(g, np.float32) * np.float32(0.3)).astype(bfloat16) for g in grads]
    _step(params, grads, states, grad_scale=0.3, store_scaled_grads=True)
    for got, w in zip(grads, want):
        np.testing.assert_array_equal(got.view(np.uint16), w.view(np.uint16))


@pytest.mark.parametrize("layout", ["float32", "bfloat16", "float16-float32-states", "master"])
def test_every_simd_level_gives_the_same_bits(layout):
    from nnfast import _core
    rng = np.random.default_rng(15)
    dtype = {"float32": np.float32, "float16-float32-states": np.float16}.get(layout, bfloat16)
    states_dtype = np.float32 if layout != "bfloat16" else bfloat16
    params, grads, states, master = _storage_case(rng, dtype, dtype, states_dtype,
                                                  "master" if layout == "master" else None)
    results = []
    before = nnfast.info()["simd"]
    try:
        for isa in _core.supported_simd():
            assert _core.use_simd(isa)
            p = [a.copy() for a in params]
            st = [tuple(None if a is None else a.copy() for a in s) for s in states]
            m = None if master is None else [a.copy() for a in master]
            _step(p, grads, st, **({"master_params": m} if m else {}))
            out = p + [a for s in st for a in s if a is not None] + (m or [])
            results.append([np.ascontiguousarray(a).view(np.uint8).copy() for a in out])
    finally:
        assert _core.use_simd(before)
    for arrays in results[1:]:
        for a, b in zip(arrays, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("options", [{}, dict(master_weights=True), dict(state_dtype=np.float32),
                                     dict(store_param_remainders=True)],
                         ids=["defaults", "master", "float32-states", "remainders"])
def test_optim_class_runs_16bit_params_as_the_functional_step(options):
    rng = np.random.default_rng(16)
    params = [np.array(rng.standard_normal(s), bfloat16) for s in SHAPES]
    stream = [[np.array(rng.standard_normal(s), bfloat16) for s in SHAPES] for _ in range(5)]
    opt = nnfast.optim.Adafactor([p.copy() for p in params], **options)
    masters = [p.astype(np.float32) for p in params]
    if options.get("store_param_remainders"):
        remainders = [np.zeros(p.shape, np.int16) for p in params]
    states_dtype = options.get("state_dtype", bfloat16)
    states = [tuple(None if a is None else a.astype(states_dtype) for a in new_states(p))
              for p in params]
    expected = [p.copy() for p in params]
    for t, grads in enumerate(stream, start=1):
        opt.step(grads)
        storage = ({"master_params": masters} if options.get("master_weights") else
                   {"param_remainders": remainders} if options.get("store_param_remainders")
                   else {})
        nnfast.adafactor_step(expected, grads, [s[0] for s in states], [s[1] for s in states],
                              [s[2] for s in states], step=t, **storage)
    for got, want in zip(opt.params, expected):
        np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    for k, st in enumerate(states):
        for name, a in zip(("row_var", "col_var", "variance"), st):
            if a is not None:
                assert opt.state[k][name].dtype == a.dtype
                np.testing.assert_array_equal(opt.state[k][name], a)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(st.integers(0, 40), min_size=0, max_size=3).map(tuple),
       steps=st.integers(1, 4), weight_decay=st.sampled_from([0.0, 0.1]),
       maximize=st.booleans(), d=st.sampled_from([1.0, 1.3]),
       scale=st.sampled_from([1e-30, 1.0, 1e15]), seed=st.integers(0, 2**31 - 1))
def test_property_any_shape_and_magnitude_follows_the_float64_reference(shape, steps, weight_decay,
                                                                         maximize, d, scale, seed):
    """Random shapes (empty, 0-d, sizes that are no multiple of a vector width), gradient
    magnitudes from tiny to huge, and options: the float64 kernel against the float64
    reference."""
    rng = np.random.default_rng(seed)
    p = np.array(rng.standard_normal(shape))
    grads = [np.array(rng.standard_normal(shape) * scale) for _ in range(steps)]
    got, want = [p.copy()], [p.copy()]
    kwargs = dict(weight_decay=weight_decay, maximize=maximize, d=d)
    run_functional(got, [[g] for g in grads], nnfast.adafactor_step, **kwargs)
    run_functional(want, [[g] for g in grads], nnfast.reference.adafactor_step, **kwargs)
    assert_close(got[0], want[0], steps, np.float64)
