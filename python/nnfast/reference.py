"""Every nnfast operation in plain NumPy: the oracle the tests hold the kernels to.

Each function here has the same name and signature as its kernel in ``nnfast`` and is written
to be read: one formula per line, with the math quoted in a comment. The tests run these
functions on float64 copies of their inputs and compare the kernels' results with them.

Arithmetic happens in the dtype of the arrays given. Python scalars (``lr``, ``beta1``, ...)
combine with arrays NumPy's way (NEP 50: a Python float is "weak", so a float32 array stays
float32 and the scalar is rounded to float32), which is also what the float32 kernels do.
Scalar-only expressions such as ``1 - beta1**step`` are evaluated in Python (double).
Loss sums accumulate in float64. Activations write into ``out=`` and losses into
``grad_out=`` when given, as the kernels do.

The storage options of the kernels' optimizer steps (``master_params``, ``param_remainders``,
``stochastic_rounding``, ``seed``) are not here: they decide how a 16-bit result is stored,
not what it is; the tests apply them to the float64 results of these functions.

Nothing here validates its arguments beyond what it needs to run: a function raises only the
ValueErrors its docstring lists, and otherwise whatever NumPy raises for arrays it cannot
combine. Arguments mean what they mean for the kernel of the same name (its docstring has the
math with the symbols mapped to the arguments).

Notation: ``g'`` is the effective gradient,

    g' = (-s if maximize else s) + weight_decay * p + l1 * sign(p),   s = grad_scale * g

where each added term is applied only when its coefficient is nonzero (so ``0 * inf``
never turns a parameter's update into NaN).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._types import HostArray, HostArrays, Reduction

__all__ = [
    "sgd_step",
    "sgdm_step",
    "adagrad_step",
    "rmsprop_step",
    "adam_step",
    "adamw_step",
    "nadam_step",
    "radam_step",
    "lamb_step",
    "lion_step",
    "adamax_step",
    "adadelta_step",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "sigmoid_backward",
    "tanh_backward",
    "relu_backward",
    "leaky_relu_backward",
    "mse_loss",
    "cross_entropy",
    "softmax_cross_entropy",
    "l1_loss",
    "l2_loss",
    "grad_norm",
    "clip_grad_norm_",
]

_REDUCTIONS = ("mean", "sum", "none")


def _as_list(arrays: Any) -> list[Any]:
    """One array, or a list/tuple of arrays, as a list."""
    if isinstance(arrays, (list, tuple)):
        return list(arrays)
    return [arrays]


def _effective_grad(p: HostArray, g: HostArray, *, maximize: bool, weight_decay: float,
                    l1: float, grad_scale: float) -> HostArray:
    """g' = (-s if maximize else s) + weight_decay*p + l1*sign(p), nonzero terms only, with
    s = grad_scale * g."""
    g = grad_scale * g
    if maximize:
        g = -g
    if weight_decay != 0:
        # coupled L2: d/dp (weight_decay/2 * p^2) = weight_decay * p
        g = g + weight_decay * p
    if l1 != 0:
        # L1: d/dp (l1 * |p|) = l1 * sign(p), with sign(0) = 0
        g = g + l1 * np.sign(p)
    return g


def _per_tensor(value: Any, count: int) -> list[Any]:
    """A step count or flag, or one per tensor, as one per tensor."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value] * count


def _checked_steps(step: Any, count: int) -> list[Any]:
    """A step count, or one per tensor, as one per tensor; ValueError for one below 1."""
    steps = _per_tensor(step, count)
    if min(steps, default=1) < 1:
        raise ValueError(f"step must be >= 1, got {min(steps)}")
    return steps


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


# --------------------------------------------------------------------------- optimizers


def sgd_step(params: HostArrays, grads: HostArrays, *, lr: float, weight_decay: float = 0.0,
             l1: float = 0.0, maximize: bool = False, grad_scale: float = 1.0) -> None:
    """Plain stochastic gradient descent, in place.

    ``p <- p - lr * g'``

    Args:
        params, grads: one array or a list/tuple of arrays; ``params`` is updated in place.
        lr: learning rate.
        weight_decay, l1, maximize, grad_scale: terms of ``g'`` (see the module docstring).

    Returns:
        None; ``params`` holds the result.

    Raises:
        Nothing of its own (see the module docstring).
    """
    for p, g in zip(_as_list(params), _as_list(grads)):
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # p = p - lr*g'
        p[...] = p - lr * g


def sgdm_step(params: HostArrays, grads: HostArrays, momentum_buffers: HostArrays, *, lr: float,
              momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False,
              weight_decay: float = 0.0, l1: float = 0.0, maximize: bool = False, grad_scale: float = 1.0,
              first_step: bool | list[bool] = False) -> None:
    """SGD with (heavy-ball or Nesterov) momentum, PyTorch's form, in place.

    ``b <- momentum*b + (1 - dampening)*g'``;
    ``d = g' + momentum*b`` if ``nesterov`` else ``d = b``;
    ``p <- p - lr*d``.

    On a first step (``first_step``, per tensor) ``b <- g'`` instead, as torch.optim.SGD
    starts its buffers. The lesson's EMA momentum (``m = beta*m + (1-beta)*g``) is
    ``dampening=momentum`` with buffers from zero and no first step.

    Args:
        params, grads, momentum_buffers: one array or a list/tuple of arrays; ``params`` and
            ``momentum_buffers`` are updated in place.
        lr, momentum, dampening, nesterov: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'``.
        first_step: a bool, or one per tensor.

    Returns:
        None; ``params`` and ``momentum_buffers`` hold the result.

    Raises:
        Nothing of its own (see the module docstring).
    """
    params = _as_list(params)
    firsts = _per_tensor(first_step, len(params))
    for p, g, b, first in zip(params, _as_list(grads), _as_list(momentum_buffers), firsts):
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # b = g' on a first step, else b = mu*b + (1 - dampening)*g'
        b[...] = g if first else momentum * b + (1 - dampening) * g
        # d = g' + mu*b (Nesterov) or b
        d = g + momentum * b if nesterov else b
        # p = p - lr*d
        p[...] = p - lr * d


