r"""Losses, each returning ``(loss, grad)`` from one fused pass.

``reduction`` is "mean", "sum" or "none": the loss is a Python float for the
first two (summed in float64 over fixed chunks, so the same for any thread
count) and an array of per-element (MSE) or per-row losses for "none". ``grad``
is the gradient of the returned (reduced) loss; for "none", of the sum of the
losses. ``grad_out`` receives the gradient instead of a new array (it may be the
predictions, probabilities or logits array itself, for an in-place gradient; a
partial overlap, or softmax_cross_entropy's probability target, is a ValueError).

All raise TypeError for non-ndarray inputs or unsupported/mixed dtypes, and
ValueError for shape mismatches, an unwritable ``grad_out``, or a bad
``reduction``.
"""

from __future__ import annotations

from ._backend import module_for


def mse_loss(pred, target, reduction="mean", *, grad_out=None):
    r"""Mean squared error, the lesson's :math:`\mathrm{mean}((y - y\_)^2)`.

    .. math::

        L = \frac{1}{N}\sum_i (p_i - t_i)^2, \qquad
        \frac{\partial L}{\partial p_i} = \frac{2}{N}(p_i - t_i)

    (without the :math:`1/N` for "sum" and "none"). The mean of an empty array is NaN.

    Args:
        pred: predictions :math:`p`, any shape.
        target: targets :math:`t`, same shape and dtype.
        reduction: "mean" (over all elements), "sum" or "none".
        grad_out: optional array for the gradient.
    """
    return module_for(pred).mse_loss(pred, target, reduction, grad_out)


def cross_entropy(probs, target, reduction="mean", *, grad_out=None):
    r"""Cross-entropy on probabilities, the lesson's :math:`H(y\_, y) = -\sum y\_ \ln y`.

    .. math::

        L_r = -\sum_c t_{rc} \ln p_{rc}, \qquad
        \frac{\partial L_r}{\partial p_{rc}} = -\frac{t_{rc}}{p_{rc}}

    over the last axis (classes); every leading index is a row. A class with
    :math:`t = 0` contributes 0 to both, even where :math:`p = 0`; a positive
    target on :math:`p = 0` gives :math:`+\infty`. "mean" divides by the number
    of rows (the lesson's H1 = 0.511, H2 = 0.223 are rows of this).

    Args:
        probs: probabilities :math:`p`, at least 1-D.
        target: target distribution :math:`t`, same shape and dtype.
        reduction: "mean" (over rows), "sum" or "none" (per-row array).
        grad_out: optional array for the gradient.
    """
    return module_for(probs).cross_entropy(probs, target, reduction, grad_out)


def softmax_cross_entropy(logits, target, reduction="mean", ignore_index=None,
                          label_smoothing=0.0, *, grad_out=None):
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
        logits: (N, C) float32 or float64.
        target: integer class ids, shape (N,), each in [0, C) or ``ignore_index``;
            or probabilities, shape (N, C), the dtype of ``logits``.
        reduction: "mean", "sum" or "none" (per-row array of shape (N,)).
        ignore_index: a class id whose rows are ignored (class-id targets only).
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        grad_out: optional (N, C) array for the gradient; may be ``logits``.

    Raises:
        ValueError: also for labels outside [0, C), ``ignore_index`` with
            probability targets, or logits that are not 2-D.
    """
    return module_for(logits).softmax_cross_entropy(logits, target, reduction, ignore_index, label_smoothing,
                                       grad_out)


def l1_loss(w):
    r"""L1 regularization loss :math:`\sum_i |w_i|` over one array or a list of arrays."""
    return module_for(w).l1_loss(w)


def l2_loss(w):
    r"""L2 regularization loss :math:`\frac12 \sum_i w_i^2` (``tf.nn.l2_loss``) over one
    array or a list of arrays."""
    return module_for(w).l2_loss(w)
