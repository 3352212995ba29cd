"""Activations and losses on bfloat16 and float16 arrays (computed in float32).

The accuracy contract (python/nnfast/activations.py, losses.py): a 16-bit result is the
float64 result of nnfast.reference (on float64 copies of the inputs) rounded once to the
output dtype, within the float32 kernel's stated error before that rounding. Checked
exactly: the float32 kernel's result lies in an interval [lo, hi] around the float64 result
(its error bound, from the float32 tolerances of _helpers.py), rounding is monotone, so the
16-bit result must lie in [round(lo), round(hi)], with round the exact round-to-nearest-even
of float64 to the 16-bit format. Where the float32 error is 0 (relu), that is the single
value round(ref), compared bit for bit. Separately, every 16-bit result must be the float32
kernel's result on the widened inputs rounded once (bit for bit), and every reduced loss the
float64-accumulated value within the float32 kernel's bound.

Each test runs under every kernel set of ``_core.supported_simd()``. Outputs given as
``out``/``grad_out`` are filled with NaN first, so an element left unwritten fails.
"""

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnfast
from _helpers import (
    BACKWARD,
    FORWARD,
    ULP_BUDGET,
    call_reference,
    elementwise_tolerance,
    expected_cross_entropy,
    expected_mse,
    expected_softmax_cross_entropy,
    num_threads,
    quiet,
    sum_rtol,
)

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 arrays are ml_dtypes.bfloat16")

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
LOWP = [BF16, F16]
LOWP_IDS = ["bf16", "f16"]
ISAS = list(nnfast._core.supported_simd())

#: (significand bits including the leading one, exponent of the smallest normal) per format.
FORMATS = {BF16: (8, -126), F16: (11, -14)}

ELEMENT_SHAPES = [(), (0,), (1,), (17,), (4097,), (70001,), (3, 5, 7)]
ELEMENT_SHAPE_IDS = ["x".join(map(str, s)) or "0d" for s in ELEMENT_SHAPES]

HYPOTHESIS = settings(max_examples=25, deadline=None)


@contextlib.contextmanager
def simd(isa):
    """Runs the block with the kernels of one ISA, then restores the one in use."""
    before = nnfast.info()["simd"]
    assert nnfast._core.use_simd(isa)
    try:
        yield
    finally:
        assert nnfast._core.use_simd(before)


# --------------------------------------------------------------------------- rounding


def round_exact(x, dtype):
    """float64 values rounded to nearest even in the 16-bit format ``dtype`` (subnormals,
    overflow to +-inf), as float64: one rounding, however close x lies to a tie."""
    bits, emin = FORMATS[np.dtype(dtype)]
    x = np.asarray(x, np.float64)
    with quiet():
        finite = np.isfinite(x)
        _, e = np.frexp(np.where(finite, x, 0.0))  # |x| in [2^(e-1), 2^e)
        quantum = np.maximum(e - 1, emin) - (bits - 1)
        rounded = np.ldexp(np.rint(np.ldexp(np.where(finite, x, 0.0), -quantum)), quantum)
        largest = float(ml_dtypes.finfo(dtype).max)
        rounded = np.where(np.abs(rounded) > largest, np.copysign(np.inf, x), rounded)
        return np.where(finite, rounded, x)


def float32_steps(x, steps):
    """x rounded to float32, then moved ``steps`` float32 values up (or down)."""
    y = np.asarray(x, np.float64).astype(np.float32)
    toward = np.float32(np.inf if steps > 0 else -np.inf)
    for _ in range(abs(steps)):
        y = np.nextafter(y, toward)
    return as64(y)


