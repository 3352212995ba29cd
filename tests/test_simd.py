"""Every kernel set (ISA) this CPU supports, not only the one picked at import: each is held
to the reference, and the elementwise kernels give the same bits on every set and wherever
an element sits (SIMD body or scalar tail), since the per-element math is written once and
compiled without FMA contraction (CMakeLists.txt: -ffp-contract=off).

``nnfast._core.supported_simd()`` lists the sets; ``nnfast._core.use_simd(name)`` switches.
"""

import os

import numpy as np
import pytest

import nnfast
from _helpers import (
    BACKWARD,
    CASE_IDS,
    FLOATS,
    FORWARD,
    OPTIMIZER_CASES,
    SPECIAL,
    assert_backward,
    assert_forward,
    assert_same_bits,
    assert_ulp,
    backward_inputs,
    call_reference,
    call_step,
    check_loss,
    check_step,
    expected_cross_entropy,
    expected_mse,
    expected_softmax_cross_entropy,
    quiet,
    random_problem,
    randn,
    special_problem,
)

ISAS = list(nnfast._core.supported_simd())  # widest first
DEFAULT = nnfast.info()["simd"]              # the set chosen at import
DTYPE_IDS = ["f32", "f64"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with one kernel set, then restore the one chosen at import."""
    before = nnfast.info()["simd"]
    assert nnfast._core.use_simd(request.param)
    assert nnfast.info()["simd"] == request.param
    yield request.param
    assert nnfast._core.use_simd(before)


def test_default_is_the_widest_supported_unless_lowered_by_nnfast_simd():
    requested = os.environ.get("NNFAST_SIMD")
    assert DEFAULT == (requested if requested in ISAS else ISAS[0])
    assert not nnfast._core.use_simd("no-such-isa")
    assert nnfast.info()["simd"] == DEFAULT


#: The optimizers whose elements are independent: LAMB's trust ratio is a norm over the
#: whole tensor, summed in fixed lanes (the same bits on every ISA) that an element's
#: position decides.
ELEMENTWISE_CASES = [c for c in OPTIMIZER_CASES if c[0] != "lamb"]

# --------------------------------------------------------------------------- vs reference


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_optimizers_per_isa(isa, rng, case, dtype):
    kind, hp = case
    for shape in [(7,), (4097,), (2, 3, 5)]:
        p, g, states = random_problem(rng, kind, hp, shape, dtype)
        check_step(kind, p, g, states, hp, f"[{isa}] {shape}")
    p, g, states, _ = special_problem(rng, kind, hp, dtype)
    check_step(kind, p, g, states, hp, f"[{isa}] special values")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_activations_per_isa(isa, rng, dtype):
    with quiet():
        special = np.array(SPECIAL, dtype)
    for name in FORWARD:
        for x in (randn(rng, (4097,), dtype, 5.0), special):
            assert_forward(name, x, getattr(nnfast, name)(x))
    for name in BACKWARD:
        a, dy = backward_inputs(rng, name, (4097,), dtype)
        assert_backward(name, a, dy, getattr(nnfast, name)(a, dy))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float32_accuracy_contract_per_isa(isa, name):
    """The <= 4 ULP contract for each kernel set (every 997th float32 bit pattern in
    [-100, 100] and a linspace)."""
    top = int(np.array(100.0, np.float32).view(np.uint32))
    positive = np.arange(0, top + 1, 997, dtype=np.uint32).view(np.float32)
    x = np.concatenate([positive, -positive, np.linspace(-100, 100, 200_001, dtype=np.float32)])
    got = getattr(nnfast, name)(x)
    ulps = assert_ulp(got, call_reference(name, x.astype(np.float64)), f"[{isa}] {name}")
    print(f"[{isa}] float32 {name}: max {ulps:g} ULP")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_losses_per_isa(isa, rng, dtype):
    shape = (257, 13)
    pred, target = randn(rng, shape, dtype, 3.0), randn(rng, shape, dtype)
    probs = np.abs(randn(rng, shape, np.float64)) + 0.01
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0])
    for reduction in ("mean", "sum", "none"):
        check_loss(nnfast.mse_loss(pred, target, reduction),
                   expected_mse(pred, target, reduction), dtype, reduction, f"[{isa}] mse")
        check_loss(nnfast.cross_entropy(probs, probs, reduction),
                   expected_cross_entropy(probs, probs, reduction), dtype, reduction,
                   f"[{isa}] cross_entropy")
        for kwargs in ({}, {"label_smoothing": 0.1, "ignore_index": 3}):
            check_loss(nnfast.softmax_cross_entropy(pred, labels, reduction, **kwargs),
                       expected_softmax_cross_entropy(pred, labels, reduction, **kwargs),
                       dtype, reduction, f"[{isa}] softmax_cross_entropy {kwargs}")
        check_loss(nnfast.softmax_cross_entropy(pred, probs, reduction),
                   expected_softmax_cross_entropy(pred, probs, reduction), dtype, reduction,
                   f"[{isa}] softmax_cross_entropy probabilities")


# --------------------------------------------------------------------------- same bits


def _every_elementwise_kernel(rng, dtype, n):
    """Runs every elementwise kernel (activations, optimizer steps, MSE's per-element terms
    and gradient) on inputs drawn from rng; returns {name: result arrays}.

    Row and total sums are left out: they accumulate one float64 partial per vector lane,
    so their rounding legitimately depends on the lane count (and is checked against the
    reference per kernel set above)."""
    x = randn(rng, (n,), dtype, 5.0)
    with quiet():
        x[: len(SPECIAL)] = SPECIAL
    y = randn(rng, (n,), dtype)
    out = {}
    for name in FORWARD:
        out[name] = [getattr(nnfast, name)(x)]
    for name in BACKWARD:
        out[name] = [getattr(nnfast, name)(x, y)]
    for kind, hp in OPTIMIZER_CASES:
        p, g, states = random_problem(rng, kind, hp, (n,), dtype)
        call_step(nnfast, kind, p, g, states, hp)
        out[f"{kind}{hp}"] = [p, *states.values()]
    out["mse"] = list(nnfast.mse_loss(x, y, "none"))
    return out


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_every_isa_gives_the_same_elementwise_bits(dtype):
    results = {}
    for name in ISAS:
        assert nnfast._core.use_simd(name)
        try:
            results[name] = _every_elementwise_kernel(np.random.default_rng(7), dtype, 20_011)
        finally:
            nnfast._core.use_simd(DEFAULT)
    base = results[ISAS[0]]
    for name in ISAS[1:]:
        for kernel, arrays in base.items():
            if _uses_fused_polynomials(kernel, dtype) and "sse2" in (name, ISAS[0]):
                continue
            for k, (a, b) in enumerate(zip(arrays, results[name][kernel])):
                assert_same_bits(np.asarray(b), np.asarray(a),
                                 f"{kernel} output {k}: {name} vs {ISAS[0]}")


def _uses_fused_polynomials(kernel, dtype):
    """sigmoid and tanh (float32 and float64) evaluate their polynomials with fused
    multiply-add where the ISA has it (AVX2, AVX-512) and with two roundings on SSE2
    (src/ops/common.h, fma_): the same bits among the FMA sets, and within the ULP
    contract on each (checked per kernel set above), but not the same bits on SSE2."""
    return kernel in ("sigmoid", "tanh")


FUSED_ISAS = [name for name in ISAS if name != "sse2"]


@pytest.mark.skipif(len(FUSED_ISAS) < 2, reason="this CPU has fewer than two kernel sets with "
                    "FMA (AVX2, AVX-512): nothing to compare")
def test_fused_kernel_sets_agree_on_the_polynomial_kernels():
    """Among the kernel sets with fused multiply-add, the polynomial kernels give the same
    bits."""
    fused = FUSED_ISAS
    x = randn(np.random.default_rng(3), (20_011,), np.float32, 30.0)
    results = {}
    for name in fused:
        assert nnfast._core.use_simd(name)
        try:
            x64 = x.astype(np.float64)
            results[name] = [nnfast.sigmoid(x), nnfast.tanh(x), nnfast.sigmoid(x64), nnfast.tanh(x64)]
        finally:
            nnfast._core.use_simd(DEFAULT)
    for name in fused[1:]:
        for a, b in zip(results[fused[0]], results[name]):
            assert_same_bits(b, a, f"{name} vs {fused[0]}")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_result_does_not_depend_on_an_elements_position(isa, rng, dtype):
    """x and x[k:] (k = 1..17) put every element at another offset from the vector
    boundaries, moving it between the SIMD body and the scalar tail: same bits."""
    n = 131
    x = randn(rng, (n,), dtype, 5.0)
    with quiet():
        x[: len(SPECIAL)] = SPECIAL
    y = randn(rng, (n,), dtype)
    full_fwd = {name: getattr(nnfast, name)(x) for name in FORWARD}
    full_bwd = {name: getattr(nnfast, name)(x, y) for name in BACKWARD}
    problems = {(kind, str(hp)): (kind, hp, *random_problem(rng, kind, hp, (n,), dtype))
                for kind, hp in ELEMENTWISE_CASES}
    full_opt = {}
    for key, (kind, hp, p, g, states) in problems.items():
        p1, s1 = p.copy(), {k: v.copy() for k, v in states.items()}
        call_step(nnfast, kind, p1, g, s1, hp)
        full_opt[key] = (p1, s1)
    for k in range(1, 18):
        for name in FORWARD:
            assert_same_bits(getattr(nnfast, name)(x[k:].copy()), full_fwd[name][k:],
                             f"[{isa}] {name} shifted by {k}")
        for name in BACKWARD:
            assert_same_bits(getattr(nnfast, name)(x[k:].copy(), y[k:].copy()),
                             full_bwd[name][k:], f"[{isa}] {name} shifted by {k}")
        for key, (kind, hp, p, g, states) in problems.items():
            p1 = p[k:].copy()
            s1 = {name: v[k:].copy() for name, v in states.items()}
            call_step(nnfast, kind, p1, g[k:].copy(), s1, hp)
            assert_same_bits(p1, full_opt[key][0][k:], f"[{isa}] {key} params shifted by {k}")
            for name in s1:
                assert_same_bits(s1[name], full_opt[key][1][name][k:],
                                 f"[{isa}] {key} {name} shifted by {k}")


def _at_offset(a, offset_bytes):
    """A C-contiguous copy of a whose data starts offset_bytes past a 64-byte boundary."""
    raw = np.empty(a.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset_bytes
    view = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    view[...] = a
    assert view.ctypes.data % 64 == offset_bytes and view.flags.c_contiguous
    return view


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_results_do_not_depend_on_memory_alignment(isa, rng, dtype):
    """The same data at different addresses (aligned, or off by one or more elements from a
    64-byte boundary) gives the same bits, reductions included."""
    n = 50_021
    x, y = randn(rng, (n,), dtype, 3.0), randn(rng, (n,), dtype)
    logits, labels = x[: n // 11 * 11].reshape(-1, 11), rng.integers(0, 11, n // 11)
    probs = np.abs(logits) / np.abs(logits).sum(axis=1, keepdims=True)
    kind, hp = "adam", dict(lr=1e-2, step=3, amsgrad=True, weight_decay=0.1)
    _, _, states = random_problem(rng, kind, hp, (n,), dtype)

    def run(offset):
        xs, ys = _at_offset(x, offset), _at_offset(y, offset)
        lg, pr = _at_offset(logits, offset), _at_offset(probs, offset)
        st = {k: _at_offset(v, offset) for k, v in states.items()}
        p = _at_offset(x, offset)
        call_step(nnfast, kind, p, ys, st, hp)
        return [nnfast.sigmoid(xs), nnfast.tanh_backward(xs, ys), p, *st.values(),
                *nnfast.mse_loss(xs, ys, "none"), np.float64(nnfast.mse_loss(xs, ys)[0]),
                *nnfast.softmax_cross_entropy(lg, labels, "none"),
                np.float64(nnfast.softmax_cross_entropy(lg, pr, "sum")[0]),
                *nnfast.cross_entropy(pr, pr, "none"), np.float64(nnfast.l2_loss([xs, ys]))]

    base = run(0)
    itemsize = np.dtype(dtype).itemsize
    for k in (1, 2, 3, 5):
        for j, (a, b) in enumerate(zip(base, run(k * itemsize))):
            assert_same_bits(np.asarray(b), np.asarray(a),
                             f"[{isa}] output {j} with data {k} elements off alignment")
