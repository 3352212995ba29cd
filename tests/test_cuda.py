"""nnfast on GPU arrays (nnfast._cuda), against nnfast.reference and the CPU kernels.

Two parts:

* The CUDA module's own logic that runs without a GPU: import, ``nnfast.cuda`` and
  ``info()`` telling the truth, routing a call to the module of its arrays, and the
  validation of GPU arrays (protocols, dtypes, contiguity, mixing host and GPU arrays),
  on stand-in objects that speak the CUDA array interface. These run wherever the CUDA
  module was built (CI builds it: nvcc is there).
* Every kernel on real GPU arrays, through PyTorch CUDA tensors and CuPy arrays,
  whichever is installed: compared with the float64 reference under the tolerances of
  _helpers.py (the same as the CPU tests), and with the CPU kernels on the same inputs.
  These skip, saying why, where no GPU (or neither library) is present.
"""

import ml_dtypes
import numpy as np
import pytest
from ml_dtypes import bfloat16

import nnfast
from _helpers import (
    BACKWARD,
    FORWARD,
    OPTIMIZER_CASES,
    CASE_IDS,
    SPECIAL,
    assert_backward,
    assert_close,
    assert_forward,
    assert_same_bits,
    backward_inputs,
    call_step,
    check_loss,
    compare_step,
    expected_cross_entropy,
    expected_mse,
    expected_softmax_cross_entropy,
    expected_step,
    make_states,
    quiet,
    random_problem,
    randn,
    state_names,
    sum_rtol,
)
from nnfast import _backend, reference

pytestmark = pytest.mark.skipif(
    not nnfast.cuda.is_built(),
    reason="nnfast was built without its CUDA module (no nvcc at build time)")

DTYPE_IDS = ["f32", "f64"]
FLOATS = (np.float32, np.float64)


# --------------------------------------------------------------------------- no GPU needed


class FakeGpuArray:
    """A stand-in that speaks the CUDA array interface v3 (no memory behind it)."""

    def __init__(self, shape=(0,), typestr="<f4", pointer=0, readonly=False, strides=None,
                 mask=None, stream=None):
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "data": (pointer, readonly),
            "version": 3, "strides": strides, "stream": stream, "mask": mask}


class FakeDlpackGpuArray:
    """A stand-in that offers only DLPack and claims a CUDA device; its capsule is a NumPy
    array's (host memory, so only validation and empty calls may use it)."""

    def __init__(self, array):
        self.array = array

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, stream=None):
        assert stream == 1, "the call's stream (legacy default) is passed to the producer"
        return self.array.__dlpack__()


def test_dlpack_gpu_arrays_are_read():
    empty = FakeDlpackGpuArray(np.zeros(0, np.float32))
    assert _backend.is_gpu_array(empty)
    nnfast.sgd_step(empty, FakeDlpackGpuArray(np.zeros(0, np.float32)), lr=0.1)
    out = FakeDlpackGpuArray(np.zeros((0, 3), np.float64))
    assert nnfast.tanh(FakeDlpackGpuArray(np.zeros((0, 3), np.float64)), out=out) is out


def test_dlpack_dtype_and_layout_are_checked():
    with pytest.raises(TypeError, match=r"x: dtype DLPack code 0, 32 bits is not supported"):
        nnfast.relu(FakeDlpackGpuArray(np.zeros(0, np.int32)))
    strided = np.zeros((4, 6), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="x: must be C-contiguous"):
        nnfast.relu(FakeDlpackGpuArray(strided), out=FakeDlpackGpuArray(np.zeros((4, 3), np.float32)))


def test_cuda_facts_agree():
    facts = nnfast.info()["cuda"]
    assert facts["built"] is True
    assert facts["devices"] == nnfast.cuda.device_count() >= 0
    assert nnfast.cuda.is_available() == (facts["devices"] > 0)
    assert facts["architectures"] and facts["cuda_runtime"] >= 12010


def test_host_arrays_run_on_the_cpu_module():
    a = np.zeros(3, np.float32)
    assert _backend.module_for(a) is nnfast._core
    assert _backend.module_for([a, a]) is nnfast._core
    assert _backend.module_for([]) is nnfast._core


def test_gpu_arrays_run_on_the_cuda_module():
    assert _backend.is_gpu_array(FakeGpuArray())
    assert not _backend.is_gpu_array(np.zeros(2))  # DLPack, but on the CPU
    assert _backend.module_for([FakeGpuArray()]) is nnfast._cuda


def test_empty_gpu_call_is_a_no_op():
    # empty arrays have no device to run on: validation alone, then nothing to launch
    nnfast.sgd_step(FakeGpuArray(), FakeGpuArray(), lr=0.1)
    nnfast.adam_step([FakeGpuArray()], [FakeGpuArray()], [FakeGpuArray()], [FakeGpuArray()],
                     step=1, lr=1e-3)
    out = FakeGpuArray()
    assert nnfast.relu(FakeGpuArray(), out=out) is out


def test_empty_gpu_adafactor_call_is_a_no_op():
    # factored (2, 0, 0) and unfactored (0,) stand-ins (every state empty too): checked
    # whole, then nothing to launch
    nnfast.adafactor_step([FakeGpuArray((2, 0, 0)), FakeGpuArray((0,))],
                          [FakeGpuArray((2, 0, 0)), FakeGpuArray((0,))],
                          [FakeGpuArray((2, 0, 1)), None], [FakeGpuArray((2, 1, 0)), None],
                          [None, FakeGpuArray((0,))], step=1)
    with pytest.raises(ValueError, match=r"variances\[0\]: required for params of 0 or 1 dims"):
        nnfast.adafactor_step([FakeGpuArray((0,))], [FakeGpuArray((0,))], [None], [None], [None],
                              step=1)


def test_host_array_in_a_gpu_call_is_a_value_error():
    with pytest.raises(ValueError, match=r"grads\[0\]: a host array \(ndarray\) in a call on GPU"):
        nnfast.sgd_step(FakeGpuArray(), np.zeros(0, np.float32), lr=0.1)


def test_gpu_array_in_a_host_call_is_a_value_error():
    p = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"grads\[1\]: a GPU array \(FakeGpuArray\)"):
        nnfast.sgd_step([p, p.copy()], [np.ones(4, np.float32), FakeGpuArray((4,))], lr=0.1)
    assert (p == 1).all(), "nothing may be written"


def test_torch_cpu_tensor_in_a_gpu_call_is_a_value_error():
    torch = pytest.importorskip("torch", reason="the torch fast path needs torch")
    with pytest.raises(ValueError, match=r"grads\[0\]: a host array \(Tensor\) in a call on GPU"):
        nnfast.sgd_step(FakeGpuArray(), torch.zeros(0), lr=0.1)


@pytest.mark.parametrize("typestr", ["<i4", "<u2", "<c8", ">f4x"])
def test_gpu_dtype_is_a_type_error(typestr):
    with pytest.raises(TypeError, match=r"params\[0\]: dtype .* is not supported; expected "
                                        r"float32, float64, bfloat16 or float16"):
        nnfast.sgd_step(FakeGpuArray(typestr=typestr), FakeGpuArray(), lr=0.1)


def test_gpu_16bit_arrays_are_read_with_their_dtypes():
    # float16 and int16 through the CUDA array interface: the roles' rules apply, as on the CPU
    half, single, short = (FakeGpuArray(typestr=t) for t in ("<f2", "<f4", "<i2"))
    nnfast.sgd_step(half, half, lr=0.1)
    nnfast.sgd_step(half, single, lr=0.1, stochastic_rounding=True, seed=3)
    nnfast.adam_step([half], [half], [single], [single], step=1, lr=1e-3, master_params=[single])
    with pytest.raises(TypeError, match=r"params\[0\]: dtype int16 is not allowed here"):
        nnfast.sgd_step(short, short, lr=0.1)
    with pytest.raises(TypeError, match=r"master_params\[0\]: dtype float16 is not allowed here; "
                                        r"master_params are float32"):
        nnfast.sgd_step(half, half, lr=0.1, master_params=half)
    with pytest.raises(TypeError, match=r"param_remainders go with bfloat16 params"):
        nnfast.sgd_step(half, half, lr=0.1, param_remainders=short)


