"""The benchmark cases: for each kernel, fresh inputs and the two calls to time.

Each case builds its own inputs (seeded), so nnfast and the reference work on
equal but separate arrays, and declares the bytes per element the kernel must
move at least (design.md): the floor every speed figure is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import nnfast
from nnfast import reference


@dataclass(frozen=True)
class Case:
    name: str
    bytes_per_element: int  # float32; float64 moves twice as many
    make: Callable  # (n, dtype, rng) -> (elements, {"nnfast": fn, "numpy": fn})


def _arrays(rng, n, dtype, count, scale=1.0):
    return [(rng.standard_normal(n) * scale).astype(dtype) for _ in range(count)]


def _optimizer(step_name, states, **options):
    """A case for an in-place step with `states` state arrays (non-negative ones for sums)."""

    def make(n, dtype, rng):
        calls = {}
        for impl, module in (("nnfast", nnfast), ("numpy", reference)):
            p, g = _arrays(rng, n, dtype, 2)
            # Second-moment states must be >= 0 and, for centered RMSprop, >= grad_avg^2:
            # |N(0, 1e-2)| for every state but grad_avgs, which starts at 0.
            state = [np.zeros(n, dtype) if key == "grad_avgs" else np.abs(a)
                     for key, a in zip(states, _arrays(rng, n, dtype, len(states), 1e-2))]
            kwargs = dict(options)
            for key, array in zip(states, state):
                kwargs[key] = array
            positional = [kwargs.pop(k) for k in states if k in _POSITIONAL[step_name]]
            step = getattr(module, step_name)
            calls[impl] = lambda step=step, p=p, g=g, positional=positional, kwargs=kwargs: step(
                p, g, *positional, **kwargs)
        return n, calls

    return make


_POSITIONAL = {
    "sgd_step": (),
    "sgdm_step": ("momentum_buffers",),
    "adagrad_step": ("sums",),
    "rmsprop_step": ("square_avgs",),
    "adam_step": ("exp_avgs", "exp_avg_sqs"),
    "adamw_step": ("exp_avgs", "exp_avg_sqs"),
}


def _unary(name):
    def make(n, dtype, rng):
        x = _arrays(rng, n, dtype, 1, 4.0)[0]
        out = np.empty_like(x)
        return n, {impl: (lambda f=getattr(module, name): f(x, out=out))
                   for impl, module in (("nnfast", nnfast), ("numpy", reference))}
    return make


def _backward(name, from_output):
    def make(n, dtype, rng):
        x, dy = _arrays(rng, n, dtype, 2)
        a = nnfast.sigmoid(x) if from_output == "sigmoid" else np.tanh(x) if from_output else x
        out = np.empty_like(x)
        return n, {impl: (lambda f=getattr(module, name): f(a, dy, out=out))
                   for impl, module in (("nnfast", nnfast), ("numpy", reference))}
    return make


def _mse(n, dtype, rng):
    pred, target = _arrays(rng, n, dtype, 2)
    return n, {impl: (lambda m=module: m.mse_loss(pred, target))
               for impl, module in (("nnfast", nnfast), ("numpy", reference))}


def _rows(n, classes):
    return max(1, n // classes)


def _cross_entropy(n, dtype, rng, classes=1000):
    rows = _rows(n, classes)
    probs = rng.dirichlet(np.ones(classes), size=rows).astype(dtype)
    target = rng.dirichlet(np.ones(classes), size=rows).astype(dtype)
    return rows * classes, {impl: (lambda m=module: m.cross_entropy(probs, target))
                            for impl, module in (("nnfast", nnfast), ("numpy", reference))}


def _softmax_cross_entropy(n, dtype, rng, classes=1000):
    rows = _rows(n, classes)
    logits = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    labels = rng.integers(0, classes, rows)
    return rows * classes, {impl: (lambda m=module: m.softmax_cross_entropy(logits, labels))
                            for impl, module in (("nnfast", nnfast), ("numpy", reference))}


def _regularizer(name):
    def make(n, dtype, rng):
        w = _arrays(rng, n, dtype, 1)[0]
        return n, {impl: (lambda f=getattr(module, name): f(w))
                   for impl, module in (("nnfast", nnfast), ("numpy", reference))}
    return make


CASES = [
    Case("sgd", 12, _optimizer("sgd_step", (), lr=1e-3)),
    Case("sgdm", 20, _optimizer("sgdm_step", ("momentum_buffers",), lr=1e-3, momentum=0.9)),
    Case("nesterov", 20, _optimizer("sgdm_step", ("momentum_buffers",), lr=1e-3, momentum=0.9,
                                    nesterov=True)),
    Case("adagrad", 20, _optimizer("adagrad_step", ("sums",), lr=1e-2)),
    Case("rmsprop", 20, _optimizer("rmsprop_step", ("square_avgs",), lr=1e-3)),
    Case("rmsprop_centered_momentum", 28, _optimizer(
        "rmsprop_step", ("square_avgs", "grad_avgs", "momentum_buffers"), lr=1e-3,
        momentum=0.9, centered=True)),
    Case("adam", 28, _optimizer("adam_step", ("exp_avgs", "exp_avg_sqs"), step=10)),
    Case("amsgrad", 36, _optimizer("adam_step", ("exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"),
                                   step=10, amsgrad=True)),
    Case("adamw", 28, _optimizer("adamw_step", ("exp_avgs", "exp_avg_sqs"), step=10)),
    Case("sigmoid", 8, _unary("sigmoid")),
    Case("sigmoid_backward", 12, _backward("sigmoid_backward", "sigmoid")),
    Case("tanh", 8, _unary("tanh")),
    Case("tanh_backward", 12, _backward("tanh_backward", "tanh")),
    Case("relu", 8, _unary("relu")),
    Case("relu_backward", 12, _backward("relu_backward", None)),
    Case("leaky_relu", 8, _unary("leaky_relu")),
    Case("leaky_relu_backward", 12, _backward("leaky_relu_backward", None)),
    Case("mse_loss", 12, _mse),
    Case("cross_entropy", 12, _cross_entropy),
    Case("softmax_cross_entropy", 8, _softmax_cross_entropy),
    Case("l1_loss", 4, _regularizer("l1_loss")),
    Case("l2_loss", 4, _regularizer("l2_loss")),
]

BY_NAME = {case.name: case for case in CASES}