def adagrad_step(params: HostArrays, grads: HostArrays, sums: HostArrays, *, lr: float,
                 eps: float = 1e-10, weight_decay: float = 0.0, l1: float = 0.0,
                 maximize: bool = False, grad_scale: float = 1.0, lr_decay: float = 0.0,
                 step: int | list[int] = 1) -> None:
    """Adagrad, PyTorch's form, in place.

    ``s <- s + g'^2``; ``p <- p - clr * g' / (sqrt(s) + eps)`` with
    ``clr = lr / (1 + (step - 1)*lr_decay)`` (PyTorch's, per tensor's step). The lesson's form
    is ``eps=0``; Keras and optax put eps inside the square root and start ``s`` at 0.1.

    Args:
        params, grads, sums: one array or a list/tuple of arrays; ``params`` and ``sums`` are
            updated in place.
        lr, eps, lr_decay: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'``.
        step: the 1-based step count, or one per tensor.

    Returns:
        None; ``params`` and ``sums`` hold the result.

    Raises:
        Nothing of its own (see the module docstring).
    """
    params = _as_list(params)
    for p, g, s, t in zip(params, _as_list(grads), _as_list(sums), _per_tensor(step, len(params))):
        # clr = lr/(1 + (t - 1)*lr_decay), in Python float (double), as torch computes it
        clr = lr / (1 + (t - 1) * lr_decay)
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # s = s + g'^2
        s[...] = s + g * g
        # p = p - clr*g'/(sqrt(s) + eps)
        p[...] = p - clr * g / (np.sqrt(s) + eps)


def rmsprop_step(params: HostArrays, grads: HostArrays, square_avgs: HostArrays, *, lr: float,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 l1: float = 0.0, maximize: bool = False, grad_scale: float = 1.0, momentum: float = 0.0,
                 momentum_buffers: HostArrays | None = None, centered: bool = False,
                 grad_avgs: HostArrays | None = None) -> None:
    """RMSprop, PyTorch's form, in place.

    ``q <- alpha*q + (1 - alpha)*g'^2``;
    centered: ``c <- alpha*c + (1 - alpha)*g'``, ``avg = sqrt(q - c^2) + eps``;
    otherwise ``avg = sqrt(q) + eps``;
    ``momentum > 0``: ``b <- momentum*b + g'/avg``, ``p <- p - lr*b``;
    otherwise ``p <- p - lr*g'/avg``.

    The lesson's form is ``alpha=beta``, ``eps=0``; Keras uses rho=0.9 and eps inside the root.

    Args:
        params, grads, square_avgs: one array or a list/tuple of arrays (``q``).
        momentum_buffers: the ``b`` arrays; required when ``momentum > 0``.
        grad_avgs: the ``c`` arrays; required when ``centered``.
        lr, alpha, eps, momentum, centered: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'``.
        Params and every state given are updated in place.

    Returns:
        None; ``params`` and the state arrays given hold the result.

    Raises:
        ValueError: ``momentum > 0`` without ``momentum_buffers``, or ``centered`` without
            ``grad_avgs``.
    """
    params = _as_list(params)
    if momentum > 0 and momentum_buffers is None:
        raise ValueError("momentum_buffers is required when momentum > 0")
    if centered and grad_avgs is None:
        raise ValueError("grad_avgs is required when centered=True")
    buffers = _as_list(momentum_buffers) if momentum > 0 else [None] * len(params)
    averages = _as_list(grad_avgs) if centered else [None] * len(params)
    for p, g, q, b, c in zip(params, _as_list(grads), _as_list(square_avgs), buffers,
                             averages):
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # q = alpha*q + (1 - alpha)*g'^2
        q[...] = alpha * q + (1 - alpha) * g * g
        if centered:
            # c = alpha*c + (1 - alpha)*g'
            c[...] = alpha * c + (1 - alpha) * g
            # avg = sqrt(q - c^2) + eps
            avg = np.sqrt(q - c * c) + eps
        else:
            # avg = sqrt(q) + eps
            avg = np.sqrt(q) + eps
        if momentum > 0:
            # b = mu*b + g'/avg
            b[...] = momentum * b + g / avg
            # p = p - lr*b
            p[...] = p - lr * b
        else:
            # p = p - lr*g'/avg
            p[...] = p - lr * g / avg


def adam_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
              exp_avg_sqs: HostArrays, *, step: int | list[int], lr: float = 1e-3, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
              l1: float = 0.0, decoupled_weight_decay: bool = False, amsgrad: bool = False,
              max_exp_avg_sqs: HostArrays | None = None, maximize: bool = False,
               grad_scale: float = 1.0) -> None:
    """Adam (and AdamW, AMSGrad), PyTorch's form, in place.

    With ``t = step`` (1-based, counting this update)::

        decoupled and weight_decay != 0:  p <- p * (1 - lr*weight_decay)
        m <- beta1*m + (1 - beta1)*g'
        v <- beta2*v + (1 - beta2)*g'^2
        amsgrad:                          vmax <- max(vmax, v), and vmax replaces v below
        p <- p - lr/(1 - beta1^t) * m / (sqrt(v)/sqrt(1 - beta2^t) + eps)

    ``g'`` includes the coupled ``weight_decay*p`` only when not decoupled; the ``l1`` term
    is always coupled. ``g'`` is taken from ``p`` before the decoupled decay. The lesson's
    form has eps = 0; Keras adds its eps (1e-7) to sqrt(v) before bias correction.

    Args:
        params, grads, exp_avgs (m), exp_avg_sqs (v): one array or a list/tuple of arrays.
        max_exp_avg_sqs: the ``vmax`` arrays; required when ``amsgrad``.
        step: the 1-based step count ``t``, or one per tensor.
        lr, beta1, beta2, eps, decoupled_weight_decay, amsgrad: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'`` (weight decay: or of the decay above).
        Params and every state given are updated in place.

    Returns:
        None; ``params`` and the state arrays given hold the result.

    Raises:
        ValueError: ``step < 1``, or ``amsgrad`` without ``max_exp_avg_sqs``.
    """
    params = _as_list(params)
    steps = _checked_steps(step, len(params))
    if amsgrad and max_exp_avg_sqs is None:
        raise ValueError("max_exp_avg_sqs is required when amsgrad=True")
    maxima = _as_list(max_exp_avg_sqs) if amsgrad else [None] * len(params)
    coupled_weight_decay = 0.0 if decoupled_weight_decay else weight_decay
    for p, g, m, v, vmax, t in zip(params, _as_list(grads), _as_list(exp_avgs),
                                   _as_list(exp_avg_sqs), maxima, steps):
        # scalars in Python float (double), as torch computes them
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = math.sqrt(1 - beta2**t)
        g = _effective_grad(p, g, maximize=maximize, weight_decay=coupled_weight_decay, l1=l1,
                            grad_scale=grad_scale)
        if decoupled_weight_decay and weight_decay != 0:
            # p = p*(1 - lr*wd)
            p[...] = p * (1 - lr * weight_decay)
        # m = beta1*m + (1 - beta1)*g'
        m[...] = beta1 * m + (1 - beta1) * g
        # v = beta2*v + (1 - beta2)*g'^2
        v[...] = beta2 * v + (1 - beta2) * g * g
        if amsgrad:
            # vmax = max(vmax, v)
            vmax[...] = np.maximum(vmax, v)
            v = vmax
        # denom = sqrt(v)/sqrt(1 - beta2^t) + eps
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
        # p = p - lr/(1 - beta1^t) * m/denom
        p[...] = p - step_size * m / denom