def assert_rounded_within(got, ref, lo, hi, what):
    """``got`` (16-bit) is NaN exactly where ``ref`` is, and elsewhere lies in
    [round(lo), round(hi)]; where lo == hi == ref it has round(ref)'s bits (signed zeros)."""
    got = np.asarray(got)
    assert got.dtype in LOWP, f"{what}: dtype {got.dtype}"
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    got64 = as64(got)
    nan = np.isnan(ref)
    bad_nan = nan != np.isnan(got64)
    assert not bad_nan.any(), (
        f"{what}: NaN positions differ at {np.argwhere(bad_nan)[:5].tolist()}: got "
        f"{got64[bad_nan][:5]}, expected {ref[bad_nan][:5]}")
    lo16, hi16 = round_exact(lo, got.dtype), round_exact(hi, got.dtype)
    assert not (np.isnan(lo16) | np.isnan(hi16))[~nan].any(), f"{what}: NaN bound (test bug)"
    with quiet():
        bad = ~nan & ~((lo16 <= got64) & (got64 <= hi16))
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} outside the rounded float32 bound; first at "
            f"{list(i)}: got {got64[i]!r}, float64 result {ref[i]!r}, allowed "
            f"[{lo16[i]!r}, {hi16[i]!r}]")
    exact = ~nan & (lo == ref) & (hi == ref)
    with quiet():
        expected = round_exact(ref, got.dtype).astype(got.dtype)
    differs = exact & (got.view(np.uint16) != expected.view(np.uint16))
    assert not differs.any(), (
        f"{what}: exact results differ in their bits (signed zero?) at "
        f"{np.argwhere(differs)[:3].tolist()}")


def interval(ref, tol):
    """[ref - tol, ref + tol], collapsed to ref where ref is infinite (tol is then inf)."""
    ref = np.asarray(ref, np.float64)
    tol = np.broadcast_to(np.asarray(tol, np.float64), ref.shape)
    inf = np.isinf(ref)
    with quiet():
        return np.where(inf, ref, ref - tol), np.where(inf, ref, ref + tol)


def assert_float32_kernel_rounded(got, float32_result, what):
    """``got`` is ``float32_result`` rounded once to got's dtype, bit for bit (any NaN)."""
    with quiet():
        expected = np.asarray(float32_result).astype(got.dtype)
    nan = np.isnan(as64(expected))
    assert (np.isnan(as64(got)) == nan).all(), f"{what}: NaN positions differ"
    differs = ~nan & (got.view(np.uint16) != expected.view(np.uint16))
    assert not differs.any(), (
        f"{what}: {differs.sum()} elements are not the float32 kernel's result rounded once, "
        f"first at {np.argwhere(differs)[:3].tolist()}")


def as64(a):
    """a in float64 (ml_dtypes warns when it converts a bfloat16 NaN)."""
    with quiet():
        return np.asarray(a).astype(np.float64)


def poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype)


# --------------------------------------------------------------------------- inputs


def edge_values(dtype):
    """Signed zeros, subnormals, the smallest normal, the largest finite (65504 in float16),
    values just below a power of two (whose results round up across the binade), the
    saturation region of sigmoid and tanh, infinities and NaN."""
    info = ml_dtypes.finfo(dtype)
    bits, _ = FORMATS[np.dtype(dtype)]
    below_power = [float(2.0**k * (1 - 2.0**-bits)) for k in (-3, 0, 1, 4)]
    values = [0.0, -0.0, float(info.smallest_subnormal), -float(info.smallest_subnormal),
              float(info.smallest_normal) * (1 - 2.0 ** (1 - bits)), float(info.smallest_normal),
              float(info.max), -float(info.max), 1.0, -1.0, 0.5, 17.0, -17.0, 88.0, -104.0,
              np.inf, -np.inf, np.nan] + below_power + [-v for v in below_power]
    with quiet():
        return np.array(values, np.float64).astype(dtype)


def random_values(rng, shape, dtype, scale=3.0, edges=True):
    """Normal values times scale in dtype; with edges, edge_values spread over random slots."""
    x = np.array(rng.standard_normal(shape) * scale).astype(dtype)
    if edges and x.size:
        special = edge_values(dtype)
        flat = x.reshape(-1)
        slots = rng.choice(flat.size, size=min(flat.size, special.size), replace=False)
        flat[slots] = special[: slots.size]
    return x


