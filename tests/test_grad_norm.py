"""nnfast.grad_norm and nnfast.clip_grad_norm_ against nnfast.reference (float64) for every
dtype and norm type, their special values, thread-count and SIMD-level independence, clipping
bit for bit against torch.nn.utils on float32, the validation (nothing written on an error),
nnfast.torch.clip_grad_norm_ as a drop-in, and GPU arrays (skipped without a GPU).

Tolerance: the kernels and the reference form the same float64 terms |s g|^p (up to one
rounding of pow), so a norm differs from the reference only by the order of the float64
sum (sum_rtol) and the final root, whose relative error is the sum's divided by p.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnfast
from _helpers import assert_close, assert_same_bits, num_threads, quiet, sum_rtol
from nnfast import reference

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 arrays are ml_dtypes.bfloat16")

DTYPES = [np.float32, np.float64, ml_dtypes.bfloat16, np.float16]
DTYPE_IDS = ["f32", "f64", "bf16", "f16"]
NORM_TYPES = [1.0, 2.0, math.inf, 0.5, 3.0]
NORM_IDS = ["1", "2", "inf", "0.5", "3"]
ISAS = list(nnfast._core.supported_simd())
U64 = 2.0**-53

# sizes: empty, one, under and over every vector width and the 16 lanes, several chunks
SIZES = [0, 1, 3, 15, 16, 17, 33, 1023, 4097, 40_003]


def as64(a):
    """a in float64 (ml_dtypes warns when it converts a bfloat16 NaN)."""
    with quiet():
        return np.asarray(a).astype(np.float64)


def assert_same_bytes(a, b, what):
    """a and b hold the same bits (any dtype, 16-bit ones included)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    as_bytes = [x.reshape(-1).view(np.uint8).reshape(x.size, x.itemsize) for x in (a, b)]
    differ = (as_bytes[0] != as_bytes[1]).any(axis=1)
    assert not differ.any(), f"{what}: {differ.sum()} elements differ, first at {np.argwhere(differ)[:3].tolist()}"


def grads_of(rng, sizes, dtype, scale=1.0):
    return [np.array(rng.standard_normal(n) * scale, dtype=dtype) for n in sizes]


def norm_rtol(n, p):
    """The relative error bound of a kernel norm over n terms (see the module docstring)."""
    if math.isinf(p):
        return 0.0  # a max of the same terms: exact
    return (sum_rtol(n) + 8 * U64) / min(p, 1.0) + 4 * U64


def expected_norm(grads, p, scale=1.0):
    return reference.grad_norm([as64(g) for g in grads], norm_type=p, scale=scale,
                               per_tensor=True)


def check_norm(got, grads, p, scale=1.0, what="norm"):
    total, each = expected_norm(grads, p, scale)
    n = max(1, sum(np.size(g) for g in grads))
    assert type(got) is float, f"{what}: a Python float, got {type(got).__name__}"
    assert_close(got, total, norm_rtol(n, p) * abs(total) if math.isfinite(total) else 0.0, what)
    return total, each


# --------------------------------------------------------------------------- the norm


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matches_reference(rng, dtype, p):
    grads = grads_of(rng, SIZES, dtype, 3.0)
    before = [g.copy() for g in grads]
    for scale in (1.0, 0.125, -3.0):
        check_norm(nnfast.grad_norm(grads, norm_type=p, scale=scale), grads, p, scale,
                   f"{dtype.__name__} p={p} scale={scale}")
    for g, b in zip(grads, before):
        assert_same_bytes(g, b, "grad_norm wrote its input")


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_per_tensor(rng, dtype, p):
    grads = grads_of(rng, SIZES, dtype)
    total, norms = nnfast.grad_norm(grads, norm_type=p, per_tensor=True)
    assert norms.dtype == np.float64 and norms.shape == (len(grads),)
    ref_total, ref_each = check_norm(total, grads, p)
    tol = np.array([norm_rtol(max(1, np.size(g)), p) for g in grads]) * ref_each
    assert_close(norms, ref_each, tol, "per-tensor norms")
    assert norms[0] == 0.0  # the empty array
    assert total == nnfast.grad_norm(grads, norm_type=p), "per_tensor changes the total"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_one_array_and_any_shape(rng, dtype):
    g = np.array(rng.standard_normal((3, 5, 7)), dtype=dtype)
    assert nnfast.grad_norm(g) == nnfast.grad_norm([g.ravel()]) == nnfast.grad_norm((g,))
    check_norm(nnfast.grad_norm(g), [g], 2.0)
    scalar = np.array(-2.5, dtype=dtype)  # 0-d
    assert nnfast.grad_norm(scalar, norm_type=3.0) == pytest.approx(2.5, rel=1e-15)


