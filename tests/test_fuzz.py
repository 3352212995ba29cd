"""Fuzzing every public function: a valid call, then one or more of its arguments spoiled
at random (wrong types and dtypes, shapes, strides, read-only or aliased arrays, list
lengths, junk and out-of-range hyperparameters, empty arrays).

Whatever comes in, a call either succeeds or raises TypeError or ValueError (a crash
ends the test run), and a call that raises has modified nothing: every array it was
given, in lists too, holds the same bytes afterwards.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnfast
from _helpers import FakeCudaArray, FakeDLPack

#: Examples per test; NNFAST_FUZZ_EXAMPLES=20000 digs deeper (minutes).
FUZZ = settings(max_examples=int(os.environ.get("NNFAST_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=list(HealthCheck))

# ----------------------------------------------------------------- valid calls


def _arrays(draw, shape, dtype, count):
    values = st.floats(-4, 4, width=32)
    return [np.array(draw(st.lists(values, min_size=int(np.prod(shape)),
                                   max_size=int(np.prod(shape)))), dtype).reshape(shape)
            for _ in range(count)]


@st.composite
def optimizer_call(draw):
    """(function, args, kwargs) of a valid optimizer step over 1-3 tensors."""
    kind = draw(st.sampled_from(["sgd", "sgdm", "adagrad", "rmsprop", "adam", "adamw", "nadam",
                                 "radam", "lamb", "lion", "adamax", "adadelta"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shapes = draw(st.lists(st.sampled_from([(3,), (2, 2), (5,), (1,)]), min_size=1, max_size=3))

    def operand():
        return [_arrays(draw, s, dtype, 1)[0] for s in shapes]

    args = [operand(), operand()]
    kwargs = {"lr": 0.01}
    if kind == "sgdm":
        args.append(operand())
        kwargs.update(momentum=0.9)
    elif kind == "adagrad":
        args.append(operand())
    elif kind == "rmsprop":
        args.append(operand())
        if draw(st.booleans()):
            kwargs.update(momentum=0.5, momentum_buffers=operand())
        if draw(st.booleans()):
            kwargs.update(centered=True, grad_avgs=operand())
    elif kind in ("adam", "adamw"):
        args += [operand(), operand()]
        kwargs.update(step=draw(st.integers(1, 5)))
        if draw(st.booleans()):
            kwargs.update(amsgrad=True, max_exp_avg_sqs=operand())
    elif kind in ("nadam", "radam"):
        args += [operand(), operand()]
        kwargs.update(step=draw(st.integers(1, 12)))
        if kind == "nadam":
            kwargs.update(mu_product=draw(st.floats(0.0, 0.9)))
    elif kind == "lamb":
        args += [operand(), operand()]
        kwargs.update(step=draw(st.integers(1, 5)), use_nvlamb=draw(st.booleans()))
    elif kind == "lion":
        args.append(operand())
    elif kind == "adamax":
        args += [operand(), operand()]
        kwargs.update(step=draw(st.integers(1, 5)))
    elif kind == "adadelta":
        args += [operand(), operand()]
    return getattr(nnfast, f"{kind}_step"), args, kwargs


@st.composite
def activation_call(draw):
    name = draw(st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu"]))
    backward = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(st.sampled_from([(4,), (2, 3), (1,), ()]))
    arrays = _arrays(draw, shape, dtype, 3)
    args = arrays[:2] if backward else arrays[:1]
    kwargs = {}
    if draw(st.booleans()):
        kwargs["out"] = arrays[2]
    if name == "leaky_relu":
        kwargs["alpha"] = 0.1
    return getattr(nnfast, name + ("_backward" if backward else "")), args, kwargs


@st.composite
def loss_call(draw):
    name = draw(st.sampled_from(["mse_loss", "cross_entropy", "softmax_cross_entropy",
                                 "l1_loss", "l2_loss"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rows, classes = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    kwargs = {}
    if name in ("l1_loss", "l2_loss"):
        return getattr(nnfast, name), [_arrays(draw, (3,), dtype, 2)], kwargs
    kwargs["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    x, target, grad = _arrays(draw, (rows, classes), dtype, 3)
    if name == "softmax_cross_entropy" and draw(st.booleans()):
        target = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=rows,
                                        max_size=rows)), np.int64)
        if draw(st.booleans()):
            kwargs["ignore_index"] = 0
    elif name != "mse_loss":
        x, target = np.abs(x) + 0.1, np.abs(target)
    if name == "softmax_cross_entropy" and draw(st.booleans()):
        kwargs["label_smoothing"] = 0.1
    if draw(st.booleans()):
        kwargs["grad_out"] = grad
    return getattr(nnfast, name), [x, target], kwargs


# ----------------------------------------------------------------- spoiling


JUNK_OBJECTS = [None, 3, 2.5, "x", b"x", object(), [1.0, 2.0], [[1.0]], {}, np.float32(1.0),
                np.int64(3), FakeDLPack((1.5, 0)), FakeDLPack(1.5), FakeDLPack((1, 0)),
                FakeCudaArray("no dict"), FakeCudaArray({"shape": "abc"}),
                FakeCudaArray({"shape": (3,), "typestr": "<f4", "data": (1.5, False)}),
                FakeCudaArray({"shape": (3,), "typestr": "<fx", "data": (0, False), "version": 3}),
                FakeCudaArray({"shape": (3,), "typestr": "<f4", "data": (0, False), "stream": "s"}),
                FakeCudaArray({"shape": (3,), "typestr": "<f4", "data": (0, False), "stream": 1.5}),
                FakeCudaArray({"shape": (-3,), "typestr": 5, "data": ("x", False)}),
                FakeCudaArray({"shape": (3,), "typestr": "<f4", "data": (0, False),
                               "strides": "x", "mask": None}),
                FakeCudaArray({"shape": (2**70,), "typestr": "<f4", "data": (2**70, "no")})]

JUNK_SCALARS = [-1.0, -1e-30, float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 3.5e38,
                10**400, -(10**400), 2**64, True, None, "0.1", complex(1, 1), np.float32("nan"),
                np.float64(1e200), np.int64(-5), [0.1], 1.0, 0.0, 2.0]

BAD_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_, np.uint8, ">f4", ">f8",
              np.longdouble, object]


def _junk(draw):
    """A junk object, its lists fresh (a call's lists are spoiled in place)."""
    return copy.deepcopy(draw(st.sampled_from(JUNK_OBJECTS)))


def _array_slots(args, kwargs):
    """(container, key) of every array argument, in lists too."""
    slots = []
    for container in (args, kwargs):
        keys = range(len(container)) if isinstance(container, list) else list(container)
        for key in keys:
            value = container[key]
            if isinstance(value, np.ndarray):
                slots.append((container, key))
            elif isinstance(value, list):
                slots.extend((value, i) for i, v in enumerate(value) if isinstance(v, np.ndarray))
    return slots


def _spoil_array(draw, a, others):
    how = draw(st.sampled_from(["junk", "dtype", "shape", "strided", "readonly", "alias",
                                "empty", "scalar0d", "fortran"]))
    if how == "junk":
        return _junk(draw)
    if how == "dtype":
        with warnings.catch_warnings():  # a complex array spoiled once more
            warnings.simplefilter("ignore")
            return a.astype(draw(st.sampled_from(BAD_DTYPES)))
    if how == "shape":
        return np.zeros(draw(st.sampled_from([(7,), (2, 5), (0,), (1, 1, 3), ()])), a.dtype)
    if how == "strided":
        wide = np.zeros(a.shape + (2,), a.dtype)
        wide[..., 0] = a
        return wide[..., 0]
    if how == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if how == "alias":
        return draw(st.sampled_from(others)) if others else a
    if how == "empty":
        return np.zeros((0,) + a.shape[1:], a.dtype)
    if how == "scalar0d":
        return a.dtype.type(1.0)
    return np.asfortranarray(np.zeros(a.shape + (2,), a.dtype))


@st.composite
def spoiled(draw, call):
    fn, args, kwargs = draw(call)
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["array", "array", "list", "scalar", "swap_list"]))
        slots = _array_slots(args, kwargs)
        if what == "array" and slots:
            container, key = draw(st.sampled_from(slots))
            others = [c[k] for c, k in slots if c[k] is not container[key]]
            container[key] = _spoil_array(draw, container[key], others)
        elif what == "list":
            lists = [v for v in list(args) + list(kwargs.values()) if isinstance(v, list)]
            if lists:
                target = draw(st.sampled_from(lists))
                if draw(st.booleans()) and target:
                    target.pop(draw(st.integers(0, len(target) - 1)))
                else:
                    target.append(_junk(draw) if draw(st.booleans()) else np.zeros(3))
        elif what == "scalar":
            names = ["lr", "momentum", "dampening", "eps", "alpha", "beta1", "beta2",
                     "weight_decay", "l1", "step", "label_smoothing", "ignore_index",
                     "reduction", "maximize", "nesterov", "centered", "amsgrad"]
            allowed = _keywords(fn)
            names = [n for n in names if n in allowed]
            if names:
                kwargs[draw(st.sampled_from(names))] = draw(st.sampled_from(JUNK_SCALARS + ["sum"]))
        elif what == "swap_list" and args and isinstance(args[0], list) and args[0]:
            args[0] = tuple(args[0]) if draw(st.booleans()) else args[0][0]
    return fn, args, kwargs


