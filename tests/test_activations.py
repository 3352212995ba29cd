"""Activations and their gradients against nnfast.reference, plus the float32 accuracy
contract of sigmoid and tanh (<= 4 ULP against float64 rounded to float32).

Tolerances: ULP_BUDGET for sigmoid/tanh, ``elementwise_tolerance`` (rounding counts) for the
rest; both in _helpers.py.
"""

import numpy as np
import pytest

import nnfast
from _helpers import (
    BACKWARD,
    FLOATS,
    FORWARD,
    LARGE,
    SHAPE_IDS,
    SHAPES,
    SPECIAL,
    ULP_BUDGET,
    assert_backward,
    assert_forward,
    assert_same_bits,
    assert_ulp,
    backward_inputs,
    bits,
    call_reference,
    quiet,
    randn,
)

DTYPE_IDS = ["f32", "f64"]


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("shape", SHAPES + [LARGE], ids=SHAPE_IDS + ["large"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_matches_reference(rng, name, dtype, shape):
    x = randn(rng, shape, dtype, scale=5.0)
    x0 = x.copy()
    got = getattr(nnfast, name)(x)
    assert isinstance(got, np.ndarray) and got is not x
    assert_same_bits(x, x0, "input must not change")
    assert_forward(name, x, got)


@pytest.mark.parametrize("alpha", [0.01, 0.2, 1.0, 0.0, 3.5])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_leaky_relu_alpha(rng, dtype, alpha):
    x = randn(rng, (1023,), dtype)
    assert_forward("leaky_relu", x, nnfast.leaky_relu(x, alpha=alpha), alpha)
    assert_forward("leaky_relu", x, nnfast.leaky_relu(x, alpha), alpha)


def test_leaky_relu_default_alpha_is_torch_0_01(rng):
    x = randn(rng, (100,), np.float64)
    assert_same_bits(nnfast.leaky_relu(x), nnfast.leaky_relu(x, alpha=0.01))
    assert_same_bits(nnfast.leaky_relu_backward(x, x), nnfast.leaky_relu_backward(x, x, 0.01))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_special_values(name, dtype):
    with quiet():
        x = np.array(SPECIAL, dtype)
    assert_forward(name, x, getattr(nnfast, name)(x))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_sigmoid_saturation(dtype):
    x = np.array([-100.0, 100.0, -np.inf, np.inf, np.nan, -1000.0, 1000.0, 0.0, -0.0], dtype)
    y = nnfast.sigmoid(x)
    assert 0.0 <= y[0] < 1e-40, "sigmoid(-100) is tiny positive or 0"
    assert y[1] == 1.0 and y[3] == 1.0 and y[6] == 1.0
    assert y[2] == 0.0 and y[5] == 0.0
    assert np.isnan(y[4]) and not np.isnan(np.delete(y, 4)).any()
    assert y[7] == 0.5 and y[8] == 0.5


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_tanh_limits_and_signed_zero(dtype):
    x = np.array([np.inf, -np.inf, 0.0, -0.0, 50.0, -50.0, np.nan], dtype)
    y = nnfast.tanh(x)
    assert list(y[:2]) == [1.0, -1.0] and list(y[4:6]) == [1.0, -1.0]
    assert_same_bits(y[2:4], x[2:4], "tanh(+-0) = +-0")
    assert np.isnan(y[6])


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_relu_semantics(dtype):
    """torch.relu is clamp_min(x, 0) = "x < 0 ? 0 : x": NaN stays NaN and a zero keeps its
    sign (relu(-0.0) = -0.0), as src/ops/activation.h and the reference document."""
    x = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -1.0, 2.0], dtype)
    y = nnfast.relu(x)
    assert_same_bits(y[:2], x[:2], "relu(+-0) = +-0")
    assert np.isnan(y[2])
    assert list(y[3:]) == [0.0, np.inf, 0.0, 2.0]


# --------------------------------------------------------------------------- accuracy


def _float32_sweep(limit, stride):
    """Every stride-th float32 bit pattern in [0, limit], both signs."""
    top = int(np.array(limit, np.float32).view(np.uint32))
    positive = np.arange(0, top + 1, stride, dtype=np.uint32).view(np.float32)
    return np.concatenate([positive, -positive, np.array([limit, -limit], np.float32)])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float32_accuracy_contract(name, record_property):
    """float32 sigmoid and tanh within 4 ULP of the float64 result rounded to float32:
    a dense sweep of [-100, 100] (every 487th bit pattern: ~4.6 million values), an even
    linspace, a coarse sweep of every finite float32, and the special values."""
    with quiet():
        x = np.concatenate([
            _float32_sweep(100.0, 487),
            np.linspace(-100, 100, 1_000_001, dtype=np.float32),
            _float32_sweep(float(np.finfo(np.float32).max), 4099),
            np.array(SPECIAL, np.float32),
        ])
    got = getattr(nnfast, name)(x)
    ref = call_reference(name, x.astype(np.float64))
    ulps = assert_ulp(got, ref, f"float32 {name} over {x.size} inputs")
    record_property(f"{name}_float32_max_ulp", ulps)
    print(f"float32 {name}: max {ulps:g} ULP over {x.size} inputs")


# --------------------------------------------------------------------------- backward