def test_gpu_16bit_arrays_are_read_by_activations_and_losses():
    # empty float16 stand-ins: validation alone, then nothing to launch; int16 is refused
    def half(shape=(0,)):
        return FakeGpuArray(shape, typestr="<f2")

    out = half()
    assert nnfast.relu(half(), out=out) is out
    assert nnfast.sigmoid_backward(half(), half(), out=out) is out
    grad = half()
    loss, got = nnfast.mse_loss(half(), half(), grad_out=grad, reduction="sum")
    assert loss == 0.0 and got is grad
    loss, got = nnfast.softmax_cross_entropy(half((0, 3)), FakeGpuArray((0,), "<i8"),
                                             grad_out=half((0, 3)), reduction="sum")
    assert loss == 0.0
    assert nnfast.l2_loss([half(), half()]) == 0.0
    with pytest.raises(TypeError, match=r"w\[0\]: dtype int16 is not supported here; expected "
                                        r"float32, float64, bfloat16 or float16"):
        nnfast.l2_loss([FakeGpuArray(typestr="<i2")])
    with pytest.raises(TypeError, match=r"target: dtype float32 differs from pred's float16"):
        nnfast.mse_loss(half(), FakeGpuArray(), grad_out=half())


def test_gpu_norms_refuse_16bit_grads():
    # (the GPU norms take float32 and float64; before this check a 16-bit array was read as
    # float64, past its end)
    for fn in (lambda g: nnfast.grad_norm(g), lambda g: nnfast.clip_grad_norm_(g, 1.0)):
        with pytest.raises(TypeError, match=r"grads: dtype float16 is not supported for GPU arrays"):
            fn([FakeGpuArray((0,), typestr="<f2")])


def test_dlpack_bfloat16_is_read():
    # DLPack code 4 (kDLBfloat), 16 bits: the only protocol that names bfloat16 (a torch CPU
    # tensor's capsule stands in for a GPU library's)
    torch = pytest.importorskip("torch", reason="a bfloat16 DLPack capsule comes from torch")

    def empty():
        return FakeDlpackGpuArray(torch.zeros(0, dtype=torch.bfloat16))

    nnfast.sgd_step(empty(), empty(), lr=0.1)
    out = empty()
    assert nnfast.relu(empty(), out=out) is out
    assert nnfast.l1_loss(empty()) == 0.0


def test_gpu_mixed_dtypes_are_a_type_error():
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype float64 is not allowed here; grads may be the params. dtype float32"):
        nnfast.sgd_step(FakeGpuArray(), FakeGpuArray(typestr="<f8"), lr=0.1)


def test_gpu_non_contiguous_is_a_value_error():
    # (checked before the pointer, so a stand-in with no memory behind it gets this far)
    with pytest.raises(ValueError, match="x: must be C-contiguous"):
        nnfast.sigmoid(FakeGpuArray((2, 3), strides=(4, 8)), out=FakeGpuArray((2, 3)))
    # any strides of an empty array are accepted, as are those of size-1 dimensions
    nnfast.relu(FakeGpuArray((0, 3), strides=(4, 8)), out=FakeGpuArray((0, 3)))
    nnfast.relu(FakeGpuArray((1, 0), strides=(0, 4)), out=FakeGpuArray((1, 0)))


def test_gpu_read_only_output_is_a_value_error():
    with pytest.raises(ValueError, match=r"params\[0\]: array is read-only"):
        nnfast.sgd_step([FakeGpuArray(readonly=True)], [FakeGpuArray()], lr=0.1)


def test_gpu_masked_array_is_a_value_error():
    with pytest.raises(ValueError, match="masked arrays are not supported"):
        nnfast.relu(FakeGpuArray(mask=FakeGpuArray()))


def test_gpu_stream_0_is_a_value_error():
    # the interface reserves 0 (ambiguous between the legacy and per-thread default streams)
    with pytest.raises(ValueError, match="stream 0 is disallowed"):
        nnfast.relu(FakeGpuArray(stream=0), out=FakeGpuArray())


def test_gpu_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match=r"grads\[0\]: shape \(0, 2\) differs"):
        nnfast.sgd_step(FakeGpuArray((0,)), FakeGpuArray((0, 2)), lr=0.1)


def test_gpu_class_ids_must_be_int32_or_int64():
    logits = FakeGpuArray((0, 3))
    with pytest.raises(TypeError, match="class ids on the GPU must be int32 or int64"):
        nnfast.softmax_cross_entropy(logits, FakeGpuArray((0,), "<u1"), grad_out=FakeGpuArray((0, 3)))
    with pytest.raises(ValueError, match=r"class ids must have shape \(0,\)"):
        nnfast.softmax_cross_entropy(logits, FakeGpuArray((2,), "<i8"), grad_out=FakeGpuArray((0, 3)))


def test_gpu_output_of_an_unknown_library_needs_out():
    with pytest.raises(TypeError, match="cannot allocate an output like a FakeGpuArray"):
        nnfast.sigmoid(FakeGpuArray())


def test_pointer_that_is_not_cuda_memory_is_a_value_error():
    host = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="x: its (pointer is not CUDA memory|__cuda_array_interface__ points to host)"):
        nnfast.relu(FakeGpuArray((4,), pointer=host.ctypes.data), out=FakeGpuArray((4,)))


# --------------------------------------------------------------------------- on a GPU


def _libraries():
    """(name, to_gpu, to_host) for each installed library that sees a GPU."""
    found, why = [], []
    try:
        import torch
        if torch.cuda.is_available():
            found.append(("torch", lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda(),
                          lambda t: t.cpu().numpy()))
        else:
            why.append("torch sees no GPU")
    except ImportError:
        why.append("torch is not installed")
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            found.append(("cupy", cupy.asarray, cupy.asnumpy))
    except ImportError:
        why.append("cupy is not installed")
    except Exception as e:  # noqa: BLE001  (cupy without a driver raises its own runtime error)
        why.append(f"cupy sees no GPU ({type(e).__name__})")
    if not nnfast.cuda.is_available():
        why.insert(0, "no CUDA device or driver")
        found = []
    return found, "; ".join(why)


LIBRARIES, WHY_NO_GPU = _libraries()
needs_gpu = pytest.mark.skipif(not LIBRARIES, reason=f"GPU tests: {WHY_NO_GPU}")


@pytest.fixture(params=[name for name, _, _ in LIBRARIES] or ["none"])
def lib(request):
    if not LIBRARIES:
        pytest.skip(f"GPU tests: {WHY_NO_GPU}")
    return next(entry for entry in LIBRARIES if entry[0] == request.param)


def _gpu(lib, arrays):
    return [lib[1](a) for a in arrays]


def _host(lib, arrays):
    return [lib[2](a) for a in arrays]


# sizes: empty, one, under a vector, odd, several 65536-element chunks with a tail
OPTIMIZER_SIZES = [0, 1, 3, 4097, 2 * 65536 + 5, 300_001]


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_optimizer_steps(rng, lib, case, dtype):
    kind, hp = case
    problems = [random_problem(rng, kind, hp, (n,), dtype) for n in OPTIMIZER_SIZES]
    params = [p for p, _, _ in problems]
    grads = [g for _, g, _ in problems]
    states = {n: [s[n] for _, _, s in problems] for n in problems[0][2]}
    expected = expected_step(kind, params, grads, states, hp)
    cpu = ([p.copy() for p in params], {n: [a.copy() for a in v] for n, v in states.items()})
    call_step(nnfast, kind, cpu[0], grads, cpu[1], hp)

    gpu_params, gpu_grads = _gpu(lib, params), _gpu(lib, grads)
    gpu_states = {n: _gpu(lib, v) for n, v in states.items()}
    assert call_step(nnfast, kind, gpu_params, gpu_grads, gpu_states, hp) is None
    got_params = _host(lib, gpu_params)
    got_states = {n: _host(lib, v) for n, v in gpu_states.items()}
    compare_step(kind, hp, got_params, got_states, expected, f"on {lib[0]}")
    # the same formula, the same roundings (no contraction on either side): the same bits
    for i, (g, c) in enumerate(zip(got_params, cpu[0])):
        assert_same_bits(g, c, f"{kind} params[{i}] GPU vs CPU")
    for n in got_states:
        for i, (g, c) in enumerate(zip(got_states[n], cpu[1][n])):
            assert_same_bits(g, c, f"{kind} {n}[{i}] GPU vs CPU")


