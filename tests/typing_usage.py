"""Typed use of nnfast's public API, checked by mypy in tests/test_typing.py and run there.

``main`` uses the API as a program would, with ``assert_type`` pinning what mypy infers.
``misuse`` is never run: each of its lines is a type error that mypy must report, marked
``# type: ignore[code]``. mypy runs with ``warn_unused_ignores``, so if nnfast's types
regressed to ``Any`` those marks would be unused and the check would fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

import nnfast
import nnfast._core
import nnfast.reference
from nnfast.optim import Adam


def main() -> None:
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(8).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    grads = [np.ones_like(p) for p in params]
    exp_avgs = [np.zeros_like(p) for p in params]
    exp_avg_sqs = [np.zeros_like(p) for p in params]
    assert_type(nnfast.adam_step(params, grads, exp_avgs, exp_avg_sqs, step=1, lr=1e-3), None)
    nnfast.sgd_step(params[0], grads[0], lr=0.1, weight_decay=1e-4, l1=0.0, maximize=False)
    nnfast.sgdm_step(tuple(params), tuple(grads), exp_avgs, lr=0.1, nesterov=True)
    nnfast.rmsprop_step(params, grads, exp_avg_sqs, lr=0.01, momentum=0.9,
                        momentum_buffers=exp_avgs)
    nnfast.lion_step(params, grads, exp_avgs, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.1)
    nnfast.adamax_step(params, grads, exp_avgs, exp_avg_sqs, step=[1, 2], lr=2e-3)
    nnfast.adadelta_step(params, grads, exp_avgs, exp_avg_sqs, rho=0.95, maximize=True)
    nnfast.adafactor_step(params, grads, [None, None], [None, None], exp_avg_sqs, step=1,
                          eps1=None, d=1.5)

    x = rng.standard_normal((4, 5))
    y = nnfast.sigmoid(x)
    assert_type(y, NDArray[Any])
    assert_type(nnfast.tanh_backward(nnfast.tanh(x, out=x), np.ones_like(x)), NDArray[Any])
    assert_type(nnfast.leaky_relu(x, 0.2), NDArray[Any])

    loss, grad = nnfast.mse_loss(y, np.zeros_like(y))
    assert_type(loss, float)
    assert_type(grad, NDArray[Any])
    per_element, _ = nnfast.mse_loss(y, np.zeros_like(y), "none", grad_out=y)
    assert_type(per_element, NDArray[Any])
    labels = np.array([0, 1, 2, 3])
    sce_loss, dlogits = nnfast.softmax_cross_entropy(x, labels, "sum", label_smoothing=0.1)
    assert_type(sce_loss, float)
    assert_type(dlogits, NDArray[Any])
    assert_type(nnfast.l2_loss(params), float)

    optimizer = Adam(params, lr=nnfast.schedules.ExponentialDecay(1e-3, 100, 0.96))
    optimizer.step([grads[0], None])
    assert_type(optimizer.state_dict(), dict[str, Any])
    assert_type(nnfast.complexity([3, 4, 2]).params, int)
    assert_type(nnfast.get_num_threads(), int)
    assert_type(nnfast.cuda.is_available(), bool)
    assert_type(nnfast.reference.l1_loss(params), float)
    assert_type(nnfast._core.get_num_threads(), int)


def misuse(x: NDArray[np.float64]) -> None:
    nnfast.sigmoid("x")  # type: ignore[type-var]
    nnfast.sgd_step([x], [x], lr="0.1")  # type: ignore[arg-type]
    nnfast.sgd_step([x], [x], 0.1)  # type: ignore[call-arg]
    nnfast.adam_step(x, x, x, x, step=1, betas=(0.9, 0.99))  # type: ignore[call-arg]
    nnfast.mse_loss(x, x, reduction="average")  # type: ignore[call-overload]
    loss: str = nnfast.l1_loss(x)  # type: ignore[assignment]
    nnfast.set_num_threads(2.0)  # type: ignore[arg-type]
    Adam([x], betas=0.9)  # type: ignore[arg-type]
    nnfast._core.adam_step(x, x, x, x, 1)  # type: ignore[call-arg]