def every_value(dtype):
    """All 65536 bit patterns of a 16-bit dtype."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(dtype)


def bit_patterns(dtype, min_size=0, max_size=300):
    """Hypothesis arrays of arbitrary 16-bit patterns (any value, NaN and inf included)."""
    return st.lists(st.integers(0, 65535), min_size=min_size, max_size=max_size).map(
        lambda b: np.array(b, np.uint16).view(dtype))


def finite_values(dtype, low, high, min_size=0, max_size=300):
    """Hypothesis arrays of values in [low, high], rounded to dtype."""
    return st.lists(st.floats(low, high, width=32), min_size=min_size, max_size=max_size).map(
        lambda v: np.array(v, np.float64).astype(dtype))


# --------------------------------------------------------------------------- activations


def activation_bounds(name, ref, args64):
    """The interval the float32 kernel's result lies in (src/ops/activation.h)."""
    if name in ("sigmoid", "tanh"):
        budget = ULP_BUDGET[np.dtype(np.float32)]
        return float32_steps(ref, -budget), float32_steps(ref, budget)
    if name == "tanh_backward":
        tol = elementwise_tolerance(name, np.float32, ref, y=args64[0], dy=args64[1])
    else:
        tol = elementwise_tolerance(name, np.float32, ref)
    return interval(ref, tol)


def check_activation(name, inputs, got, alpha=0.01, what=""):
    """A 16-bit activation result against the contract and against the float32 kernel."""
    args64 = [as64(a) for a in inputs]
    extra = (alpha,) if name.startswith("leaky_relu") else ()
    ref = call_reference(name, *args64, *extra)
    lo, hi = activation_bounds(name, ref, args64)
    assert got.dtype == inputs[0].dtype and got.shape == inputs[0].shape
    assert_rounded_within(got, ref, lo, hi, f"{name}({got.dtype}){what}")
    with quiet():
        float32_inputs = [a.astype(np.float32) for a in inputs]
    function = getattr(nnfast, name)
    with quiet():
        float32_result = (function(*float32_inputs, alpha) if extra else
                          function(*float32_inputs))
    assert_float32_kernel_rounded(got, float32_result, f"{name}({got.dtype}){what}")


def call_activation(name, inputs, alpha, out=None):
    function = getattr(nnfast, name)
    if name.startswith("leaky_relu"):
        return function(*inputs, alpha, out=out)
    return function(*inputs, out=out)


def check_every_isa(name, inputs, alpha=0.01):
    """check_activation on a new result, under every ISA."""
    for isa in ISAS:
        with simd(isa):
            check_activation(name, inputs, call_activation(name, inputs, alpha), alpha, f" [{isa}]")


@pytest.mark.parametrize("shape", ELEMENT_SHAPES, ids=ELEMENT_SHAPE_IDS)
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward(rng, name, dtype, shape):
    x = random_values(rng, shape, dtype, scale=5.0)
    x0 = x.copy()
    for isa in ISAS:
        with simd(isa):
            got = call_activation(name, [x], 0.01)
            assert isinstance(got, np.ndarray) and got is not x
            check_activation(name, [x], got, what=f" [{isa}] new")
            out = poisoned(shape, dtype)
            assert call_activation(name, [x], 0.01, out=out) is out
            check_activation(name, [x], out, what=f" [{isa}] out=")
            inplace = x.copy()
            assert call_activation(name, [inplace], 0.01, out=inplace) is inplace
            check_activation(name, [x], inplace, what=f" [{isa}] in place")
            assert (x.view(np.uint16) == x0.view(np.uint16)).all(), "input changed"


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_every_value(name, dtype):
    """Every bfloat16 / float16 value, under every ISA."""
    check_every_isa(name, [every_value(dtype)])


@pytest.mark.parametrize("alpha", [0.2, 1.0, 0.0, 3.5, -0.5])
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_leaky_relu_alpha(rng, dtype, alpha):
    x = random_values(rng, (1023,), dtype)
    dy = random_values(rng, (1023,), dtype)
    check_every_isa("leaky_relu", [x], alpha)
    check_every_isa("leaky_relu_backward", [x, dy], alpha)