def adamw_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
               exp_avg_sqs: HostArrays, *, step: int | list[int], lr: float = 1e-3, beta1: float = 0.9,
               beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2,
               l1: float = 0.0, amsgrad: bool = False,
               max_exp_avg_sqs: HostArrays | None = None, maximize: bool = False,
               grad_scale: float = 1.0) -> None:
    """AdamW: ``adam_step`` with ``decoupled_weight_decay=True`` (default weight_decay 1e-2).

    ``p <- p*(1 - lr*weight_decay)``, then the Adam update; see ``adam_step``.

    Args:
        params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, l1,
            amsgrad, max_exp_avg_sqs, maximize, grad_scale: as ``adam_step``.

    Returns:
        None; ``params`` and the state arrays given hold the result.

    Raises:
        ValueError: as ``adam_step``.
    """
    adam_step(params, grads, exp_avgs, exp_avg_sqs, step=step, lr=lr, beta1=beta1,
              beta2=beta2, eps=eps, weight_decay=weight_decay, l1=l1,
              decoupled_weight_decay=True, amsgrad=amsgrad, max_exp_avg_sqs=max_exp_avg_sqs,
              maximize=maximize, grad_scale=grad_scale)



def _update_moments(p: HostArray, g: HostArray, m: HostArray, v: HostArray, *, lr: float,
                    beta1: float, beta2: float, weight_decay: float,
                    decoupled_weight_decay: bool, l1: float, maximize: bool,
                    grad_scale: float) -> HostArray:
    """NAdam's and RAdam's first half, in place: the decoupled decay of p, then m and v.
    Returns g' (taken from p before the decay; weight_decay is in it unless decoupled)."""
    g = _effective_grad(p, g, maximize=maximize,
                        weight_decay=0.0 if decoupled_weight_decay else weight_decay, l1=l1,
                        grad_scale=grad_scale)
    if decoupled_weight_decay and weight_decay != 0:
        # p = p*(1 - lr*wd)
        p[...] = p * (1 - lr * weight_decay)
    # m = beta1*m + (1 - beta1)*g'
    m[...] = beta1 * m + (1 - beta1) * g
    # v = beta2*v + (1 - beta2)*g'^2
    v[...] = beta2 * v + (1 - beta2) * g * g
    return g


def nadam_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
               exp_avg_sqs: HostArrays, *, step: int | list[int],
               mu_product: float | list[float], lr: float = 2e-3, beta1: float = 0.9,
               beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
               l1: float = 0.0, momentum_decay: float = 4e-3,
               decoupled_weight_decay: bool = False, maximize: bool = False,
               grad_scale: float = 1.0) -> None:
    """NAdam, PyTorch's form, in place.

    With ``t = step`` and ``P = mu_product`` (mu_1*...*mu_t, this step's included)::

        mu_t = beta1*(1 - 0.5*0.96**(t*momentum_decay)), mu_next likewise at t + 1
        decoupled and weight_decay != 0:  p <- p * (1 - lr*weight_decay)
        m <- beta1*m + (1 - beta1)*g'
        v <- beta2*v + (1 - beta2)*g'^2
        denom = sqrt(v/(1 - beta2^t)) + eps
        p <- p - lr*(1 - mu_t)/(1 - P) * g'/denom
        p <- p - lr*mu_next/(1 - P*mu_next) * m/denom

    Args:
        params, grads, exp_avgs (m), exp_avg_sqs (v): one array or a list/tuple of arrays.
        step: the 1-based step count ``t``, or one per tensor.
        mu_product: ``P``, or one per tensor.
        lr, beta1, beta2, eps, momentum_decay, decoupled_weight_decay: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'`` (weight decay: or the decay
            above).
        Params and every state are updated in place.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        ValueError: ``step < 1``.
    """
    params = _as_list(params)
    products = _per_tensor(mu_product, len(params))
    steps = _checked_steps(step, len(params))
    for p, g, m, v, t, product in zip(params, _as_list(grads), _as_list(exp_avgs),
                                      _as_list(exp_avg_sqs), steps, products):
        # scalars in Python float (double), as torch computes them
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        grad_coefficient = lr * (1 - mu) / (1 - product)
        avg_coefficient = lr * mu_next / (1 - product * mu_next)
        g = _update_moments(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2,
                            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                            l1=l1, maximize=maximize, grad_scale=grad_scale)
        # denom = sqrt(v/(1 - beta2^t)) + eps
        denom = np.sqrt(v / (1 - beta2**t)) + eps
        # p = p - lr(1 - mu_t)/(1 - P) * g'/denom, then - lr mu_next/(1 - P mu_next) * m/denom
        p[...] = p - grad_coefficient * g / denom
        p[...] = p - avg_coefficient * m / denom