def _keywords(fn):
    return set(inspect.signature(fn).parameters)


def _snapshot(args, kwargs):
    """(array, its bytes) of every array the call can reach, bases of views included."""
    seen, out = set(), []

    def visit(value):
        if isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, np.ndarray):
            base = value
            while isinstance(base.base, np.ndarray):
                base = base.base
            for a in (value, base):
                if id(a) not in seen and a.dtype != object:
                    seen.add(id(a))
                    out.append((a, a.tobytes()))

    visit(args)
    visit(list(kwargs.values()))
    return out


def _check(fn, args, kwargs):
    before = _snapshot(args, kwargs)
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError):
        pass
    except RuntimeError as e:  # a stand-in GPU array where nnfast was built without CUDA
        if nnfast._backend._cuda is not None or "built without CUDA" not in str(e):
            raise
    else:
        return
    for a, data in before:
        assert a.tobytes() == data, f"{fn.__name__} raised but modified an array"


@FUZZ
@given(spoiled(optimizer_call()))
def test_fuzz_optimizers(call):
    _check(*call)


@FUZZ
@given(spoiled(activation_call()))
def test_fuzz_activations(call):
    _check(*call)


@FUZZ
@given(spoiled(loss_call()))
def test_fuzz_losses(call):
    _check(*call)


@FUZZ
@given(st.sampled_from(JUNK_SCALARS + JUNK_OBJECTS + [1, 2, 1024, 1025, 0, -3]))
def test_fuzz_set_num_threads(n):
    before = nnfast.get_num_threads()
    try:
        nnfast.set_num_threads(n)
    except (TypeError, ValueError):
        assert nnfast.get_num_threads() == before
    finally:
        nnfast.set_num_threads(before)


@pytest.mark.parametrize("make", [optimizer_call, activation_call, loss_call])
def test_unspoiled_calls_succeed(make):
    """The generators above make valid calls: the spoiling is what fails them."""

    @settings(max_examples=30, deadline=None)
    @given(make())
    def run(call):
        fn, args, kwargs = call
        fn(*args, **kwargs)

    run()
