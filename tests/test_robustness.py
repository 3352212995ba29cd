"""Defects found by trying nnfast as a user, under a fuzzer and under sanitizers; each
test here failed (hung, crashed or raised the wrong thing) before its fix.

Threads (nnfast's own pool): fork safety, concurrent callers, thread counts and their
defaults. Input: lists changed while they are validated, protocol values of the wrong
type, numbers beyond a dtype's range, empty losses.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nnfast
from nnfast import _threads
from _helpers import FakeDLPack, assert_same_bits, num_threads


def run_python(code, timeout=120, env=None):
    """Runs code in a fresh interpreter; a hang fails the test instead of stalling it."""
    full_env = dict(os.environ, **(env or {}))
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the child did not finish in {timeout} s (hung): {e.stdout!r} {e.stderr!r}")


# --------------------------------------------------------------------------- threads


def test_forked_children_run_threaded_calls():
    """A child forked after a threaded call in the parent used to hang forever on its
    first threaded call (GNU OpenMP does not survive fork). The parent keeps its pool."""
    result = run_python("""
        import multiprocessing as mp, warnings
        import numpy as np, nnfast
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        nnfast.set_num_threads(2)
        def work(i):
            return nnfast.l2_loss(nnfast.relu(np.ones(10**6, np.float32)))
        assert work(0) == 500000.0
        with mp.get_context("fork").Pool(2) as pool:
            print(pool.map_async(work, range(4)).get(timeout=30))
        print(work(1))
    """, timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[500000.0, 500000.0, 500000.0, 500000.0]", "500000.0"]


def test_concurrent_callers_get_exact_results(rng):
    """Calls from several Python threads at once (the GIL released): one holds the pool,
    the others run on their own thread; every result is that of a lone call."""
    x = rng.standard_normal(300_001).astype(np.float32)
    expected = nnfast.tanh(x)
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(nnfast.tanh(x))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    with num_threads(2):
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert len(results) == 80
    for r in results:
        assert_same_bits(r, expected, "tanh from concurrent threads")


@pytest.mark.parametrize("threads", [3, 7, 64])
def test_any_thread_count_gives_the_same_bits(rng, threads):
    """More threads than cores, and counts that do not divide the chunk count."""
    p = rng.standard_normal(400_003).astype(np.float32)
    g = rng.standard_normal(400_003).astype(np.float32)
    logits = rng.standard_normal((5001, 77)).astype(np.float32)
    labels = rng.integers(0, 77, 5001)

    def run():
        q, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
        nnfast.adam_step(q, g, m, v, step=3, lr=1e-2)
        loss, grad = nnfast.softmax_cross_entropy(logits, labels)
        return q, m, v, np.float64(loss), grad, np.float64(nnfast.l2_loss([p, g]))

    with num_threads(1):
        one = run()
    with num_threads(threads):
        many = run()
    for a, b in zip(one, many):
        assert_same_bits(np.asarray(a), np.asarray(b), f"{threads} threads")


def test_every_chunk_runs_exactly_once(rng):
    """p - 1 * 1 from p = 0 is -1 where an element was updated once: 0 where a chunk was
    skipped, -2 where one ran twice. Sizes from one chunk to a few hundred, split into
    lists, over thread counts that do and do not divide them, call after call."""
    for _ in range(60):
        threads = int(rng.integers(2, 10))
        sizes = [int(n) for n in rng.integers(0, 200_000, int(rng.integers(1, 6)))]
        params = [np.zeros(n, np.float32) for n in sizes]
        grads = [np.ones(n, np.float32) for n in sizes]
        with num_threads(threads):
            nnfast.sgd_step(params, grads, lr=1.0)
        for p in params:
            assert np.all(p == -1), (threads, sizes)


@pytest.mark.parametrize("n", [0, -1, 1025, 100_000, 2**31 - 1, 2**31, 2**64])
def test_set_num_threads_refuses_counts_out_of_range(n):
    """100000 used to crash libgomp, 2**31 - 1 to end the process, 2**31 to raise a
    TypeError naming nothing."""
    before = nnfast.get_num_threads()
    with pytest.raises(ValueError, match=r"^n: must be"):
        nnfast.set_num_threads(n)
    assert nnfast.get_num_threads() == before


def test_set_num_threads_limits_and_types():
    with num_threads(1024):
        assert nnfast.get_num_threads() == 1024
        assert nnfast.l2_loss(np.ones(200_000, np.float32)) == 100_000.0
    with num_threads(np.int64(3)):
        assert nnfast.get_num_threads() == 3
    for bad in (1.5, "2", True, None, np.float64(2.0)):
        with pytest.raises(TypeError, match=r"^n: expected an integer"):
            nnfast.set_num_threads(bad)


@pytest.mark.parametrize("env, expected", [
    ({"NNFAST_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "5"}, 5),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # OpenMP's nested list: its first level
    ({"NNFAST_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, 2),
])
def test_thread_count_at_import_from_environment(env, expected):
    clean = {"NNFAST_NUM_THREADS": "", "OMP_NUM_THREADS": ""}
    result = run_python("import nnfast; print(nnfast.get_num_threads())", env={**clean, **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "2000"])
def test_thread_count_variable_out_of_range_is_ignored_with_a_warning(value):
    result = run_python("import nnfast; print(nnfast.get_num_threads(), "
                        "nnfast._threads.available_cores())",
                        env={"NNFAST_NUM_THREADS": value, "OMP_NUM_THREADS": ""})
    assert result.returncode == 0, result.stderr
    threads, cores = result.stdout.split()
    assert "RuntimeWarning" in result.stderr and "NNFAST_NUM_THREADS" in result.stderr
    assert threads == cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an affinity API and at least two usable cores")
def test_thread_count_at_import_follows_the_affinity_mask():
    """The cores the process may use, not the machine's core count."""
    result = run_python("""
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import nnfast
        print(nnfast.get_num_threads())
    """, env={"NNFAST_NUM_THREADS": "", "OMP_NUM_THREADS": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
    ({"cpu.max": "garbage\n"}, None),
])
def test_cgroup_cpu_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _threads.cgroup_cpu_limit(str(tmp_path)) == expected


