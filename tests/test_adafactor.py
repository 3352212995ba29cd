"""Adafactor: nnfast.adafactor_step and nnfast.optim.Adafactor against torch.optim.Adafactor
(its single-tensor path is the spec) and the float64 NumPy reference, over 50 steps of
1-D, 2-D, 3-D, (1, n), (n, 1) and 0-d parameters; the same bits for one and two threads;
the gradient-scaling options; checkpoints; the checks of the call.

Tolerance after k steps: ``k * 8 * u * (|p| + 1)`` with u the compute type's unit
roundoff. nnfast sums every mean and RMS in float64, torch in the compute type: a few
roundings per step apart, while one wrong term moves p by about ``lr * RMS(p)`` (1e-2).
"""

import numpy as np
import pytest

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
    with pytest.raises(TypeError, match=r"^row_vars\[0\]: dtype float64 differs"):
        step([p], [g], [row.astype(np.float64)], [col], [None], step=1)
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
    with pytest.raises(ValueError, match="^master_params"):
        step([p], [g], [row], [col], [None], step=1, master_params=[p.copy()])
    with pytest.raises(TypeError, match=r"^params\[0\]: dtype float16"):
        h = p.astype(np.float16)
        step([h], [h.copy()], [row.astype(np.float16)], [col.astype(np.float16)], [None], step=1)
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
    with pytest.raises(TypeError, match="^params: Adafactor takes float32 or float64"):
        nnfast.optim.Adafactor([p.astype(np.float16)])
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

    with pytest.raises(TypeError, match="float32 and float64"):
        nt.Adafactor([torch.zeros(3, dtype=torch.bfloat16)])
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