def radam_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
               exp_avg_sqs: HostArrays, *, step: int | list[int], lr: float = 1e-3,
               beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0, l1: float = 0.0, decoupled_weight_decay: bool = False,
               maximize: bool = False, grad_scale: float = 1.0) -> None:
    """RAdam, PyTorch's form, in place.

    With ``t = step``::

        decoupled and weight_decay != 0:  p <- p * (1 - lr*weight_decay)
        m <- beta1*m + (1 - beta1)*g'
        v <- beta2*v + (1 - beta2)*g'^2
        rho_inf = 2/(1 - beta2) - 1,  rho_t = rho_inf - 2*t*beta2^t/(1 - beta2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p <- p - lr*r*sqrt(1 - beta2^t)/(1 - beta1^t) * m/(sqrt(v) + eps)
        otherwise:  p <- p - lr/(1 - beta1^t) * m

    Args:
        params, grads, exp_avgs (m), exp_avg_sqs (v): one array or a list/tuple of arrays.
        step: the 1-based step count ``t``, or one per tensor.
        lr, beta1, beta2, eps, decoupled_weight_decay: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'`` (weight decay: or the decay
            above).
        Params and every state are updated in place.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        ValueError: ``step < 1``.
    """
    params = _as_list(params)
    steps = _checked_steps(step, len(params))
    for p, g, m, v, t in zip(params, _as_list(grads), _as_list(exp_avgs),
                             _as_list(exp_avg_sqs), steps):
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / bias_correction2
        _update_moments(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, l1=l1, maximize=maximize,
                        grad_scale=grad_scale)
        if rho_t > 5:
            # r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            # p = p - lr r sqrt(1 - beta2^t)/(1 - beta1^t) * m/(sqrt(v) + eps)
            step_size = lr * rect * math.sqrt(bias_correction2) / bias_correction1
            p[...] = p - step_size * (m / (np.sqrt(v) + eps))
        else:
            # p = p - lr/(1 - beta1^t) * m
            p[...] = p - lr / bias_correction1 * m


def lamb_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
              exp_avg_sqs: HostArrays, *, step: int | list[int], lr: float = 1e-3,
              beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
              weight_decay: float = 0.01, bias_correction: bool = True, adam_w_mode: bool = True,
              grad_averaging: bool = True, max_grad_norm: float = 1.0, use_nvlamb: bool = False,
              maximize: bool = False, grad_scale: float = 1.0) -> None:
    """LAMB, apex FusedLAMB's form, in place.

    With ``t = step`` and ``G`` the 2-norm of ``grad_scale * g`` over every gradient::

        c = max_grad_norm / max(G, max_grad_norm)   (1 when max_grad_norm == 0)
        g' = c * grad_scale * g (negated with maximize) [+ weight_decay*p unless adam_w_mode]
        m <- beta1*m + beta3*g'          beta3 = 1 - beta1 if grad_averaging else 1
        v <- beta2*v + (1 - beta2)*g'^2
        u = (m/c1) / (sqrt(v/c2) + eps) [+ weight_decay*p with adam_w_mode]
        r = ||p|| / ||u||   (1 if either is 0, or weight_decay == 0 and not use_nvlamb)
        p <- p - lr*r*u

    with ``c1 = 1 - beta1^t``, ``c2 = 1 - beta2^t`` (1 without bias_correction).

    Args:
        params, grads, exp_avgs (m), exp_avg_sqs (v): one array or a list/tuple of arrays.
        step: the 1-based step count ``t``, or one per tensor.
        lr, beta1, beta2, eps, weight_decay, bias_correction, adam_w_mode, grad_averaging,
            max_grad_norm, use_nvlamb, maximize, grad_scale: as in the formula.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        ValueError: ``step < 1``.
    """
    params = _as_list(params)
    grads = _as_list(grads)
    steps = _checked_steps(step, len(params))
    total = math.sqrt(math.fsum(float(np.sum(np.square(grad_scale * np.asarray(g, np.float64))))
                                for g in grads))
    clip = max_grad_norm / total if max_grad_norm > 0 and total > max_grad_norm else 1.0
    beta3 = 1 - beta1 if grad_averaging else 1.0
    for p, g, m, v, t in zip(params, grads, _as_list(exp_avgs), _as_list(exp_avg_sqs), steps):
        c1 = 1 - beta1**t if bias_correction else 1.0
        c2 = 1 - beta2**t if bias_correction else 1.0
        g = _effective_grad(p, g, maximize=maximize,
                            weight_decay=0.0 if adam_w_mode else weight_decay, l1=0.0,
                            grad_scale=clip * grad_scale)
        m[...] = beta1 * m + beta3 * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        u = (m / c1) / (np.sqrt(v / c2) + eps)
        if adam_w_mode and weight_decay != 0:
            u = u + weight_decay * p
        param_norm = math.sqrt(float(np.sum(np.square(p, dtype=np.float64))))
        update_norm = math.sqrt(float(np.sum(np.square(u, dtype=np.float64))))
        ratio = 1.0
        if (weight_decay != 0 or use_nvlamb) and param_norm != 0 and update_norm != 0:
            ratio = param_norm / update_norm
        p[...] = p - lr * ratio * u


def lion_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays, *, lr: float,
              beta1: float = 0.9, beta2: float = 0.99, weight_decay: float = 0.0,
              l1: float = 0.0, maximize: bool = False, grad_scale: float = 1.0) -> None:
    """Lion (Chen et al. 2023), lion-pytorch's form, in place::

        p <- p * (1 - lr*weight_decay)
        c  = beta1*m + (1 - beta1)*g'
        p <- p - lr*sign(c)            (sign(0) = 0, sign(NaN) = NaN)
        m <- beta2*m + (1 - beta2)*g'

    ``g'`` (with only the ``l1`` term coupled) is taken from ``p`` before the decay.

    Args:
        params, grads, exp_avgs (m): one array or a list/tuple of arrays.
        lr, beta1, beta2, weight_decay: as in the formula.
        l1, maximize, grad_scale: terms of ``g'``.
        Params and ``exp_avgs`` are updated in place.

    Returns:
        None; ``params`` and ``exp_avgs`` hold the result.
    """
    for p, g, m in zip(_as_list(params), _as_list(grads), _as_list(exp_avgs)):
        g = _effective_grad(p, g, maximize=maximize, weight_decay=0.0, l1=l1,
                            grad_scale=grad_scale)
        # p = p*(1 - lr*wd), decoupled
        p[...] = p * (1 - lr * weight_decay)
        # c = beta1*m + (1 - beta1)*g'
        c = beta1 * m + (1 - beta1) * g
        # p = p - lr*sign(c)
        p[...] = p - lr * np.sign(c)
        # m = beta2*m + (1 - beta2)*g'
        m[...] = beta2 * m + (1 - beta2) * g