# --------------------------------------------------------------------------- lists


def test_list_changed_during_validation_by_an_item():
    """An item whose __class__ (read by isinstance) empties the list being validated: the
    length was read once and the items from the live list, past its end (a crash)."""
    result = run_python("""
        import numpy as np, nnfast
        params = [np.ones(8, np.float32) for _ in range(2000)]
        class Clears:
            @property
            def __class__(self):
                params.clear()
                return object
        grads = [np.ones(8, np.float32) for _ in range(2000)]
        params[1] = Clears()
        try:
            nnfast.sgd_step(params, grads, lr=0.1)
        except TypeError as e:
            print("TypeError", e)
    """)
    assert result.returncode == 0, f"crashed: {result.returncode} {result.stderr}"
    assert result.stdout.startswith("TypeError params[1]"), result.stdout


def test_list_changed_by_another_thread():
    """Another thread empties and refills the list while NumPy copies a strided grad with
    the GIL released (a crash within seconds before)."""
    result = run_python("""
        import threading, time
        import numpy as np, nnfast
        saved = [np.ones(50_000, np.float32) for _ in range(16)]
        params = list(saved)
        grads = [np.ones(100_000, np.float32)[::2] for _ in range(16)]
        def churn():
            while True:
                params.clear()
                params.extend(saved)
        threading.Thread(target=churn, daemon=True).start()
        end = time.monotonic() + 3
        calls = 0
        while time.monotonic() < end:
            try:
                nnfast.sgd_step(params, grads, lr=0.0)
            except ValueError:
                pass
            calls += 1
        print(calls)
    """)
    assert result.returncode == 0, f"crashed: {result.returncode} {result.stderr}"
    assert int(result.stdout) > 0


