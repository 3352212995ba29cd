"""Optimizer steps with per-role dtypes: 16-bit params, grads and states, float32 masters,
int16 remainders and stochastic rounding, against the float64 reference.

The accuracy contract: a 16-bit output is the float64 result of the same inputs rounded once
to its dtype, within the float32 kernel's error bound before that rounding (the running bound
of ``_helpers.Bound`` at float32's unit roundoff). So an output o must satisfy
``round(ref - tol) <= o <= round(ref + tol)`` (rounding is monotone), and for stochastic
rounding the same with rounding down at the low end and up at the high end. Float32 outputs
(masters, float32 states) are checked as the float32 kernels are.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ml_dtypes import bfloat16

import nnfast
from nnfast import _core
from _helpers import (
    OPTIMIZER_CASES,
    SAFETY,
    BoundContext,
    assert_close,
    bound_step,
    call_step,
    case_id,
    make_states,
    num_threads,
    quiet,
    reference_step,
    state_names,
)

HALF = (np.dtype(bfloat16), np.dtype(np.float16))
HALF_IDS = ["bfloat16", "float16"]

#: A case of each optimizer and variant (every state list and option path of the kernels).
CASES = [c for c in OPTIMIZER_CASES if c[0] in ("sgd", "sgdm", "adagrad", "rmsprop", "adam",
                                                 "adamw", "nadam", "radam", "lamb", "lion",
                                                 "adamax", "adadelta")]


def as16(x64, dtype):
    """float64 values rounded once to a 16-bit dtype (through float32, which for a value
    already in float32 changes nothing; monotone either way)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x64, np.float64).astype(np.float32).astype(dtype)


def _ordinal(a):
    """16-bit floats as integers ordered as their values (-0 and +0 both 0)."""
    b = np.ascontiguousarray(a).view(np.uint16).astype(np.int64)
    return np.where(b & 0x8000, -(b & 0x7FFF), b)


def _from_ordinal(k, dtype):
    b = np.where(k < 0, (-k) | 0x8000, k).astype(np.uint16)
    return b.view(dtype)


def neighbours(x64, dtype):
    """(down, up): the 16-bit values next to each x at or below it and at or above it."""
    r = as16(x64, dtype)
    r64 = r.astype(np.float64)
    k = _ordinal(r)
    down = np.where(r64 > x64, _from_ordinal(k - 1, dtype).astype(np.float64), r64)
    up = np.where(r64 < x64, _from_ordinal(k + 1, dtype).astype(np.float64), r64)
    return down, up


def assert_rounded_within(got, ref, tol, what, stochastic=False):
    """got (16-bit) is ref +- tol rounded once: to nearest, or (stochastic) either way."""
    got64 = np.asarray(got).astype(np.float64)
    ref = np.asarray(ref, np.float64)
    tol = np.broadcast_to(np.asarray(tol, np.float64), ref.shape)
    dtype = np.asarray(got).dtype
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got64), nan), f"{what}: NaN where the reference has none, or not where it has"
    with np.errstate(invalid="ignore", over="ignore"):
        lo, hi = ref - tol, ref + tol
        if stochastic:
            low, high = neighbours(lo, dtype)[0], neighbours(hi, dtype)[1]
        else:
            low, high = as16(lo, dtype).astype(np.float64), as16(hi, dtype).astype(np.float64)
        # an infinite reference is met exactly; a finite one without a finite bound, always
        within = np.where(np.isinf(ref), got64 == ref,
                          ~np.isfinite(tol) | ((got64 >= low) & (got64 <= high)))
    ok = nan | within
    if not ok.all():
        i = np.flatnonzero(~ok.ravel())[0]
        raise AssertionError(
            f"{what}: {np.count_nonzero(~ok)} of {ok.size} elements outside the rounded "
            f"bound; first at {i}: got {got64.ravel()[i]!r}, reference {ref.ravel()[i]!r} "
            f"+- {tol.ravel()[i]:.3e} rounds to [{low.ravel()[i]!r}, {high.ravel()[i]!r}]")


