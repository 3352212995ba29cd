"""bfloat16 storage of float32 master weights without loss: a bfloat16 parameter plus an
int16 remainder.

A model can keep its parameters in bfloat16 while the optimizer still updates float32
master weights, without storing a second, float32 copy: the 16 bits that bfloat16 drops
are kept as an int16 remainder, and the pair gives back the float32 bit for bit (the
encoding TransformerEngine uses for its FP32 master weights).

With ``bits`` the float32 encoding of a master weight, ``hi = bits >> 16`` and
``lo = bits & 0xffff``::

    param     = hi + 1 (mod 2**16)  if lo >= 0x8000  else hi
    remainder = lo reinterpreted as int16          (negative exactly when lo >= 0x8000)

so ``param`` is the master rounded to bfloat16 to nearest, ties away from zero, a usable
bfloat16 copy of the weight. Joining inverts it::

    hi   = param - 1 (mod 2**16)  if remainder < 0  else param
    bits = hi << 16 | uint16(remainder)

The pair is a bijection on all 2**32 float32 encodings (NaN payloads, infinities, signed
zeros and subnormals included).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

from . import _core

#: NumPy's dtype for bfloat16 (``ml_dtypes.bfloat16``): the arrays ``split_master`` returns.
bfloat16 = ml_dtypes.bfloat16


def _ndarray(value: object, name: str, dtype: type, dtype_name: str) -> NDArray[np.generic]:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: dtype {value.dtype} is not supported; expected {dtype_name}")
    return value


def split_master(master: NDArray[np.float32]) -> tuple[NDArray[np.generic], NDArray[np.int16]]:
    """Split float32 master weights into bfloat16 parameters and int16 remainders.

    For each element, with ``bits`` its float32 encoding, ``hi = bits >> 16`` and
    ``lo = bits & 0xffff``: ``param = hi + 1 (mod 2**16)`` if ``lo >= 0x8000`` else ``hi``
    (the master rounded to bfloat16, ties away from zero), and ``remainder = lo`` as int16.
    :func:`join_master` gives the master back bit for bit.

    Args:
        master: float32 ndarray of any shape (a non-contiguous one is read as a copy).

    Returns:
        ``(params, remainders)``: new arrays of ``master``'s shape, ``params`` of dtype
        :data:`nnfast.bfloat16` and ``remainders`` of dtype int16.

    Raises:
        TypeError: ``master`` is not a NumPy array, or not float32.
    """
    _ndarray(master, "master", np.float32, "float32")
    params, remainders = _core._split_masters(master)
    return params.view(bfloat16), remainders


def join_master(params: NDArray[np.generic], remainders: NDArray[np.int16]) -> NDArray[np.float32]:
    """The float32 master weights of bfloat16 parameters and int16 remainders.

    For each element: ``hi = param - 1 (mod 2**16)`` if ``remainder < 0`` else ``param``
    (as 16-bit encodings), and the master's float32 encoding is
    ``hi << 16 | uint16(remainder)``: the inverse of :func:`split_master`, bit for bit.

    Args:
        params: ndarray of dtype :data:`nnfast.bfloat16`.
        remainders: int16 ndarray of the same shape.

    Returns:
        A new float32 ndarray of that shape.

    Raises:
        TypeError: an argument is not a NumPy array, or not of its dtype.
        ValueError: the shapes differ.
    """
    _ndarray(params, "params", bfloat16, "bfloat16")
    _ndarray(remainders, "remainders", np.int16, "int16")
    if params.shape != remainders.shape:
        raise ValueError(f"remainders: shape {remainders.shape} differs from the shape of "
                         f"params {params.shape}")
    masters: NDArray[np.float32] = _core._join_masters(params.view(np.uint16), remainders)
    return masters