# --------------------------------------------------------------------------- protocols


@pytest.mark.parametrize("answer", [1.5, (1.5, 0), ("cuda", 0), (2,), None])
def test_malformed_dlpack_device_is_a_type_error_naming_the_argument(answer):
    """A float used to surface as RuntimeError("Unable to cast Python instance...")."""
    x = np.ones(4, np.float32)
    with pytest.raises(TypeError, match=r"^x: its __dlpack_device__\(\) returned"):
        nnfast.relu(FakeDLPack(answer))
    p = np.ones(4, np.float32)
    with pytest.raises(TypeError, match=r"^grads\[1\]: its __dlpack_device__\(\) returned"):
        nnfast.sgd_step([p, p.copy()], [x, FakeDLPack(answer)], lr=1.0)
    assert np.all(p == 1)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_integers_beyond_float64_are_value_errors(value):
    """lr=10**400 used to raise OverflowError."""
    p = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"^lr: an integer beyond the float64 range"):
        nnfast.sgd_step(p, np.ones(3, np.float32), lr=value)
    assert np.all(p == 1)


F32 = np.float32
STATE = {"sgdm": 1, "adagrad": 1, "rmsprop": 1, "adam": 2, "nadam": 2, "radam": 2, "lion": 1,
         "adamax": 2, "adadelta": 2}


def _optimizer_call(kind, dtype, **hp):
    p = np.ones(3, dtype)
    g = np.ones(3, dtype)
    states = [np.zeros(3, dtype) for _ in range(STATE.get(kind, 0))]
    fn = getattr(nnfast, f"{kind}_step")
    extra = {"adam": {"step": 1}, "adamax": {"step": 1}, "nadam": {"step": 1, "mu_product": 0.45},
             "radam": {"step": 9}}.get(kind, {})
    return p, states, lambda: fn(p, g, *states, **extra, **hp)


@pytest.mark.parametrize("kind, name, value", [
    ("sgd", "lr", 1e300), ("sgd", "lr", 3.5e38), ("sgd", "weight_decay", 1e39), ("sgd", "l1", 1e39),
    ("sgdm", "momentum", 1e39), ("sgdm", "dampening", -1e39), ("adagrad", "eps", 1e39),
    ("rmsprop", "eps", 1e39), ("adam", "lr", 1e39), ("adam", "eps", 1e39),
    ("nadam", "lr", 1e39), ("nadam", "eps", 1e39), ("radam", "lr", 1e39), ("radam", "eps", 1e39),
    ("lion", "lr", 1e39), ("lion", "weight_decay", 1e39), ("adamax", "lr", 1e39),
    ("adamax", "eps", 1e39), ("adadelta", "lr", 1e39), ("adadelta", "eps", 1e39),
])
def test_hyperparameters_beyond_float32_refused_for_float32(kind, name, value):
    """sgd_step(lr=1e300) on float32 used to turn [1, 1, 1] into [-inf, nan, inf]."""
    hp = {"lr": 0.1, name: value}
    p, states, call = _optimizer_call(kind, F32, **hp)
    with pytest.raises(ValueError, match=rf"^{name}: .*rounds to infinity in float32.*3.4028235e\+38"):
        call()
    assert np.all(p == 1) and all(np.all(s == 0) for s in states)
    p64, _, call64 = _optimizer_call(kind, np.float64, **hp)  # float64 holds them
    call64()


@pytest.mark.parametrize("name, value", [("lr", np.inf), ("lr", -np.inf), ("eps", np.inf),
                                         ("momentum", np.inf), ("weight_decay", np.inf),
                                         ("dampening", -np.inf), ("l1", np.inf)])
def test_infinite_hyperparameters_are_refused(name, value):
    kind = "adagrad" if name == "eps" else "sgdm"
    p, states, call = _optimizer_call(kind, np.float64, **{"lr": 0.1, name: value})
    with pytest.raises(ValueError, match=rf"^{name}: must be finite"):
        call()
    assert np.all(p == 1) and all(np.all(s == 0) for s in states)