def split(master):
    """The remainder encoding, from its definition: param = the high half rounded to
    nearest, remainder = the low half as int16."""
    bits = np.ascontiguousarray(master, np.float32).view(np.uint32)
    low = (bits & 0xFFFF).astype(np.uint16)
    high = ((bits >> 16) + (low >= 0x8000)).astype(np.uint16)
    return high.view(bfloat16), low.view(np.int16)


def join(params, remainders):
    high = np.ascontiguousarray(params).view(np.uint16).astype(np.uint32)
    low = np.ascontiguousarray(remainders).view(np.uint16).astype(np.uint32)
    high = np.where(np.ascontiguousarray(remainders) < 0, (high - 1) & 0xFFFF, high)
    return (high << 16 | low).view(np.float32)


def problem(rng, kind, hp, n, params_dtype, grads_dtype, states_dtype):
    """Inputs of one tensor, each already in its storage dtype."""
    p = rng.standard_normal(n).astype(np.float32).astype(params_dtype)
    g = rng.standard_normal(n).astype(np.float32).astype(grads_dtype)
    states = {k: v.astype(np.float32).astype(states_dtype)
              for k, v in make_states(rng, kind, hp, (n,), np.float64).items()}
    return p, g, states


def expected(kind, hp, p, g, states):
    """(reference outputs, float32 bounds) for inputs given in any storage dtypes."""
    ctx = BoundContext(np.float32)
    p64 = np.asarray(p, np.float64)
    g64 = np.asarray(g, np.float64)
    s64 = {k: np.asarray(v, np.float64) for k, v in states.items()}
    with quiet():
        bounds = bound_step(ctx, kind, ctx.exact(p64), ctx.exact(g64),
                            {k: ctx.exact(v) for k, v in s64.items()}, hp)
    reference_step(kind, p64, g64, s64, hp)
    return {"params": (p64, bounds["params"]), **{k: (s64[k], bounds[k]) for k in s64}}


def float32_twin(kind, hp, p, g, states):
    """The outputs of the float32 kernel on the same (widened) inputs: what a 16-bit step
    must store, each rounded once."""
    twin = {"params": p.astype(np.float32), **{k: v.astype(np.float32) for k, v in states.items()}}
    call_step(nnfast, kind, twin["params"], g.astype(np.float32),
              {k: twin[k] for k in states}, hp)
    return twin


def _storage_bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32}[a.itemsize])