@needs_gpu
@pytest.mark.parametrize("offset", [1, 2, 3])
def test_unaligned_tensors_take_the_scalar_path(rng, lib, offset):
    # views that start off a 16-byte boundary: no vector loads, same results
    n = 65536 + 77
    p, g, states = random_problem(rng, "adam", {"amsgrad": True}, (n + offset,), np.float32)
    hp = dict(lr=1e-2, step=3, amsgrad=True)
    host = [p[offset:].copy(), {k: v[offset:].copy() for k, v in states.items()}]
    call_step(nnfast, "adam", host[0], g[offset:], host[1], hp)
    gp, gg = lib[1](p), lib[1](g)
    gs = {k: lib[1](v) for k, v in states.items()}
    call_step(nnfast, "adam", gp[offset:], gg[offset:], {k: v[offset:] for k, v in gs.items()}, hp)
    assert_same_bits(lib[2](gp)[offset:], host[0], "unaligned params")
    assert_same_bits(lib[2](gp)[:offset], p[:offset], "elements before the view untouched")
    for k in states:
        assert_same_bits(lib[2](gs[k])[offset:], host[1][k], f"unaligned {k}")


@needs_gpu
def test_a_thousand_tensors_in_one_call(rng, lib):
    # more tensors than one launch's kernel arguments hold: several launches, one call
    sizes = rng.integers(1, 3000, 1000)
    sizes[::97] = 65536 * 2 + 1  # some tensors span chunks, and a launch boundary
    params = [randn(rng, (int(n),), np.float32) for n in sizes]
    grads = [randn(rng, (int(n),), np.float32) for n in sizes]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    gpu = [_gpu(lib, x) for x in (params, grads, m, v)]
    nnfast.adam_step(*gpu, step=1, lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True)
    nnfast.adam_step(params, grads, m, v, step=1, lr=1e-3, weight_decay=0.01,
                     decoupled_weight_decay=True)
    for i, got in enumerate(_host(lib, gpu[0])):
        assert_same_bits(got, params[i], f"params[{i}]")


# ----------------------------------------------------------------- 16-bit optimizer storage

BF16 = np.dtype(bfloat16)
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
HALF16 = (BF16, F16)

#: (params storage, params, grads, states) dtypes: every layout the engine runs.
LAYOUTS_16 = (
    [("nearest", p, g, st) for p, g, st in [
        (BF16, BF16, BF16), (BF16, BF16, F32), (BF16, F32, F32), (BF16, F32, BF16),
        (F16, F16, F16), (F16, F16, F32), (F16, F32, BF16), (F32, F32, BF16)]]
    + [("master", p, g, st) for p in HALF16 for g in (BF16, F16, F32) for st in (F32, BF16)]
    + [("remainder", BF16, g, st) for g in (BF16, F16, F32) for st in (F32, BF16)]
    + [("stochastic", p, g, st) for p in HALF16 for g in (p, F32) for st in (F32, BF16, p)])


def _layout_id(layout):
    """A test id: the params storage, then the params', grads' and states' dtypes."""
    how, *dtypes = layout
    return "{}-p{}-g{}-s{}".format(how, *(d.name for d in dtypes))


LAYOUT_16_IDS = [_layout_id(layout) for layout in LAYOUTS_16]

# sizes: empty (which still counts in stochastic rounding's tensor index), under one group of
# 8, one group, odd, several 65536-element chunks with a tail
SIZES_16 = [0, 1, 7, 8, 4097, 2 * 65536 + 13]


def _to_gpu(lib, a):
    """A GPU copy of a NumPy array of any storage dtype, bit for bit (bfloat16 through torch,
    as a reinterpreted int16 copy: NumPy's bfloat16 is ml_dtypes', which torch does not read)."""
    a = np.ascontiguousarray(a)
    if lib[0] == "torch":
        import torch
        if a.dtype == BF16:
            return torch.from_numpy(a.view(np.int16)).cuda().view(torch.bfloat16)
        return torch.from_numpy(a).cuda()
    return lib[1](a)


def _to_host(lib, x):
    if lib[0] == "torch":
        import torch
        if x.dtype == torch.bfloat16:
            return x.view(torch.int16).cpu().numpy().view(BF16)
        return x.cpu().numpy()
    return lib[2](x)


def _bits(a):
    """The storage bits of an array of any dtype (2, 4 or 8 bytes an element)."""
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])


def _assert_same_storage(got, want, what):
    assert got.dtype == want.dtype and got.shape == want.shape, (
        f"{what}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}")
    np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=what)


ARRAY_OPTIONS = ("master_params", "param_remainders")


