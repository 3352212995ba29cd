"""Which compiled module runs a call: ``_core`` for host arrays, ``_cuda`` for GPU arrays.

A call runs where its first array argument lives; the module then checks that
every other array of the call is on the same device (ValueError otherwise,
before anything is written). GPU work is queued on the stream the array's
library is using: PyTorch's current stream for torch tensors, CuPy's current
stream for CuPy arrays, the stream a CUDA-array-interface v3 producer names, or
else the legacy default stream.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from . import _core

try:
    from . import _cuda
except ImportError:  # built without a CUDA compiler
    _cuda = None  # type: ignore[assignment]  # mypy sees only the module of the stub

_ndarray = np.ndarray
_LEGACY_DEFAULT_STREAM = 1  # the array protocols' number for it


#: True for an object a library placed in GPU memory (DLPack or CUDA array interface).
is_gpu_array = _core.is_gpu_array


def _library(a: object) -> str:
    """"torch" for any torch.Tensor (subclasses from other packages too), else the root
    of the module that defines a's type ("cupy", ...)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(a, torch.Tensor):
        return "torch"
    return type(a).__module__.partition(".")[0]


def stream_of(a: Any) -> int:
    """The stream, as the array protocols number it, that a call on ``a`` is queued on.

    Args:
        a: a GPU array.

    Returns:
        The current stream of ``a``'s library on ``a``'s device (PyTorch, CuPy), else the
        stream its CUDA array interface names, else 1 (the legacy default stream).
    """
    library = _library(a)
    if library == "torch":
        import torch

        return torch.cuda.current_stream(a.device).cuda_stream or _LEGACY_DEFAULT_STREAM
    if library == "cupy":
        import cupy

        with a.device:  # the current stream of the array's own device
            return cupy.cuda.get_current_stream().ptr or _LEGACY_DEFAULT_STREAM
    interface = getattr(a, "__cuda_array_interface__", None)
    stream = interface.get("stream") if isinstance(interface, dict) else None
    if type(stream) is int and stream:  # a malformed interface: _cuda names the fault
        return stream
    return _LEGACY_DEFAULT_STREAM


def module_for(first: Any) -> ModuleType:
    """The module that runs a call whose first array argument (or list of them) is ``first``.

    For a GPU array it also selects the stream the call is queued on (:func:`stream_of`).

    Args:
        first: the call's first array argument, or list or tuple of them.

    Returns:
        ``nnfast._cuda`` for a GPU array, else ``nnfast._core`` (which raises the TypeError
        for anything that is not an array).

    Raises:
        RuntimeError: a GPU array, where nnfast was built without CUDA.
    """
    if type(first) is _ndarray:  # the common case first: this runs on every call
        return _core
    a = first[0] if type(first) in (list, tuple) and first else first
    if type(a) is _ndarray or not is_gpu_array(a):
        return _core
    if _cuda is None:
        raise RuntimeError(
            f"{type(a).__name__} is a GPU array, but this nnfast was built without CUDA "
            "(no nvcc at build time); rebuild with -Ccmake.define.NNFAST_CUDA=ON")
    _cuda.use_stream(stream_of(a))
    return _cuda