def backward_input(rng, name, shape, dtype):
    """The first argument of a backward function: the forward output in its range for
    sigmoid and tanh (rounded to dtype), the input with zeros and edge values otherwise."""
    x = rng.standard_normal(shape) * 3.0
    if name == "sigmoid_backward":
        return np.asarray(call_reference("sigmoid", x)).astype(dtype)
    if name == "tanh_backward":
        return np.asarray(np.tanh(x)).astype(dtype)
    a = random_values(rng, shape, dtype)
    a[rng.random(shape) < 0.1] = 0
    return a


@pytest.mark.parametrize("shape", ELEMENT_SHAPES, ids=ELEMENT_SHAPE_IDS)
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward(rng, name, dtype, shape):
    a = backward_input(rng, name, shape, dtype)
    dy = random_values(rng, shape, dtype)
    for isa in ISAS:
        with simd(isa):
            check_activation(name, [a, dy], call_activation(name, [a, dy], 0.01),
                             what=f" [{isa}] new")
            out = poisoned(shape, dtype)
            assert call_activation(name, [a, dy], 0.01, out=out) is out
            check_activation(name, [a, dy], out, what=f" [{isa}] out=")
            for k in (0, 1):
                inputs = [a.copy(), dy.copy()]
                assert call_activation(name, inputs, 0.01, out=inputs[k]) is inputs[k]
                check_activation(name, [a, dy], inputs[k], what=f" [{isa}] in place of arg {k}")


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_every_value(rng, name, dtype):
    """relu and leaky_relu backward over every 16-bit x; sigmoid and tanh over every y of
    their range ([0, 1], [-1, 1]); dy random with edge values."""
    a = every_value(dtype)
    with quiet():
        a64 = as64(a)
    if name == "sigmoid_backward":
        a = a[(a64 >= 0) & (a64 <= 1)]
    elif name == "tanh_backward":
        a = a[np.abs(a64) <= 1]
    check_every_isa(name, [a, random_values(rng, a.shape, dtype)])


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_hypothesis(name, dtype):
    """Any 16-bit dy; any x for relu and leaky_relu, y in the forward range for sigmoid
    ([0, 1]) and tanh ([-1, 1])."""
    if name in ("sigmoid_backward", "tanh_backward"):
        first = finite_values(dtype, 0.0 if name == "sigmoid_backward" else -1.0, 1.0)
    else:
        first = bit_patterns(dtype)

    @HYPOTHESIS
    @given(data=st.data())
    def check(data):
        a = data.draw(first)
        check_every_isa(name, [a, data.draw(bit_patterns(dtype, a.size, a.size))])
    check()


# --------------------------------------------------------------------------- losses


def check_loss_16(result, expected, dtype, reduction, what, float32_result):
    """(loss, grad) of a 16-bit call against expected_*'s float32 bounds (computed on the
    float32 copies of the inputs: the same values) and against the float32 kernel's result."""
    loss, grad = result
    ref_loss, ref_grad, loss_tol, grad_tol = expected
    assert isinstance(grad, np.ndarray) and grad.dtype == dtype, f"{what}: grad {grad!r:.80}"
    assert_rounded_within(grad, ref_grad, *interval(ref_grad, grad_tol), f"{what} grad")
    assert_float32_kernel_rounded(grad, float32_result[1], f"{what} grad")
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dtype, f"{what}: loss {loss!r:.80}"
        assert_rounded_within(loss, ref_loss, *interval(ref_loss, loss_tol), f"{what} losses")
        assert_float32_kernel_rounded(loss, float32_result[0], f"{what} losses")
    else:
        assert isinstance(loss, float), f"{what}: loss must be a Python float, got {type(loss)}"
        ref_loss = float(ref_loss)
        if np.isnan(ref_loss):
            assert np.isnan(loss), f"{what}: loss {loss}, expected NaN"
        else:
            assert abs(loss - ref_loss) <= float(loss_tol) or loss == ref_loss, (
                f"{what}: loss {loss!r}, expected {ref_loss!r} within {float(loss_tol):.3e}")


