"""16-bit storage conversions (src/ops/precision.h, src/simd/convert.h), run under every SIMD
kernel set this CPU supports.

References: ml_dtypes.bfloat16 and numpy.float16 for widening and round-to-nearest-even
narrowing (compared bit for bit; NaNs must be NaN on both sides and follow the documented
quieting rule), a NumPy Philox4x32-10 for the random bits of stochastic rounding, and the
stochastic rounding rule itself computed exactly in float64.
"""

import ml_dtypes
import numpy as np
import pytest

import nnfast
from nnfast import _core

ISAS = list(_core.supported_simd())
DTYPES = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}
MASK32 = np.uint64(0xFFFFFFFF)

# Random123's published known-answer vectors for Philox4x32-10 (its tests/kat_vectors):
# counter, key, output.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with one kernel set, then restore the one in use before."""
    before = nnfast.info()["simd"]
    assert _core.use_simd(request.param)
    yield request.param
    assert _core.use_simd(before)


# --------------------------------------------------------------------------- references

def all_patterns():
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def f32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def bits32(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def quiet_nan16(x, dtype):
    """The documented NaN result of narrowing float32 x: sign and upper payload kept,
    quiet bit set (bfloat16 fraction bit 6, binary16 fraction bit 9)."""
    b = bits32(x)
    if dtype == "bfloat16":
        return ((b >> 16) | 0x0040).astype(np.uint16)
    return (((b >> 16) & 0x8000) | 0x7E00 | ((b >> 13) & 0x3FF)).astype(np.uint16)


def reference_narrow(x, dtype):
    """Round-to-nearest-even bits from ml_dtypes / NumPy (which warn on overflow to inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(DTYPES[dtype]).view(np.uint16)


def assert_narrowed(actual, x, dtype, expected):
    nan = np.isnan(x)
    np.testing.assert_array_equal(actual[~nan], expected[~nan])
    np.testing.assert_array_equal(actual[nan], quiet_nan16(x[nan], dtype))


def _magnitudes(name):
    """The value of each 16-bit magnitude encoding up to infinity's, which is read as the
    next binade's first magnitude (2^16 or 2^128): the upper neighbour of the largest
    finite. Ascending, so it also lists every non-negative finite value in order."""
    encodings = np.arange(0x7C01 if name == "float16" else 0x7F81, dtype=np.uint16)
    values = encodings.view(DTYPES[name]).astype(np.float64)
    values[-1] = 65536.0 if name == "float16" else 2.0 ** 128
    return values


MAGNITUDES = {name: _magnitudes(name) for name in DTYPES}


def boundary_cases(dtype):
    """Every representable value, every midpoint between neighbours (the ties, each
    exactly a float32), and the float32 values one unit in the last place either side of
    both, with both signs."""
    values = MAGNITUDES[dtype]
    points = np.concatenate([values[:-1], (values[:-1] + values[1:]) / 2])
    points = points[points < 2.0 ** 128].astype(np.float32)
    up = np.nextafter(points, np.float32(np.inf))
    down = np.nextafter(points, np.float32(-np.inf))
    cases = np.concatenate([points, up, down])
    return np.concatenate([cases, -cases])


SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 65504.0, 65519.99, 65520.0, -65520.0,
     65535.99, 65536.0, 1e30, 2.0 ** -24, 2.0 ** -25, 1.5 * 2.0 ** -25, 2.0 ** -14,
     2.0 ** -14 - 2.0 ** -25, 2.0 ** -126, 2.0 ** -149, 3.3895314e38, 3.3961776e38,
     3.4028235e38, -3.4028235e38, 1.0 + 2.0 ** -8, 1.0 + 2.0 ** -11],
    dtype=np.float32)
# Signalling NaNs with payloads only below / only above the bits kept, and quiet ones.
NANS = f32(np.array([0x7F800001, 0xFF800001, 0x7F801000, 0x7FC00000, 0xFFFFFFFF, 0x7FBFFFFF,
                     0x7F810000, 0xFF802000], dtype=np.uint32))


def random_floats(rng, n):
    """Uniform random float32 bit patterns: every sign and exponent equally likely, so NaNs,
    infinities and subnormals all occur."""
    return f32(rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32))


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on arrays of 32-bit words held in uint64 (Salmon et al., SC 2011)."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    w0, w1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK32)
        k0, k1 = (k0 + w0) & MASK32, (k1 + w1) & MASK32
    return c0, c1, c2, c3


def stochastic_bits(seed, step, tensor, elements):
    """The 16 random bits of each element (the contract of ops/precision.h)."""
    elements = np.asarray(elements, dtype=np.uint64)
    block = elements >> np.uint64(3)
    ones = np.ones_like(block)
    words = np.stack(philox4x32_10(block & MASK32, block >> np.uint64(32),
                                   ones * np.uint64(tensor), ones * (np.uint64(step) & MASK32),
                                   seed & 0xFFFFFFFF, seed >> 32))
    lane = ((elements & np.uint64(7)) >> np.uint64(1)).astype(np.intp)
    word = words[lane, np.arange(elements.size)]
    return ((word >> (np.uint64(16) * (elements & np.uint64(1)))) & np.uint64(0xFFFF)).astype(np.int64)


def toward_zero(x, dtype):
    """The 16-bit encoding of the neighbour of finite x toward zero (x truncated)."""
    if dtype == "bfloat16":
        return (bits32(x) >> 16).astype(np.int64)
    nearest = reference_narrow(x, dtype).astype(np.int64)
    magnitude = nearest & 0x7FFF
    overshoots = np.abs(nearest.astype(np.uint16).view(np.float16).astype(np.float64)) > np.abs(
        x.astype(np.float64))
    return (nearest & 0x8000) | (magnitude - overshoots)


def reference_stochastic(x, dtype, random16):
    """The stochastic rounding rule, exactly in float64: with t the truncation of x and
    frac = (|x| - |t|) / ulp, round away from zero iff floor(frac * 2^16) + r >= 2^16.
    Finite x only; for binary16, |x| < 2^16 (beyond, the result is infinity)."""
    low = toward_zero(x, dtype)
    low_magnitude = low & 0x7FFF
    low_value = MAGNITUDES[dtype][low_magnitude]
    ulp = MAGNITUDES[dtype][low_magnitude + 1] - low_value
    frac = (np.abs(x.astype(np.float64)) - low_value) / ulp
    up = np.floor(frac * 65536.0).astype(np.int64) + random16 >= 65536
    return (low + up).astype(np.uint16)


# --------------------------------------------------------------------------- widening

@pytest.mark.parametrize("dtype", DTYPES)
def test_widening_every_pattern_is_exact(isa, dtype):
    patterns = all_patterns()
    out = _core._widen(patterns, dtype)
    assert out.dtype == np.float32 and out.shape == patterns.shape
    expected = patterns.view(DTYPES[dtype]).astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(bits32(out)[~nan], bits32(expected)[~nan])
    p = patterns[nan].astype(np.uint32)
    if dtype == "bfloat16":
        quiet = p << 16  # widening bfloat16 is exact, NaN payload and all
    else:  # made quiet (as F16C does): sign, 0x7f8, quiet bit, payload
        quiet = ((p & 0x8000) << 16) | 0x7FC00000 | ((p & 0x3FF) << 13)
    np.testing.assert_array_equal(bits32(out)[nan], quiet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_widening_any_length_and_layout(isa, dtype, rng):
    patterns = rng.integers(0, 1 << 16, size=(3, 37), dtype=np.uint16)
    expected = _core._widen(patterns.ravel(), dtype).reshape(3, 37)
    for n in range(0, 40):
        np.testing.assert_array_equal(bits32(_core._widen(patterns[0, :n], dtype)),
                                      bits32(expected[0, :n]))
    transposed = patterns.T  # not contiguous: read as a copy
    np.testing.assert_array_equal(bits32(_core._widen(transposed, dtype)), bits32(expected.T))


# --------------------------------------------------------------------------- narrowing (RNE)

@pytest.mark.parametrize("dtype", DTYPES)
def test_narrowing_boundaries_ties_and_specials(isa, dtype):
    x = np.concatenate([boundary_cases(dtype), SPECIALS, NANS])
    if dtype == "bfloat16":
        # Every bfloat16 pattern with the dropped half at each boundary: zero, just below,
        # at and just above the tie, and all ones (NaN and infinity patterns included).
        hi = all_patterns().astype(np.uint32) << 16
        x = np.concatenate([x] + [f32(hi | low) for low in (0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF)])
    assert_narrowed(_core._narrow(x, dtype), x, dtype, reference_narrow(x, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrowing_random_bit_patterns(isa, dtype, rng):
    x = random_floats(rng, 1 << 21)
    assert_narrowed(_core._narrow(x, dtype), x, dtype, reference_narrow(x, dtype))
    # Values near the top and bottom of binary16's range, where rounding crosses binades.
    near = np.concatenate([rng.uniform(65000.0, 70000.0, 1 << 16), rng.uniform(0, 2.0 ** -13, 1 << 16),
                           rng.uniform(0, 2.0 ** -23, 1 << 16)]).astype(np.float32)
    assert_narrowed(_core._narrow(near, dtype), near, dtype, reference_narrow(near, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrowing_any_length_and_layout(isa, dtype, rng):
    x = (rng.standard_normal((5, 41)) * 1000).astype(np.float32)
    expected = reference_narrow(x, dtype)
    for n in range(0, 42):
        np.testing.assert_array_equal(_core._narrow(x[0, :n], dtype), expected[0, :n])
    np.testing.assert_array_equal(_core._narrow(x.T, dtype), expected.T)
    assert _core._narrow(x, dtype).shape == (5, 41)


# --------------------------------------------------------------------------- master weights

def edge_master_patterns():
    """Every high half with the low halves around the 0x8000 split, and every low half with
    high halves at zero, the top finite, infinity, NaN and the wrap-around 0xffff."""
    every = all_patterns().astype(np.uint32)
    lows = [every << 16 | low for low in (0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF)]
    highs = [(high << 16) | every for high in (0x0000, 0x7F7F, 0x7F80, 0x7FFF, 0x8000, 0xFFFF)]
    return np.concatenate(lows + highs).astype(np.uint32)


def test_split_then_join_is_the_identity_on_bits(isa, rng):
    bits = np.concatenate([edge_master_patterns(),
                           rng.integers(0, 1 << 32, size=1 << 21, dtype=np.uint64).astype(np.uint32)])
    params, remainders = _core._split_masters(bits.view(np.float32))
    assert params.dtype == np.uint16 and remainders.dtype == np.int16
    hi, lo = bits >> 16, bits & 0xFFFF
    np.testing.assert_array_equal(params, ((hi + (lo >= 0x8000)) & 0xFFFF).astype(np.uint16))
    np.testing.assert_array_equal(remainders, lo.astype(np.uint16).view(np.int16))
    np.testing.assert_array_equal(bits32(_core._join_masters(params, remainders)), bits)


def test_join_master_formula(isa, rng):
    params = rng.integers(0, 1 << 16, size=4099, dtype=np.uint16)
    remainders = rng.integers(-(1 << 15), 1 << 15, size=4099, dtype=np.int16)
    high = (params.astype(np.int64) - (remainders < 0)) & 0xFFFF
    expected = (high << 16 | remainders.view(np.uint16)).astype(np.uint32)
    np.testing.assert_array_equal(bits32(_core._join_masters(params, remainders)), expected)


def test_public_split_and_join_master(rng):
    master = (rng.standard_normal((7, 33)) * 3).astype(np.float32)
    params, remainders = nnfast.split_master(master)
    assert params.dtype == nnfast.bfloat16 == ml_dtypes.bfloat16 and remainders.dtype == np.int16
    assert params.shape == remainders.shape == master.shape
    # The parameter is the master to the nearest bfloat16 (ties away from zero, and no tie
    # occurs in a standard normal sample at this size with any real likelihood).
    np.testing.assert_array_equal(params.astype(np.float32),
                                  master.astype(ml_dtypes.bfloat16).astype(np.float32))
    joined = nnfast.join_master(params, remainders)
    assert joined.dtype == np.float32
    np.testing.assert_array_equal(bits32(joined), bits32(master))


def test_public_master_functions_validate():
    master = np.ones(4, np.float32)
    params, remainders = nnfast.split_master(master)
    with pytest.raises(TypeError, match="master"):
        nnfast.split_master([1.0, 2.0])
    with pytest.raises(TypeError, match="master"):
        nnfast.split_master(np.ones(4))
    with pytest.raises(TypeError, match="params"):
        nnfast.join_master(params.view(np.uint16), remainders)
    with pytest.raises(TypeError, match="remainders"):
        nnfast.join_master(params, remainders.astype(np.int32))
    with pytest.raises(ValueError, match="remainders"):
        nnfast.join_master(params, remainders[:3])


# --------------------------------------------------------------------------- Philox

@pytest.mark.parametrize("counter, key, expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert _core._philox(counter, key) == expected
    words = philox4x32_10(*(np.array([c], dtype=np.uint64) for c in counter), *key)
    assert tuple(int(w[0]) for w in words) == expected


def test_philox_validates():
    with pytest.raises(TypeError, match="counter"):
        _core._philox(5, (0, 0))
    with pytest.raises(ValueError, match="counter"):
        _core._philox((0, 0, 0), (0, 0))
    with pytest.raises(ValueError, match=r"key\[1\]"):
        _core._philox((0, 0, 0, 0), (0, 1 << 32))
    with pytest.raises(TypeError, match=r"key\[0\]"):
        _core._philox((0, 0, 0, 0), (0.5, 0))


# --------------------------------------------------------------------------- stochastic rounding

def stochastic_inputs(rng, dtype, n):
    """Finite values of every kind: random bit patterns, ordinary magnitudes, and binary16's
    subnormal and overflow ranges (which bfloat16 covers as ordinary values)."""
    x = random_floats(rng, n)
    x = x[np.isfinite(x)]
    pieces = [x, (rng.standard_normal(n) * 10).astype(np.float32),
              rng.uniform(-2.0 ** -13, 2.0 ** -13, n).astype(np.float32),
              rng.uniform(-2.0 ** -24, 2.0 ** -24, n).astype(np.float32),
              rng.uniform(65504.0, 65536.0, n).astype(np.float32),
              rng.uniform(-3.4028235e38, -3.38e38, n).astype(np.float32)]
    x = np.concatenate(pieces)
    if dtype == "float16":
        x = x[np.abs(x) < 65536.0]
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_rounding_follows_the_rule_with_the_contract_bits(isa, dtype, rng):
    x = stochastic_inputs(rng, dtype, 1 << 16)
    seed, step, tensor, first = (1 << 63) + 12345, (1 << 40) + 7, 3, (1 << 35) - 5
    out = _core._narrow(x, dtype, stochastic=True, seed=seed, step=step, tensor=tensor,
                        first_element=first)
    random16 = stochastic_bits(seed, step, tensor, first + np.arange(x.size, dtype=np.uint64))
    np.testing.assert_array_equal(out, reference_stochastic(x, dtype, random16))
    # Always one of the two neighbours: the truncation or the next magnitude.
    low = toward_zero(x, dtype)
    assert np.all((out.astype(np.int64) == low) | (out.astype(np.int64) == low + 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_rounding_specials(isa, dtype):
    x = np.concatenate([NANS, np.array([np.nan, np.inf, -np.inf], np.float32)])
    out = _core._narrow(x, dtype, stochastic=True, seed=99)
    nan = np.isnan(x)
    np.testing.assert_array_equal(out[nan], quiet_nan16(x[nan], dtype))
    np.testing.assert_array_equal(out[~nan], reference_narrow(x[~nan], dtype))
    if dtype == "float16":
        beyond = np.array([65536.0, -65536.0, 1e6, 3.4028235e38], np.float32)
        np.testing.assert_array_equal(_core._narrow(beyond, dtype, stochastic=True),
                                      np.array([0x7C00, 0xFC00, 0x7C00, 0x7C00], np.uint16))
        # Between the largest finite and 2^16: 65504 or infinity, both occurring.
        out = _core._narrow(np.full(4096, 65520.0, np.float32), dtype, stochastic=True, seed=5)
        assert set(np.unique(out)) == {0x7BFF, 0x7C00}


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_rounding_leaves_exact_values(isa, dtype):
    patterns = all_patterns()
    values = patterns.view(DTYPES[dtype]).astype(np.float32)
    keep = ~np.isnan(values)
    for seed in (0, 1, 2 ** 64 - 1):
        out = _core._narrow(values[keep], dtype, stochastic=True, seed=seed, step=seed // 2 + 3)
        np.testing.assert_array_equal(out, patterns[keep])


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_rounding_is_independent_of_tiling(isa, dtype, rng):
    x = stochastic_inputs(rng, dtype, 1000)
    whole = _core._narrow(x, dtype, stochastic=True, seed=7, step=11, tensor=2, first_element=13)
    cuts = np.unique(np.concatenate([[0, x.size], rng.integers(0, x.size, 40), [1, 2, 3, 9, 17, 300]]))
    pieces = [_core._narrow(x[a:b], dtype, stochastic=True, seed=7, step=11, tensor=2,
                            first_element=13 + a) for a, b in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    # ... and of the SIMD level: the same bits as the scalar path of the baseline set.
    assert _core.use_simd(ISAS[-1])
    try:
        baseline = _core._narrow(x, dtype, stochastic=True, seed=7, step=11, tensor=2, first_element=13)
    finally:
        assert _core.use_simd(isa)
    np.testing.assert_array_equal(baseline, whole)


@pytest.mark.parametrize("dtype, x", [
    ("bfloat16", 1.0 + 0.3 * 2.0 ** -7),        # frac ~ 0.3 of a bfloat16 place
    ("bfloat16", -3.0e-39),                     # a float32 subnormal
    ("float16", 1.0 + 0.7 * 2.0 ** -10),        # frac ~ 0.7 of a binary16 place
    ("float16", 0.37 * 2.0 ** -24),             # below the smallest binary16 subnormal
    ("float16", 65510.0),                       # between 65504 and 65536
])
def test_stochastic_rounding_is_unbiased(isa, dtype, x):
    """Over n draws the count rounded up is Binomial(n, p), p = floor(frac * 2^16) / 2^16:
    it must lie within 5 standard deviations of n p, and the mean stored value within
    5 sigma of x (plus the rule's resolution of 2^-16 of a place)."""
    x32 = np.float32(x)
    n_per_seed, seeds = 1 << 15, 8
    low = int(toward_zero(np.array([x32]), dtype)[0])
    low_value = MAGNITUDES[dtype][low & 0x7FFF]
    ulp = MAGNITUDES[dtype][(low & 0x7FFF) + 1] - low_value
    frac = (abs(float(x32)) - low_value) / ulp
    p = np.floor(frac * 65536.0) / 65536.0
    assert 0.0 < p < 1.0
    ups = 0
    for seed in range(seeds):
        out = _core._narrow(np.full(n_per_seed, x32), dtype, stochastic=True, seed=seed,
                            step=seed + 1)
        assert set(np.unique(out.astype(np.int64))) <= {low, low + 1}
        ups += int(np.count_nonzero(out.astype(np.int64) == low + 1))
    n = n_per_seed * seeds
    sigma = np.sqrt(n * p * (1.0 - p))
    assert abs(ups - n * p) <= 5.0 * sigma
    mean_magnitude = low_value + ulp * ups / n
    assert abs(mean_magnitude - abs(float(x32))) <= ulp * (5.0 * sigma / n + 2.0 ** -16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_bits_change_with_seed_step_tensor_and_element(isa, dtype):
    x = np.full(4096, np.float32(1.0 + 0.5 * 2.0 ** -7 + 0.5 * 2.0 ** -10))
    base = dict(stochastic=True, seed=1, step=1, tensor=0, first_element=0)
    reference = _core._narrow(x, dtype, **base)
    for change in (dict(seed=2), dict(seed=1 + (1 << 32)), dict(step=2), dict(tensor=1),
                   dict(first_element=8)):
        other = _core._narrow(x, dtype, **{**base, **change})
        assert np.count_nonzero(other != reference) > 1000, change
    # Deterministic: the same key gives the same bits.
    np.testing.assert_array_equal(_core._narrow(x, dtype, **base), reference)


# --------------------------------------------------------------------------- argument checks

def test_conversion_hooks_validate():
    x = np.ones(8, np.float32)
    with pytest.raises(TypeError, match="bits"):
        _core._widen(x, "bfloat16")
    with pytest.raises(TypeError, match="bits"):
        _core._widen([1, 2], "float16")
    with pytest.raises(ValueError, match="dtype"):
        _core._widen(np.ones(8, np.uint16), "float8")
    with pytest.raises(TypeError, match="x"):
        _core._narrow(np.ones(8), "bfloat16")
    with pytest.raises(TypeError, match="x"):
        _core._narrow(np.ones(8, np.float32).astype(">f4"), "bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        _core._narrow(x, "half")
    with pytest.raises(TypeError, match="stochastic"):
        _core._narrow(x, "bfloat16", stochastic=1)
    with pytest.raises(ValueError, match="seed"):
        _core._narrow(x, "bfloat16", stochastic=True, seed=-1)
    with pytest.raises(ValueError, match="step"):
        _core._narrow(x, "bfloat16", stochastic=True, step=1 << 64)
    with pytest.raises(TypeError, match="seed"):
        _core._narrow(x, "bfloat16", stochastic=True, seed=1.5)
    with pytest.raises(ValueError, match="tensor"):
        _core._narrow(x, "bfloat16", stochastic=True, tensor=1 << 32)
    with pytest.raises(ValueError, match="first_element"):
        _core._narrow(x, "bfloat16", stochastic=True, first_element=-1)
    with pytest.raises(ValueError, match="first_element"):
        _core._narrow(x, "bfloat16", stochastic=True, first_element=(1 << 63) - 4)
    with pytest.raises(TypeError, match="x"):
        _core._split_masters(np.ones(3))
    with pytest.raises(TypeError, match="remainders"):
        _core._join_masters(np.ones(3, np.uint16), np.ones(3, np.uint16))
    with pytest.raises(ValueError, match="remainders"):
        _core._join_masters(np.ones(3, np.uint16), np.ones(4, np.int16))
