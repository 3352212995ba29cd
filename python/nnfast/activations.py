r"""Activations and their gradients, elementwise over arrays of any shape.

Arrays: NumPy arrays on the host, or GPU arrays of any library through the CUDA array
interface or DLPack (see :mod:`nnfast.cuda`), all of one call on one device, of one dtype:
float32, float64, bfloat16 (``ml_dtypes.bfloat16`` on the host) or float16.
Forward functions return a new array of the input's library, dtype and shape, or write into
``out`` (C-contiguous, writeable, the input's shape and dtype; it may be the input itself, but
may not overlap an input partially) and return it. Backward functions take the upstream
gradient ``dy`` and return :math:`\partial L/\partial x = dy \cdot f'(x)`: sigmoid and tanh
from the forward OUTPUT ``y``, relu and leaky_relu from the INPUT ``x``. Non-contiguous host
inputs are read through a copy.

Accuracy in float32, against float64 (enforced by ``tests/test_activations.py``):
sigmoid and tanh at most 4 ULP over all finite inputs; the rest are exact up to
the rounding of their products. NaN propagates; sigmoid saturates to exactly 1
and to tiny positive values or 0, never NaN.

bfloat16 and float16 are computed in float32, by the float32 kernels: the inputs are
widened exactly, and each result is the float32 result rounded once to nearest even. So a
16-bit result is the exact (float64) result rounded once to the 16-bit dtype, but for the
float32 error before that rounding: at most 1 unit of the 16-bit dtype off, and exact
(the correctly rounded value, signed zeros kept) for relu and relu_backward, whose float32
results are exact (enforced by ``tests/test_lowp_activations_losses.py`` over every 16-bit
input of the forward functions). Subnormal 16-bit inputs and results are kept, not flushed.

Every function raises:
    TypeError: an array argument is not an array nnfast accepts; a dtype other than float32,
        float64, bfloat16 or float16, or dtypes that differ (float64 mixed with any other
        dtype, bfloat16 with float16, ...); ``alpha`` not a real number.
    ValueError: shapes that differ; an ``out`` that is not C-contiguous, is read-only or
        overlaps an input partially; arrays on different devices; ``alpha`` not finite (or
        too large for float32 in a float32, bfloat16 or float16 call: those compute with a
        float32 alpha).
    RuntimeError: a GPU array, where nnfast was built without CUDA.
"""

from __future__ import annotations

from ._backend import module_for
from ._types import Array, ArrayT


def sigmoid(x: ArrayT, out: ArrayT | None = None) -> ArrayT:
    r"""The logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Computed as :math:`e^x/(1+e^x)` for x < 0, so that nothing overflows.

    Args:
        x: input, any shape.
        out: optional array for the result (may be ``x``).

    Returns:
        :math:`\sigma(x)`: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).sigmoid(x, out, 0.0)


def tanh(x: ArrayT, out: ArrayT | None = None) -> ArrayT:
    r"""The hyperbolic tangent, :math:`\tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})`.

    Args:
        x: input, any shape.
        out: optional array for the result (may be ``x``).

    Returns:
        :math:`\tanh(x)`: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).tanh(x, out, 0.0)


def relu(x: ArrayT, out: ArrayT | None = None) -> ArrayT:
    r"""The rectified linear unit, :math:`\max(x, 0)`: 0 where x < 0, else x.

    As ``torch.relu``: NaN stays NaN, -0 stays -0.

    Args:
        x: input, any shape.
        out: optional array for the result (may be ``x``).

    Returns:
        :math:`\max(x, 0)`: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).relu(x, out, 0.0)


def leaky_relu(x: ArrayT, alpha: float = 0.01, out: ArrayT | None = None) -> ArrayT:
    r"""Leaky ReLU: x where x > 0, else :math:`\alpha x`.

    PyTorch's default :math:`\alpha` is 0.01; TensorFlow's is 0.2.

    Args:
        x: input, any shape.
        alpha: the slope :math:`\alpha` for x <= 0, any real.
        out: optional array for the result (may be ``x``).

    Returns:
        The activation: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).leaky_relu(x, out, alpha)


def sigmoid_backward(y: ArrayT, dy: Array, out: ArrayT | None = None) -> ArrayT:
    r"""The sigmoid's gradient from its output: :math:`dx = dy \cdot (1 - y)\,y`.

    Uses :math:`\sigma'(x) = \sigma(x)\,(1 - \sigma(x))`, so only :math:`y = \sigma(x)` is
    needed.

    Args:
        y: the forward output :math:`\sigma(x)`.
        dy: the upstream gradient :math:`\partial L/\partial y`, ``y``'s shape and dtype.
        out: optional array for the result (may be ``y`` or ``dy``).

    Returns:
        :math:`dx = \partial L/\partial x`: ``out``, or a new array like ``y``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(y).sigmoid_backward(y, dy, out, 0.0)


def tanh_backward(y: ArrayT, dy: Array, out: ArrayT | None = None) -> ArrayT:
    r"""The tanh gradient from its output: :math:`dx = dy \cdot (1 - y^2)`.

    Uses :math:`\tanh'(x) = 1 - \tanh^2(x)`, so only :math:`y = \tanh(x)` is needed.

    Args:
        y: the forward output :math:`\tanh(x)`.
        dy: the upstream gradient :math:`\partial L/\partial y`, ``y``'s shape and dtype.
        out: optional array for the result (may be ``y`` or ``dy``).

    Returns:
        :math:`dx = \partial L/\partial x`: ``out``, or a new array like ``y``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(y).tanh_backward(y, dy, out, 0.0)


def relu_backward(x: ArrayT, dy: Array, out: ArrayT | None = None) -> ArrayT:
    r"""The ReLU gradient from its input: :math:`dx = dy` where x > 0, else 0.

    At x = 0 the gradient is 0 (PyTorch's choice).

    Args:
        x: the forward input.
        dy: the upstream gradient :math:`\partial L/\partial y`, ``x``'s shape and dtype.
        out: optional array for the result (may be ``x`` or ``dy``).

    Returns:
        :math:`dx = \partial L/\partial x`: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).relu_backward(x, dy, out, 0.0)


def leaky_relu_backward(x: ArrayT, dy: Array, alpha: float = 0.01,
                        out: ArrayT | None = None) -> ArrayT:
    r"""The leaky-ReLU gradient from its input: :math:`dx = dy` where x > 0, else
    :math:`\alpha\,dy`.

    At x = 0 the gradient is :math:`\alpha\,dy` (PyTorch's choice).

    Args:
        x: the forward input.
        dy: the upstream gradient :math:`\partial L/\partial y`, ``x``'s shape and dtype.
        alpha: the forward slope :math:`\alpha` for x <= 0, any real.
        out: optional array for the result (may be ``x`` or ``dy``).

    Returns:
        :math:`dx = \partial L/\partial x`: ``out``, or a new array like ``x``.

    Raises:
        TypeError, ValueError, RuntimeError: as every activation (module docstring).
    """
    return module_for(x).leaky_relu_backward(x, dy, out, alpha)
