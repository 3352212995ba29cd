"""Losses against nnfast.reference (float64) for every reduction, plus the lesson's numbers,
the special cases the issue pins, and thread-count independence of the reductions.

Tolerances: the ``expected_*`` functions of _helpers.py derive them from the kernels'
rounding (per-element terms in the dtype, float64 sums).
"""

import numpy as np
import pytest

import nnfast
from _helpers import (
    FLOATS,
    assert_close,
    LARGE,
    SHAPE_IDS,
    SHAPES,
    assert_same_bits,
    check_loss,
    expected_cross_entropy,
    expected_mse,
    expected_softmax_cross_entropy,
    num_threads,
    quiet,
    randn,
    sum_rtol,
    ulp_distance,
)
from nnfast import reference

DTYPE_IDS = ["f32", "f64"]
REDUCTIONS = ["mean", "sum", "none"]


# --------------------------------------------------------------------------- mse


@pytest.mark.parametrize("shape", SHAPES + [LARGE], ids=SHAPE_IDS + ["large"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_reference(rng, reduction, dtype, shape):
    pred, target = randn(rng, shape, dtype, 3.0), randn(rng, shape, dtype)
    p0, t0 = pred.copy(), target.copy()
    result = nnfast.mse_loss(pred, target, reduction)
    assert_same_bits(pred, p0)
    assert_same_bits(target, t0)
    check_loss(result, expected_mse(pred, target, reduction), dtype, reduction,
               f"mse {reduction} {dtype.__name__}{shape}")


def test_mse_default_reduction_is_the_lessons_mean(rng):
    pred, target = randn(rng, (10, 3), np.float64), randn(rng, (10, 3), np.float64)
    loss, grad = nnfast.mse_loss(pred, target)
    np.testing.assert_allclose(loss, np.mean((pred - target) ** 2), rtol=1e-14)
    np.testing.assert_allclose(grad, 2 * (pred - target) / 30, rtol=1e-14)


def test_mse_float32_overflow_is_inf():
    """(3e38 - -3e38)^2 overflows float32: per-element loss and grad are +-inf there."""
    pred = np.array([3e38, 1.0, -3e38], np.float32)
    target = np.array([-3e38, 2.0, 3e38], np.float32)
    check_loss(nnfast.mse_loss(pred, target, "none"), expected_mse(pred, target, "none"),
               np.float32, "none", "mse overflow")
    assert nnfast.mse_loss(pred, target, "sum")[0] == np.inf


def test_mse_nan_stays_in_its_element(rng):
    pred = randn(rng, (20,), np.float64)
    pred[3] = np.nan
    target = randn(rng, (20,), np.float64)
    loss, grad = nnfast.mse_loss(pred, target, "none")
    assert np.isnan(loss[3]) and np.isnan(grad[3])
    assert np.isfinite(np.delete(loss, 3)).all() and np.isfinite(np.delete(grad, 3)).all()


# --------------------------------------------------------------------------- cross_entropy


def _distribution(rng, shape, zeros=0.0):
    """Nonnegative rows summing to 1 over the last axis, a fraction of entries exactly 0."""
    a = rng.random(shape) + 0.05
    if zeros:
        a = np.where(rng.random(shape) < zeros, 0.0, a)
        if a.ndim and a.shape[-1]:
            first = (slice(None),) * (a.ndim - 1) + (0,)
            a[first] = np.where(a.sum(axis=-1) == 0, 1.0, a[first])
    with quiet():
        return a / np.sum(a, axis=-1, keepdims=True)


CE_SHAPES = [(1,), (7,), (3, 5), (1, 1), (6, 2), (0, 4), (2, 3, 5), (1023, 3), (40, 97)]


@pytest.mark.parametrize("shape", CE_SHAPES + [(30_000, 100)],
                         ids=[str(s) for s in CE_SHAPES] + ["large"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_reference(rng, reduction, dtype, shape):
    probs = _distribution(rng, shape).astype(dtype)
    target = _distribution(rng, shape, zeros=0.4).astype(dtype)
    check_loss(nnfast.cross_entropy(probs, target, reduction),
               expected_cross_entropy(probs, target, reduction), dtype, reduction,
               f"cross_entropy {reduction} {dtype.__name__}{shape}")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_cross_entropy_one_hot_targets(rng, dtype):
    probs = _distribution(rng, (50, 4)).astype(dtype)
    target = np.eye(4, dtype=dtype)[rng.integers(0, 4, 50)]
    for reduction in REDUCTIONS:
        check_loss(nnfast.cross_entropy(probs, target, reduction),
                   expected_cross_entropy(probs, target, reduction), dtype, reduction,
                   f"cross_entropy one-hot {reduction}")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_cross_entropy_lesson_numbers(dtype):
    """The lesson: y_ = (1, 0); y1 = (0.6, 0.4) gives H1 = 0.511, y2 = (0.8, 0.2) H2 = 0.223."""
    target = np.array([[1, 0]], dtype)
    h1, _ = nnfast.cross_entropy(np.array([[0.6, 0.4]], dtype), target)
    h2, _ = nnfast.cross_entropy(np.array([[0.8, 0.2]], dtype), target)
    assert (round(h1, 3), round(h2, 3)) == (0.511, 0.223)
    both, _ = nnfast.cross_entropy(np.array([[0.6, 0.4], [0.8, 0.2]], dtype),
                                   np.array([[1, 0], [1, 0]], dtype), "none")
    assert [round(float(h), 3) for h in both] == [0.511, 0.223]


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_cross_entropy_zero_target_on_zero_probability(dtype):
    """0 * ln 0 contributes 0 (never NaN); a positive target on p = 0 gives +inf."""
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]], dtype)
    target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype)
    losses, grad = nnfast.cross_entropy(probs, target, "none")
    assert losses[0] == 0.0 and not np.isnan(grad[0]).any()
    assert list(grad[0]) == [-1.0, 0.0, 0.0]
    assert losses[1] == np.inf
    assert grad[1, 1] == -np.inf and grad[1, 0] == 0.0 and grad[1, 2] == 0.0
    for reduction in REDUCTIONS:
        check_loss(nnfast.cross_entropy(probs, target, reduction),
                   expected_cross_entropy(probs, target, reduction), dtype, reduction,
                   f"cross_entropy zeros {reduction}")
    loss, _ = nnfast.cross_entropy(probs[:1], target[:1], "mean")
    assert loss == 0.0