def test_empty_list_and_empty_arrays_have_norm_zero():
    for p in NORM_TYPES:
        assert nnfast.grad_norm([], norm_type=p) == 0.0
        assert nnfast.grad_norm(np.zeros(0, np.float32), norm_type=p) == 0.0
        total, norms = nnfast.grad_norm([np.zeros((0, 3)), np.zeros(0)], norm_type=p,
                                        per_tensor=True)
        assert total == 0.0 and norms.tolist() == [0.0, 0.0]
    total, norms = nnfast.grad_norm([], per_tensor=True)
    assert total == 0.0 and norms.shape == (0,) and norms.dtype == np.float64


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_edge_values(dtype, p):
    info = ml_dtypes.finfo(dtype)
    edge = np.array([0.0, -0.0, float(info.smallest_subnormal), -float(info.smallest_subnormal),
                     float(info.tiny), float(info.max), -float(info.max), 1.0], dtype=dtype)
    # (the squares of float64's largest overflow float64 itself: inf, as the reference)
    with quiet():
        check_norm(nnfast.grad_norm([edge, edge[:5]], norm_type=p), [edge, edge[:5]], p)
    zeros = np.array([0.0, -0.0, -0.0], dtype=dtype)
    got = nnfast.grad_norm(zeros, norm_type=p)
    assert got == 0.0 and math.copysign(1.0, got) == 1.0, f"norm of zeros is +0, got {got!r}"
    sub = np.full(33, float(info.smallest_subnormal), dtype)
    check_norm(nnfast.grad_norm(sub, norm_type=p), [sub], p, what="subnormals")


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nan_and_inf_as_torch(rng, dtype, p):
    """Any NaN gives NaN; an infinity and no NaN gives inf (torch.linalg.vector_norm)."""
    for position in (0, 5, 16, 4096):  # in a vector block, a tail, a later tile
        g = grads_of(rng, [5001], dtype)
        g[0][position] = np.inf
        assert nnfast.grad_norm(g + grads_of(rng, [9], dtype), norm_type=p) == math.inf
        g[0][-1] = np.nan
        assert math.isnan(nnfast.grad_norm(g, norm_type=p))
        g[0][position] = -np.inf
        assert math.isnan(nnfast.grad_norm(g, norm_type=p)), "NaN wins over -inf"
    nan_first = [np.array([np.nan], dtype), np.array([np.inf, 1.0], dtype)]
    assert math.isnan(nnfast.grad_norm(nan_first, norm_type=p))
    total, norms = nnfast.grad_norm(nan_first, norm_type=p, per_tensor=True)
    assert math.isnan(total) and math.isnan(norms[0]) and norms[1] == math.inf


def test_hundreds_of_tensors(rng):
    sizes = [int(n) for n in rng.integers(0, 300, 700)]
    for dtype in DTYPES:
        grads = grads_of(rng, sizes, dtype)
        for p in NORM_TYPES:
            total, norms = nnfast.grad_norm(grads, norm_type=p, per_tensor=True)
            _, each = check_norm(total, grads, p, what=f"700 tensors {dtype.__name__} p={p}")
            assert_close(norms, each, norm_rtol(300, p) * each, "per-tensor norms")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=40),
                max_size=6),
       st.sampled_from(NORM_TYPES + [1.5, 7.0, 0.25]),
       st.sampled_from([np.float32, np.float64]),
       st.sampled_from([1.0, 0.5, -2.0, 1e-3]))