def grad_out_cases(first, dtype):
    """(grad_out, what) for one call: none, a NaN-poisoned array, the input itself."""
    return [(None, "new grad"), (poisoned(first.shape, dtype), "grad_out="),
            (first.copy(), "in place")]


def run_loss_cases(name, inputs, reduction, expected, dtype, what, **kwargs):
    """Calls loss `name` with every grad_out case, under every ISA, and checks each."""
    function = getattr(nnfast, name)
    with quiet():
        float32_inputs = [a.astype(np.float32) if a.dtype == dtype else a for a in inputs]
    for isa in ISAS:
        with simd(isa):
            with quiet():
                float32_result = function(*float32_inputs, reduction, **kwargs)
            for grad_out, case in grad_out_cases(inputs[0], dtype):
                args = list(inputs)
                if case == "in place":
                    args[0] = grad_out
                result = function(*args, reduction, **kwargs, grad_out=grad_out)
                if grad_out is not None:
                    assert result[1] is grad_out
                check_loss_16(result, expected, dtype, reduction,
                              f"{name}({dtype}) {what} [{isa}] {case}", float32_result)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", ELEMENT_SHAPES, ids=ELEMENT_SHAPE_IDS)
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_mse(rng, dtype, shape, reduction):
    pred = random_values(rng, shape, dtype, edges=False)
    target = random_values(rng, shape, dtype, edges=False)
    expected = expected_mse(pred.astype(np.float32), target.astype(np.float32), reduction)
    run_loss_cases("mse_loss", [pred, target], reduction, expected, dtype, str(shape))


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_mse_edge_values(dtype):
    """Subnormals, the largest finite value (whose difference overflows to inf in the
    16-bit gradient, not in float32), infinities and NaN, element by element."""
    edges = edge_values(dtype)
    pred = np.repeat(edges, edges.size)
    target = np.tile(edges, edges.size)
    with quiet():
        expected = expected_mse(pred.astype(np.float32), target.astype(np.float32), "none")
    run_loss_cases("mse_loss", [pred, target], "none", expected, dtype, "edge values")


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_mse_hypothesis(dtype):
    @HYPOTHESIS
    @given(data=st.data(), reduction=st.sampled_from(REDUCTIONS))
    def check(data, reduction):
        pred = data.draw(finite_values(dtype, -100.0, 100.0))
        target = data.draw(finite_values(dtype, -100.0, 100.0, pred.size, pred.size))
        expected = expected_mse(pred.astype(np.float32), target.astype(np.float32), reduction)
        run_loss_cases("mse_loss", [pred, target], reduction, expected, dtype, "hypothesis")
    check()


#: Rows shorter than a vector, tiles of many rows (300 x 7, 100 x 60), rows of a tile each,
#: rows longer than a tile (scratch rows of their own), more than one chunk.
ROW_SHAPES = [(0, 5), (1, 1), (17,), (17, 3), (33, 7), (5, 17), (300, 7), (100, 60), (3, 1000),
              (2, 1030), (70, 1000), (1, 33000), (2, 3, 5)]
ROW_SHAPE_IDS = ["x".join(map(str, s)) for s in ROW_SHAPES]


def probability_rows(rng, shape, dtype, zeros=True):
    """Rows of probabilities in dtype (some exact zeros where asked)."""
    p = np.abs(rng.standard_normal(shape)) + 0.01
    if zeros:
        p[rng.random(shape) < 0.1] = 0
    sums = p.sum(axis=-1, keepdims=True)
    return (p / np.where(sums > 0, sums, 1)).astype(dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=ROW_SHAPE_IDS)
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_cross_entropy(rng, dtype, shape, reduction):
    probs = probability_rows(rng, shape, dtype, zeros=False)
    target = probability_rows(rng, shape, dtype)
    expected = expected_cross_entropy(probs.astype(np.float32), target.astype(np.float32),
                                      reduction)
    run_loss_cases("cross_entropy", [probs, target], reduction, expected, dtype, str(shape))


#: (reduction, label_smoothing) pairs each softmax cross-entropy shape runs.
SOFTMAX_OPTIONS = [("mean", 0.0), ("sum", 0.1), ("none", 0.0), ("none", 0.1), ("mean", 0.1)]


