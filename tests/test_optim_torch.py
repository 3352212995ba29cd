"""nnfast.optim against torch.optim, step for step (skipped where torch is not installed).

Both run in float64 on the same parameters and gradients. torch orders some roundings
differently (Adam's m uses lerp, addcdiv fuses the division), so the results agree to a few
float64 ulps per step, not bit for bit; the tolerance is that per-step bound times the steps.
"""

import numpy as np
import pytest

import nnfast
from _helpers import UNIT_ROUNDOFF

torch = pytest.importorskip("torch", reason="torch is not installed: the comparison with "
                                            "torch.optim runs only where it is")

STEPS = 40
SHAPES = [(3, 4), (7,), (), (2, 1, 5)]

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-7, weight_decay=0.1, maximize=True)),
    ("Adafactor", dict(lr=1e-2)),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1,
                       maximize=True)),
]


@pytest.mark.parametrize("name, kwargs", CASES,
                         ids=[f"{n}-{sorted(kw.items())}" for n, kw in CASES])
def test_step_for_step_equal_to_torch(rng, name, kwargs):
    params = [rng.standard_normal(s) for s in SHAPES]
    torch_params = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True)
                    for p in params]
    ours = getattr(nnfast.optim, name)(params, **kwargs)
    theirs = getattr(torch.optim, name)(torch_params, foreach=False, **kwargs)
    per_step = 32 * UNIT_ROUNDOFF[np.dtype(np.float64)]
    for k in range(STEPS):
        grads = [rng.standard_normal(s) for s in SHAPES]
        if k % 4 == 2:
            grads[1] = None  # torch skips a parameter whose .grad is None
        ours.step(grads)
        for tp, g in zip(torch_params, grads):
            tp.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        theirs.step()
        for i, (p, tp) in enumerate(zip(params, torch_params)):
            expected = tp.detach().numpy()
            scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0) + kwargs["lr"] * (k + 1)
            np.testing.assert_allclose(p, expected, rtol=0, atol=(k + 1) * per_step * scale,
                                       err_msg=f"{name}{kwargs} param {i} after step {k + 1}")
