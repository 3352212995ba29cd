"""Every optimizer step function against nnfast.reference (run in float64).

Tolerances: SAFETY times the running error bound of ``_helpers.Bound`` (see _helpers.py).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnfast
from _helpers import (
    CASE_IDS,
    FLOATS,
    LARGE,
    OPTIMIZER_CASES,
    OPTIMIZERS,
    SAFETY,
    SHAPE_IDS,
    SHAPES,
    BoundContext,
    assert_close,
    assert_same_bits,
    at_step,
    bound_step,
    call_step,
    check_step,
    compare_step,
    expected_step,
    quiet,
    random_problem,
    randn,
    reference_step,
    special_problem,
    state_names,
)

DTYPE_IDS = ["f32", "f64"]


def _copy_states(states):
    return {n: v.copy() for n, v in states.items()}


# --------------------------------------------------------------------------- one step


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_one_step_matches_reference(rng, case, dtype, shape):
    kind, hp = case
    p, g, states = random_problem(rng, kind, hp, shape, dtype)
    check_step(kind, p, g, states, hp)


# the richest option set of each step function, on a few million elements
_LARGE_CASES = [
    ("sgd", dict(lr=0.2, maximize=True, weight_decay=0.01, l1=0.003)),
    ("sgdm", dict(lr=0.05, nesterov=True, weight_decay=0.1, l1=0.01, maximize=True)),
    ("adagrad", dict(lr=0.3, eps=1e-6, weight_decay=0.05, l1=0.01, maximize=True)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, l1=0.01,
                     maximize=True)),
    ("adam", dict(lr=1e-2, step=4, amsgrad=True, decoupled_weight_decay=True,
                  weight_decay=0.05, l1=0.01, maximize=True)),
    ("adamw", dict(lr=1e-2, step=10, weight_decay=0.2, amsgrad=True)),
    ("lion", dict(lr=1e-3, weight_decay=0.5, grad_scale=0.25, maximize=True, l1=0.01)),
    ("adamax", dict(lr=1e-2, step=3, weight_decay=0.1, l1=0.01, maximize=True)),
    ("adadelta", dict(lr=0.1, weight_decay=0.1, l1=0.01, maximize=True)),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", _LARGE_CASES, ids=[c[0] for c in _LARGE_CASES])
def test_one_step_large(rng, case, dtype):
    kind, hp = case
    p, g, states = random_problem(rng, kind, hp, LARGE, dtype)
    check_step(kind, p, g, states, hp)


# --------------------------------------------------------------------------- many steps


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_twenty_steps_each_checked(rng, case, dtype):
    """20 steps; before each, the reference gets float64 copies of the kernel's own current
    params and states, so each step is checked against the same inputs."""
    kind, hp = case
    p, _, _ = random_problem(rng, kind, hp, (257,), dtype)
    states = {n: np.zeros_like(p) for n in state_names(kind, hp)}
    for k in range(20):
        g = randn(rng, p.shape, dtype)
        hp_k = at_step(kind, hp, k + 1)
        check_step(kind, [p], [g], {n: [v] for n, v in states.items()}, hp_k, f"step {k + 1}")
    assert np.isfinite(p).all()


_DRIFT_CASES = [
    ("sgd", dict(lr=0.01, weight_decay=0.01)),
    ("sgdm", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("adagrad", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.001, centered=True, momentum=0.9)),
    ("adam", dict(lr=0.001, amsgrad=True)),
    ("adamw", dict(lr=0.001, weight_decay=0.1)),
    ("nadam", dict(lr=0.002, weight_decay=0.01)),
    ("radam", dict(lr=0.001, weight_decay=0.1, decoupled_weight_decay=True)),
    # (a sign that float32 and float64 see differently moves p by 2 lr: lr small here)
    ("lion", dict(lr=1e-4, weight_decay=0.1)),
    ("adamax", dict(lr=0.001)),
    ("adadelta", dict(lr=1.0)),
]


@pytest.mark.parametrize("case", _DRIFT_CASES, ids=[c[0] for c in _DRIFT_CASES])
def test_long_float32_run_drift(rng, case):
    """300 float32 steps against a float64 reference that carries its OWN state: the
    float32 run may drift only as far as the error bound carried through all steps, and
    that drift stays small (below 1e-4 of the parameters' scale)."""
    kind, hp = case
    steps, shape = 300, (1000,)
    p32 = randn(rng, shape, np.float32)
    names = state_names(kind, hp)
    s32 = {n: np.zeros_like(p32) for n in names}
    p64, s64 = p32.astype(np.float64), {n: np.zeros(shape) for n in names}
    ctx = BoundContext(np.float32)
    pb, sb = ctx.exact(p64), {n: ctx.exact(s64[n]) for n in names}
    for k in range(steps):
        g32 = randn(rng, shape, np.float32)
        hp_k = at_step(kind, hp, k + 1)
        call_step(nnfast, kind, p32, g32, s32, hp_k)
        reference_step(kind, p64, g32.astype(np.float64), s64, hp_k)
        with quiet():
            out = bound_step(ctx, kind, pb, ctx.exact(g32), sb, hp_k)
        pb, sb = out["params"], {n: out[n] for n in names}
    what = f"{kind} after {steps} float32 steps"
    assert_close(pb.v, p64, SAFETY * pb.e, what + " [bound model vs reference]")
    assert_close(p32, p64, SAFETY * pb.e, what)
    for n in names:
        assert_close(s32[n], s64[n], SAFETY * sb[n].e, f"{what}, {n}")
    drift = np.max(np.abs(p32 - p64))
    scale = np.max(np.abs(p64)) + steps * hp["lr"]
    assert drift <= 1e-4 * scale, f"{what}: drift {drift:.3e} vs scale {scale:.3e}"


# --------------------------------------------------------------------------- lists


def _many_tensors(rng, count, dtype):
    shapes = [(int(n),) for n in rng.integers(0, 2001, size=count)]
    shapes[::37] = [()] * len(shapes[::37])          # some 0-d tensors
    shapes[5::41] = [(3, 7)] * len(shapes[5::41])    # and some 2-D ones
    return shapes


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", _LARGE_CASES, ids=[c[0] for c in _LARGE_CASES])
def test_list_of_hundreds_of_tensors(rng, case, dtype):
    """300 tensors of random sizes 0..2000 in one call: bit for bit the per-tensor calls,
    and within bounds of the reference."""
    kind, hp = case
    shapes = _many_tensors(rng, 300, dtype)
    problems = [random_problem(rng, kind, hp, s, dtype) for s in shapes]
    names = state_names(kind, hp)
    params = [p.copy() for p, _, _ in problems]
    grads = [g for _, g, _ in problems]
    states = {n: [st[n].copy() for _, _, st in problems] for n in names}
    check_step(kind, params, grads, states, hp, "list call")
    for i, (p, g, st) in enumerate(problems):
        p1, st1 = p.copy(), _copy_states(st)
        call_step(nnfast, kind, p1, g, st1, hp)
        assert_same_bits(params[i], p1, f"params[{i}] list vs single call")
        for n in names:
            assert_same_bits(states[n][i], st1[n], f"{n}[{i}] list vs single call")


def test_tuple_and_list_and_array_forms_agree(rng):
    p, g, st = random_problem(rng, "adam", {}, (33,), np.float32)
    a = [p.copy(), p.copy(), p.copy()]
    sa = [_copy_states(st) for _ in range(3)]
    nnfast.adam_step(a[0], g, sa[0]["exp_avgs"], sa[0]["exp_avg_sqs"], step=3)
    nnfast.adam_step([a[1]], [g], [sa[1]["exp_avgs"]], [sa[1]["exp_avg_sqs"]], step=3)
    nnfast.adam_step((a[2],), (g,), (sa[2]["exp_avgs"],), (sa[2]["exp_avg_sqs"],), step=3)
    for k in (1, 2):
        assert_same_bits(a[0], a[k])
        for n in st:
            assert_same_bits(sa[0][n], sa[k][n])
    assert not np.array_equal(a[0], p)  # it did update


# --------------------------------------------------------------------------- edge values


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_special_values_stay_in_their_element(rng, case, dtype):
    """+-0, huge and tiny magnitudes, and NaN/+inf/-inf gradients: every element equals the
    reference (NaN exactly where it is NaN), and non-finite gradients reach only their own
    element. LAMB's moments keep that property (a NaN global norm leaves the gradients
    unclipped, as apex); its trust ratio, the norm of a NaN update, makes every parameter
    of the tensor NaN (as apex's), which the reference comparison holds it to."""
    kind, hp = case
    p, g, states, special = special_problem(rng, kind, hp, dtype)
    check_step(kind, p, g, states, hp)
    poisoned = np.zeros(p.size, bool)
    poisoned[special] = True
    contained = [("params", p)] if kind != "lamb" else []
    for name, a in [*contained, *states.items()]:
        assert np.isfinite(a[~poisoned]).all(), f"{name}: a non-finite gradient leaked"
    assert np.isnan(p[special[0]]), "a NaN gradient must make its parameter NaN"


def test_float32_overflow_becomes_inf():
    """Where the exact float64 result overflows float32, the kernel gives +-inf."""
    p = np.array([3e38, -3e38, 1.0], np.float32)
    g = np.array([-3e38, 3e38, 1.0], np.float32)
    check_step("sgd", p, g, {}, dict(lr=1.0))
    assert p[0] == np.inf and p[1] == -np.inf and p[2] == 0.0


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_empty_arrays_are_noops(case, dtype):
    kind, hp = case
    p = np.empty((0, 3), dtype)
    states = {n: np.empty((0, 3), dtype) for n in state_names(kind, hp)}
    assert call_step(nnfast, kind, p, np.empty((0, 3), dtype), states, hp) is None
    assert call_step(nnfast, kind, [], [], {n: [] for n in states}, hp) is None
    assert p.shape == (0, 3)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_zero_lr_leaves_params_but_updates_state(rng, dtype):
    p, g, st = random_problem(rng, "adam", {}, (50,), dtype)
    p0, m0 = p.copy(), st["exp_avgs"].copy()
    nnfast.adam_step(p, g, st["exp_avgs"], st["exp_avg_sqs"], step=1, lr=0.0)
    assert_same_bits(p, p0)
    assert not np.array_equal(st["exp_avgs"], m0)


def test_adamw_defaults_are_adam_decoupled_with_wd_0_01(rng):
    p, g, st = random_problem(rng, "adam", {}, (40,), np.float64)
    p1, st1 = p.copy(), _copy_states(st)
    nnfast.adamw_step(p, g, st["exp_avgs"], st["exp_avg_sqs"], step=2)
    nnfast.adam_step(p1, g, st1["exp_avgs"], st1["exp_avg_sqs"], step=2,
                     decoupled_weight_decay=True, weight_decay=1e-2)
    assert_same_bits(p, p1)


def test_lesson_ema_momentum_is_dampening_equal_momentum():
    """m = beta*m + (1 - beta)*g from m = 0, as the lesson writes SGDM (beta = 0.9)."""
    p = np.array([1.0, 2.0])
    m = np.zeros(2)
    g = np.array([10.0, -20.0])
    nnfast.sgdm_step(p, g, m, lr=0.1, momentum=0.9, dampening=0.9)
    np.testing.assert_allclose(m, [1.0, -2.0], rtol=1e-15)
    np.testing.assert_allclose(p, [0.9, 2.2], rtol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_adamw_decay_precedes_gradient_with_l1_at_lr_times_wd_one(dtype):
    """The reference documents that g' (here its l1*sign(p) term) is taken from p BEFORE the
    decoupled decay p *= 1 - lr*wd. With lr*wd = 1 the decay zeroes p, so a kernel that
    takes sign(p) after the decay loses the l1 term: m must be (1 - beta1)*(g + l1*sign(p))."""
    p = np.array([1.0, -2.0, 3.0], dtype)
    g = np.array([0.5, 0.5, -0.5], dtype)
    st = {"exp_avgs": np.zeros(3, dtype), "exp_avg_sqs": np.zeros(3, dtype)}
    hp = dict(step=1, lr=1.0, weight_decay=1.0, l1=0.1)
    expected_m = 0.1 * (g.astype(np.float64) + 0.1 * np.sign(p))
    check_step("adamw", p, g, st, hp)
    np.testing.assert_allclose(st["exp_avgs"], expected_m, rtol=1e-6)


# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", _LARGE_CASES, ids=[c[0] for c in _LARGE_CASES])
def test_checker_detects_a_slightly_wrong_learning_rate(rng, case, dtype):
    """The tolerances are tight: a kernel run with lr off by 1e-5 (float32) or 1e-10
    (float64), relative, must fail the comparison."""
    kind, hp = case
    p, g, states = random_problem(rng, kind, hp, (4097,), dtype)
    expected = expected_step(kind, p, g, states, hp)
    off = 1e-5 if dtype == np.float32 else 1e-10
    call_step(nnfast, kind, p, g, states, dict(hp, lr=hp["lr"] * (1 + off)))
    with pytest.raises(AssertionError, match="out of tolerance"):
        compare_step(kind, hp, p, states, expected)


# --------------------------------------------------------------------------- properties

_unit = st.floats(0.0, 1.0)


@st.composite
def _hyperparameters(draw, kind):
    hp = dict(lr=draw(st.floats(0.0, 1.0)),
              weight_decay=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.5))),
              l1=draw(st.floats(0.0, 0.1)),
              maximize=draw(st.booleans()))
    if kind == "sgdm":
        hp["momentum"] = draw(st.floats(0.0, 0.99))
        hp["nesterov"] = hp["momentum"] > 0 and draw(st.booleans())
        hp["dampening"] = 0.0 if hp["nesterov"] else draw(_unit)
    elif kind == "adagrad":
        hp["eps"] = draw(st.floats(0.0, 1e-3))
    elif kind == "rmsprop":
        hp["alpha"] = draw(st.floats(0.5, 1.0))
        hp["eps"] = draw(st.floats(1e-8, 1e-3))
        hp["momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9]))
        hp["centered"] = draw(st.booleans())
    elif kind in ("adam", "adamw", "nadam", "radam"):
        hp["beta1"] = draw(st.floats(0.0, 0.999))
        hp["beta2"] = draw(st.floats(0.0, 0.9999))
        hp["eps"] = draw(st.floats(1e-8, 1e-3))
        hp["step"] = draw(st.integers(1, 10_000))
        if kind in ("adam", "adamw"):
            hp["amsgrad"] = draw(st.booleans())
        if kind != "adamw":
            hp["decoupled_weight_decay"] = draw(st.booleans())
        if kind == "nadam":
            hp["momentum_decay"] = draw(st.floats(0.0, 0.1))
            hp["mu_product"] = draw(st.floats(0.0, 0.999))
    elif kind == "lamb":
        del hp["l1"]
        hp["beta1"] = draw(st.floats(0.0, 0.999))
        hp["beta2"] = draw(st.floats(0.0, 0.9999))
        hp["eps"] = draw(st.floats(1e-8, 1e-3))
        hp["step"] = draw(st.integers(1, 10_000))
        hp["max_grad_norm"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
        for flag in ("bias_correction", "adam_w_mode", "grad_averaging", "use_nvlamb"):
            hp[flag] = draw(st.booleans())
    elif kind == "lion":
        hp["beta1"] = draw(_unit)
        hp["beta2"] = draw(_unit)
    elif kind == "adamax":
        hp["beta1"] = draw(st.floats(0.0, 0.999))
        hp["beta2"] = draw(st.floats(0.0, 0.9999))
        hp["eps"] = draw(st.floats(1e-8, 1e-3))
        hp["step"] = draw(st.integers(1, 10_000))
    elif kind == "adadelta":
        hp["rho"] = draw(_unit)
        hp["eps"] = draw(st.floats(1e-8, 1e-3))
    return hp


@pytest.mark.parametrize("kind", OPTIMIZERS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_any_shape_and_hyperparameters(kind, data):
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    hp = data.draw(_hyperparameters(kind))
    seed = data.draw(st.integers(0, 2**32 - 1))
    scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    p, g, states = random_problem(rng, kind, hp, shape, dtype, scale)
    check_step(kind, p, g, states, hp)


@settings(max_examples=50, deadline=None)
@given(values=hnp.arrays(np.float32, st.integers(0, 40),
                         elements=st.floats(-1e6, 1e6, width=32)),
       lr=st.floats(0.0, 10.0), weight_decay=st.floats(0.0, 1.0))
def test_property_sgd_on_arbitrary_float32_values(values, lr, weight_decay):
    """Gradient values chosen by hypothesis (zeros, signed zeros, extremes) rather than
    drawn from a distribution."""
    p = values[::-1].copy()
    check_step("sgd", p, values, {}, dict(lr=lr, weight_decay=weight_decay))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ["nadam", "radam"])
def test_per_tensor_steps_and_products_in_one_call(rng, kind, dtype):
    """One call over tensors at steps 4 to 7 (RAdam: 4 and 5 unrectified, 6 and 7 rectified;
    NAdam: each with its own mu_product) equals one call per tensor, each of which matches
    the reference."""
    steps = [4, 5, 6, 7, 300]
    problems = [random_problem(rng, kind, {}, (33 + i,), dtype) for i in range(len(steps))]
    hps = [at_step(kind, dict(lr=1e-2), t) for t in steps]
    params = [p for p, _, _ in problems]
    grads = [g for _, g, _ in problems]
    states = {n: [s[n] for _, _, s in problems] for n in state_names(kind, {})}
    alone = [(p.copy(), {n: a.copy() for n, a in s.items()}) for p, _, s in problems]
    together = dict(hps[0], step=steps)
    if kind == "nadam":
        together["mu_product"] = [hp["mu_product"] for hp in hps]
    call_step(nnfast, kind, params, grads, states, together)
    for i, ((p, s), hp) in enumerate(zip(alone, hps)):
        check_step(kind, p, grads[i], s, hp, f"tensor {i} alone")
        assert_same_bits(params[i], p, f"{kind} params[{i}] in one call")
        for n in s:
            assert_same_bits(states[n][i], s[n], f"{kind} {n}[{i}] in one call")
