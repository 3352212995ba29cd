"""nnfast.schedules.ExponentialDecay and nnfast.complexity."""

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnfast
from nnfast.schedules import ExponentialDecay


def test_exponential_decay_is_the_lessons_formula():
    """LR_BASE * LR_DECAY ** (epoch / LR_STEP) with 0.2, 0.99, 1: the lesson's lr column."""
    schedule = ExponentialDecay(0.2, 1, 0.99)
    assert [f"{schedule(e):f}" for e in range(6)] == [
        "0.200000", "0.198000", "0.196020", "0.194060", "0.192119", "0.190198"]


@pytest.mark.parametrize("step", [0, 1, 2, 3, 4, 5, 9, 10, 11, 99, 1000])
def test_exponential_decay_continuous_and_staircase(step):
    smooth = ExponentialDecay(0.1, 10, 0.5)
    stairs = ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert smooth(step) == pytest.approx(0.1 * 0.5 ** (step / 10), rel=1e-15)
    assert stairs(step) == pytest.approx(0.1 * 0.5 ** (step // 10), rel=1e-15)
    assert isinstance(smooth(step), float) and isinstance(stairs(step), float)


def test_staircase_changes_only_every_decay_steps():
    stairs = ExponentialDecay(1.0, 4, 0.1, staircase=True)
    values = [stairs(t) for t in range(12)]
    assert values[:4] == [1.0] * 4
    assert values[4:8] == [pytest.approx(0.1)] * 4
    assert values[8:] == [pytest.approx(0.01)] * 4
    smooth = ExponentialDecay(1.0, 4, 0.1)
    assert smooth(2) == pytest.approx(math.sqrt(0.1), rel=1e-15)


def test_exponential_decay_is_torch_exponential_lr_for_one_decay_step():
    """torch.optim.lr_scheduler.ExponentialLR(gamma): lr0 * gamma**epoch."""
    schedule = ExponentialDecay(0.3, 1, 0.9)
    for epoch in range(20):
        assert schedule(epoch) == pytest.approx(0.3 * 0.9**epoch, rel=1e-14)


@settings(max_examples=50, deadline=None)
@given(lr0=st.floats(0, 10), steps=st.integers(1, 1000), rate=st.floats(0.01, 1.0),
       step=st.integers(0, 10_000), staircase=st.booleans())
def test_exponential_decay_property(lr0, steps, rate, step, staircase):
    exponent = step // steps if staircase else step / steps
    expected = lr0 * rate**exponent
    assert ExponentialDecay(lr0, steps, rate, staircase)(step) == pytest.approx(
        expected, rel=1e-12, abs=1e-300)


def test_exponential_decay_pickles_and_compares():
    s = ExponentialDecay(0.2, 3, 0.5, staircase=True)
    t = pickle.loads(pickle.dumps(s))
    assert t == s and hash(t) == hash(s) and t(7) == s(7)
    assert ExponentialDecay(0.2, 3, 0.5) != s


@pytest.mark.parametrize("args, error", [
    ((-0.1, 1, 0.9), ValueError),
    ((0.1, 0, 0.9), ValueError),
    ((0.1, -2, 0.9), ValueError),
    ((0.1, 1, 0.0), ValueError),
    ((0.1, 1, -0.5), ValueError),
    (("0.1", 1, 0.9), TypeError),
    ((0.1, None, 0.9), TypeError),
])
def test_exponential_decay_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        ExponentialDecay(*args)


# --------------------------------------------------------------------------- complexity


def test_complexity_of_the_lessons_network():
    c = nnfast.complexity([3, 4, 2])
    assert (c.layers, c.params, c.macs) == (2, 26, 20)


@pytest.mark.parametrize("sizes, expected", [
    ([1, 1], (1, 2, 1)),
    ([2, 11, 1], (2, 2 * 11 + 11 + 11 * 1 + 1, 2 * 11 + 11)),
    ([4, 3], (1, 15, 12)),
    ((784, 128, 64, 10), (3, 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
                          784 * 128 + 128 * 64 + 64 * 10)),
])
def test_complexity_counts(sizes, expected):
    c = nnfast.complexity(sizes)
    assert (c.layers, c.params, c.macs) == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=8))
def test_complexity_property(sizes):
    c = nnfast.complexity(sizes)
    pairs = list(zip(sizes, sizes[1:]))
    assert c.layers == len(sizes) - 1
    assert c.macs == sum(a * b for a, b in pairs)
    assert c.params == c.macs + sum(sizes[1:])
