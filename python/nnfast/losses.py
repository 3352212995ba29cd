r"""Losses, each returning ``(loss, grad)`` from one fused pass.

Arrays: NumPy arrays on the host, or GPU arrays of any library through the CUDA array
interface or DLPack (see :mod:`nnfast.cuda`), all of one call on one device; values float32,
float64, bfloat16 (``ml_dtypes.bfloat16`` on the host) or float16, one dtype per call
(class-id targets are integers). New arrays (the gradient, per-element or per-row
losses) are of the input's library, dtype and device.

bfloat16 and float16 are computed in float32, by the float32 kernels on the widened values
(softmax cross-entropy widens whole rows, so the logits are still read once): the gradient
and "none"'s losses are the float32 kernel's results rounded once to nearest even in the
input's dtype, that is, the exact (float64) result rounded once, but for the float32 error
before that rounding (at most about 1 unit of the 16-bit dtype where the float32 result is
accurate to a few float32 ULP); reduced losses are Python floats summed in float64 from the
float32 terms, within the float32 kernel's bound (enforced by
``tests/test_lowp_activations_losses.py``). A gradient beyond the 16-bit range (float16's
largest is 65504) is +-inf. Rows longer than 512 values are converted whole: 4 bytes of
scratch per value of each row operand (input, probability target, gradient) per thread,
during the call.

``reduction`` is "mean", "sum" or "none": the loss is a Python float for the
first two (summed in float64 over fixed chunks, so the same for any thread
count) and an array of per-element (MSE) or per-row losses for "none". ``grad``
is the gradient of the returned (reduced) loss; for "none", of the sum of the
losses. ``grad_out`` receives the gradient instead of a new array (it may be the
predictions, probabilities or logits array itself, for an in-place gradient; a
partial overlap, or softmax_cross_entropy's probability target, is a ValueError).

Every loss raises:
    TypeError: an array argument is not an array nnfast accepts (``l1_loss`` and ``l2_loss``:
        nor a list or tuple of them); a dtype other than float32, float64, bfloat16 or float16,
        or dtypes that differ (float64 mixed with any other dtype, bfloat16 with float16, ...).
    ValueError: shapes that differ; a ``grad_out`` that is not C-contiguous, is read-only or
        overlaps an input partially; arrays on different devices; a ``reduction`` other than
        "mean", "sum" and "none".
    RuntimeError: a GPU array, where nnfast was built without CUDA.
"""

from __future__ import annotations

from typing import Literal, overload

from ._backend import module_for
from ._types import Array, Arrays, ArrayT, Reduction


@overload
def mse_loss(pred: ArrayT, target: Array, reduction: Literal["mean", "sum"] = ..., *,
             grad_out: ArrayT | None = ...) -> tuple[float, ArrayT]: ...
@overload
def mse_loss(pred: ArrayT, target: Array, reduction: Literal["none"], *,
             grad_out: ArrayT | None = ...) -> tuple[ArrayT, ArrayT]: ...
@overload
def mse_loss(pred: ArrayT, target: Array, reduction: Reduction = ..., *,
             grad_out: ArrayT | None = ...) -> tuple[float | ArrayT, ArrayT]: ...


def mse_loss(pred: ArrayT, target: Array, reduction: Reduction = "mean", *,
             grad_out: ArrayT | None = None) -> tuple[float | ArrayT, ArrayT]:
    r"""Mean squared error, the lesson's :math:`\mathrm{mean}((y - y\_)^2)`.

    .. math::

        L = \frac{1}{N}\sum_i (p_i - t_i)^2, \qquad
        \frac{\partial L}{\partial p_i} = \frac{2}{N}(p_i - t_i)

    over all :math:`N` elements; without the :math:`1/N` for "sum" and "none". The mean of
    an empty array is NaN.

    Args:
        pred: predictions :math:`p`, any shape.
        target: targets :math:`t`, ``pred``'s shape and dtype.
        reduction: "mean" (over all elements), "sum" or "none" (one loss per element).
        grad_out: optional array for the gradient (may be ``pred``).

    Returns:
        ``(loss, grad)``: ``loss`` a float for "mean" and "sum", else the array
        :math:`(p_i - t_i)^2` of ``pred``'s shape; ``grad`` :math:`\partial L/\partial p`
        (``grad_out``, or a new array like ``pred``).

    Raises:
        TypeError, ValueError, RuntimeError: as every loss (module docstring).
    """
    return module_for(pred).mse_loss(pred, target, reduction, grad_out)


@overload
def cross_entropy(probs: ArrayT, target: Array, reduction: Literal["mean", "sum"] = ..., *,
                  grad_out: ArrayT | None = ...) -> tuple[float, ArrayT]: ...
@overload
def cross_entropy(probs: ArrayT, target: Array, reduction: Literal["none"], *,
                  grad_out: ArrayT | None = ...) -> tuple[ArrayT, ArrayT]: ...
@overload
def cross_entropy(probs: ArrayT, target: Array, reduction: Reduction = ..., *,
                  grad_out: ArrayT | None = ...) -> tuple[float | ArrayT, ArrayT]: ...


