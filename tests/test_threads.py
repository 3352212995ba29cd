"""Thread-count independence: every kernel gives the same bits with 1 and 2 threads on
inputs large enough to be threaded (> 131072 elements); thread control and info()."""

import numpy as np
import pytest

import nnfast
from _helpers import (
    OPTIMIZER_CASES,
    CASE_IDS,
    assert_same_bits,
    call_step,
    num_threads,
    random_problem,
    randn,
)

N = 300_007  # above the threading threshold (131072), not a multiple of the chunk size


def _both(fn):
    """fn() run with 1 thread and with 2 threads."""
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            assert nnfast.get_num_threads() == threads
            results.append(fn())
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_optimizer_steps(rng, case, dtype):
    kind, hp = case
    p, g, st = random_problem(rng, kind, hp, (N,), dtype)
    # plus a list of many small tensors whose total is threaded too
    sizes = rng.integers(0, 5000, 60)
    small = [random_problem(rng, kind, hp, (int(n),), dtype) for n in sizes]

    def run():
        params = [p.copy()] + [q.copy() for q, _, _ in small]
        grads = [g] + [h for _, h, _ in small]
        states = {n: [st[n].copy()] + [s[n].copy() for _, _, s in small] for n in st}
        call_step(nnfast, kind, params, grads, states, hp)
        return params, states

    (p1, s1), (p2, s2) = _both(run)
    for a, b in zip(p1, p2):
        assert_same_bits(a, b, f"{kind} params")
    for n in s1:
        for a, b in zip(s1[n], s2[n]):
            assert_same_bits(a, b, f"{kind} {n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_activations_forward(rng, name, dtype):
    x = randn(rng, (N,), dtype, 5.0)
    a, b = _both(lambda: getattr(nnfast, name)(x))
    assert_same_bits(a, b, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["sigmoid_backward", "tanh_backward", "relu_backward",
                                  "leaky_relu_backward"])
def test_activations_backward(rng, name, dtype):
    a, dy = randn(rng, (N,), dtype), randn(rng, (N,), dtype)
    r1, r2 = _both(lambda: getattr(nnfast, name)(a, dy))
    assert_same_bits(r1, r2, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_losses(rng, dtype):
    pred, target = randn(rng, (N,), dtype), randn(rng, (N,), dtype)
    logits = randn(rng, (N // 10, 10), dtype, 3.0)
    labels = rng.integers(0, 10, N // 10)
    probs = np.abs(logits) / np.sum(np.abs(logits), axis=1, keepdims=True)
    calls = {
        "mse": lambda r: nnfast.mse_loss(pred, target, r),
        "cross_entropy": lambda r: nnfast.cross_entropy(probs, probs, r),
        "softmax_ce": lambda r: nnfast.softmax_cross_entropy(logits, labels, r,
                                                             ignore_index=3),
        "softmax_ce_probs": lambda r: nnfast.softmax_cross_entropy(logits, probs, r,
                                                                   label_smoothing=0.2),
    }
    for name, call in calls.items():
        for reduction in ("mean", "sum", "none"):
            (l1, g1), (l2, g2) = _both(lambda: call(reduction))
            assert_same_bits(np.asarray(l1), np.asarray(l2), f"{name} {reduction} loss")
            assert_same_bits(g1, g2, f"{name} {reduction} grad")
    for name in ("l1_loss", "l2_loss"):
        arrays = [pred, target[:1000], logits]
        r1, r2 = _both(lambda: getattr(nnfast, name)(arrays))
        assert r1 == r2 or (np.isnan(r1) and np.isnan(r2)), name


def test_info_keys():
    info = nnfast.info()
    for key in ("version", "simd", "threads"):
        assert key in info, key
    assert info["version"] == nnfast.__version__
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    with num_threads(1):
        assert nnfast.info()["threads"] == 1


def test_set_num_threads_validates():
    before = nnfast.get_num_threads()
    for bad, error in [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                       (True, TypeError), (None, TypeError)]:
        with pytest.raises(error, match="^n"):
            nnfast.set_num_threads(bad)
        assert nnfast.get_num_threads() == before
    with num_threads(3):
        assert nnfast.get_num_threads() == 3
    assert nnfast.get_num_threads() == before