def test_property_matches_reference(values, p, dtype, scale):
    grads = [np.array(v, dtype=dtype) for v in values]
    with quiet():
        check_norm(nnfast.grad_norm(grads, norm_type=p, scale=scale), grads, p, scale)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_threads_give_the_same_bits(rng, dtype, p):
    grads = grads_of(rng, [300_007] + [int(n) for n in rng.integers(0, 5000, 60)], dtype)
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            total, norms = nnfast.grad_norm(grads, norm_type=p, per_tensor=True)
            results.append((np.float64(total), norms))
    assert_same_bits(results[0][0], results[1][0], "total, 1 vs 2 threads")
    assert_same_bits(results[0][1], results[1][1], "per-tensor norms, 1 vs 2 threads")


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_simd_levels_give_the_same_bits(rng, dtype, p):
    grads = grads_of(rng, [1, 15, 17, 100_003, 31], dtype)
    before = nnfast.info()["simd"]
    results = {}
    try:
        for isa in ISAS:
            assert nnfast._core.use_simd(isa)
            total, norms = nnfast.grad_norm(grads, norm_type=p, scale=0.3, per_tensor=True)
            results[isa] = np.append(norms, total)
    finally:
        assert nnfast._core.use_simd(before)
    for isa in ISAS[1:]:
        assert_same_bits(results[isa], results[ISAS[0]], f"{isa} vs {ISAS[0]}")


# --------------------------------------------------------------------------- clipping


def torch_coefficient(total, max_norm, dtype):
    """torch's min(1, max_norm / (total + 1e-6)) in the grads' dtype: Tensor.__rtruediv__ is
    t.reciprocal() * max_norm."""
    t = dtype(total) + dtype(1e-6)
    c = (dtype(1) / t) * dtype(max_norm)
    return c if np.isnan(c) else min(c, dtype(1))


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_clip_matches_reference(rng, dtype, p):
    for max_norm in (0.5, 1e6, 0.0):
        grads = grads_of(rng, SIZES, dtype, 2.0)
        expected = [as64(g) for g in grads]
        ref_total = reference.clip_grad_norm_(expected, max_norm, norm_type=p)
        total = nnfast.clip_grad_norm_(grads, max_norm, norm_type=p)
        assert type(total) is float
        assert_close(total, ref_total, norm_rtol(sum(SIZES), p) * ref_total, "total")
        compute = np.float64 if dtype is np.float64 else np.float32
        c = torch_coefficient(total, max_norm, compute)
        assert c <= 1
        ulp = 2.0**-8 if dtype is ml_dtypes.bfloat16 else 2.0**-11 if dtype is np.float16 else (
            2.0**-24 if dtype is np.float32 else U64)
        for i, (g, e) in enumerate(zip(grads, expected)):
            # the coefficient differs from float64's by its roundings (a few float32 ulp),
            # then each product is rounded once to the dtype
            assert_close(as64(g), e, (8 * 2.0**-24 + ulp) * np.abs(e) + float(
                ml_dtypes.finfo(dtype).smallest_subnormal), f"clipped grads[{i}]")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_clip_applies_the_coefficient_rounded_once(rng, dtype):
    """g * c, c computed as torch computes it from the returned norm, the product rounded once."""
    grads = grads_of(rng, [5000, 17, 1], dtype, 4.0)
    before = [as64(g) for g in grads]
    total = nnfast.clip_grad_norm_(grads, 1.25)
    compute = np.float64 if dtype is np.float64 else np.float32
    c = torch_coefficient(total, 1.25, compute)
    for g, b in zip(grads, before):
        expected = (b.astype(compute) * c).astype(dtype)
        assert_same_bytes(g, expected, "g * coefficient")


def test_clip_below_max_norm_leaves_grads_unchanged(rng):
    grads = grads_of(rng, [100, 7], np.float32, 1e-3)
    before = [g.copy() for g in grads]
    total = nnfast.clip_grad_norm_(grads, 10.0)
    assert 0 < total < 10
    for g, b in zip(grads, before):
        assert_same_bits(g, b, "coefficient 1")


