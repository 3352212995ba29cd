"""nnfast on NVIDIA GPUs.

Every function of nnfast (optimizer steps, activations, losses) also takes GPU
arrays from any library, through ``__cuda_array_interface__`` (v2/v3) or DLPack
(``__dlpack__``/``__dlpack_device__``): PyTorch CUDA tensors, CuPy arrays and
others, with no framework as a dependency. Rules:

- All arrays of one call are on one device; a host array or a second device in
  the same call is a ValueError, with nothing written.
- GPU arrays must be C-contiguous (ValueError otherwise; nothing is copied).
- A PyTorch tensor that requires grad may be read but not written (ValueError: writing
  it behind autograd's back could leave stale saved values unnoticed); pass
  ``tensor.detach()``, as ``nnfast.torch`` does (it bumps the version counters itself).
- Work is queued on the producer's stream (PyTorch's or CuPy's current stream,
  or the stream a v3 interface names) and the call returns without waiting for
  the GPU, except where a value must come back to Python: the losses with
  ``reduction="sum"`` or ``"mean"`` and ``l1_loss``/``l2_loss`` (they return a
  float), ``softmax_cross_entropy`` with class ids (the ids are checked
  against [0, C) before anything is written), ``clip_grad_norm_`` with
  ``error_if_nonfinite=True``, and ``lamb_step`` (its trust ratios are derived on the
  host). These synchronize their stream. ``grad_norm`` and ``clip_grad_norm_`` return the
  norm as a 1-element array on the device, for float32 and float64 grads (16-bit GPU
  grads: TypeError).
- New arrays (outputs, per-row losses) are allocated by the input's own library,
  on its device: a torch tensor in, a torch tensor out.
- Class ids on the GPU are int32 or int64.
- Optimizer steps take the 16-bit storage the CPU takes (bfloat16 and float16 params,
  grads and states, float32 ``master_params``, int16 ``param_remainders``, stochastic
  rounding), with the CPU's bits: PyTorch bfloat16 and float16 tensors, float16 and int16
  through the CUDA array interface, bfloat16 through DLPack. Activations and losses take
  the same 16-bit arrays, computed in float32 with the CPU's rounding: elementwise results
  have the CPU's bits (NaN payloads aside), sums may differ in their last bits (the same
  float64 terms, added in another order).

Sums (loss values, l1/l2) are deterministic: fixed chunks and a fixed order of
additions in double, so the same inputs give the same bits on every run.
"""

from __future__ import annotations

from typing import Any

from . import _backend


def is_built() -> bool:
    """Whether nnfast was built with its CUDA module (nvcc was found at build time).

    Returns:
        True when ``nnfast._cuda`` exists.
    """
    return _backend._cuda is not None


def device_count() -> int:
    """The number of usable CUDA devices.

    Returns:
        The count the CUDA runtime reports; 0 without the CUDA module, a driver or a GPU.
    """
    return _backend._cuda.device_count() if is_built() else 0


def is_available() -> bool:
    """Whether GPU arrays can be used.

    Returns:
        True when the CUDA module is built and a GPU and its driver are present.
    """
    return device_count() > 0


def build_info() -> dict[str, Any] | None:
    """The CUDA module's build facts.

    Returns:
        ``{"cuda_runtime": int, "architectures": str}`` (the CUDA runtime version the module
        was built against, as ``CUDART_VERSION``, and the CUDA architectures compiled), or
        None without the CUDA module.
    """
    return dict(_backend._cuda.build_info()) if is_built() else None


def _new_like(array: Any, shape: tuple[int, ...], kind: str) -> Any:
    """A new array of ``array``'s library, dtype and device (used by the kernels): ``kind``
    is ``"empty"`` (uninitialized) or ``"zeros"``."""
    library = _backend._library(array)
    if library == "torch":
        import torch

        return getattr(torch, kind)(shape, dtype=array.dtype, device=array.device)
    if library == "cupy":
        import cupy

        with cupy.cuda.Device(array.device.id):
            return getattr(cupy, kind)(shape, dtype=array.dtype)
    namespace = getattr(array, "__array_namespace__", None)
    if namespace is not None:
        return getattr(namespace(), kind)(shape, dtype=array.dtype, device=array.device)
    raise TypeError(
        f"cannot allocate an output like a {type(array).__name__}: its library is neither "
        "PyTorch, CuPy nor an array-API namespace; pass out= or grad_out=")