def assert_rounded_twin(got, twin, what):
    """Each 16-bit output is its float32 twin rounded to nearest once (NaN: any NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        want = twin.astype(got.dtype)
    nan = np.isnan(want.astype(np.float32))
    assert np.array_equal(np.isnan(got.astype(np.float32)), nan), f"{what}: NaNs differ"
    diff = (_storage_bits(got) != _storage_bits(want)) & ~nan
    assert not diff.any(), (f"{what}: {diff.sum()} elements are not the float32 result rounded "
                            f"once, first at {np.flatnonzero(diff)[:3]}")


def check_outputs(kind, hp, outputs, got, what, stochastic_params=False, twin=None,
                  comparable=None):
    """Each output against the reference bound (rounded once where it is 16-bit) and, given
    the float32 twin, against the twin's bits rounded once. ``comparable`` masks the
    elements whose float32 intermediates stay finite (the reference bound holds there)."""
    for name, (ref, bound) in outputs.items():
        out = got[name]
        label = f"{kind}{hp} {what} {name} ({out.dtype})"
        tol = SAFETY * bound.e
        if twin is not None and out.dtype in HALF and not (stochastic_params and name == "params"):
            assert_rounded_twin(out, twin[name], label)
        if comparable is not None:
            ref, tol, out = ref[comparable], tol[comparable], out[comparable]
        if out.dtype in HALF:
            assert_rounded_within(out, ref, tol, label,
                                  stochastic=stochastic_params and name == "params")
        else:
            assert_close(out, ref, tol, label)


#: (params, grads, states) dtype combinations the engine runs without a master.
ROLE_COMBINATIONS = [
    (bfloat16, bfloat16, bfloat16),     # torch fused Adam on a bf16 model
    (bfloat16, bfloat16, np.float32),   # DeepSpeed's CPU Adam configuration
    (bfloat16, np.float32, np.float32),
    (bfloat16, np.float32, bfloat16),
    (np.float16, np.float16, np.float16),
    (np.float16, np.float16, np.float32),
    (np.float16, np.float32, bfloat16),
    (np.float32, np.float32, bfloat16),
]
ROLE_IDS = ["p{}-g{}-s{}".format(*(np.dtype(d).name for d in c)) for c in ROLE_COMBINATIONS]


@pytest.mark.parametrize("dtypes", ROLE_COMBINATIONS, ids=ROLE_IDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("n", [1, 17, 1000, 70_001])
def test_role_dtypes_match_the_reference(rng, case, dtypes, n):
    kind, hp = case
    p, g, states = problem(rng, kind, hp, n, *dtypes)
    want = expected(kind, hp, p, g, states)
    twin = float32_twin(kind, hp, p, g, states)
    call_step(nnfast, kind, p, g, states, hp)
    check_outputs(kind, hp, want, {"params": p, **states}, f"n={n}", twin=twin)


@pytest.mark.parametrize("params_dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("grads_dtype", [bfloat16, np.float16, np.float32])
@pytest.mark.parametrize("states_dtype", [np.float32, bfloat16])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_master_weights_are_the_float32_step_bit_for_bit(rng, case, params_dtype, grads_dtype,
                                                          states_dtype):
    """With master_params the masters get exactly the bits a float32 run of the same step
    gives them, and the 16-bit params are the masters rounded to nearest."""
    kind, hp = case
    n = 5000
    master = rng.standard_normal(n).astype(np.float32)
    params = master.astype(params_dtype)
    grads = rng.standard_normal(n).astype(np.float32).astype(grads_dtype)
    states = {k: v.astype(np.float32).astype(states_dtype)
              for k, v in make_states(rng, kind, hp, (n,), np.float64).items()}
    twin, twin_states = master.copy(), {k: v.copy() for k, v in states.items()}
    call_step(nnfast, kind, params, grads, states, dict(hp, master_params=master))
    call_step(nnfast, kind, twin, grads.astype(np.float32), twin_states, hp)
    np.testing.assert_array_equal(master.view(np.uint32), twin.view(np.uint32))
    np.testing.assert_array_equal(params.view(np.uint16), twin.astype(params_dtype).view(np.uint16))
    for k in states:
        np.testing.assert_array_equal(states[k].view(np.uint16 if states[k].itemsize == 2 else np.uint32),
                                      twin_states[k].view(np.uint16 if states[k].itemsize == 2 else np.uint32))


@pytest.mark.parametrize("states_dtype", [np.float32, bfloat16])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_remainders_are_the_master_step_bit_for_bit(rng, case, states_dtype):
    """(bf16 param, int16 remainder) is the float32 master bit for bit, before and after."""
    kind, hp = case
    n = 3001
    master = rng.standard_normal(n).astype(np.float32)
    master[:6] = [0.0, -0.0, 1.0, -1.0, np.float32(1 + 2**-9), -np.float32(1 + 2**-8 + 2**-20)]
    params, remainders = split(master)
    np.testing.assert_array_equal(join(params, remainders).view(np.uint32), master.view(np.uint32))
    grads = rng.standard_normal(n).astype(bfloat16)
    states = {k: v.astype(np.float32).astype(states_dtype)
              for k, v in make_states(rng, kind, hp, (n,), np.float64).items()}
    twin, twin_states = master.copy(), {k: v.copy() for k, v in states.items()}
    call_step(nnfast, kind, params, grads, states, dict(hp, param_remainders=remainders))
    call_step(nnfast, kind, twin, grads.astype(np.float32), twin_states, hp)
    np.testing.assert_array_equal(join(params, remainders).view(np.uint32), twin.view(np.uint32))
    expected_params, expected_remainders = split(twin)
    np.testing.assert_array_equal(params.view(np.uint16), expected_params.view(np.uint16))
    np.testing.assert_array_equal(remainders, expected_remainders)


def test_remainder_encoding_round_trips_every_high_half(rng):
    """join(split(x)) == x for x with every high half and random, tie and extreme low halves."""
    high = np.arange(1 << 16, dtype=np.uint32)
    for low in (0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF):
        bits = (high << 16 | low).astype(np.uint32)
        p, r = split(bits.view(np.float32))
        np.testing.assert_array_equal(join(p, r).view(np.uint32), bits)
    bits = rng.integers(0, 1 << 32, 100_000, dtype=np.uint64).astype(np.uint32)
    p, r = split(bits.view(np.float32))
    np.testing.assert_array_equal(join(p, r).view(np.uint32), bits)


# --------------------------------------------------------------------------- edge values


def _edge_values(dtype):
    info = np.finfo(dtype)
    tiny_sub = float(info.smallest_subnormal)
    big = float(info.max)
    return np.array([0.0, -0.0, tiny_sub, -tiny_sub, 3 * tiny_sub, float(info.tiny),
                     big, -big, 1.0, -1.0, 1.0 + float(info.eps), 2.0 - float(info.eps),
                     np.nan, np.inf, -np.inf, 65504.0 if dtype == np.float16 else 3e38, 0.5],
                    np.float32).astype(dtype)


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("sgd", "sgdm", "adam")],
                         ids=case_id)
def test_edge_values_round_as_the_contract_says(rng, case, dtype):
    """16-bit subnormals, the largest finite values, values one ulp from a binade, NaN and
    infinities, in params and grads, each against the rounded reference."""
    kind, hp = case
    edges = _edge_values(dtype)
    p = np.repeat(edges, len(edges))
    g = np.tile(edges, len(edges))
    states = {k: v.astype(np.float32).astype(dtype)
              for k, v in make_states(rng, kind, hp, p.shape, np.float64).items()}
    want = expected(kind, hp, p, g, states)
    twin = float32_twin(kind, hp, p, g, states)
    # (bfloat16's largest values square beyond float32's range: there the float32 twin,
    # not the float64 reference, says what the kernel computes)
    comparable = (np.abs(p.astype(np.float64)) < 1e18) & (np.abs(g.astype(np.float64)) < 1e18)
    call_step(nnfast, kind, p, g, states, hp)
    check_outputs(kind, hp, want, {"params": p, **states}, "edge values", twin=twin,
                  comparable=comparable)


def test_float16_overflow_is_inf_and_nan_stays_nan():
    p = np.array([65504.0, -65504.0, 60000.0, np.nan], np.float16)
    g = np.array([-16.0, 16.0, -1e4, 1.0], np.float16)
    nnfast.sgd_step(p, g, lr=1.0)
    # 65520 is the first value that rounds to inf; 65504 + 16 = 65520 ties away to inf
    assert p[0] == np.inf and p[1] == -np.inf and p[2] == np.inf and np.isnan(p[3])


# --------------------------------------------------------------------------- roles refused


def _adam(p, g, m, v, **kw):
    nnfast.adam_step(p, g, m, v, step=1, lr=0.1, **kw)


@pytest.mark.parametrize("params, grads, states, master, match", [
    (np.float64, np.float32, np.float64, None, r"grads\[0\]: dtype float32 is not allowed"),
    (np.float64, np.float64, np.float32, None, r"exp_avgs\[0\]: .*float64 params are float64"),
    (np.float32, bfloat16, np.float32, None, r"grads\[0\]: dtype bfloat16 is not allowed"),
    (bfloat16, np.float16, np.float32, None, r"grads\[0\]: dtype float16 is not allowed"),
    (bfloat16, bfloat16, np.float16, None, r"exp_avgs\[0\]: dtype float16 is not allowed"),
    (np.float32, np.float32, np.float16, None, r"exp_avgs\[0\]: dtype float16 is not allowed"),
    (np.float32, np.float32, np.float32, np.float32, r"master_params go with bfloat16 or float16"),
    (bfloat16, bfloat16, np.float32, np.float16, r"master_params\[0\]: .*are float32"),
    (np.int16, np.int16, np.int16, None, r"params\[0\]: dtype int16 is not allowed"),
], ids=["f64-grads-f32", "f64-states-f32", "f32-grads-bf16", "bf16-grads-f16",
        "bf16-states-f16", "f32-states-f16", "master-for-f32", "master-f16", "int16-params"])
def test_forbidden_role_combinations_are_type_errors(params, grads, states, master, match):
    p = np.ones(5, params)
    g, m, v = np.ones(5, grads), np.zeros(5, states), np.zeros(5, states)
    before = [a.copy() for a in (p, m, v)]
    kw = {} if master is None else {"master_params": np.ones(5, master)}
    with pytest.raises(TypeError, match=match):
        _adam(p, g, m, v, **kw)
    for a, b in zip((p, m, v), before):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_mixed_state_dtypes_are_a_type_error():
    p, g = np.ones(5, bfloat16), np.ones(5, bfloat16)
    with pytest.raises(TypeError, match=r"exp_avg_sqs\[0\]: .*share one dtype, here float32"):
        _adam(p, g, np.zeros(5, np.float32), np.zeros(5, bfloat16))


def test_storage_options_that_contradict_are_value_errors():
    p, g, m, v = np.ones(5, bfloat16), np.ones(5, bfloat16), np.zeros(5, np.float32), np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="give one or neither"):
        _adam(p, g, m, v, master_params=np.ones(5, np.float32),
              param_remainders=np.zeros(5, np.int16))
    with pytest.raises(ValueError, match="stochastic_rounding: applies to 16-bit params without"):
        _adam(p, g, m, v, master_params=np.ones(5, np.float32), stochastic_rounding=True)
    with pytest.raises(ValueError, match="stochastic_rounding: applies to bfloat16 or float16"):
        _adam(np.ones(5, np.float32), np.ones(5, np.float32), m, v, stochastic_rounding=True)
    with pytest.raises(TypeError, match="param_remainders go with bfloat16 params"):
        _adam(np.ones(5, np.float16), np.ones(5, np.float16), m, v,
              param_remainders=np.zeros(5, np.int16))
    with pytest.raises(ValueError, match="seed: must lie in"):
        _adam(p, g, m, v, stochastic_rounding=True, seed=-1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'master_param'"):
        _core.adam_step(params=p, grads=g, exp_avgs=m, exp_avg_sqs=v, max_exp_avg_sqs=None,
                        step=1, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0,
                        l1=0.0, decoupled_weight_decay=False, amsgrad=False, maximize=False,
                        master_params=None, param_remainders=None, stochastic_rounding=False,
                        seed=0, grad_scale=1.0, found_inf=None, store_scaled_grads=False,
                        master_param=None)
    np.testing.assert_array_equal(p.astype(np.float32), 1.0)


# --------------------------------------------------------------------------- per-tensor steps


def test_per_tensor_steps_equal_separate_calls(rng):
    shapes, steps = [(100,), (3, 7), (1,)], [1, 5, 1000]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    m = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    v = [rng.random(s).astype(np.float32) for s in shapes]
    twins = [[a.copy() for a in lst] for lst in (params, m, v)]
    nnfast.adam_step(params, grads, m, v, step=steps, lr=0.01)
    for i, t in enumerate(steps):
        nnfast.adam_step(twins[0][i], grads[i], twins[1][i], twins[2][i], step=t, lr=0.01)
    for got, want in zip((params, m, v), twins):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_step_sequences_of_the_wrong_length_or_value_are_refused():
    def arrays():
        return [np.ones(3, np.float32), np.ones(2, np.float32)]
    with pytest.raises(ValueError, match=r"step: expected an integer or 2 of them"):
        nnfast.adam_step(arrays(), arrays(), arrays(), arrays(), step=[1])
    with pytest.raises(ValueError, match=r"step\[1\]: must be >= 1"):
        nnfast.adam_step(arrays(), arrays(), arrays(), arrays(), step=[1, 0])
    with pytest.raises(ValueError, match=r"first_step: expected a bool or 2 of them"):
        nnfast.sgdm_step(arrays(), arrays(), arrays(), lr=0.1, first_step=[True])


def test_sgdm_first_step_per_tensor(rng):
    p = [np.ones(4, np.float32), np.ones(4, np.float32)]
    g = [np.full(4, 0.5, np.float32)] * 2
    b = [np.full(4, np.inf, np.float32), np.full(4, 2.0, np.float32)]
    nnfast.sgdm_step(p, g, b, lr=0.1, momentum=0.9, first_step=[True, False])
    np.testing.assert_array_equal(b[0], 0.5)
    np.testing.assert_allclose(b[1], 0.9 * 2.0 + 0.5, rtol=1e-7)


# --------------------------------------------------------------------------- stochastic rounding


def _sgd_stochastic(p, g, seed, step=1):
    nnfast.sgd_step(p, g, lr=1.0, stochastic_rounding=True, seed=seed, step=step)


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
def test_stochastic_rounding_is_the_same_for_any_threads_and_simd(rng, dtype):
    n = 300_001
    p0 = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 1e-3).astype(np.float32)
    results = []
    before = nnfast.info()["simd"]
    try:
        for isa in _core.supported_simd():
            assert _core.use_simd(isa)
            for threads in (1, 2, 3):
                with num_threads(threads):
                    p = p0.copy()
                    _sgd_stochastic(p, g, seed=12345, step=7)
                    results.append((isa, threads, p.view(np.uint16).copy()))
    finally:
        assert _core.use_simd(before)
    for isa, threads, bits in results[1:]:
        np.testing.assert_array_equal(bits, results[0][2], err_msg=f"{isa}, {threads} threads")
    # and the result is one of the two neighbours of the float32 update
    exact = p0.astype(np.float64) - g.astype(np.float64)
    down, up = neighbours(exact.astype(np.float32).astype(np.float64), dtype)
    got = results[0][2].view(dtype).astype(np.float64)
    assert np.all((got == down) | (got == up))


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
def test_stochastic_rounding_bits_depend_on_seed_step_and_tensor(rng, dtype):
    p0 = np.ones(4096, dtype)
    g = np.full(4096, -float(np.finfo(dtype).eps) / 8, np.float32)  # 1 + ulp/8: between neighbours
    runs = {}
    for seed, step in [(1, 1), (2, 1), (1, 2)]:
        p = p0.copy()
        _sgd_stochastic(p, g, seed, step)
        runs[seed, step] = p.view(np.uint16).copy()
    assert not np.array_equal(runs[1, 1], runs[2, 1])
    assert not np.array_equal(runs[1, 1], runs[1, 2])
    p = p0.copy()
    _sgd_stochastic(p, g, 1, 1)
    np.testing.assert_array_equal(p.view(np.uint16), runs[1, 1])  # deterministic
    # the same values as the second tensor of a call get other bits than as the first
    a, b = p0.copy(), p0.copy()
    nnfast.sgd_step([a, b], [g, g], lr=1.0, stochastic_rounding=True, seed=1)
    np.testing.assert_array_equal(a.view(np.uint16), runs[1, 1])
    assert not np.array_equal(b.view(np.uint16), runs[1, 1])


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("fraction", [1 / 8, 1 / 2, 3 / 4])
def test_stochastic_rounding_is_unbiased(dtype, fraction):
    """1 + fraction * ulp(1) rounds up in a fraction of the elements: within 5 binomial
    standard deviations over 2^18 elements (each with its own random bits)."""
    n = 1 << 18
    ulp = float(np.finfo(dtype).eps)
    p = np.ones(n, dtype)
    g = np.full(n, -fraction * ulp, np.float32)
    _sgd_stochastic(p, g, seed=2024)
    up = np.mean(p.astype(np.float64) > 1.0)
    sigma = np.sqrt(fraction * (1 - fraction) / n)
    assert abs(up - fraction) <= 5 * sigma, (up, fraction, sigma)
    assert np.all((p.astype(np.float64) == 1.0) | (p.astype(np.float64) == 1.0 + ulp))


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
def test_stochastic_rounding_keeps_exact_values_and_specials(dtype):
    p = np.array([1.0, -2.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 0.5], dtype)
    g = np.zeros(p.shape, np.float32)
    before = p.view(np.uint16).copy()
    _sgd_stochastic(p, g, seed=7)
    got = p.view(np.uint16)
    np.testing.assert_array_equal(got[:6], before[:6])
    assert np.isnan(p[6]) and got[7] == before[7]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_random_roles_and_options(rng, data):
    kind, hp = data.draw(st.sampled_from(CASES), label="case")
    dtypes = data.draw(st.sampled_from(ROLE_COMBINATIONS), label="dtypes")
    n = data.draw(st.integers(0, 300), label="n")
    scale = data.draw(st.sampled_from([1e-3, 1.0, 30.0]), label="scale")
    p, g, states = problem(rng, kind, hp, n, *dtypes)
    p[...] = (p.astype(np.float64) * scale).astype(np.float32).astype(p.dtype)
    want = expected(kind, hp, p, g, states)
    twin = float32_twin(kind, hp, p, g, states)
    call_step(nnfast, kind, p, g, states, hp)
    check_outputs(kind, hp, want, {"params": p, **states}, f"n={n} scale={scale}", twin=twin)


def test_state_names_cover_the_kernel_operands():
    """The helper table names every state the kernels take (a drift would skip a check)."""
    for kind, hp in CASES:
        for name in state_names(kind, hp):
            assert name in ("momentum_buffers", "sums", "square_avgs", "grad_avgs",
                            "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "exp_infs",
                            "acc_deltas")


# --------------------------------------------------------------------------- nnfast.optim


def test_numpy_optimizers_take_16bit_params_and_storage_options(rng):
    """nnfast.optim's classes on bfloat16 parameters: masters follow a float32 twin exactly,
    remainders encode the same masters, and a checkpoint resumes bit for bit."""
    from nnfast import optim
    shape = (257,)
    start = rng.standard_normal(shape).astype(bfloat16).astype(np.float32)  # masters start at the params
    grads = [rng.standard_normal(shape).astype(bfloat16) for _ in range(8)]
    twin = optim.AdamW([start.copy()], lr=1e-2)
    masters = optim.AdamW([start.astype(bfloat16)], lr=1e-2, master_weights=True,
                          state_dtype=np.float32)
    remainders = optim.AdamW([start.astype(bfloat16)], lr=1e-2, store_param_remainders=True,
                             state_dtype=np.float32)
    for k, g in enumerate(grads):
        twin.step([g.astype(np.float32)])
        masters.step([g])
        remainders.step([g])
        if k == 3:
            checkpoint = masters.state_dict()
    master = masters.state[0]["master_param"]
    np.testing.assert_array_equal(master.view(np.uint32), twin.params[0].view(np.uint32))
    np.testing.assert_array_equal(masters.params[0].view(np.uint16), master.astype(bfloat16).view(np.uint16))
    encoded = join(remainders.params[0], remainders.state[0]["param_remainder"])
    np.testing.assert_array_equal(encoded.view(np.uint32), master.view(np.uint32))
    resumed = optim.AdamW([np.zeros(shape, bfloat16)], lr=1e-2, master_weights=True,
                          state_dtype=np.float32)
    resumed.load_state_dict(checkpoint)
    resumed.params[0][...] = checkpoint["state"][0]["master_param"].astype(bfloat16)
    for g in grads[4:]:
        resumed.step([g])
    np.testing.assert_array_equal(resumed.state[0]["master_param"].view(np.uint32),
                                  master.view(np.uint32))


def test_numpy_optimizer_storage_options_are_checked():
    from nnfast import optim
    with pytest.raises(ValueError, match="master_weights: for bfloat16 or float16"):
        optim.Adam([np.zeros(3, np.float32)], master_weights=True)
    with pytest.raises(ValueError, match="store_param_remainders: for bfloat16"):
        optim.SGD([np.zeros(3, np.float16)], store_param_remainders=True)
    with pytest.raises(TypeError, match="state_dtype"):
        optim.Adam([np.zeros(3, bfloat16)], state_dtype=np.float16)
    with pytest.raises(TypeError, match="share one dtype"):
        optim.Adam([np.zeros(3, bfloat16), np.zeros(3, np.float32)])
    with pytest.raises(TypeError, match=r"state_dtype: .*float64 parameters: float64"):
        optim.Adam([np.zeros(3, np.float64)], state_dtype=np.float32)
    opt = optim.Adam([np.zeros(3, bfloat16)], stochastic_rounding=True)
    assert isinstance(opt.hyperparameters["seed"], int)


@pytest.mark.parametrize("layout", ["bf16", "bf16-f32-states", "master", "remainders", "f16",
                                    "f16-f32-grads", "stochastic"])
def test_every_simd_level_stores_the_same_bits(rng, layout):
    """Each storage layout (converted in registers, or tile by tile) gives the same bits on
    every instruction set, for a size that is no multiple of any vector width."""
    n = 70_001
    params_dtype = np.float16 if layout.startswith("f16") else bfloat16
    grads_dtype = np.float32 if layout == "f16-f32-grads" else params_dtype
    states_dtype = np.float32 if layout in ("bf16-f32-states", "master", "remainders") else params_dtype
    p0 = rng.standard_normal(n).astype(params_dtype)
    g = rng.standard_normal(n).astype(grads_dtype)
    m0 = (rng.standard_normal(n) * 0.1).astype(states_dtype)
    v0 = rng.random(n).astype(states_dtype)
    master0 = rng.standard_normal(n).astype(np.float32)
    results = []
    before = nnfast.info()["simd"]
    try:
        for isa in _core.supported_simd():
            assert _core.use_simd(isa)
            p, m, v, master = p0.copy(), m0.copy(), v0.copy(), master0.copy()
            storage = {}
            if layout == "master":
                storage["master_params"] = master
            elif layout == "remainders":
                p, remainder = split(master)
                storage["param_remainders"] = remainder
            elif layout == "stochastic":
                storage.update(stochastic_rounding=True, seed=99)
            nnfast.adam_step(p, g, m, v, step=3, lr=1e-2, weight_decay=0.01, **storage)
            outputs = [p, m, v] + list(storage.values())[:1] if storage and layout != "stochastic" else [p, m, v]
            results.append((isa, [np.ascontiguousarray(a).view(np.uint8).copy() for a in outputs]))
    finally:
        assert _core.use_simd(before)
    for isa, arrays in results[1:]:
        for a, b in zip(arrays, results[0][1]):
            np.testing.assert_array_equal(a, b, err_msg=f"{layout} on {isa}")