def cross_entropy(probs: ArrayT, target: Array, reduction: Reduction = "mean", *,
                  grad_out: ArrayT | None = None) -> tuple[float | ArrayT, ArrayT]:
    r"""Cross-entropy on probabilities, the lesson's :math:`H(y\_, y) = -\sum y\_ \ln y`.

    .. math::

        L_r = -\sum_c t_{rc} \ln p_{rc}, \qquad
        \frac{\partial L_r}{\partial p_{rc}} = -\frac{t_{rc}}{p_{rc}}

    over the last axis (classes); every leading index is a row. A class with
    :math:`t = 0` contributes 0 to both, even where :math:`p = 0`; a positive
    target on :math:`p = 0` gives :math:`+\infty`. "mean" divides both by the number
    of rows (the lesson's H1 = 0.511, H2 = 0.223 are rows of this).

    Args:
        probs: probabilities :math:`p`, at least 1-D.
        target: target distribution :math:`t`, ``probs``'s shape and dtype.
        reduction: "mean" (over rows), "sum" or "none" (one loss per row).
        grad_out: optional array for the gradient (may be ``probs``).

    Returns:
        ``(loss, grad)``: ``loss`` a float for "mean" and "sum", else the array of
        :math:`L_r` of shape ``probs.shape[:-1]``; ``grad`` :math:`\partial L/\partial p`
        (``grad_out``, or a new array like ``probs``).

    Raises:
        TypeError, ValueError, RuntimeError: as every loss (module docstring); ValueError
            also for a 0-d ``probs``.
    """
    return module_for(probs).cross_entropy(probs, target, reduction, grad_out)


@overload
def softmax_cross_entropy(logits: ArrayT, target: Array,
                          reduction: Literal["mean", "sum"] = ..., ignore_index: int | None = ...,
                          label_smoothing: float = ..., *,
                          grad_out: ArrayT | None = ...) -> tuple[float, ArrayT]: ...
@overload
def softmax_cross_entropy(logits: ArrayT, target: Array, reduction: Literal["none"],
                          ignore_index: int | None = ..., label_smoothing: float = ..., *,
                          grad_out: ArrayT | None = ...) -> tuple[ArrayT, ArrayT]: ...
@overload
def softmax_cross_entropy(logits: ArrayT, target: Array, reduction: Reduction = ...,
                          ignore_index: int | None = ..., label_smoothing: float = ..., *,
                          grad_out: ArrayT | None = ...) -> tuple[float | ArrayT, ArrayT]: ...


def softmax_cross_entropy(logits: ArrayT, target: Array, reduction: Reduction = "mean",
                          ignore_index: int | None = None, label_smoothing: float = 0.0, *,
                          grad_out: ArrayT | None = None) -> tuple[float | ArrayT, ArrayT]:
    r"""Softmax followed by cross-entropy, as ``torch.nn.functional.cross_entropy``.

    With :math:`\mathrm{lse}_r = \log\sum_c e^{x_{rc}}` (max-shifted: stable for any
    finite logits) and :math:`\varepsilon` = ``label_smoothing``:

    .. math::

        t'_{rc} &= (1-\varepsilon)\,t_{rc} + \varepsilon / C \\
        L_r &= \sum_c t'_{rc}\,(\mathrm{lse}_r - x_{rc}), \qquad
        \frac{\partial L_r}{\partial x_{rc}} = \mathrm{softmax}(x_r)_c \sum_k t'_{rk} - t'_{rc}

    where :math:`t_r` is the one-hot of the class id, or the given probabilities.
    Rows whose class id equals ``ignore_index`` have loss 0 and gradient 0 and are
    left out of the mean's count (if every row is ignored the mean is NaN, as
    PyTorch). "mean" over probability targets divides by N.

    Args:
        logits: :math:`x`, shape (N, C), float32, float64, bfloat16 or float16.
        target: integer class ids, shape (N,), each in [0, C) or ``ignore_index``
            (on the GPU int32 or int64); or probabilities :math:`t`, shape (N, C), the
            dtype of ``logits``.
        reduction: "mean" (over counted rows), "sum" or "none" (one loss per row).
        ignore_index: a class id whose rows are ignored (class-id targets only).
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        grad_out: optional (N, C) array for the gradient; may be ``logits``.

    Returns:
        ``(loss, grad)``: ``loss`` a float for "mean" and "sum", else the array of
        :math:`L_r`, shape (N,); ``grad`` :math:`\partial L/\partial x` (``grad_out``, or a
        new array like ``logits``).

    Raises:
        TypeError, ValueError, RuntimeError: as every loss (module docstring); TypeError
            also for an ``ignore_index`` that is not an integer or None, or a
            ``label_smoothing`` that is not a real number; ValueError also for class ids
            outside [0, C), ``ignore_index`` with probability targets, ``label_smoothing``
            outside [0, 1], logits that are not 2-D or have no class, or a ``grad_out``
            that overlaps a probability target.
    """
    return module_for(logits).softmax_cross_entropy(logits, target, reduction, ignore_index, label_smoothing,
                                       grad_out)


def l1_loss(w: Arrays) -> float:
    r"""L1 regularization loss :math:`\sum_i |w_i|` over one array or a list of arrays.

    Summed in float64 over fixed chunks (the same for any thread count).

    Args:
        w: one array, or a list or tuple of arrays of one dtype (any shapes).

    Returns:
        The sum, a Python float.

    Raises:
        TypeError, ValueError, RuntimeError: as every loss (module docstring).
    """
    return module_for(w).l1_loss(w)


def l2_loss(w: Arrays) -> float:
    r"""L2 regularization loss :math:`\frac12 \sum_i w_i^2` (``tf.nn.l2_loss``) over one
    array or a list of arrays.

    Its gradient, :math:`w`, is what ``weight_decay`` adds in the optimizer steps. Summed in
    float64 over fixed chunks (the same for any thread count).

    Args:
        w: one array, or a list or tuple of arrays of one dtype (any shapes).

    Returns:
        The sum, a Python float.

    Raises:
        TypeError, ValueError, RuntimeError: as every loss (module docstring).
    """
    return module_for(w).l2_loss(w)
