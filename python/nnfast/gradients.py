r"""Gradient utilities: the norm of a list of gradients, and clipping by it.

.. math::

    \|s\,g\|_p = \Big(\sum_i |s\,g_i|^p\Big)^{1/p} \quad (p > 0), \qquad
    \|s\,g\|_\infty = \max_i |s\,g_i|

over every element of every array of the list (``torch.linalg.vector_norm``'s semantics on
their concatenation): a NaN anywhere makes the norm NaN, an infinity (and no NaN) makes it
inf; an empty list, or arrays of no elements, have norm 0.

Arrays: NumPy arrays (or PyTorch CPU tensors, through DLPack) on the host, in float32,
float64, bfloat16 (``ml_dtypes.bfloat16``) or float16, one dtype per call; or GPU arrays of
any library (see :mod:`nnfast.cuda`) in float32 or float64, all on one device.

On the host the norm is one read pass: each term :math:`|s\,g_i|^p` is formed in float64 from
the element (16-bit values widened exactly) and accumulated in float64 in a fixed order
(16 lanes per chunk of 2,048 to 16,384 elements, the chunks of a tensor in order, then the
tensors in order), so the result has the same bits for any thread count and any SIMD level.
It is a Python float. On the GPU it is a new 1-element array of the grads' library, dtype and
device, written without waiting for the GPU (``float(result)`` waits and reads it); its bits
are the same on every run, but not those of the host.

Every function validates the whole call (every scalar, then every array) before it writes
anything, and raises:
    TypeError: an argument that is not an array nor a list or tuple of arrays; a dtype other
        than those above, or dtypes that differ; a ``norm_type``, ``scale`` or ``max_norm``
        that is not a real number; a flag that is not a bool.
    ValueError: ``norm_type`` not > 0 (NaN included; ``float('inf')`` is the max-norm); a
        ``scale`` that is not finite; a negative or NaN ``max_norm``; arrays that are not
        C-contiguous, read-only where written, on different devices, or that share memory
        where written; an empty list of GPU arrays passed to the GPU module directly.
    RuntimeError: a GPU array, where nnfast was built without CUDA; ``clip_grad_norm_`` with
        ``error_if_nonfinite`` when the total norm is NaN or infinite.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from ._backend import module_for
from ._types import Array, Arrays


@overload
def grad_norm(grads: Arrays, *, norm_type: float = ..., scale: float = ...,
              per_tensor: Literal[False] = ...) -> Any: ...
@overload
def grad_norm(grads: Arrays, *, norm_type: float = ..., scale: float = ...,
              per_tensor: Literal[True]) -> tuple[Any, NDArray[np.float64] | Array]: ...


def grad_norm(grads: Arrays, *, norm_type: float = 2.0, scale: float = 1.0,
              per_tensor: bool = False) -> Any:
    r"""The p-norm :math:`\|s\,g\|_p` of ``scale * g`` over every array of ``grads``.

    One read pass, accumulated in float64 (see the module docstring for the order and what it
    guarantees). ``norm_type`` 1, 2 and inf run without ``pow``; any other p > 0 takes
    ``pow`` per element.

    Args:
        grads: one array, or a list or tuple of arrays of one dtype (any shapes); may be empty.
        norm_type: p, a real number > 0, or ``float('inf')`` for :math:`\max_i |s\,g_i|`.
        scale: s, a finite real number (for instance 1 / the loss scale of mixed precision).
        per_tensor: also return the norm of each array.

    Returns:
        On the host, the norm as a Python float; with ``per_tensor``, ``(norm, norms)``, where
        ``norms`` is a float64 NumPy array of one norm per array (computed from the same
        float64 sums as ``norm``). For GPU arrays, a 1-element array of the grads' library,
        dtype and device (and for ``per_tensor`` one of shape ``(len(grads),)``), not waited
        for.

    Raises:
        TypeError, ValueError, RuntimeError: as the module docstring says.
    """
    return module_for(grads).grad_norm(grads, norm_type, scale, per_tensor)


def clip_grad_norm_(grads: Arrays, max_norm: float, *, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Any:
    r"""Scales ``grads`` in place by :math:`\min(1, \mathrm{max\_norm} / (\|g\|_p + 10^{-6}))`,
    as ``torch.nn.utils.clip_grad_norm_``.

    Two passes: the norm (:func:`grad_norm`), then every ``g *= c`` with the coefficient
    computed as torch computes it, in the compute type of the grads (float32 for float32,
    bfloat16 and float16 grads, float64 for float64): the norm rounded to it, plus
    ``1e-6`` rounded to it, then ``c = (1 / that) * max_norm`` and clamped at 1 (torch's
    ``max_norm / t`` is ``t.reciprocal() * max_norm``). The coefficient is always applied, so
    ``c = 1`` leaves the grads as they are and a NaN norm makes every gradient NaN (unless
    ``error_if_nonfinite``). On float32 grads the clipped values are those
    ``torch.nn.utils.clip_grads_with_norm_`` gives for this norm, bit for bit (torch's own
    norm, summed in float32, may differ from this float64-accumulated one in the last bits);
    16-bit products are rounded once, to nearest even.

    Args:
        grads: one array, or a list or tuple of arrays of one dtype, written in place.
        max_norm: the largest norm kept, a real number >= 0 (or ``float('inf')``: no
            clipping).
        norm_type: p, a real number > 0, or ``float('inf')``.
        error_if_nonfinite: raise RuntimeError, with nothing written, when the norm is NaN or
            infinite (on the GPU this waits for the norm).

    Returns:
        The total norm before clipping: a Python float on the host; for GPU arrays a 1-element
        array of the grads' library, dtype and device (the clipping is queued after it).

    Raises:
        TypeError, ValueError, RuntimeError: as the module docstring says.
    """
    return module_for(grads).clip_grad_norm_(grads, max_norm, norm_type, error_if_nonfinite)


__all__ = ["clip_grad_norm_", "grad_norm"]