@pytest.mark.parametrize("shape", SHAPES + [LARGE], ids=SHAPE_IDS + ["large"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_matches_reference(rng, name, dtype, shape):
    a, dy = backward_inputs(rng, name, shape, dtype)
    a0, dy0 = a.copy(), dy.copy()
    got = getattr(nnfast, name)(a, dy)
    assert_same_bits(a, a0)
    assert_same_bits(dy, dy0)
    assert_backward(name, a, dy, got)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_on_arbitrary_values(rng, name, dtype):
    """Outside the forward range too (y > 1, y < 0) and with special values in both."""
    with quiet():
        a = np.concatenate([np.array(SPECIAL, dtype), randn(rng, (19,), dtype, 2.0)])
        dy = np.concatenate([randn(rng, (19,), dtype), np.array(SPECIAL, dtype)])
    assert_backward(name, a, dy, getattr(nnfast, name)(a, dy))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_backward_at_the_kink(dtype):
    """PyTorch's choices at x = 0: relu passes 0, leaky_relu passes alpha*dy."""
    x = np.array([0.0, -0.0, 1e-30, -1e-30], dtype)
    dy = np.array([3.0, 3.0, 3.0, 3.0], dtype)
    assert list(nnfast.relu_backward(x, dy)) == [0.0, 0.0, 3.0, 0.0]
    got = nnfast.leaky_relu_backward(x, dy, alpha=0.25)
    assert list(got) == [0.75, 0.75, 3.0, 0.75]
    slope = dtype(0.01) * dtype(3.0)  # the default alpha, rounded to the dtype, times dy
    assert list(nnfast.leaky_relu_backward(x, dy)) == [slope, slope, 3.0, slope]


@pytest.mark.parametrize("alpha", [0.01, 0.2, 2.0])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_leaky_relu_backward_alpha(rng, dtype, alpha):
    a, dy = backward_inputs(rng, "leaky_relu_backward", (999,), dtype)
    assert_backward("leaky_relu_backward", a, dy,
                    nnfast.leaky_relu_backward(a, dy, alpha=alpha), alpha)


# --------------------------------------------------------------------------- out=


def _poisoned(shape, dtype, poison):
    return np.full(shape, poison, dtype)


@pytest.mark.parametrize("poison", [np.nan, 12345.0])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (4097,)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_out(rng, name, dtype, shape, poison):
    x = randn(rng, shape, dtype, 3.0)
    out = _poisoned(shape, dtype, poison)
    result = getattr(nnfast, name)(x, out=out)
    assert result is out
    assert_forward(name, x, out)
    assert_same_bits(out, getattr(nnfast, name)(x), "out= and a new array agree")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_in_place(rng, name, dtype):
    x = randn(rng, (4097,), dtype, 3.0)
    expected = getattr(nnfast, name)(x)
    assert getattr(nnfast, name)(x, out=x) is x
    assert_same_bits(x, expected, "out=x (in place) equals the out-of-place result")


@pytest.mark.parametrize("poison", [np.nan, -7.0])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_out_and_in_place(rng, name, dtype, poison):
    a, dy = backward_inputs(rng, name, (3, 333), dtype)
    expected = getattr(nnfast, name)(a, dy)
    assert_backward(name, a, dy, expected)
    out = _poisoned(a.shape, dtype, poison)
    assert getattr(nnfast, name)(a, dy, out=out) is out
    assert_same_bits(out, expected, "out=")
    dy_inplace = dy.copy()
    assert getattr(nnfast, name)(a, dy_inplace, out=dy_inplace) is dy_inplace
    assert_same_bits(dy_inplace, expected, "out=dy (in place)")
    a_inplace = a.copy()
    assert getattr(nnfast, name)(a_inplace, dy, out=a_inplace) is a_inplace
    assert_same_bits(a_inplace, expected, "out=a (in place)")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_empty_input(name, dtype):
    x = np.empty((0, 4), dtype)
    args = (x, x) if name in BACKWARD else (x,)
    got = getattr(nnfast, name)(*args)
    assert got.shape == (0, 4) and got.dtype == dtype
    out = np.empty((0, 4), dtype)
    assert getattr(nnfast, name)(*args, out=out) is out


def test_bits_helper_sees_signed_zero():
    """The bitwise comparisons above can tell -0 from +0 (else relu(-0) = +0 is untested)."""
    assert bits(np.array([0.0]))[0] != bits(np.array([-0.0]))[0]


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float64_accuracy_contract(name):
    """float64 sigmoid and tanh (exp_double, tanh_double in src/ops/common.h) within 4 ULP of
    the result computed in extended precision, over their whole range: the subnormal tail
    of sigmoid near -745, saturation, tiny arguments, and a dense sweep of the middle."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-750.0, 710.0, 1_000_000), rng.uniform(-40.0, 40.0, 1_000_000),
                        np.linspace(-1.0, 1.0, 200_001), 10.0 ** rng.uniform(-300, 1.5, 200_000),
                        np.array(SPECIAL, np.float64)])
    got = getattr(nnfast, name)(x)
    with quiet():
        xl = x.astype(np.longdouble)
        if name == "sigmoid":
            exact = np.where(xl >= 0, 1 / (1 + np.exp(-xl)), np.exp(xl) / (1 + np.exp(xl)))
        else:
            exact = np.tanh(xl)
    nan = np.isnan(exact)
    assert (np.isnan(got) == nan).all(), "NaN positions differ"
    rounded = exact[~nan].astype(np.float64)
    spacing = np.spacing(np.abs(rounded)).astype(np.longdouble)
    ulps = float(np.max(np.abs(got[~nan].astype(np.longdouble) - exact[~nan]) / spacing))
    assert ulps <= ULP_BUDGET[np.dtype(np.float64)], f"float64 {name}: {ulps:g} ULP"