@pytest.mark.parametrize("target_kind", ["class ids", "ignore_index", "probabilities"])
@pytest.mark.parametrize("shape", [s for s in ROW_SHAPES if len(s) == 2],
                         ids=[i for s, i in zip(ROW_SHAPES, ROW_SHAPE_IDS) if len(s) == 2])
@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_softmax_cross_entropy(rng, dtype, shape, target_kind):
    rows, classes = shape
    logits = random_values(rng, shape, dtype, edges=False)
    kwargs = {}
    if target_kind == "probabilities":
        target = probability_rows(rng, shape, dtype)
    else:
        target = rng.integers(0, classes, rows)
        if target_kind == "ignore_index":
            kwargs["ignore_index"] = int(target[0]) if rows else 0
    for reduction, smoothing in SOFTMAX_OPTIONS:
        t32 = target.astype(np.float32) if target_kind == "probabilities" else target
        expected = expected_softmax_cross_entropy(logits.astype(np.float32), t32, reduction,
                                                  label_smoothing=smoothing, **kwargs)
        run_loss_cases("softmax_cross_entropy", [logits, target], reduction, expected, dtype,
                       f"{shape} {target_kind} eps={smoothing}", label_smoothing=smoothing,
                       **kwargs)


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_softmax_cross_entropy_hypothesis(dtype):
    @HYPOTHESIS
    @given(data=st.data(), classes=st.integers(1, 40), reduction=st.sampled_from(REDUCTIONS),
           smoothing=st.sampled_from([0.0, 0.25]))
    def check(data, classes, reduction, smoothing):
        rows = data.draw(st.integers(0, 12))
        logits = data.draw(finite_values(dtype, -30.0, 30.0, rows * classes, rows * classes))
        logits = logits.reshape(rows, classes)
        labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=rows,
                                             max_size=rows)), np.int64)
        expected = expected_softmax_cross_entropy(logits.astype(np.float32), labels, reduction,
                                                  label_smoothing=smoothing)
        run_loss_cases("softmax_cross_entropy", [logits, labels], reduction, expected, dtype,
                       "hypothesis", label_smoothing=smoothing)
    check()


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_softmax_cross_entropy_nan_or_inf_logit_stays_in_its_row(rng, dtype):
    logits = random_values(rng, (12, 1030), dtype, edges=False)
    logits[3, 500] = np.nan
    logits[7, 0] = np.inf
    labels = rng.integers(0, 1030, 12)
    for isa in ISAS:
        with simd(isa):
            losses, grad = nnfast.softmax_cross_entropy(logits, labels, "none")
            bad = np.zeros(12, bool)
            bad[[3, 7]] = True
            assert np.isnan(as64(losses[bad])).all()
            assert np.isnan(as64(grad[bad])).all()
            assert np.isfinite(as64(losses[~bad])).all()
            assert np.isfinite(as64(grad[~bad])).all()


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
@pytest.mark.parametrize("name", ["l1_loss", "l2_loss"])
def test_regularization_losses(rng, name, dtype):
    """Terms formed in float64 from the stored values: only the float64 sum's error remains."""
    shapes = [(int(n),) for n in rng.integers(0, 2001, 50)] + [(), (0,), (3, 4, 5), (70001,)]
    arrays = [random_values(rng, s, dtype, edges=False) for s in shapes]
    arrays64 = [as64(a) for a in arrays]
    reference = getattr(nnfast.reference, name)
    function = getattr(nnfast, name)
    n = sum(a.size for a in arrays)
    for isa in ISAS:
        with simd(isa):
            total = function(arrays)
            assert isinstance(total, float)
            np.testing.assert_allclose(total, reference(arrays64), rtol=sum_rtol(n), atol=0)
            single = function(arrays[-1])
            np.testing.assert_allclose(single, reference(arrays64[-1]),
                                       rtol=sum_rtol(arrays[-1].size), atol=0)
            with quiet():
                edges = edge_values(dtype)
                finite = edges[np.isfinite(as64(edges))]
                np.testing.assert_allclose(function(finite), reference(as64(finite)),
                                           rtol=sum_rtol(finite.size), atol=0)
                assert np.isnan(function(edges))


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_reductions_same_bits_for_1_and_2_threads(rng, dtype):
    pred = random_values(rng, (200_001,), dtype, edges=False)
    target = random_values(rng, (200_001,), dtype, edges=False)
    logits = random_values(rng, (300, 1000), dtype, edges=False)
    labels = rng.integers(0, 1000, 300)

    def run():
        return [nnfast.mse_loss(pred, target, "sum"),
                nnfast.softmax_cross_entropy(logits, labels, "mean", label_smoothing=0.1),
                nnfast.l2_loss(pred)]

    with num_threads(1):
        one = run()
    with num_threads(2):
        two = run()
    assert one[0][0] == two[0][0] and one[1][0] == two[1][0] and one[2] == two[2]
    assert (one[0][1].view(np.uint16) == two[0][1].view(np.uint16)).all()
    assert (one[1][1].view(np.uint16) == two[1][1].view(np.uint16)).all()


# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_checker_detects_a_result_one_unit_off(rng, dtype):
    """The contract check is not vacuous: a result one 16-bit unit away from what a correct
    kernel can give fails it, as does an unwritten (NaN) element or a flipped zero sign."""
    x = random_values(rng, (4097,), dtype, edges=False)
    got = nnfast.relu(x)
    check_activation("relu", [x], got)
    nudged = got.copy()
    nudged.view(np.uint16)[5] += 1
    with pytest.raises(AssertionError):
        check_activation("relu", [x], nudged)
    signed = nnfast.relu(np.array([-0.0, 1.0], dtype))
    signed.view(np.uint16)[0] ^= 0x8000
    with pytest.raises(AssertionError):
        check_activation("relu", [np.array([-0.0, 1.0], dtype)], signed)
    sig = nnfast.sigmoid(x)
    lo, hi = activation_bounds("sigmoid", call_reference("sigmoid", as64(x)), [])
    far = sig.copy()
    far.view(np.uint16)[7] += 2  # beyond 1 unit of a result within 4 float32 ULP
    with pytest.raises(AssertionError):
        assert_rounded_within(far, call_reference("sigmoid", as64(x)), lo, hi, "s")
    unwritten = sig.copy()
    unwritten[3] = np.nan
    with pytest.raises(AssertionError):
        assert_rounded_within(unwritten, call_reference("sigmoid", as64(x)), lo, hi,
                              "s")


def test_round_exact_matches_numpy_float16_and_ties_to_even():
    """round_exact agrees with NumPy's float64 -> float16 conversion (itself one rounding),
    and rounds bfloat16 ties to even where a float32 detour would round twice."""
    rng = np.random.default_rng(7)
    with quiet():
        x = np.concatenate([rng.standard_normal(100_000) * 10.0 ** rng.integers(-9, 6, 100_000),
                            [65504.0, 65519.99, 65520.0, 2.0**-24 * 0.5, 2.0**-24 * 0.50001]])
        assert (round_exact(x, F16) == as64(x.astype(np.float16))).all()
    # 1 + 2^-8 + 2^-30: above the tie between 1 and 1 + 2^-7, so it rounds up; via float32
    # (1 + 2^-8 exactly, a tie) it would round down to even
    assert round_exact(np.array([1 + 2.0**-8 + 2.0**-30]), BF16)[0] == 1 + 2.0**-7
    assert round_exact(np.array([1 + 2.0**-8]), BF16)[0] == 1.0


# --------------------------------------------------------------------------- dtype errors


