r"""Activations and their gradients, elementwise over arrays of any shape.

Forward functions return a new array, or write into ``out`` (C-contiguous,
writeable, same shape and dtype as the input; it may be the input itself, but
may not overlap an input partially) and return it. Backward functions take the upstream gradient ``dy`` and return
``dL/dx``: sigmoid and tanh from the forward OUTPUT ``y``, relu and leaky_relu
from the INPUT ``x``.

Accuracy in float32, against float64 (enforced by ``tests/test_activations.py``):
sigmoid and tanh at most 4 ULP over all finite inputs; the rest are exact up to
the rounding of their products. NaN propagates; sigmoid saturates to exactly 1
and to tiny positive values or 0, never NaN.

All raise TypeError for a non-ndarray or a dtype other than float32/float64 (or
mixed dtypes), ValueError for mismatched shapes or an ``out`` that is not
C-contiguous or is read-only. Non-contiguous inputs are read through a copy.
"""

from __future__ import annotations

from ._backend import module_for


def sigmoid(x, out=None):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, computed as :math:`e^x/(1+e^x)` for x < 0."""
    return module_for(x).sigmoid(x, out, 0.0)


def tanh(x, out=None):
    r""":math:`\tanh(x)`."""
    return module_for(x).tanh(x, out, 0.0)


def relu(x, out=None):
    r""":math:`\max(x, 0)`: 0 where x < 0, else x (as torch.relu: NaN stays NaN, -0 stays -0)."""
    return module_for(x).relu(x, out, 0.0)


def leaky_relu(x, alpha=0.01, out=None):
    r"""x where x > 0, else :math:`\alpha x` (PyTorch's default :math:`\alpha` = 0.01;
    TensorFlow's is 0.2)."""
    return module_for(x).leaky_relu(x, out, alpha)


def sigmoid_backward(y, dy, out=None):
    r""":math:`dy \cdot (1 - y)\,y`, from the forward output :math:`y = \sigma(x)`."""
    return module_for(y).sigmoid_backward(y, dy, out, 0.0)


def tanh_backward(y, dy, out=None):
    r""":math:`dy \cdot (1 - y^2)`, from the forward output :math:`y = \tanh(x)`."""
    return module_for(y).tanh_backward(y, dy, out, 0.0)


def relu_backward(x, dy, out=None):
    r""":math:`dy` where x > 0, else 0 (PyTorch's choice at x = 0), from the input x."""
    return module_for(x).relu_backward(x, dy, out, 0.0)


def leaky_relu_backward(x, dy, alpha=0.01, out=None):
    r""":math:`dy` where x > 0, else :math:`\alpha\,dy` (also at x = 0, as PyTorch)."""
    return module_for(x).leaky_relu_backward(x, dy, out, alpha)