def adamax_step(params: HostArrays, grads: HostArrays, exp_avgs: HostArrays,
                exp_infs: HostArrays, *, step: int | list[int], lr: float = 2e-3,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                weight_decay: float = 0.0, l1: float = 0.0, maximize: bool = False,
                grad_scale: float = 1.0) -> None:
    """Adamax, ``torch.optim.Adamax``'s form, in place. With ``t = step``::

        m <- beta1*m + (1 - beta1)*g'
        u <- max(beta2*u, |g'| + eps)          (NaN on either side gives NaN)
        p <- p - lr/(1 - beta1^t) * m / u

    Args:
        params, grads, exp_avgs (m), exp_infs (u): one array or a list/tuple of arrays.
        step: the 1-based step count ``t``, or one per tensor.
        lr, beta1, beta2, eps: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'``.
        Params and every state are updated in place.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        ValueError: ``step < 1``.
    """
    params = _as_list(params)
    steps = _checked_steps(step, len(params))
    for p, g, m, u, t in zip(params, _as_list(grads), _as_list(exp_avgs), _as_list(exp_infs),
                             steps):
        clr = lr / (1 - beta1**t)  # in Python float (double), as torch computes it
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # m = beta1*m + (1 - beta1)*g'
        m[...] = beta1 * m + (1 - beta1) * g
        # u = max(beta2*u, |g'| + eps)
        u[...] = np.maximum(beta2 * u, np.abs(g) + eps)
        # p = p - clr*m/u
        p[...] = p - clr * m / u


def adadelta_step(params: HostArrays, grads: HostArrays, square_avgs: HostArrays,
                  acc_deltas: HostArrays, *, lr: float = 1.0, rho: float = 0.9,
                  eps: float = 1e-6, weight_decay: float = 0.0, l1: float = 0.0,
                  maximize: bool = False, grad_scale: float = 1.0) -> None:
    """Adadelta, ``torch.optim.Adadelta``'s form, in place::

        v <- rho*v + (1 - rho)*g'^2
        delta = sqrt(u + eps)/sqrt(v + eps) * g'
        u <- rho*u + (1 - rho)*delta^2
        p <- p - lr*delta

    Args:
        params, grads, square_avgs (v), acc_deltas (u): one array or a list/tuple of arrays.
        lr, rho, eps: as in the formula.
        weight_decay, l1, maximize, grad_scale: terms of ``g'``.
        Params and every state are updated in place.

    Returns:
        None; ``params`` and the state arrays hold the result.
    """
    for p, g, v, u in zip(_as_list(params), _as_list(grads), _as_list(square_avgs),
                          _as_list(acc_deltas)):
        g = _effective_grad(p, g, maximize=maximize, weight_decay=weight_decay, l1=l1,
                            grad_scale=grad_scale)
        # v = rho*v + (1 - rho)*g'^2
        v[...] = rho * v + (1 - rho) * g * g
        # delta = sqrt(u + eps)/sqrt(v + eps) * g'
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        # u = rho*u + (1 - rho)*delta^2
        u[...] = rho * u + (1 - rho) * delta * delta
        # p = p - lr*delta
        p[...] = p - lr * delta