def test_dtype_errors_name_the_argument():
    bf, f16, f64 = (np.zeros((4, 3), d) for d in (BF16, F16, np.float64))
    labels = np.zeros(4, np.int64)
    cases = [
        (lambda: nnfast.relu_backward(bf, f64), "dy"),
        (lambda: nnfast.sigmoid_backward(f64, bf), "dy"),
        (lambda: nnfast.tanh(bf, out=f16), "out"),
        (lambda: nnfast.sigmoid(f16, out=np.zeros((4, 3), np.float32)), "out"),
        (lambda: nnfast.relu(np.zeros(3, np.int16)), "x"),
        (lambda: nnfast.mse_loss(bf, f64), "target"),
        (lambda: nnfast.mse_loss(f16, bf), "target"),
        (lambda: nnfast.mse_loss(bf, bf, grad_out=f64), "grad_out"),
        (lambda: nnfast.cross_entropy(f64, f16), "target"),
        (lambda: nnfast.softmax_cross_entropy(bf, f64), "target"),
        (lambda: nnfast.softmax_cross_entropy(bf, labels, grad_out=f16), "grad_out"),
        (lambda: nnfast.softmax_cross_entropy(np.zeros((4, 3), np.int16), labels), "logits"),
        (lambda: nnfast.l1_loss([bf, f16]), "w[1]"),
        (lambda: nnfast.l2_loss([f64, bf]), "w[1]"),
    ]
    for call, name in cases:
        with pytest.raises(TypeError, match=rf"^{name.replace('[', '.').replace(']', '.')}: dtype"):
            call()


def test_refused_calls_write_nothing():
    """The whole call is checked before anything is written: a bad last argument leaves the
    16-bit output as it was."""
    x = np.ones((4, 3), BF16)
    out = poisoned((4, 3), BF16)
    with pytest.raises(TypeError, match="^dy: dtype float16"):
        nnfast.relu_backward(x, np.ones((4, 3), F16), out=out)
    with pytest.raises(ValueError, match="^target: shape"):
        nnfast.mse_loss(x, np.ones((4, 2), BF16), grad_out=out)
    with pytest.raises(ValueError, match="^target.0. = 7 is outside"):
        nnfast.softmax_cross_entropy(x, np.array([7, 0, 0, 0]), grad_out=out)
    assert np.isnan(as64(out)).all()


@pytest.mark.parametrize("dtype", LOWP, ids=LOWP_IDS)
def test_alpha_beyond_float32_is_refused(dtype):
    """A 16-bit call computes with a float32 alpha: one that rounds to infinity there is a
    ValueError naming it, before anything is written."""
    x = np.ones(5, dtype)
    out = poisoned(5, dtype)
    with pytest.raises(ValueError, match=r"^alpha: 1e\+39 rounds to infinity in float32"):
        nnfast.leaky_relu(x, 1e39, out=out)
    assert np.isnan(as64(out)).all()


# --------------------------------------------------------------------------- torch


@pytest.mark.parametrize("name", FORWARD)
def test_forward_agrees_with_torch_bfloat16(name):
    """torch's CPU kernels compute bfloat16 activations in float32 and round once: relu and
    leaky_relu agree bit for bit, sigmoid and tanh within one bfloat16 unit (each is within
    a few float32 ULP of the exact result before rounding), except where the exact result
    is subnormal: torch flushes those sigmoid results to 0 (nnfast keeps them, as the
    contract tests above check)."""
    torch = pytest.importorskip("torch", reason="the torch comparison needs torch")
    x = every_value(BF16)
    got = call_activation(name, [x], 0.01)
    t = torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    function = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                "leaky_relu": lambda v: torch.nn.functional.leaky_relu(v, 0.01)}[name]
    theirs = function(t).view(torch.int16).numpy().view(np.uint16).view(BF16)
    ours64, theirs64 = as64(got), as64(theirs)
    assert (np.isnan(ours64) == np.isnan(theirs64)).all()
    exact = np.abs(call_reference(name, as64(x)))
    subnormal = (exact > 0) & (exact < float(ml_dtypes.finfo(BF16).smallest_normal))
    skipped = np.isnan(ours64) | subnormal
    if name in ("relu", "leaky_relu"):
        assert (got.view(np.uint16)[~skipped] == theirs.view(np.uint16)[~skipped]).all()
    else:
        units = np.abs(got.view(np.int16)[~skipped].astype(np.int32)
                       - theirs.view(np.int16)[~skipped].astype(np.int32))
        assert units.max() <= 1