# --------------------------------------------------------------------------- softmax CE

SCE_SHAPES = [(1, 1), (1, 7), (5, 3), (64, 10), (3, 1000), (0, 5), (4097, 3)]
INT_DTYPES = [np.int64, np.int32, np.uint8]


def _labels(rng, n, c, dtype=np.int64):
    return rng.integers(0, c, n).astype(dtype)


def check_sce(logits, target, reduction, what, **kwargs):
    expected = expected_softmax_cross_entropy(logits, target, reduction, **kwargs)
    result = nnfast.softmax_cross_entropy(logits, target, reduction, **kwargs)
    check_loss(result, expected, logits.dtype, reduction, what)
    return result


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("shape", SCE_SHAPES + [(30_000, 100)],
                         ids=[str(s) for s in SCE_SHAPES] + ["large"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_class_ids(rng, reduction, dtype, shape, smoothing):
    logits = randn(rng, shape, dtype, 4.0)
    x0 = logits.copy()
    check_sce(logits, _labels(rng, *shape), reduction,
              f"sce ids {reduction} {dtype.__name__}{shape} eps={smoothing}",
              label_smoothing=smoothing)
    assert_same_bits(logits, x0, "logits must not change")


@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("shape", SCE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_probability_targets(rng, reduction, dtype, shape, smoothing):
    logits = randn(rng, shape, dtype, 4.0)
    target = _distribution(rng, shape, zeros=0.3).astype(dtype)
    check_sce(logits, target, reduction,
              f"sce probs {reduction} {dtype.__name__}{shape} eps={smoothing}",
              label_smoothing=smoothing)


def test_softmax_cross_entropy_unnormalized_probability_targets(rng):
    """Probability targets are not renormalized (torch): grad = softmax*sum(t') - t'."""
    logits = randn(rng, (8, 5), np.float64)
    target = rng.random((8, 5)) * 3
    for reduction in REDUCTIONS:
        check_sce(logits, target, reduction, f"sce unnormalized {reduction}")


@pytest.mark.parametrize("int_dtype", INT_DTYPES + [np.int8, np.int16, np.uint16, np.uint32,
                                                    np.uint64])
def test_softmax_cross_entropy_label_dtypes_agree(rng, int_dtype):
    logits = randn(rng, (33, 6), np.float32)
    labels = _labels(rng, 33, 6)
    base = nnfast.softmax_cross_entropy(logits, labels, "none")
    got = nnfast.softmax_cross_entropy(logits, labels.astype(int_dtype), "none")
    assert_same_bits(got[0], base[0])
    assert_same_bits(got[1], base[1])
    check_sce(logits, labels.astype(int_dtype), "mean", f"labels {int_dtype.__name__}")


@pytest.mark.parametrize("classes", [3, 40, 1000])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_softmax_cross_entropy_nan_or_inf_logit_stays_in_its_row(rng, dtype, classes):
    # the row max passes NaN over (ops::max_); NaN must still reach its row through the exps
    logits = randn(rng, (33, classes), dtype)
    logits[3, classes // 2] = np.nan
    logits[7, 0] = np.nan
    logits[9, -1] = np.inf
    labels = _labels(rng, 33, classes)
    losses, grad = nnfast.softmax_cross_entropy(logits, labels, "none")
    bad = [3, 7, 9]
    good = [r for r in range(33) if r not in bad]
    assert np.isnan(losses[bad]).all() and np.isnan(grad[bad]).all()
    assert np.isfinite(losses[good]).all() and np.isfinite(grad[good]).all()
    with quiet():
        ref_losses, _ = reference.softmax_cross_entropy(logits[good].astype(np.float64),
                                                        labels[good], "none")
    assert_close(losses[good], ref_losses, 1e-5 * np.abs(ref_losses) + 1e-5, "finite rows")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_huge_logits_are_finite(dtype, reduction):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4],
                       [-1e4, -1e4, -1e4], [5e3, -1e4, 9.99e3]], dtype)
    labels = np.array([1, 0, 2, 1, 0])
    loss, grad = check_sce(logits, labels, reduction, f"sce +-1e4 {reduction}")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    for smoothing in (0.1, 1.0):
        loss, grad = check_sce(logits, labels, reduction, f"sce +-1e4 eps={smoothing}",
                               label_smoothing=smoothing)
        assert np.isfinite(loss).all() and np.isfinite(grad).all()
    probs = _distribution(np.random.default_rng(0), logits.shape).astype(dtype)
    loss, grad = check_sce(logits, probs, reduction, f"sce +-1e4 probs {reduction}")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


def test_softmax_cross_entropy_hand_values():
    """Uniform logits over C classes: loss ln C for any label; grad softmax - onehot."""
    logits = np.zeros((2, 4))
    loss, grad = nnfast.softmax_cross_entropy(logits, np.array([0, 3]), "none")
    np.testing.assert_allclose(loss, [np.log(4)] * 2, rtol=1e-15)
    np.testing.assert_allclose(grad, [[-0.75, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, -0.75]],
                               rtol=1e-15)
    # label smoothing eps on uniform logits: still ln C (sum t' = 1, every lse - x = ln C)
    loss, grad = nnfast.softmax_cross_entropy(logits, np.array([0, 3]), "mean",
                                              label_smoothing=0.2)
    np.testing.assert_allclose(loss, np.log(4), rtol=1e-15)
    np.testing.assert_allclose(grad[0], np.array([-0.6, 0.2, 0.2, 0.2]) / 2, atol=1e-16)


@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_ignore_index(rng, reduction, dtype, ignore_index):
    n, c = 40, 5
    logits = randn(rng, (n, c), dtype, 3.0)
    labels = _labels(rng, n, c)
    labels[::3] = ignore_index
    loss, grad = check_sce(logits, labels, reduction, f"sce ignore {reduction}",
                           ignore_index=ignore_index)
    ignored = labels == ignore_index
    assert (grad[ignored] == 0).all()
    if reduction == "none":
        assert (loss[ignored] == 0).all()
    # ignored rows leave the mean's count: equal to the mean over the kept rows alone
    kept_loss, kept_grad = nnfast.softmax_cross_entropy(logits[~ignored], labels[~ignored],
                                                        reduction)
    if reduction != "none":
        np.testing.assert_allclose(loss, kept_loss, rtol=sum_rtol(n) * 4)
    np.testing.assert_allclose(grad[~ignored], kept_grad, rtol=1e-6, atol=1e-9)
    # with label smoothing too
    check_sce(logits, labels, reduction, f"sce ignore+smoothing {reduction}",
              ignore_index=ignore_index, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_softmax_cross_entropy_all_ignored(rng, dtype):
    """torch: every row ignored gives a NaN mean (0/0), a 0 sum, and all-zero gradients."""
    logits = randn(rng, (4, 3), dtype)
    labels = np.full(4, -100)
    mean, grad = nnfast.softmax_cross_entropy(logits, labels, "mean", ignore_index=-100)
    assert np.isnan(mean) and isinstance(mean, float)
    assert (grad == 0).all() and not np.signbit(grad).any()
    total, grad = nnfast.softmax_cross_entropy(logits, labels, "sum", ignore_index=-100)
    assert total == 0.0 and (grad == 0).all()
    losses, grad = nnfast.softmax_cross_entropy(logits, labels, "none", ignore_index=-100)
    assert (losses == 0).all() and (grad == 0).all()


def test_softmax_cross_entropy_ignore_index_as_numpy_integer(rng):
    logits = randn(rng, (6, 3), np.float64)
    labels = np.array([0, 1, 2, 1, 0, 2])
    a = nnfast.softmax_cross_entropy(logits, labels, ignore_index=np.int64(1))
    b = nnfast.softmax_cross_entropy(logits, labels, ignore_index=1)
    assert a[0] == b[0]
    assert_same_bits(a[1], b[1])


# --------------------------------------------------------------------------- grad_out


def _poison(shape, dtype, value=np.nan):
    return np.full(shape, value, dtype)


@pytest.mark.parametrize("poison", [np.nan, 777.0])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_grad_out(rng, reduction, dtype, poison):
    shape = (37, 11)
    pred, target = randn(rng, shape, dtype), randn(rng, shape, dtype)
    probs = _distribution(rng, shape).astype(dtype)
    dist = _distribution(rng, shape, zeros=0.3).astype(dtype)
    labels = _labels(rng, *shape)
    cases = [
        ("mse_loss", (pred, target), {}),
        ("cross_entropy", (probs, dist), {}),
        ("softmax_cross_entropy", (pred, labels), {"label_smoothing": 0.1}),
        ("softmax_cross_entropy", (pred, dist), {}),
    ]
    for name, args, kwargs in cases:
        fn = getattr(nnfast, name)
        loss, grad = fn(*args, reduction, **kwargs)
        out = _poison(shape, dtype, poison)
        loss2, grad2 = fn(*args, reduction, **kwargs, grad_out=out)
        assert grad2 is out, f"{name}: grad_out must be returned"
        assert_same_bits(out, grad, f"{name} grad_out")
        assert_same_bits(np.asarray(loss2), np.asarray(loss), f"{name} loss with grad_out")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_grad_out_is_the_input_itself(rng, reduction, dtype):
    """The gradient may overwrite the input (logits, pred, probs): same results."""
    shape = (129, 7)
    logits = randn(rng, shape, dtype, 3.0)
    labels = _labels(rng, *shape)
    dist = _distribution(rng, shape, zeros=0.2).astype(dtype)
    probs = _distribution(rng, shape).astype(dtype)
    target = randn(rng, shape, dtype)
    cases = [
        ("softmax_cross_entropy", logits, (labels,), {}),
        ("softmax_cross_entropy", logits, (labels,), {"label_smoothing": 0.3}),
        ("softmax_cross_entropy", logits, (dist,), {}),
        ("mse_loss", target[::-1].copy(), (target,), {}),
        ("cross_entropy", probs, (dist,), {}),
    ]
    for name, first, rest, kwargs in cases:
        fn = getattr(nnfast, name)
        loss, grad = fn(first, *rest, reduction, **kwargs)
        inplace = first.copy()
        loss2, grad2 = fn(inplace, *rest, reduction, **kwargs, grad_out=inplace)
        assert grad2 is inplace
        assert_same_bits(inplace, grad, f"{name}{kwargs} in place")
        assert_same_bits(np.asarray(loss2), np.asarray(loss), f"{name}{kwargs} in-place loss")


# --------------------------------------------------------------------------- l1 / l2


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ["l1_loss", "l2_loss"])
def test_regularization_losses(rng, name, dtype):
    shapes = [(int(n),) for n in rng.integers(0, 2001, 300)] + [(), (0,), (3, 4, 5)]
    arrays = [randn(rng, s, dtype, 2.0) for s in shapes]
    arrays64 = [a.astype(np.float64) for a in arrays]
    fn, ref = getattr(nnfast, name), getattr(reference, name)
    total = fn(arrays)
    assert isinstance(total, float)
    n = sum(a.size for a in arrays)
    # terms formed in float64 from the stored values: only the float64 sum's error remains
    np.testing.assert_allclose(total, ref(arrays64), rtol=sum_rtol(n))
    assert fn(tuple(arrays)) == total
    for a, a64 in zip(arrays[-3:], arrays64[-3:]):
        single = fn(a)
        assert isinstance(single, float)
        np.testing.assert_allclose(single, ref(a64), rtol=sum_rtol(a.size), atol=0)
    assert fn([]) == 0.0


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_regularization_losses_large_and_special(rng, dtype):
    a = randn(rng, LARGE, dtype)
    np.testing.assert_allclose(nnfast.l1_loss(a), np.sum(np.abs(a.astype(np.float64))),
                               rtol=sum_rtol(a.size))
    np.testing.assert_allclose(nnfast.l2_loss(a), np.sum(a.astype(np.float64) ** 2) / 2,
                               rtol=sum_rtol(a.size))
    assert nnfast.l2_loss(np.array([3.0, -4.0], dtype)) == 12.5
    assert nnfast.l1_loss(np.array([3.0, -4.0, -0.0], dtype)) == 7.0
    big = np.array([1e30, -1e30], dtype)  # squares stay finite: terms are formed in float64
    np.testing.assert_allclose(nnfast.l2_loss(big), 1e60, rtol=1e-6)
    assert np.isnan(nnfast.l1_loss(np.array([1.0, np.nan], dtype)))
    assert nnfast.l2_loss(np.array([1.0, -np.inf], dtype)) == np.inf


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_reductions_same_bits_for_1_and_2_threads(rng, dtype):
    """Large inputs (many chunks, above the threading threshold): the reduced losses and the
    gradients are bit for bit the same with 1 and 2 threads."""
    pred, target = randn(rng, (1_000_003,), dtype), randn(rng, (1_000_003,), dtype)
    logits = randn(rng, (100_003, 10), dtype, 3.0)
    labels = _labels(rng, 100_003, 10)
    probs = _distribution(rng, (100_003, 10)).astype(dtype)
    dist = _distribution(rng, (100_003, 10), zeros=0.3).astype(dtype)
    calls = [
        lambda r: nnfast.mse_loss(pred, target, r),
        lambda r: nnfast.cross_entropy(probs, dist, r),
        lambda r: nnfast.softmax_cross_entropy(logits, labels, r, label_smoothing=0.1),
        lambda r: nnfast.softmax_cross_entropy(logits, dist, r),
        lambda r: (nnfast.l1_loss([pred, target]), pred),
        lambda r: (nnfast.l2_loss([pred, target]), pred),
    ]
    for k, call in enumerate(calls):
        for reduction in REDUCTIONS:
            results = []
            for threads in (1, 2):
                with num_threads(threads):
                    results.append(call(reduction))
            (l1, g1), (l2, g2) = results
            assert_same_bits(np.asarray(l1), np.asarray(l2), f"call {k} {reduction} loss")
            assert_same_bits(g1, g2, f"call {k} {reduction} grad")


# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_checker_detects_slightly_wrong_inputs(rng, dtype, reduction):
    """The loss tolerances are tight: a kernel fed inputs off by 1e-5 (float32) or 1e-11
    (float64), relative, must fail every comparison above."""
    off = 1e-5 if dtype == np.float32 else 1e-11
    shape = (200, 10)
    logits = randn(rng, shape, dtype, 3.0)
    labels = _labels(rng, *shape)
    probs = _distribution(rng, shape).astype(dtype)
    dist = _distribution(rng, shape, zeros=0.3).astype(dtype)
    target = randn(rng, shape, dtype)
    nudge = lambda a: (a * (1 + off)).astype(dtype)  # noqa: E731
    cases = [
        (nnfast.mse_loss, (logits, target), expected_mse),
        (nnfast.cross_entropy, (probs, dist), expected_cross_entropy),
        (nnfast.softmax_cross_entropy, (logits, labels), expected_softmax_cross_entropy),
        (nnfast.softmax_cross_entropy, (logits, dist), expected_softmax_cross_entropy),
    ]
    for fn, (first, second), expected in cases:
        exact = expected(first, second, reduction)
        check_loss(fn(first, second, reduction), exact, dtype, reduction, "exact inputs")
        with pytest.raises(AssertionError, match="out of tolerance"):
            check_loss(fn(nudge(first), second, reduction), exact, dtype, reduction, "nudged")


def test_cross_entropy_float32_log_accuracy_contract():
    """The float32 cross-entropy term is -t ln p with ln within 2 ULP (src/ops/common.h,
    log_float): with t = 1 on one class, each row's loss is -ln p. A coarse sweep of every
    positive finite float32 (subnormals included), a dense one of [0.5, 2], and the limits."""
    positive = np.arange(1, 0x7F800000, 4099, dtype=np.uint32).view(np.float32)
    p = np.concatenate([positive, np.linspace(0.5, 2, 200_001, dtype=np.float32)])
    losses, _ = nnfast.cross_entropy(p[:, None], np.ones((p.size, 1), np.float32),
                                     reduction="none")
    with quiet():
        ref = np.log(p.astype(np.float64))
    ulps = ulp_distance(-losses, ref)
    assert ulps <= 2, f"ln: {ulps:g} ULP from the float64 result, budget 2"
    with quiet():
        limits, _ = nnfast.cross_entropy(np.array([[0.0], [np.inf], [-1.0], [np.nan]], np.float32),
                                         np.ones((4, 1), np.float32), reduction="none")
    assert limits[0] == np.inf and limits[1] == -np.inf and np.isnan(limits[2:]).all()


def test_torch_cpu_class_ids_are_read_as_numpy_ones():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    ids = np.array([0, 4, 2, 2, 1, 3])
    for reduction in ("mean", "none"):
        want = nnfast.softmax_cross_entropy(logits, ids, reduction=reduction)
        for labels in (torch.from_numpy(ids), torch.from_numpy(ids.astype(np.int32))):
            got = nnfast.softmax_cross_entropy(torch.from_numpy(logits), labels, reduction=reduction)
            np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
            np.testing.assert_array_equal(np.asarray(got[1]), want[1])
    with pytest.raises(ValueError, match=r"target\[1\] = 7 is outside \[0, 5\)"):
        nnfast.softmax_cross_entropy(logits, torch.tensor([0, 7, 1, 1, 1, 1]))