def test_clip_nonfinite_norms():
    g = [np.array([1.0, np.inf, 2.0], np.float32)]
    assert nnfast.clip_grad_norm_(g, 1.0) == math.inf
    # coefficient 0: finite values become 0, inf * 0 NaN (as torch)
    assert np.isnan(g[0][1]) and g[0][0] == 0 and g[0][2] == 0
    g = [np.array([1.0, np.nan], np.float64), np.array([3.0])]
    assert math.isnan(nnfast.clip_grad_norm_(g, 1.0))
    assert np.isnan(g[0]).all() and np.isnan(g[1]).all()
    for bad in ([1.0, np.nan], [np.inf, 0.0], [-np.inf]):
        grads = [np.array([5.0, 6.0], np.float32), np.array(bad, np.float32)]
        before = [x.copy() for x in grads]
        with pytest.raises(RuntimeError, match=r"The total norm of order 2\.0 for gradients from "
                                                r"`parameters` is non-finite"):
            nnfast.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
        for x, b in zip(grads, before):
            assert_same_bits(x, b, "nothing written")
    with pytest.raises(RuntimeError, match="order inf"):
        nnfast.clip_grad_norm_([np.array([np.nan])], 1.0, norm_type=math.inf,
                               error_if_nonfinite=True)


def test_clip_empty():
    assert nnfast.clip_grad_norm_([], 1.0) == 0.0
    g = np.zeros(0, np.float32)
    assert nnfast.clip_grad_norm_(g, 1.0, error_if_nonfinite=True) == 0.0


def test_clip_max_norm_inf_keeps_finite_grads(rng):
    grads = grads_of(rng, [50], np.float32, 100.0)
    before = [g.copy() for g in grads]
    nnfast.clip_grad_norm_(grads, math.inf)
    assert_same_bits(grads[0], before[0], "max_norm inf")


# --------------------------------------------------------------------------- against torch

@pytest.fixture
def torch():
    module = pytest.importorskip("torch", reason="the comparisons with torch.nn.utils need torch")
    import nnfast.torch  # noqa: F401  (nnfast.torch.clip_grad_norm_)
    return module


def _params(torch, arrays):
    params = []
    for a in arrays:
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.from_numpy(a).dtype))
        p.grad = torch.from_numpy(a.copy())
        params.append(p)
    return params


def exact_grads(rng, sizes):
    """float32 grads whose norms torch's float32 sums get exactly: small integers, each
    tensor's 2-norm an integer (a Pythagorean layout) and every sum exact."""
    grads = []
    for n in sizes:
        g = np.zeros(n, np.float32)
        if n >= 2:
            i, j = rng.choice(n, 2, replace=False)
            g[i], g[j] = 3.0 * rng.choice([-1, 1]), 4.0 * rng.choice([-1, 1])
        grads.append(g)
    return grads


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
def test_clip_is_torch_bit_for_bit_on_exact_norms(rng, torch, p):
    """Where torch's float32 norm is exact too, the total and every clipped value are
    torch.nn.utils.clip_grad_norm_'s, bit for bit."""
    if p not in (1.0, 2.0, math.inf):
        # |x|^p = 1 or 0: the norm is 1 for every p, however it is rounded
        grads = [np.array([0.0, -1.0, 0.0], np.float32), np.zeros(5, np.float32),
                 np.zeros(1, np.float32)]
    else:
        grads = exact_grads(rng, [1, 5, 100, 4097, 2])
    for max_norm in (1.0, 0.3, 100.0):
        ours = [g.copy() for g in grads]
        params = _params(torch, grads)
        expected = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=p)
        total = nnfast.clip_grad_norm_(ours, max_norm, norm_type=p)
        assert np.float32(total) == expected.item()
        for o, q in zip(ours, params):
            assert_same_bits(o, q.grad.numpy(), f"p={p} max_norm={max_norm}")


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
def test_clip_is_torch_clip_grads_with_norm_bit_for_bit(rng, torch, p):
    """On any float32 grads: the clipped values are torch's for the norm nnfast returns (its
    float64 sum may differ from torch's float32 one in the last bits), including NaN and inf."""
    for case in range(4):
        grads = grads_of(rng, [3000, 1, 17, 256], np.float32, 10.0)
        if case == 2:
            grads[1][0] = np.inf
        if case == 3:
            grads[2][5] = np.nan
        ours = [g.copy() for g in grads]
        total = nnfast.clip_grad_norm_(ours, 2.0, norm_type=p)
        params = _params(torch, grads)
        torch_total = torch.nn.utils.get_total_norm([q.grad for q in params], norm_type=p)
        assert_close(total, torch_total.double().item(), 1e-5 * abs(torch_total.item())
                     if math.isfinite(torch_total.item()) else 0.0, "norm vs torch's")
        torch.nn.utils.clip_grads_with_norm_(params, 2.0, torch.tensor(np.float32(total)))
        for o, q in zip(ours, params):
            assert_same_bits(o, q.grad.numpy(), f"p={p} case {case}")