def test_derived_scalars_beyond_float32_name_their_argument():
    """lr / (1 - beta1**step) and 1 - lr * weight_decay are float32 scalars too."""
    p, states, call = _optimizer_call("adam", F32, lr=1e36, beta1=0.99999)
    with pytest.raises(ValueError, match=r"^lr: lr / \(1 - beta1\*\*step\) = 1e\+41 rounds to infinity"):
        call()
    p2, states2, call2 = _optimizer_call("adam", F32, lr=1e20, weight_decay=1e20,
                                         decoupled_weight_decay=True)
    with pytest.raises(ValueError, match=r"^weight_decay: 1 - lr \* weight_decay = "):
        call2()
    assert np.all(p == 1) and np.all(p2 == 1)
    assert all(np.all(s == 0) for s in states + states2)


@pytest.mark.parametrize("fn", [nnfast.leaky_relu, nnfast.leaky_relu_backward])
def test_activation_alpha_beyond_float32(fn):
    """leaky_relu(alpha=1e300) used to give NaN."""
    x = -np.ones(4, np.float32)
    args = (x, x) if fn is nnfast.leaky_relu_backward else (x,)
    out = np.full(4, 7.0, np.float32)
    with pytest.raises(ValueError, match=r"^alpha: 1e\+300 rounds to infinity in float32"):
        fn(*args, alpha=1e300, out=out)
    assert np.all(out == 7)
    assert np.all(fn(*(a.astype(np.float64) for a in args), alpha=1e300) == -1e300)


# --------------------------------------------------------------------------- empty losses


@pytest.mark.parametrize("reduction, expected", [("sum", 0.0), ("mean", 0.0)])
def test_cross_entropy_without_classes_is_o1(reduction, expected):
    """Shape (R, 0) used to cost time proportional to R with the GIL held (17 s at
    R = 2**30). Zero-stride views make R = 2**40 rows of nothing cost no memory."""
    rows = 2**40
    probs = np.lib.stride_tricks.as_strided(np.empty(0, np.float32), (rows, 0), (0, 4))
    grad = np.lib.stride_tricks.as_strided(np.empty(0, np.float32), (rows, 0), (0, 4))
    start = time.perf_counter()
    loss, g = nnfast.cross_entropy(probs, probs, reduction, grad_out=grad)
    assert time.perf_counter() - start < 5, "not O(1)"
    assert loss == expected and g is grad


def test_cross_entropy_without_classes_per_row_losses_are_zeros():
    probs = np.empty((100_000, 0), np.float64)
    losses, grad = nnfast.cross_entropy(probs, probs, "none")
    assert losses.shape == (100_000,) and losses.dtype == np.float64 and not losses.any()
    assert grad.shape == (100_000, 0)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0, 4), (0, 0)])
@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_empty_losses(shape, reduction):
    x = np.empty(shape, np.float32)
    loss, grad = nnfast.mse_loss(x, x, reduction)
    assert grad.shape == shape
    if reduction == "none":
        assert loss.shape == shape
    else:
        assert loss == 0.0 if reduction == "sum" else np.isnan(loss)
    if len(shape) == 2 and shape[1] > 0:
        loss, grad = nnfast.softmax_cross_entropy(x, np.empty(0, np.int64), reduction)
        assert grad.shape == shape
        assert loss.shape == (0,) if reduction == "none" else (loss == 0.0 or np.isnan(loss))


def test_float_class_ids_say_class_ids_must_be_integers():
    """Used to say the target's shape differs from the logits'."""
    with pytest.raises(TypeError, match=r"^target: class ids must be integers, got float64"):
        nnfast.softmax_cross_entropy(np.zeros((4, 10)), np.array([1.0, 2.0, 3.0, 4.0]))