def _torch_lerp(start: HostArray, end: HostArray, weight: float) -> HostArray:
    """torch.lerp: start + weight*(end - start) for weight < 0.5, else
    end - (end - start)*(1 - weight)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def adafactor_step(params: HostArrays, grads: HostArrays, row_vars: Sequence[HostArray | None],
                   col_vars: Sequence[HostArray | None], variances: Sequence[HostArray | None],
                   *, step: Any, lr: float = 1e-2, beta2_decay: float = -0.8,
                   eps1: float | None = None, eps2: float = 1e-3, d: float = 1.0,
                   weight_decay: float = 0.0, maximize: bool = False,
                   grad_scale: float = 1.0) -> None:
    """Adafactor, ``torch.optim.Adafactor``'s form, in place (RMS(x) = ||x|| / sqrt(x.size))::

        g' = -s*g if maximize else s*g                 (s = grad_scale)
        w = t**beta2_decay;  alpha = max(eps2, RMS(p)) * min(lr, 1/sqrt(t))
        p <- p * (1 - lr*weight_decay)
        >= 2 dims: R <- lerp(R, mean over the last dim of g'^2, w)
                   C <- lerp(C, mean over the second-to-last dim of g'^2, w)
                   v = R @ C / max(mean over the second-to-last dim of R, eps1)
        0/1 dims:  v <- lerp(v, g'^2, w)
        u = g' / sqrt(max(v, eps1^2));  p <- p - alpha / max(1, RMS(u)/d) * u

    with torch's lerp (from the end nearer to w) and alpha taken before the decay.

    Args:
        params, grads: one array or a list/tuple of arrays.
        row_vars (R), col_vars (C), variances (v): one entry per parameter, None where
            its dims do not use it (functional.adafactor_step).
        step: t >= 1, or one per parameter.
        lr, beta2_decay, eps2, d, weight_decay: as in the formula.
        eps1: as in the formula; None for the machine epsilon of the params' dtype.
        maximize, grad_scale: terms of ``g'``.
        Params and every state are updated in place.

    Returns:
        None; ``params`` and the state arrays hold the result.

    Raises:
        ValueError: ``step < 1``.
    """
    params, grads = _as_list(params), _as_list(grads)
    steps = _checked_steps(step, len(params))
    for p, g, r, c, v, t in zip(params, grads, row_vars, col_vars, variances, steps):
        if p.size == 0:
            continue
        g = _effective_grad(p, g, maximize=maximize, weight_decay=0.0, l1=0.0,
                            grad_scale=grad_scale)
        e1 = np.finfo(p.dtype).eps if eps1 is None else eps1
        w = float(t) ** beta2_decay
        alpha = max(eps2, float(np.sqrt(np.mean(p * p)))) * min(lr, 1 / np.sqrt(t))
        if weight_decay != 0:
            p[...] = p * (1 - lr * weight_decay)
        if p.ndim >= 2:
            r[...] = _torch_lerp(r, np.mean(g * g, axis=-1, keepdims=True), w)
            c[...] = _torch_lerp(c, np.mean(g * g, axis=-2, keepdims=True), w)
            estimate = r * c / np.maximum(np.mean(r, axis=-2, keepdims=True), e1)
        else:
            v[...] = _torch_lerp(v, g * g, w)
            estimate = v
        u = g / np.sqrt(np.maximum(estimate, e1 * e1))
        clip = max(1.0, float(np.sqrt(np.mean(u * u))) / d)
        p[...] = p - alpha / clip * u


# --------------------------------------------------------------------------- activations


def _result(value: Any, out: HostArray | None) -> HostArray:
    """Return ``value`` as a new array, or write it into ``out`` and return ``out``."""
    if out is None:
        return np.asarray(value)
    out[...] = value
    return out


def sigmoid(x: HostArray, out: HostArray | None = None) -> HostArray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, evaluated without overflow.

    x >= 0: ``1 / (1 + exp(-x))``; x < 0: ``e / (1 + e)`` with ``e = exp(x)``.
    Both branches use ``exp(-|x|) <= 1``, so nothing overflows; NaN gives NaN.

    Args:
        x: input array.
        out: optional array for the result.

    Returns:
        A new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    x = np.asarray(x)
    # e = exp(-|x|), equal to exp(-x) for x >= 0 and exp(x) for x < 0
    e = np.exp(-np.abs(x))
    # sigmoid(x) = 1/(1 + e) for x >= 0, e/(1 + e) for x < 0
    return _result(np.where(x >= 0, 1 / (1 + e), e / (1 + e)), out)


def tanh(x: HostArray, out: HostArray | None = None) -> HostArray:
    """Hyperbolic tangent ``(1 - exp(-2x)) / (1 + exp(-2x))`` (``np.tanh``).

    Args:
        x: input array.
        out: optional array for the result.

    Returns:
        A new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    return _result(np.tanh(np.asarray(x)), out)


def relu(x: HostArray, out: HostArray | None = None) -> HostArray:
    """``relu(x) = 0 if x < 0 else x`` (torch.relu), so relu(NaN) = NaN and relu(-0.0) = -0.0.

    Args:
        x: input array.
        out: optional array for the result.

    Returns:
        A new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    x = np.asarray(x)
    return _result(np.where(x < 0, 0, x), out)


def leaky_relu(x: HostArray, alpha: float = 0.01, out: HostArray | None = None) -> HostArray:
    """``leaky_relu(x) = x if x > 0 else alpha*x`` (torch's default alpha 0.01; tf's 0.2).

    Args:
        x: input array.
        alpha: the slope for x <= 0.
        out: optional array for the result.

    Returns:
        A new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    x = np.asarray(x)
    return _result(np.where(x > 0, x, alpha * x), out)


def sigmoid_backward(y: HostArray, dy: HostArray, out: HostArray | None = None) -> HostArray:
    """Sigmoid gradient from the forward OUTPUT ``y``: ``dx = dy * (1 - y) * y``.

    Args:
        y: the forward output.
        dy: the upstream gradient.
        out: optional array for the result.

    Returns:
        ``dx``: a new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    y, dy = np.asarray(y), np.asarray(dy)
    # d/dx sigmoid(x) = sigmoid(x)*(1 - sigmoid(x)) = y*(1 - y)
    return _result(dy * (1 - y) * y, out)


def tanh_backward(y: HostArray, dy: HostArray, out: HostArray | None = None) -> HostArray:
    """Tanh gradient from the forward OUTPUT ``y``: ``dx = dy * (1 - y^2)``.

    Args:
        y: the forward output.
        dy: the upstream gradient.
        out: optional array for the result.

    Returns:
        ``dx``: a new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    y, dy = np.asarray(y), np.asarray(dy)
    # d/dx tanh(x) = 1 - tanh(x)^2 = 1 - y^2
    return _result(dy * (1 - y * y), out)


def relu_backward(x: HostArray, dy: HostArray, out: HostArray | None = None) -> HostArray:
    """ReLU gradient from the forward INPUT ``x``: ``dx = 0 if x <= 0 else dy``.

    At x = 0 the gradient is 0 (PyTorch's choice); a NaN ``x`` passes ``dy``.

    Args:
        x: the forward input.
        dy: the upstream gradient.
        out: optional array for the result.

    Returns:
        ``dx``: a new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    x, dy = np.asarray(x), np.asarray(dy)
    return _result(np.where(x <= 0, 0, dy), out)


def leaky_relu_backward(x: HostArray, dy: HostArray, alpha: float = 0.01,
                        out: HostArray | None = None) -> HostArray:
    """Leaky-ReLU gradient from the forward INPUT ``x``: ``dx = dy if x > 0 else alpha*dy``.

    At x = 0 the gradient is ``alpha*dy`` (PyTorch's choice).

    Args:
        x: the forward input.
        dy: the upstream gradient.
        alpha: the forward slope for x <= 0.
        out: optional array for the result.

    Returns:
        ``dx``: a new array, or ``out`` after writing into it.

    Raises:
        Nothing of its own (see the module docstring).
    """
    x, dy = np.asarray(x), np.asarray(dy)
    return _result(np.where(x > 0, dy, alpha * dy), out)


# --------------------------------------------------------------------------- losses


def _sum64(a: HostArray) -> float:
    """Sum of all elements, accumulated in float64, as a Python float."""
    return float(np.sum(a, dtype=np.float64))


def _mean(total: float, count: int) -> float:
    """``total / count``; NaN when ``count`` is 0 (the mean of nothing, as torch)."""
    return total / count if count else float("nan")


def mse_loss(pred: HostArray, target: HostArray, reduction: Reduction = "mean", *,
             grad_out: HostArray | None = None) -> tuple[float | HostArray, HostArray]:
    """Mean squared error and its gradient with respect to ``pred``.

    ``d = pred - target``;
    "none": ``loss = d^2`` (pred's shape), ``grad = 2*d``;
    "sum":  ``loss = sum(d^2)``, ``grad = 2*d``;
    "mean": ``loss = sum(d^2)/N``, ``grad = 2*d/N`` with ``N = pred.size``
    (the lesson's ``tf.reduce_mean(tf.square(y_ - y))``; an empty mean is NaN).

    Args:
        pred: predictions.
        target: targets, ``pred``'s shape.
        reduction: "mean", "sum" or "none".
        grad_out: optional array for the gradient.

    Returns:
        ``(loss, grad)``: loss a Python float, or an array for "none"; grad a new array, or
        ``grad_out`` after writing into it.

    Raises:
        ValueError: an unknown ``reduction``.
    """
    _check_reduction(reduction)
    pred, target = np.asarray(pred), np.asarray(target)
    # d = pred - target
    d = pred - target
    if reduction == "none":
        # loss = d^2, grad = 2d
        return d * d, _result(2 * d, grad_out)
    if reduction == "sum":
        # loss = sum(d^2), grad = 2d
        return _sum64(d * d), _result(2 * d, grad_out)
    n = d.size
    # loss = sum(d^2)/N, grad = 2d/N
    return _mean(_sum64(d * d), n), _result(2 * d / n, grad_out)


def cross_entropy(probs: HostArray, target: HostArray, reduction: Reduction = "mean", *,
                  grad_out: HostArray | None = None) -> tuple[float | HostArray, HostArray]:
    """Cross-entropy of probabilities, the lesson's ``h(y_, y) = -sum(y_ * ln y)`` per row.

    ``probs`` and ``target`` have the same shape; the last axis holds the classes and every
    leading index is a row.
    ``term = 0 if target == 0 else -target*ln(probs)`` (a zero target on a zero probability
    gives 0, never NaN; a positive target on a zero probability gives +inf);
    ``row_loss = sum(term)`` over the last axis;
    ``grad = 0 if target == 0 else -target/probs``.
    "none": per-row losses (shape ``probs.shape[:-1]``), grad unscaled;
    "sum": sum of rows, grad unscaled; "mean": sum / rows, grad / rows.

    Example (the lesson): probs [[0.6, 0.4]], target [[1, 0]] gives 0.511 (= -ln 0.6).

    Args:
        probs: probabilities, classes on the last axis.
        target: target distribution, ``probs``'s shape.
        reduction: "mean", "sum" or "none".
        grad_out: optional array for the gradient.

    Returns:
        ``(loss, grad)``: loss a Python float, or an array for "none"; grad a new array, or
        ``grad_out`` after writing into it.

    Raises:
        ValueError: an unknown ``reduction``.
    """
    _check_reduction(reduction)
    probs, target = np.asarray(probs), np.asarray(target)
    with np.errstate(divide="ignore", invalid="ignore"):
        # term = -t*ln(p), and 0 where t == 0
        terms = np.where(target == 0, 0, -target * np.log(probs))
        # d term / dp = -t/p, and 0 where t == 0
        grad = np.where(target == 0, 0, -target / probs)
    # per-row loss = sum over classes
    row_losses = np.sum(terms, axis=-1)
    if reduction == "none":
        return row_losses, _result(grad, grad_out)
    if reduction == "sum":
        return _sum64(row_losses), _result(grad, grad_out)
    rows = row_losses.size
    # loss = sum(rows)/rows, grad = grad/rows
    return _mean(_sum64(row_losses), rows), _result(grad / rows, grad_out)


def softmax_cross_entropy(logits: HostArray, target: HostArray, reduction: Reduction = "mean",
                          ignore_index: int | None = None, label_smoothing: float = 0.0, *,
                          grad_out: HostArray | None = None
                          ) -> tuple[float | HostArray, HostArray]:
    """Softmax followed by cross-entropy, and its gradient with respect to ``logits``.

    Matches ``torch.nn.functional.cross_entropy``. ``logits`` has shape (N, C). With
    ``lse_i = max_i + ln(sum_c exp(x_ic - max_i))`` (stable for any finite logits),
    ``softmax_i = exp(x_i - lse_i)`` and ``eps = label_smoothing``:

    Integer class ids ``y`` of shape (N,)::

        loss_i = lse_i - (1 - eps)*x_{i,y_i} - (eps/C)*sum_c x_ic
        grad_i = softmax_i - (1 - eps)*onehot(y_i) - eps/C

    Rows whose ``y_i == ignore_index`` (when it is not None) have loss 0 and grad 0 and leave
    the mean's count; with every row ignored the mean is NaN and the grad all 0 (as torch).

    Float probabilities ``t`` of shape (N, C), with ``t' = (1 - eps)*t + eps/C``::

        loss_i = sum_c t'_c * (lse_i - x_ic)
        grad_i = softmax_i * sum_c t'_c - t'

    "none": per-row losses (N,), grad unscaled; "sum": total, grad unscaled; "mean": total
    and grad divided by the number of counted rows (non-ignored rows for class ids, N for
    probabilities).

    Args:
        logits: shape (N, C).
        target: integer class ids of shape (N,), or probabilities of shape (N, C).
        reduction: "mean", "sum" or "none".
        ignore_index: a class id whose rows are ignored, or None.
        label_smoothing: ``eps``.
        grad_out: optional array for the gradient.

    Returns:
        ``(loss, grad)``: loss a Python float, or an array for "none"; grad a new array, or
        ``grad_out`` after writing into it.

    Raises:
        ValueError: an unknown ``reduction``; ``ignore_index`` with probability targets; a
            class id outside [0, C) on a row that is not ignored.
    """
    _check_reduction(reduction)
    x, target = np.asarray(logits), np.asarray(target)
    n, c = x.shape
    eps = label_smoothing
    # lse_i = max_i + ln(sum_c exp(x_ic - max_i))
    row_max = np.max(x, axis=1, keepdims=True)
    shifted_exp = np.exp(x - row_max)
    sum_exp = np.sum(shifted_exp, axis=1, keepdims=True)
    lse = row_max + np.log(sum_exp)
    # softmax_i = exp(x_i - max_i) / sum_c exp(x_ic - max_i)
    softmax = shifted_exp / sum_exp

    if np.issubdtype(target.dtype, np.integer):
        counted = np.ones(n, dtype=bool) if ignore_index is None else target != ignore_index
        if np.any((target[counted] < 0) | (target[counted] >= c)):
            raise ValueError(f"target class ids must lie in [0, {c})")
        labels = np.where(counted, target, 0)
        # x_{i,y_i}
        x_label = np.take_along_axis(x, labels[:, None], axis=1)
        # loss_i = lse_i - (1 - eps)*x_{i,y_i} - (eps/C)*sum_c x_ic
        row_losses = lse - (1 - eps) * x_label
        if eps != 0:
            row_losses = row_losses - (eps / c) * np.sum(x, axis=1, keepdims=True)
        # grad_i = softmax_i - (1 - eps)*onehot(y_i) - eps/C
        onehot = (np.arange(c) == labels[:, None]).astype(x.dtype)
        grad = softmax - (1 - eps) * onehot
        if eps != 0:
            grad = grad - eps / c
        row_losses = np.where(counted[:, None], row_losses, 0)[:, 0]
        grad = np.where(counted[:, None], grad, 0)
        count = int(np.count_nonzero(counted))
    else:
        if ignore_index is not None:
            raise ValueError("ignore_index is only supported with integer class-id targets")
        # t' = (1 - eps)*t + eps/C
        t = target * (1 - eps) + eps / c if eps != 0 else target
        # loss_i = sum_c t'_c*(lse_i - x_ic)
        row_losses = np.sum(t * (lse - x), axis=1)
        # grad_i = softmax_i*sum_c(t'_c) - t'
        grad = softmax * np.sum(t, axis=1, keepdims=True) - t
        count = n

    if reduction == "none":
        return row_losses, _result(grad, grad_out)
    if reduction == "sum":
        return _sum64(row_losses), _result(grad, grad_out)
    if count == 0:
        # torch: the loss is 0/0 and no row receives any gradient
        return float("nan"), _result(np.zeros_like(grad), grad_out)
    return _mean(_sum64(row_losses), count), _result(grad / count, grad_out)


def l1_loss(w: HostArrays) -> float:
    """``sum |w|`` over every element of ``w`` (one array or a list), as a Python float.

    Accumulates in float64.

    Args:
        w: one array, or a list or tuple of arrays.

    Returns:
        The sum, a Python float.

    Raises:
        Nothing of its own (see the module docstring).
    """
    return sum(_sum64(np.abs(np.asarray(a))) for a in _as_list(w))


def l2_loss(w: HostArrays) -> float:
    """``sum(w^2) / 2`` over every element of ``w`` (one array or a list) (tf.nn.l2_loss).

    Accumulates in float64.

    Args:
        w: one array, or a list or tuple of arrays.

    Returns:
        The sum, a Python float.

    Raises:
        Nothing of its own (see the module docstring).
    """
    total = 0.0
    for a in _as_list(w):
        a = np.asarray(a)
        total += _sum64(a * a)
    return total / 2


def grad_norm(grads: HostArrays, *, norm_type: float = 2.0, scale: float = 1.0,
              per_tensor: bool = False) -> float | tuple[float, HostArray]:
    """The p-norm of ``scale * g`` over every element of ``grads`` (one array or a list), in
    float64, as ``torch.linalg.vector_norm`` on their concatenation.

    Args:
        grads: one array, or a list or tuple of arrays.
        norm_type: p > 0, or ``math.inf``.
        scale: the factor s of ``s * g``.
        per_tensor: also return the norm of each array.

    Returns:
        The norm, a Python float; with ``per_tensor``, ``(norm, float64 array of the norms
        of each array)``.

    Raises:
        Nothing of its own (see the module docstring).
    """
    def terms(g: HostArray) -> HostArray:
        a = np.abs(scale * np.asarray(g, dtype=np.float64).ravel())
        return a if math.isinf(norm_type) else a**norm_type

    def norm_of(t: HostArray) -> float:
        if t.size == 0:
            return 0.0
        # ||s g||_inf = max |s g_i|; ||s g||_p = (sum |s g_i|^p)^(1/p)
        return float(np.max(t)) if math.isinf(norm_type) else float(np.sum(t) ** (1 / norm_type))

    each = [terms(g) for g in _as_list(grads)]
    total = norm_of(np.concatenate(each) if each else np.zeros(0))
    if per_tensor:
        return total, np.array([norm_of(t) for t in each], dtype=np.float64)
    return total


def clip_grad_norm_(grads: HostArrays, max_norm: float, *, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scales every array of ``grads`` in place by ``min(1, max_norm / (norm + 1e-6))``
    (torch.nn.utils.clip_grad_norm_), the norm and the coefficient in float64.

    Args:
        grads: one array, or a list or tuple of arrays, written in place.
        max_norm: the largest norm kept.
        norm_type: p > 0, or ``math.inf``.
        error_if_nonfinite: raise RuntimeError (nothing written) for a NaN or infinite norm.

    Returns:
        The norm before clipping, a Python float.

    Raises:
        RuntimeError: ``error_if_nonfinite`` and the norm is NaN or infinite.
    """
    total = grad_norm(grads, norm_type=norm_type)
    assert isinstance(total, float)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {float(norm_type)} is non-finite")
    # c = min(1, max_norm / (||g|| + 1e-6)), NaN kept
    coefficient = max_norm / (total + 1e-6)
    coefficient = coefficient if math.isnan(coefficient) else min(1.0, coefficient)
    for g in _as_list(grads):
        g[...] = g * coefficient
    return total