# --------------------------------------------------------------------------- bad input


def _untouched(grads, before):
    for g, b in zip(grads, before):
        assert_same_bytes(g, b, "nothing may be written")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(norm_type=0.0), ValueError, r"norm_type: must be > 0 or inf, got 0\.0"),
    (dict(norm_type=-1), ValueError, "norm_type: must be > 0"),
    (dict(norm_type=-math.inf), ValueError, "norm_type: must be finite"),
    (dict(norm_type=math.nan), ValueError, "norm_type: must not be NaN"),
    (dict(norm_type="2"), TypeError, "norm_type: expected a real number, got str"),
    (dict(norm_type=True), TypeError, "norm_type: expected a real number, got bool"),
    (dict(max_norm=-0.5), ValueError, r"max_norm: must be >= 0, got -0\.5"),
    (dict(max_norm=math.nan), ValueError, "max_norm: must not be NaN"),
    (dict(max_norm=None), TypeError, "max_norm: expected a real number, got NoneType"),
    (dict(error_if_nonfinite=1), TypeError, "error_if_nonfinite: expected a bool, got int"),
])
def test_bad_clip_scalars_write_nothing(rng, kwargs, error, match):
    grads = grads_of(rng, [100, 3], np.float32, 10.0)
    before = [g.copy() for g in grads]
    args = dict(max_norm=1.0) | kwargs
    max_norm = args.pop("max_norm")
    with pytest.raises(error, match=match):
        nnfast.clip_grad_norm_(grads, max_norm, **args)
    _untouched(grads, before)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(norm_type=0), ValueError, "norm_type: must be > 0 or inf, got 0"),
    (dict(scale=math.inf), ValueError, "scale: must be finite, got inf"),
    (dict(scale=math.nan), ValueError, "scale: must not be NaN"),
    (dict(scale="1"), TypeError, "scale: expected a real number"),
    (dict(per_tensor=None), TypeError, "per_tensor: expected a bool, got NoneType"),
])
def test_bad_norm_scalars(kwargs, error, match):
    with pytest.raises(error, match=match):
        nnfast.grad_norm([np.ones(3, np.float32)], **kwargs)


def test_bad_arrays_write_nothing(rng):
    good = grads_of(rng, [50, 5], np.float32, 10.0)
    readonly = np.ones(4, np.float32)
    readonly.flags.writeable = False
    cases = [
        (good + [np.ones(3, np.float64)], TypeError, r"grads\[2\]: dtype float64 differs"),
        (good + [np.ones(3, np.int32)], TypeError, r"grads\[2\]: dtype int32 is not supported"),
        (good + [readonly], ValueError, r"grads\[2\]: array is read-only"),
        (good + [np.ones((4, 6), np.float32)[:, ::2]], ValueError,
         r"grads\[2\]: must be C-contiguous"),
        (good + [good[0][:10]], ValueError, r"shares memory with"),
        (good + [3.0], TypeError, r"grads\[2\]: expected a numpy.ndarray"),
        ("grads", TypeError, "grads: expected a numpy.ndarray or a list of them, got str"),
    ]
    for grads, error, match in cases:
        before = [g.copy() for g in good]
        with pytest.raises(error, match=match):
            nnfast.clip_grad_norm_(grads, 1.0)
        _untouched(good, before)
    # reading alone: a read-only array, or one array given twice, is fine
    assert nnfast.grad_norm([readonly, readonly]) == math.sqrt(8)
    with pytest.raises(TypeError, match=r"grads\[1\]: dtype float64 differs"):
        nnfast.grad_norm([np.ones(2, np.float32), np.ones(2)])


def test_reference_clip_raises_on_nonfinite():
    g = [np.array([np.nan])]
    with pytest.raises(RuntimeError, match="non-finite"):
        reference.clip_grad_norm_(g, 1.0, error_if_nonfinite=True)
    assert np.isnan(g[0]).all()


# --------------------------------------------------------------------------- nnfast.torch