def _storage_problem(rng, kind, hp, layout, sizes):
    """(arrays, options) of one call in NumPy: arrays by role (params, grads, each state,
    and master_params or param_remainders), each list in its storage dtype; options the
    storage keywords that are not arrays (stochastic rounding: a seed past 2**32 and
    per-tensor steps, so several scalars groups)."""
    how, params_dtype, grads_dtype, states_dtype = layout
    masters = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    arrays = {"params": [m.astype(params_dtype) for m in masters],
              "grads": [rng.standard_normal(n).astype(np.float32).astype(grads_dtype) for n in sizes]}
    arrays.update({name: [] for name in state_names(kind, hp)})
    for n in sizes:
        for name, a in make_states(rng, kind, hp, (n,), np.float64).items():
            arrays[name].append(a.astype(np.float32).astype(states_dtype))
    options = {}
    if how == "master":
        arrays["master_params"] = masters
    elif how == "remainder":  # every (bfloat16, int16) pair encodes one float32 master
        arrays["param_remainders"] = [rng.integers(-2**15, 2**15, n).astype(np.int16) for n in sizes]
    elif how == "stochastic":
        base = hp.get("step", 1)
        options = dict(stochastic_rounding=True, seed=2**40 + 12345,
                       step=[base + i // 2 for i in range(len(sizes))])
    return arrays, options


def _step(kind, hp, arrays, options):
    rest = dict(arrays)
    params, grads = rest.pop("params"), rest.pop("grads")
    storage = {name: rest.pop(name) for name in ARRAY_OPTIONS if name in rest}
    return call_step(nnfast, kind, params, grads, rest, dict(hp, **options, **storage))


def _by_name(arrays):
    return {f"{role}[{i}]": a for role, listed in arrays.items() for i, a in enumerate(listed)}


def _run_on_cpu_and_gpu(lib, kind, hp, arrays, options, view=lambda a: a):
    """The step on CPU copies and on GPU copies of the same arrays, each given view(a) (the
    array, or a view of it that starts off a 16-byte boundary): (CPU, GPU) whole arrays on
    the host, by name (grads included: they must come back unchanged)."""
    cpu = {role: [a.copy() for a in listed] for role, listed in arrays.items()}
    gpu = {role: [_to_gpu(lib, a) for a in listed] for role, listed in arrays.items()}
    _step(kind, hp, {role: [view(a) for a in listed] for role, listed in cpu.items()}, options)
    assert _step(kind, hp, {role: [view(a) for a in listed] for role, listed in gpu.items()},
                 options) is None
    back = {role: [_to_host(lib, a) for a in listed] for role, listed in gpu.items()}
    return _by_name(cpu), _by_name(back)


def _skip_without_bfloat16(lib, dtypes):
    if lib[0] != "torch" and BF16 in dtypes:
        pytest.skip(f"{lib[0]} has no bfloat16 arrays")


@needs_gpu
@pytest.mark.parametrize("layout", LAYOUTS_16, ids=LAYOUT_16_IDS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=CASE_IDS)
def test_16bit_storage_steps_equal_the_cpu_bit_for_bit(rng, lib, case, layout):
    kind, hp = case
    _skip_without_bfloat16(lib, layout[1:])
    arrays, options = _storage_problem(rng, kind, hp, layout, SIZES_16)
    cpu, got = _run_on_cpu_and_gpu(lib, kind, hp, arrays, options)
    assert cpu.keys() == got.keys()
    for name in cpu:
        _assert_same_storage(got[name], cpu[name], f"{layout[0]} {kind} {name} GPU vs CPU")
    # the step did run: something of every tensor of 4097 elements or more changed
    before = _by_name(arrays)
    for i in (i for i, n in enumerate(SIZES_16) if n >= 4097):
        names = [name for name in cpu if name.endswith(f"[{i}]")]
        assert any((_bits(cpu[name]) != _bits(before[name])).any() for name in names), f"tensor {i}"


@needs_gpu
@pytest.mark.parametrize("layout", [
    ("nearest", BF16, BF16, F32), ("nearest", F16, F32, F16), ("master", BF16, BF16, F32),
    ("remainder", BF16, BF16, BF16), ("stochastic", BF16, F32, F32), ("stochastic", F16, F16, F16)],
    ids=_layout_id)
@pytest.mark.parametrize("offset", [1, 3, 8])
def test_16bit_storage_views_off_16_bytes_take_the_element_path(rng, lib, layout, offset):
    # views starting `offset` elements in: off a 16-byte boundary (1, 3: one element at a
    # time), or on one for every dtype (8: 16-byte accesses); the same bits either way, and
    # the elements before the views untouched
    _skip_without_bfloat16(lib, layout[1:])
    kind, hp = "adam", dict(lr=1e-2, step=3, amsgrad=True, weight_decay=0.01)
    sizes = [65536 + 77 + offset, 5 + offset, 4097 + offset]
    arrays, options = _storage_problem(rng, kind, hp, layout, sizes)
    cpu, got = _run_on_cpu_and_gpu(lib, kind, hp, arrays, options, view=lambda a: a[offset:])
    before = _by_name(arrays)
    for name in cpu:
        _assert_same_storage(got[name], cpu[name], f"{layout[0]} {name} GPU vs CPU")
        _assert_same_storage(got[name][:offset], before[name][:offset],
                             f"{name}: the elements before the view")


@needs_gpu
@pytest.mark.parametrize("layout", [("nearest", F32, F32, F32), ("nearest", BF16, BF16, BF16),
                                    ("master", BF16, BF16, F32)],
                         ids=_layout_id)
@pytest.mark.parametrize("flag", [0.0, 1.0], ids=["found_inf=0", "found_inf=1"])
def test_device_grad_scale_and_found_inf_equal_the_cpu(rng, lib, layout, flag):
    """grad_scale and found_inf as 1-element device arrays (read by the kernels, no sync)
    with store_scaled_grads: the CPU's bits with the same values as host arrays; a nonzero
    found_inf writes nothing, grads included."""
    _skip_without_bfloat16(lib, layout[1:])
    kind, hp = "adam", dict(lr=1e-2, step=3, weight_decay=0.01)
    arrays, options = _storage_problem(rng, kind, hp, layout, [65536 + 77, 5, 4097])
    before = _by_name(arrays)
    cpu = {role: [a.copy() for a in listed] for role, listed in arrays.items()}
    gpu = {role: [_to_gpu(lib, a) for a in listed] for role, listed in arrays.items()}
    scale, found = np.array([0.375], np.float32), np.array([flag], np.float32)
    _step(kind, hp, cpu, dict(options, grad_scale=scale, found_inf=found, store_scaled_grads=True))
    _step(kind, hp, gpu, dict(options, grad_scale=_to_gpu(lib, scale),
                              found_inf=_to_gpu(lib, found), store_scaled_grads=True))
    got = _by_name({role: [_to_host(lib, a) for a in listed] for role, listed in gpu.items()})
    for name, want in _by_name(cpu).items():
        _assert_same_storage(got[name], want, f"{name} GPU vs CPU")
        if flag:
            _assert_same_storage(got[name], before[name], f"{name} after a skipped step")


@needs_gpu
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
def test_stochastic_rounding_bits_equal_the_cpu(rng, lib, dtype):
    """The random bits of element e of tensor t (its index in the call) at a step and seed
    are the CPU's: the same rounding of every element, whatever the launch layout."""
    _skip_without_bfloat16(lib, [dtype])
    sizes = [0, 3, 9, 65536 * 3 + 5, 1, 20_001]
    # lr = 1 and tiny grads: every update lands between two 16-bit neighbours, so the
    # rounding of each element depends on its random bits
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [(rng.standard_normal(n) * 1e-3).astype(np.float32) for n in sizes]
    for seed, step in ((0, 1), (2**63 + 7, 2**32 + 5)):
        options = dict(stochastic_rounding=True, seed=seed, step=step)
        cpu, got = _run_on_cpu_and_gpu(lib, "sgd", dict(lr=1.0), {"params": params, "grads": grads},
                                       options)
        for name in cpu:
            _assert_same_storage(got[name], cpu[name], f"{name} seed={seed} step={step}")
        # and the bits are not round-to-nearest's: some element rounded the other way
        nearest = [(p.astype(np.float32) - g).astype(dtype) for p, g in zip(params, grads)]
        assert any((_bits(got[f"params[{i}]"]) != _bits(nearest[i])).any() for i in range(len(sizes)))


@needs_gpu
def test_tensor_past_2_31_elements(lib):
    # 64-bit indexing: the elements past 2^31 are updated too
    n = 2**31 + 4099
    if lib[0] == "torch":
        import torch
        free = torch.cuda.mem_get_info()[0]
    else:
        import cupy
        free = cupy.cuda.runtime.memGetInfo()[0]
    if free < 2 * 4 * n + (1 << 30):
        pytest.skip(f"needs {2 * 4 * n / 2**30:.0f} GiB of free GPU memory")
    ones = np.ones(1, np.float32)
    if lib[0] == "torch":
        import torch
        p = torch.ones(n, dtype=torch.float32, device="cuda")
        g = torch.full((n,), 0.5, dtype=torch.float32, device="cuda")
        tail = lambda a: a[-5000:].cpu().numpy()  # noqa: E731
    else:
        import cupy
        p = cupy.ones(n, dtype=cupy.float32)
        g = cupy.full((n,), 0.5, dtype=cupy.float32)
        tail = lambda a: cupy.asnumpy(a[-5000:])  # noqa: E731
    nnfast.sgd_step(p, g, lr=0.25)
    assert (tail(p) == ones * np.float32(0.875)).all()
    del p, g


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_activation_forward(rng, lib, name, dtype):
    x = np.concatenate([randn(rng, (300_001,), dtype, 4.0), np.array(SPECIAL, dtype)])
    alpha = 0.2
    args = {"alpha": alpha} if name == "leaky_relu" else {}
    got = getattr(nnfast, name)(lib[1](x), **args)
    assert type(got).__module__.partition(".")[0] == lib[0], "the input's own kind comes back"
    got = lib[2](got)
    assert_forward(name, x, got, alpha)
    fma = nnfast.info()["simd"] in ("avx2", "avx512", "avx512bf16")  # the polynomials round as on the GPU
    if fma or name in ("relu", "leaky_relu"):
        assert_same_bits(got, getattr(nnfast, name)(x, **args), f"{name} GPU vs CPU")
    out = lib[1](np.full_like(x, np.nan))  # poisoned: every element must be written
    assert getattr(nnfast, name)(lib[1](x), out=out, **args) is out
    assert_same_bits(lib[2](out), got, f"{name} out=")
    inplace = lib[1](x)
    getattr(nnfast, name)(inplace, out=inplace, **args)
    assert_same_bits(lib[2](inplace), got, f"{name} in place")


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_activation_backward(rng, lib, name, dtype):
    a, dy = backward_inputs(rng, name, (100_003,), dtype)
    args = {"alpha": 0.3} if name == "leaky_relu_backward" else {}
    out = lib[1](np.full_like(a, np.nan))
    got = getattr(nnfast, name)(lib[1](a), lib[1](dy), out=out, **args)
    assert got is out
    assert_backward(name, a, dy, lib[2](got), **args)
    assert_same_bits(lib[2](got), getattr(nnfast, name)(a, dy, **args), f"{name} GPU vs CPU")


def _loss_on_gpu(lib, fn, *arrays, **kwargs):
    """(loss, grad) of fn on GPU copies, brought back to the host."""
    loss, grad = fn(*_gpu(lib, arrays), **kwargs)
    loss = lib[2](loss) if not isinstance(loss, float) else loss
    return loss, lib[2](grad)


REDUCTIONS = ["mean", "sum", "none"]


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(rng, lib, reduction, dtype):
    pred, target = randn(rng, (200_003,), dtype), randn(rng, (200_003,), dtype)
    result = _loss_on_gpu(lib, nnfast.mse_loss, pred, target, reduction=reduction)
    check_loss(result, expected_mse(pred, target, reduction), np.dtype(dtype), reduction,
               f"mse {reduction} on {lib[0]}")


@needs_gpu
@pytest.mark.parametrize("shape", [(7, 5), (1000, 10), (3, 5000), (0, 4)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(rng, lib, reduction, dtype, shape):
    probs = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype)
    target = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype)
    result = _loss_on_gpu(lib, nnfast.cross_entropy, probs, target, reduction=reduction)
    check_loss(result, expected_cross_entropy(probs, target, reduction), np.dtype(dtype),
               reduction, f"cross_entropy {reduction} {shape} on {lib[0]}")


SCE_SHAPES = [(1, 1), (5, 3), (64, 10), (300, 1000), (3, 1025), (40, 32000), (0, 5)]


@needs_gpu
@pytest.mark.parametrize("ids", ["int64", "int32"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("shape", SCE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_class_ids(rng, lib, reduction, dtype, shape, smoothing, ids):
    logits = randn(rng, shape, dtype, 4.0)
    labels = rng.integers(0, shape[1], shape[0]).astype(ids)
    if shape[0] > 2:
        labels[1] = -100  # an ignored row
    kwargs = dict(reduction=reduction, ignore_index=-100, label_smoothing=smoothing)
    result = _loss_on_gpu(lib, nnfast.softmax_cross_entropy, logits, labels, **kwargs)
    check_loss(result, expected_softmax_cross_entropy(logits, labels.astype(np.int64), **kwargs),
               np.dtype(dtype), reduction, f"sce {reduction} {shape} on {lib[0]}")


@needs_gpu
@pytest.mark.parametrize("shape", [(5, 3), (64, 10), (20, 4000)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_probability_targets(rng, lib, reduction, dtype, shape):
    logits = randn(rng, shape, dtype, 3.0)
    target = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype)
    kwargs = dict(reduction=reduction, label_smoothing=0.2)
    result = _loss_on_gpu(lib, nnfast.softmax_cross_entropy, logits, target, **kwargs)
    check_loss(result, expected_softmax_cross_entropy(logits, target, **kwargs), np.dtype(dtype),
               reduction, f"sce probabilities {reduction} {shape} on {lib[0]}")


@needs_gpu
def test_softmax_cross_entropy_gradient_in_place(rng, lib):
    logits = randn(rng, (64, 2000), np.float32, 4.0)
    labels = rng.integers(0, 2000, 64)
    expected = nnfast.softmax_cross_entropy(logits, labels)
    x = lib[1](logits)
    loss, grad = nnfast.softmax_cross_entropy(x, lib[1](labels), grad_out=x)
    assert grad is x
    assert loss == pytest.approx(expected[0], rel=1e-12)
    assert_close(lib[2](grad), expected[1], 4 * np.finfo(np.float32).eps * np.abs(expected[1]) + 1e-12)


@needs_gpu
def test_bad_class_id_writes_nothing(lib):
    logits = np.zeros((4, 3), np.float32)
    x, grad = lib[1](logits), lib[1](np.full((4, 3), 7.0, np.float32))
    with pytest.raises(ValueError, match=r"target\[2\] = 3 is outside \[0, 3\)"):
        nnfast.softmax_cross_entropy(x, lib[1](np.array([0, 1, 3, 5])), grad_out=grad)
    assert (lib[2](grad) == 7).all()


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_l1_l2_loss(rng, lib, dtype):
    w = [randn(rng, (n,), dtype) for n in (0, 1, 4097, 300_001)]
    for fn, ref in ((nnfast.l1_loss, reference.l1_loss), (nnfast.l2_loss, reference.l2_loss)):
        got = fn(_gpu(lib, w))
        assert isinstance(got, float)
        assert got == pytest.approx(ref([a.astype(np.float64) for a in w]), rel=sum_rtol(300_001))


@needs_gpu
def test_reductions_are_deterministic(rng, lib):
    pred, target = _gpu(lib, [randn(rng, (3_000_001,), np.float32) for _ in range(2)])
    logits, labels = lib[1](randn(rng, (512, 3000), np.float32)), lib[1](rng.integers(0, 3000, 512))
    first = (nnfast.mse_loss(pred, target)[0], nnfast.softmax_cross_entropy(logits, labels)[0],
             nnfast.l2_loss(pred))
    for _ in range(3):
        again = (nnfast.mse_loss(pred, target)[0], nnfast.softmax_cross_entropy(logits, labels)[0],
                 nnfast.l2_loss(pred))
        assert again == first


@needs_gpu
def test_host_and_gpu_arrays_mixed_write_nothing(rng, lib):
    p = lib[1](np.ones(10, np.float32))
    with pytest.raises(ValueError, match=r"grads\[0\]: a host array"):
        nnfast.sgd_step(p, np.ones(10, np.float32), lr=0.1)
    assert (lib[2](p) == 1).all()


@needs_gpu
def test_work_follows_the_torch_stream(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU")
    x = randn(rng, (1_000_003,), np.float32)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.from_numpy(x).cuda(non_blocking=False)
        y = nnfast.sigmoid(t)
        z = nnfast.tanh(y)  # queued behind sigmoid on the same (side) stream
    side.synchronize()
    expected = nnfast.tanh(nnfast.sigmoid(torch.from_numpy(x).cuda())).cpu().numpy()
    assert_same_bits(z.cpu().numpy(), expected, "side-stream chain")


@needs_gpu
def test_torch_tensors_autograd_tracks_are_read_not_written():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU")
    p = torch.ones(10, device="cuda", requires_grad=True)
    g = torch.ones(10, device="cuda", requires_grad=True)
    with pytest.raises(ValueError, match=r"params\[0\]: a tensor that requires grad"):
        nnfast.sgd_step(p, g.detach(), lr=0.1)
    nnfast.sgd_step(p.detach(), g, lr=0.5)  # read-only use of a tracked tensor is fine
    assert (p.detach().cpu().numpy() == 0.5).all()
    with pytest.raises(ValueError, match="x: a torch.sparse_coo tensor"):
        nnfast.relu(torch.eye(3, device="cuda").to_sparse())


# ----------------------------------------------------------------- 16-bit activations and losses
# The CPU's semantics on GPU arrays: inputs widened exactly to float32, the float32 formula,
# every result rounded once to nearest even. Elementwise results are compared with the CPU's
# bit for bit (NaN by position only: a NaN made by arithmetic carries a payload of the
# processor's choosing, and x86 and NVIDIA GPUs choose differently). A result that depends on
# a float64 sum (a reduced loss, a row's loss, softmax cross-entropy's gradient through
# 1 / sum(e)) is compared with the CPU's within a bound, since the GPU adds the same terms in
# another order; the row losses are also held bit for bit to the GPU's own float32 kernel on
# the widened inputs, which adds in the same order.

#: (significand bits including the leading one, exponent of the smallest normal) per dtype.
FORMATS_16 = {BF16: (8, -126), F16: (11, -14)}

# sizes: one, under one group of 8, odd, several 65536-element chunks with a tail
SIZES_16_ELEMENTWISE = [1, 13, 4097, 2 * 65536 + 77]


def _edge_values_16(dtype):
    """NaN, +-inf, signed zeros, the smallest subnormals, the smallest normal, the largest
    finite value (65504 in float16) and its negative, and the saturation region of sigmoid."""
    info = ml_dtypes.finfo(dtype)
    values = [np.nan, np.inf, -np.inf, 0.0, -0.0, float(info.smallest_subnormal),
              -float(info.smallest_subnormal), float(info.smallest_normal), float(info.max),
              -float(info.max), 17.0, -17.0, 88.0, -104.0]
    with quiet():
        return np.array(values, np.float64).astype(dtype)


def _values_16(rng, n, dtype, scale=3.0, edges=True):
    """n normal values times scale in dtype, the edge values first (as many as fit)."""
    x = (rng.standard_normal(n) * scale).astype(np.float32).astype(dtype)
    if edges:
        special = _edge_values_16(dtype)[:n]
        x[:special.size] = special
    return x


def _nan_16(a):
    """Where a 16-bit array holds NaN (from its bits: no conversion, no warning)."""
    magnitude = _bits(a) & 0x7FFF
    return magnitude > (0x7F80 if a.dtype == BF16 else 0x7C00)


def _assert_same_16(got, want, what):
    """got and want, 16-bit arrays, hold the same bits (signed zeros, infinities) but where
    both are NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape, (
        f"{what}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}")
    nan = _nan_16(want)
    assert (_nan_16(got) == nan).all(), f"{what}: NaN positions differ"
    differs = ~nan & (_bits(got) != _bits(want))
    assert not differs.any(), (
        f"{what}: {differs.sum()} elements differ bitwise, first at "
        f"{np.argwhere(differs)[:3].tolist()}")


def _unit_16(x, dtype):
    """The spacing of the 16-bit dtype's values at |x| (float64): 2^(e - p + 1) for |x| in
    [2^e, 2^(e+1)), the subnormal spacing below the smallest normal."""
    bits, emin = FORMATS_16[np.dtype(dtype)]
    x = np.abs(np.asarray(x, np.float64))
    _, e = np.frexp(np.where(np.isfinite(x) & (x > 0), x, 1.0))  # |x| in [2^(e-1), 2^e)
    return np.ldexp(1.0, np.maximum(e - 1, emin) - (bits - 1))


def _assert_within_16(got, want, slack, what):
    """got and want, 16-bit arrays, are NaN and infinite at the same places, and elsewhere
    |got - want| <= one unit of the dtype at the larger magnitude plus slack (float64,
    broadcast): the bound of one float32 result computed twice from float64 sums added in
    different orders, then rounded once to 16 bits."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    nan = _nan_16(want)
    assert (_nan_16(got) == nan).all(), f"{what}: NaN positions differ"
    with quiet():
        got64, want64 = got.astype(np.float64), want.astype(np.float64)
    inf = np.isinf(want64)
    assert (got64[inf] == want64[inf]).all(), f"{what}: infinities differ"
    check = ~nan & ~inf
    tol = _unit_16(np.maximum(np.abs(got64), np.abs(want64)), got.dtype) + slack
    bad = check & ~(np.abs(got64 - want64) <= tol)
    assert not bad.any(), (
        f"{what}: {bad.sum()} elements beyond the bound, first at "
        f"{np.argwhere(bad)[:3].tolist()}: {got64[bad][:3]} vs {want64[bad][:3]}")


def _assert_rounded_once(got, float32_result, what):
    """got is float32_result rounded once to got's dtype (NumPy's and ml_dtypes' casts round
    to nearest even), NaN by position."""
    with quiet():
        _assert_same_16(got, np.asarray(float32_result).astype(got.dtype), what)


def _assert_float32_rows_rounded(lib, fn, got, inputs, reduction, what, **kwargs):
    """A 16-bit row loss's (loss, grad) on the GPU is the GPU's float32 result on the widened
    inputs rounded once, bit for bit, the reduced loss equal: the row kernels add the same
    values in the same order whatever the storage type (one launch shape per row length)."""
    widened = [a.astype(np.float32) if a.dtype in HALF16 else a for a in inputs]
    loss32, grad32 = _loss_16(lib, fn, *widened, reduction=reduction, **kwargs)
    loss, grad = got
    _assert_rounded_once(grad, grad32, f"{what} grad: the GPU's float32 grad rounded once")
    if reduction == "none":
        _assert_rounded_once(loss, loss32, f"{what} losses: the GPU's float32 losses rounded once")
    else:
        assert loss == loss32 or (np.isnan(loss) and np.isnan(loss32)), (
            f"{what}: {loss!r} vs the GPU's float32 {loss32!r}")


def _sums_agree(got, want, n, slack=0.0):
    """A float64 sum of n non-negative float32 terms computed twice in different orders:
    each within sum_rtol(n) of the exact sum (_helpers), so within twice that of each other,
    plus slack for terms that may differ themselves."""
    return abs(got - want) <= 2 * sum_rtol(n) * abs(want) + slack


def _check_views_16(lib, fn, inputs, what, **args):
    """fn on views of GPU copies of inputs that start one element in (off 16 bytes: one
    element at a time), into a poisoned out and in place, against fn on aligned copies."""
    aligned = _to_host(lib, fn(*(_to_gpu(lib, a[1:]) for a in inputs), **args))
    out = _to_gpu(lib, np.full(inputs[0].shape, np.nan, inputs[0].dtype))
    fn(*(_to_gpu(lib, a)[1:] for a in inputs), out=out[1:], **args)
    back = _to_host(lib, out)
    _assert_same_16(back[1:], aligned, f"{what}: a view off 16 bytes")
    assert _nan_16(back[:1]).all(), f"{what}: the element before the view was written"
    inplace = [_to_gpu(lib, a[1:]) for a in inputs]
    fn(*inplace, out=inplace[0], **args)
    _assert_same_16(_to_host(lib, inplace[0]), aligned, f"{what}: in place")


def _exact_on_the_cpu(name):
    """Whether the CPU's float32 kernel of this activation rounds as the GPU's: always for
    the selects and products, for the polynomials of sigmoid and tanh where the CPU kernels
    have fused multiply-add."""
    fma = nnfast.info()["simd"] in ("avx2", "avx512", "avx512bf16")
    return fma or not name.startswith(("sigmoid", "tanh"))


def _activation_inputs_16(rng, name, n, dtype):
    """The n-element inputs of a forward (x) or backward (a, dy) activation in dtype, with
    the edge values (first in x and dy, last in a)."""
    if name in FORWARD:
        return [_values_16(rng, n, dtype, 4.0)]
    a, _ = backward_inputs(rng, name, (n,), np.float32)
    a, dy = a.astype(dtype), _values_16(rng, n, dtype)
    edges = _edge_values_16(dtype)[:n]
    a[n - edges.size:] = edges
    return [a, dy]


@needs_gpu
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_16bit_activations_equal_the_cpu(rng, lib, name, dtype):
    _skip_without_bfloat16(lib, [dtype])
    args = {"alpha": 0.2} if name.startswith("leaky_relu") else {}
    fn = getattr(nnfast, name)
    for n in SIZES_16_ELEMENTWISE:
        inputs = _activation_inputs_16(rng, name, n, dtype)
        got = _to_host(lib, fn(*(_to_gpu(lib, a) for a in inputs), **args))
        float32 = fn(*(_to_gpu(lib, a.astype(np.float32)) for a in inputs), **args)
        _assert_rounded_once(got, _to_host(lib, float32),
                             f"{name} n={n}: the GPU's float32 result rounded once")
        if _exact_on_the_cpu(name):
            _assert_same_16(got, fn(*inputs, **args), f"{name} n={n} GPU vs CPU")
    _check_views_16(lib, fn, _activation_inputs_16(rng, name, 4098, dtype), name, **args)


def _loss_16(lib, fn, *arrays, **kwargs):
    """(loss, grad) of fn on GPU copies of arrays, back on the host (loss a float or an array)."""
    loss, grad = fn(*(_to_gpu(lib, a) for a in arrays), **kwargs)
    return (loss if isinstance(loss, float) else _to_host(lib, loss)), _to_host(lib, grad)


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
def test_16bit_mse_equals_the_cpu(rng, lib, dtype, reduction):
    _skip_without_bfloat16(lib, [dtype])
    for n in SIZES_16_ELEMENTWISE:
        # edge values (whose NaN and inf would make the sums NaN) where nothing is summed
        pred = _values_16(rng, n, dtype, edges=reduction == "none")
        target = _values_16(rng, n, dtype, edges=False)
        what = f"mse {reduction} n={n}"
        loss, grad = _loss_16(lib, nnfast.mse_loss, pred, target, reduction=reduction)
        want_loss, want_grad = nnfast.mse_loss(pred, target, reduction=reduction)
        _assert_same_16(grad, want_grad, f"{what} grad")
        if reduction == "none":
            _assert_same_16(loss, want_loss, f"{what} losses")
        else:
            assert isinstance(loss, float) and _sums_agree(loss, want_loss, n), (
                f"{what}: {loss!r} vs the CPU's {want_loss!r}")
        in_place = _to_gpu(lib, pred)
        nnfast.mse_loss(in_place, _to_gpu(lib, target), reduction=reduction, grad_out=in_place)
        _assert_same_16(_to_host(lib, in_place), want_grad, f"{what} grad in place")


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
def test_16bit_cross_entropy_equals_the_cpu(rng, lib, dtype, reduction):
    _skip_without_bfloat16(lib, [dtype])
    for rows, classes in [(7, 5), (3, 1500)]:  # a warp per row, a block per row
        probs = rng.dirichlet(np.ones(classes), rows).astype(np.float32).astype(dtype)
        target = rng.dirichlet(np.ones(classes), rows).astype(np.float32).astype(dtype)
        target[0, :2] = 0  # zero targets add exactly 0, on a zero probability too
        probs[0, 0] = 0
        what = f"cross_entropy {reduction} {rows}x{classes}"
        loss, grad = _loss_16(lib, nnfast.cross_entropy, probs, target, reduction=reduction)
        _assert_float32_rows_rounded(lib, nnfast.cross_entropy, (loss, grad), [probs, target],
                                     reduction, what)
        want_loss, want_grad = nnfast.cross_entropy(probs, target, reduction=reduction)
        _assert_same_16(grad, want_grad, f"{what} grad")
        if reduction == "none":  # a row's sum, rounded to float32 and then to 16 bits
            _assert_within_16(loss, want_loss, 0.0, f"{what} row losses")
        else:
            assert isinstance(loss, float) and _sums_agree(loss, want_loss, rows * classes), (
                f"{what}: {loss!r} vs the CPU's {want_loss!r}")


# rows of a warp (under and over 32 classes) and of a block (over 1024 classes)
SCE_SHAPES_16 = [(5, 3), (64, 40), (3, 1025)]


@needs_gpu
@pytest.mark.parametrize("target_kind", ["class ids", "probabilities"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
def test_16bit_softmax_cross_entropy_equals_the_cpu(rng, lib, dtype, reduction, target_kind):
    """The gradient depends on its row's float64 sums through 1 / sum(e) and the target's
    mass, each rounded to float32, which the GPU's other order of additions may move by one
    float32 unit: |diff| <= 2^-20 grad_scale before the rounding to 16 bits. A row's loss
    moves with ln(sum(e)) by at most 2^-23 (sum(e) >= 1) besides its own float32 rounding."""
    _skip_without_bfloat16(lib, [dtype])
    info = ml_dtypes.finfo(dtype)
    for rows, classes in SCE_SHAPES_16:
        logits = (rng.standard_normal((rows, classes)) * 4).astype(np.float32).astype(dtype)
        # row 0: the largest finite logit (65504 in float16), a signed zero, a subnormal
        edges = np.array([info.max, -0.0, info.smallest_subnormal], np.float64).astype(dtype)
        logits[0, :min(classes, 3)] = edges[:classes]
        if target_kind == "class ids":
            target = rng.integers(0, classes, rows)
            target[1] = -100  # an ignored row
            kwargs = dict(ignore_index=-100, label_smoothing=0.1)
            divisor = rows - 1
        else:
            target = rng.dirichlet(np.ones(classes), rows).astype(np.float32).astype(dtype)
            kwargs = dict(label_smoothing=0.2)
            divisor = rows
        grad_scale = 1 / divisor if reduction == "mean" else 1.0
        what = f"softmax_cross_entropy {target_kind} {reduction} {rows}x{classes}"
        loss, grad = _loss_16(lib, nnfast.softmax_cross_entropy, logits, target,
                              reduction=reduction, **kwargs)
        _assert_float32_rows_rounded(lib, nnfast.softmax_cross_entropy, (loss, grad),
                                     [logits, target], reduction, what, **kwargs)
        want_loss, want_grad = nnfast.softmax_cross_entropy(logits, target, reduction=reduction,
                                                            **kwargs)
        _assert_within_16(grad, want_grad, 2.0**-20 * grad_scale, f"{what} grad")
        if reduction == "none":
            with quiet():
                slack = 2.0**-21 * (1 + np.abs(want_loss.astype(np.float64)))
            _assert_within_16(loss, want_loss, slack, f"{what} row losses")
        else:
            slack = 2.0**-21 * (rows * grad_scale + abs(want_loss))
            assert isinstance(loss, float) and _sums_agree(loss, want_loss, rows, slack), (
                f"{what}: {loss!r} vs the CPU's {want_loss!r}")
        in_place = _to_gpu(lib, logits)
        nnfast.softmax_cross_entropy(in_place, _to_gpu(lib, target), reduction=reduction,
                                     grad_out=in_place, **kwargs)
        _assert_same_16(_to_host(lib, in_place), grad, f"{what} grad in place")


@needs_gpu
@pytest.mark.parametrize("dtype", HALF16, ids=["bfloat16", "float16"])
def test_16bit_l1_l2_loss_equal_the_cpu(rng, lib, dtype):
    _skip_without_bfloat16(lib, [dtype])
    info = ml_dtypes.finfo(dtype)
    w = [_values_16(rng, n, dtype, edges=False) for n in [0] + SIZES_16_ELEMENTWISE]
    w[-1][:3] = np.array([info.max, info.smallest_subnormal, -0.0], np.float64).astype(dtype)
    total = sum(a.size for a in w)
    for fn in (nnfast.l1_loss, nnfast.l2_loss):
        got, want = fn([_to_gpu(lib, a) for a in w]), fn(w)
        assert isinstance(got, float) and _sums_agree(got, want, total), (
            f"{fn.__name__}: {got!r} vs the CPU's {want!r}")
        with quiet():
            special = [np.array(v, np.float64).astype(dtype) for v in ([1.0, np.inf], [np.nan])]
        assert fn(_to_gpu(lib, special[0])) == np.inf
        assert np.isnan(fn(_to_gpu(lib, special[1])))


# --------------------------------------------------------------------------- Adafactor
# The GPU sums in double in another fixed order than the CPU (tiles of 128 x 32 and
# butterflies, not eight lanes per run), so R, C, the floor and the step size may differ
# in their last bits: the results agree to a few units in the last place, which the
# tolerances below allow for after ADAFACTOR_STEPS steps. A 0-D parameter's sums have one
# term each, so it has the CPU's bits.

# factored 2-D and 3-D (over one tile, and over several tiles of rows and of columns),
# one row or column, unfactored 1-D (over several chunks) and 0-D, and empty
ADAFACTOR_SHAPES = [(37, 45), (3, 130, 70), (2, 1, 5), (300, 1), (2 * 65536 + 5,), (300,), (), (0, 4)]
ADAFACTOR_STEPS = 5
ADAFACTOR_RTOL = {np.float32: 1e-6, np.float64: 1e-13}
ADAFACTOR_OPTIONS = [{}, dict(lr=0.05, weight_decay=0.1, maximize=True),
                     dict(eps1=1e-3, eps2=1e-2, d=2.0, beta2_decay=-0.5)]


def _adafactor_states(p, dtype=None):
    """[row_var, col_var, variance] for parameter p, torch's shapes, None where unused, of
    dtype (by default p's)."""
    dtype = p.dtype if dtype is None else dtype
    if p.ndim >= 2:
        return [np.zeros(p.shape[:-1] + (1,), dtype),
                np.zeros(p.shape[:-2] + (1,) + p.shape[-1:], dtype), None]
    return [None, None, np.zeros(p.shape, dtype)]


def _adafactor_to_gpu(lib, a):
    """_to_gpu keeping a 0-D array 0-D (np.ascontiguousarray makes it 1-D)."""
    return _to_gpu(lib, a).reshape(a.shape)


def _adafactor_problem(dtype, seed=0):
    """(params, grads of each step) from fixed random draws, NumPy."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in ADAFACTOR_SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in ADAFACTOR_SHAPES]
             for _ in range(ADAFACTOR_STEPS)]
    return params, grads


def _adafactor_run(lib, params, grads, on_gpu, states_dtype=None, companions=None, **options):
    """params, states and companions (by name) after one step per entry of grads, on the GPU
    (lib) or the CPU, back on the host. params are copied; NumPy grads are taken as they are
    on the CPU (so that stored scaled grads show) and copied to the GPU, GPU grads as they
    are. The states are of states_dtype (by default the params'); companions maps
    master_params or param_remainders to their arrays, copied and passed as that option."""
    move = (lambda a: _adafactor_to_gpu(lib, a)) if on_gpu else (lambda a: a.copy())
    back = (lambda a: _to_host(lib, a)) if on_gpu else (lambda a: a)
    take_grad = lambda g: move(g) if on_gpu and isinstance(g, np.ndarray) else g  # noqa: E731
    params = [move(p) for p in params]
    storage = {name: [move(a) for a in arrays] for name, arrays in (companions or {}).items()}
    states = [[a if a is None else move(a) for a in _adafactor_states(back(p), states_dtype)]
              for p in params]
    for t, step_grads in enumerate(grads, start=1):
        nnfast.adafactor_step(params, [take_grad(g) for g in step_grads], [s[0] for s in states],
                              [s[1] for s in states], [s[2] for s in states], step=t, **storage,
                              **options)
    result = {f"params[{i}]": back(p) for i, p in enumerate(params)}
    for name, arrays in storage.items():
        result.update({f"{name}[{i}]": back(a) for i, a in enumerate(arrays)})
    for i, s in enumerate(states):
        for name, a in zip(("row_vars", "col_vars", "variances"), s):
            if a is not None:
                result[f"{name}[{i}]"] = back(a)
    return result


def _assert_adafactor_close(got, want, dtype):
    rtol = ADAFACTOR_RTOL[dtype]
    assert got.keys() == want.keys()
    for name in want:
        scale = np.abs(want[name]).max() if want[name].size else 0.0
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=rtol * scale, err_msg=name)


@needs_gpu
@pytest.mark.parametrize("options", ADAFACTOR_OPTIONS, ids=["defaults", "decay-maximize", "eps-d"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_adafactor_steps_follow_the_cpu(lib, dtype, options):
    params, grads = _adafactor_problem(dtype)
    cpu = _adafactor_run(lib, params, grads, False, **options)
    got = _adafactor_run(lib, params, grads, True, **options)
    _assert_adafactor_close(got, cpu, dtype)
    zero_d = ADAFACTOR_SHAPES.index(())
    for name in (f"params[{zero_d}]", f"variances[{zero_d}]"):
        _assert_same_storage(got[name], cpu[name], f"{name}: one term per sum, the CPU's bits")
    # the step did run: every parameter with elements moved
    for i, p in enumerate(params):
        if p.size:
            assert (got[f"params[{i}]"] != p).any(), f"params[{i}]"


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_IDS)
def test_adafactor_gpu_steps_are_deterministic(lib, dtype):
    params, grads = _adafactor_problem(dtype, seed=3)
    first = _adafactor_run(lib, params, grads, True, weight_decay=0.01)
    again = _adafactor_run(lib, params, grads, True, weight_decay=0.01)
    for name in first:
        _assert_same_storage(again[name], first[name], f"{name}: a second run")


@needs_gpu
def test_adafactor_device_grad_scale_and_stored_grads(lib):
    params, grads = _adafactor_problem(np.float32, seed=5)
    plain = _adafactor_run(lib, params, grads[:2], True)
    # A power-of-two scale is exact: 0.25 * (4 g) is g, so the same bits as unscaled.
    scaled = _adafactor_run(lib, params, [[4 * g for g in gs] for gs in grads[:2]], True,
                            grad_scale=_adafactor_to_gpu(lib, np.full(1, 0.25, np.float32)))
    for name in plain:
        _assert_same_storage(scaled[name], plain[name], f"{name}: device grad_scale")
    # a device scale of 0.375 with the grads stored back: as the CPU with a host array
    scale = np.full(1, 0.375, np.float32)
    cpu_grads = [g.copy() for g in grads[0]]
    gpu_grads = [_adafactor_to_gpu(lib, g) for g in grads[0]]
    cpu = _adafactor_run(lib, params, [cpu_grads], False, grad_scale=scale, store_scaled_grads=True)
    got = _adafactor_run(lib, params, [gpu_grads], True, grad_scale=_adafactor_to_gpu(lib, scale),
                         store_scaled_grads=True)
    _assert_adafactor_close(got, cpu, np.float32)
    for i, (g_gpu, g_cpu) in enumerate(zip(gpu_grads, cpu_grads)):
        _assert_same_storage(_to_host(lib, g_gpu), g_cpu, f"grads[{i}] stored scaled")


#: (params storage, params, grads, states) dtypes: each kind of layout the CPU runs.
ADAFACTOR_LAYOUTS_16 = [
    ("nearest", BF16, BF16, BF16), ("nearest", BF16, BF16, F32), ("nearest", F16, F32, F16),
    ("nearest", F16, F32, F32), ("nearest", F32, F32, BF16), ("master", BF16, BF16, BF16),
    ("master", F16, F32, F32), ("remainder", BF16, F32, F32), ("remainder", BF16, BF16, BF16),
    ("stochastic", BF16, BF16, F32), ("stochastic", F16, F32, F16), ("stochastic", BF16, F32, BF16)]


def _adafactor_layout_problem(layout, seed=0):
    """(params, grads, companions, options) for _adafactor_run: _adafactor_problem's float32
    draws stored as layout says (remainders: the float32 draws split, so each param and
    remainder pair holds its draw)."""
    how, params_dtype, grads_dtype, _ = layout
    masters, grads = _adafactor_problem(np.float32, seed)
    grads = [[g.astype(grads_dtype) for g in step_grads] for step_grads in grads]
    params = [m.astype(params_dtype) for m in masters]
    companions, options = {}, {}
    if how == "master":
        companions = {"master_params": masters}
    elif how == "remainder":
        pairs = [nnfast.split_master(m) for m in masters]
        params = [p.reshape(m.shape) for (p, _), m in zip(pairs, masters)]
        companions = {"param_remainders": [r.reshape(m.shape) for (_, r), m in zip(pairs, masters)]}
    elif how == "stochastic":
        options = dict(stochastic_rounding=True, seed=2**40 + 12345)
    return params, grads, companions, options


def _adafactor_values(result):
    """result's arrays as float64 values, each param with a remainder as the float32 master
    the pair holds (the remainders themselves left out)."""
    values = {}
    for name, a in result.items():
        if name.startswith("param_remainders"):
            continue
        remainder = name.replace("params", "param_remainders", 1)
        if name.startswith("params") and remainder in result:
            a = nnfast.join_master(a, result[remainder]).reshape(a.shape)
        values[name] = np.asarray(a, np.float64)
    return values


@needs_gpu
@pytest.mark.parametrize("layout", ADAFACTOR_LAYOUTS_16,
                         ids=_layout_id)
def test_adafactor_16bit_storage_follows_the_cpu(lib, layout):
    # Each element's arithmetic and roundings on the GPU are the CPU's: every array widened
    # exactly to float32, each result rounded once on its store (R and C float32 through the
    # step), stochastic rounding with the same bits. So the bits may differ only through the
    # sums' order, as for float32 arrays: float32's tolerance holds, and a 16-bit output
    # may be one unit of its dtype off (below). A second run has the same bits.
    _skip_without_bfloat16(lib, layout[1:])
    params, grads, companions, options = _adafactor_layout_problem(layout)

    def run(on_gpu):
        return _adafactor_run(lib, params, grads, on_gpu, states_dtype=layout[3], companions=companions,
                              weight_decay=0.01, **options)

    cpu, got, again = run(False), run(True), run(True)
    values, want = _adafactor_values(got), _adafactor_values(cpu)
    # A 16-bit output may also sit one unit of its dtype away: a float32 scalar (R, C, the
    # floor, the step size) one bit apart can move a value across a rounding boundary.
    # (Stored dtypes: a param with a remainder is compared as its float32 master.)
    for name in want:
        stored = got[name].dtype if not name.startswith("params") or name.replace(
            "params", "param_remainders", 1) not in got else F32
        # (twice the spacing at the value: a boundary one unit below or above it)
        unit = (2 * np.abs(np.spacing(want[name].astype(stored)).astype(np.float64))
                if stored in (BF16, F16) else 0.0)
        scale = np.abs(want[name]).max() if want[name].size else 0.0
        tolerance = ADAFACTOR_RTOL[np.float32] * (np.abs(want[name]) + scale) + unit
        assert np.all(np.abs(values[name] - want[name]) <= tolerance), name
    for name in got:
        _assert_same_storage(again[name], got[name], f"{name}: a second run")
    zero_d = ADAFACTOR_SHAPES.index(())
    _assert_same_storage(got[f"params[{zero_d}]"], cpu[f"params[{zero_d}]"],
                         "params of the 0-D parameter: one term per sum, the CPU's bits")
    # the step did run: every parameter with elements moved (a master, where there is one)
    before = _adafactor_values({**{f"params[{i}]": p for i, p in enumerate(params)},
                                **{f"{name}[{i}]": a for name, arrays in companions.items()
                                   for i, a in enumerate(arrays)}})
    for i, p in enumerate(params):
        name = f"master_params[{i}]" if f"master_params[{i}]" in before else f"params[{i}]"
        if p.size:
            assert (values[name] != before[name]).any(), f"{name} moved"


@needs_gpu
def test_adafactor_found_inf_writes_nothing(lib):
    params, _ = _adafactor_problem(np.float32, seed=7)
    nan_grads = [_adafactor_to_gpu(lib, np.full(p.shape, np.nan, np.float32)) for p in params]
    gpu_params = [_adafactor_to_gpu(lib, p) for p in params]
    states = [[a if a is None else _adafactor_to_gpu(lib, a) for a in _adafactor_states(p)]
              for p in params]
    nnfast.adafactor_step(gpu_params, nan_grads, [s[0] for s in states], [s[1] for s in states],
                          [s[2] for s in states], step=1, store_scaled_grads=True,
                          grad_scale=_adafactor_to_gpu(lib, np.full(1, 0.5, np.float32)),
                          found_inf=_adafactor_to_gpu(lib, np.ones(1, np.float32)))
    for i, (p, before) in enumerate(zip(gpu_params, params)):
        _assert_same_storage(_to_host(lib, p), before, f"params[{i}] after a skipped step")
        assert np.isnan(_to_host(lib, nan_grads[i])).all(), f"grads[{i}] after a skipped step"
    for s in states:
        assert all((_to_host(lib, a) == 0).all() for a in s if a is not None)