def _model_params(torch, rng, dtype=None, without_grad=1):
    """Four parameters, the first without a grad; grads of about 3 standard deviations."""
    dtype = dtype or torch.float32
    shapes = [(7, 5), (5,), (3, 2, 4), (11,)]
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in shapes]
    for p in params[without_grad:]:
        p.grad = torch.from_numpy(rng.standard_normal(p.shape).astype(np.float32) * 3).to(dtype)
    return params


def _twin(torch, params):
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for t, p in zip(twin, params):
        t.grad = None if p.grad is None else p.grad.clone()
    return twin


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
def test_torch_drop_in_matches_torch(rng, torch, p):
    params = _model_params(torch, rng)
    twin = _twin(torch, params)
    total = nnfast.torch.clip_grad_norm_(params, 1.5, norm_type=p)
    expected = torch.nn.utils.clip_grad_norm_(twin, 1.5, norm_type=p)
    assert total.shape == () and total.dtype == torch.float32 and total.device == expected.device
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=0)
    assert params[0].grad is None
    # the grads are torch's clip for the norm returned, bit for bit
    reclipped = _twin(torch, _model_params(torch, np.random.default_rng(0)))
    fresh = _twin(torch, reclipped)
    norm = nnfast.torch.clip_grad_norm_(reclipped, 1.5, norm_type=p)
    torch.nn.utils.clip_grads_with_norm_(fresh, 1.5, norm)
    for a, b in zip(reclipped[1:], fresh[1:]):
        assert torch.equal(a.grad, b.grad)


def test_torch_drop_in_arguments_and_dtypes(rng, torch):
    single = torch.nn.Parameter(torch.zeros(3))
    single.grad = torch.tensor([3.0, 4.0, 0.0])
    assert nnfast.torch.clip_grad_norm_(single, 1.0).item() == 5.0
    c = torch_coefficient(5.0, 1.0, np.float32)
    assert torch.equal(single.grad, torch.tensor([3.0, 4.0, 0.0]) * torch.tensor(c))
    assert nnfast.torch.clip_grad_norm_(single, 10.0, norm_type="inf").item() == np.float32(
        np.float32(4.0) * c)
    assert nnfast.torch.clip_grad_norm_(iter([single]), 10.0).item() > 0
    none = torch.nn.Parameter(torch.zeros(2))
    empty = nnfast.torch.clip_grad_norm_([none], 1.0)
    assert torch.equal(empty, torch.tensor(0.0)) and none.grad is None
    with pytest.warns(UserWarning, match="empty generator"):
        nnfast.torch.clip_grad_norm_((q for q in []), 1.0)
    for dtype in (torch.float64, torch.bfloat16, torch.float16):
        params = _model_params(torch, rng, dtype)
        twin = _twin(torch, params)
        total = nnfast.torch.clip_grad_norm_(params, 0.5)
        expected = torch.nn.utils.clip_grad_norm_(twin, 0.5)
        assert total.dtype == dtype
        torch.testing.assert_close(total.double(), expected.double(), rtol=1e-2, atol=0)
        for a, b in zip(params[1:], twin[1:]):
            torch.testing.assert_close(a.grad.double(), b.grad.double(), rtol=2e-2, atol=1e-3)


def test_torch_drop_in_falls_back_for_mixed_lists(rng, torch):
    params = _model_params(torch, rng)
    grad = params[1].grad.double()
    params[1].data = params[1].data.double()
    params[1].grad = grad
    twin = _twin(torch, params)
    total = nnfast.torch.clip_grad_norm_(params, 0.7)
    expected = torch.nn.utils.clip_grad_norm_(twin, 0.7)
    assert torch.equal(total, expected)
    for a, b in zip(params[1:], twin[1:]):
        assert torch.equal(a.grad, b.grad)
    z = torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))
    z.grad = torch.tensor([3 + 4j, 1j, 0], dtype=torch.complex64)  # |z|, not |re| + |im|
    twin = _twin(torch, [z])
    assert torch.equal(nnfast.torch.clip_grad_norm_([z], 1.0, norm_type=1),
                       torch.nn.utils.clip_grad_norm_(twin, 1.0, norm_type=1))
    assert torch.equal(z.grad, twin[0].grad)


def test_torch_drop_in_errors_write_nothing(rng, torch):
    params = _model_params(torch, rng)
    params[2].grad[0, 0, 0] = math.nan
    before = [None if q.grad is None else q.grad.clone() for q in params]
    with pytest.raises(RuntimeError, match="non-finite, so it cannot be clipped"):
        nnfast.torch.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm: must be >= 0"):
        nnfast.torch.clip_grad_norm_(params, -1.0)
    with pytest.raises(ValueError, match="norm_type: must be > 0"):
        nnfast.torch.clip_grad_norm_(params, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm: must be >= 0"):
        nnfast.torch.clip_grad_norm_([torch.nn.Parameter(torch.zeros(1))], -1.0)
    for q, b in zip(params[1:], before[1:]):
        assert torch.equal(q.grad.view(torch.int32), b.view(torch.int32))


def test_torch_drop_in_bumps_versions_and_handles_layouts(rng, torch):
    p = torch.nn.Parameter(torch.zeros(4, 6))
    p.grad = torch.from_numpy(rng.standard_normal((6, 4)).astype(np.float32) * 5).t()  # dense
    twin = _twin(torch, [p])
    version = p.grad._version
    total = nnfast.torch.clip_grad_norm_([p], 1.0)
    assert p.grad._version > version and p.grad.stride() == (1, 4)
    expected = torch.nn.utils.clip_grad_norm_(twin, 1.0)
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(p.grad, twin[0].grad, rtol=1e-6, atol=0)
    q = torch.nn.Parameter(torch.zeros(4, 3))
    q.grad = torch.ones(4, 6)[:, ::2]  # a strided slice: torch's own path
    assert nnfast.torch.clip_grad_norm_([q], 1.0).item() == pytest.approx(math.sqrt(12))


# --------------------------------------------------------------------------- GPU arrays


def _gpu_libraries():
    from test_cuda import LIBRARIES, WHY_NO_GPU
    return LIBRARIES, WHY_NO_GPU


@pytest.mark.skipif(not nnfast.cuda.is_built(), reason="nnfast was built without CUDA")
def test_gpu_validation_without_a_gpu():
    from test_cuda import FakeGpuArray
    with pytest.raises(ValueError, match="norm_type: must be > 0"):
        nnfast.grad_norm([FakeGpuArray((4,))], norm_type=-1)
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype <i4 is not supported"):
        nnfast.clip_grad_norm_([FakeGpuArray((4,), typestr="<i4")], 1.0)
    with pytest.raises(ValueError, match="a GPU call needs at least one array"):
        nnfast._cuda.grad_norm([], 2.0, 1.0, False)


@pytest.mark.parametrize("p", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gpu_norms_and_clip(rng, dtype, p):
    libraries, why = _gpu_libraries() if nnfast.cuda.is_built() else ([], "no CUDA module")
    if not libraries:
        pytest.skip(f"GPU tests: {why}")
    sizes = [0, 1, 3, 4097, 2 * 65536 + 5, 300_001]
    for _, to_gpu, to_host in libraries:
        grads = grads_of(rng, sizes, dtype, 2.0)
        on_gpu = [to_gpu(g) for g in grads]
        total, norms = nnfast.grad_norm(on_gpu, norm_type=p, per_tensor=True)
        assert to_host(total).shape == (1,) and to_host(total).dtype == dtype
        ref_total, ref_each = expected_norm(grads, p)
        tol = norm_rtol(sum(sizes), p) + (2.0**-24 if dtype is np.float32 else 0.0)
        assert_close(to_host(total)[0], ref_total, 2 * tol * ref_total, "GPU total")
        assert_close(to_host(norms), ref_each, 2 * tol * ref_each, "GPU per-tensor")
        assert float(total) == float(nnfast.grad_norm(on_gpu, norm_type=p)), "run to run"
        expected = [as64(g) for g in grads]
        reference.clip_grad_norm_(expected, 1.0, norm_type=p)
        clipped = nnfast.clip_grad_norm_(on_gpu, 1.0, norm_type=p)
        assert_close(float(clipped), ref_total, 2 * tol * ref_total, "GPU clip total")
        for g, e in zip(on_gpu, expected):
            assert_close(to_host(g), e, 1e-5 * np.abs(e) + 1e-30, "GPU clipped")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            bad = [to_gpu(np.array([1.0, np.nan], dtype))]
            with pytest.raises(RuntimeError, match="non-finite"):
                nnfast.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
            assert np.isnan(to_host(bad[0])[1]) and to_host(bad[0])[0] == 1.0
