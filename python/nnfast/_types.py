"""The types nnfast's annotations use for arrays and arguments, defined once.

nnfast takes NumPy arrays on the host and GPU arrays of any library: objects with
``__cuda_array_interface__`` (CUDA array interface v2/v3) or with ``__dlpack__`` and
``__dlpack_device__`` (DLPack), such as PyTorch CUDA tensors and CuPy arrays. The multi-tensor
operations also take a list or tuple of them.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Protocol, Sequence, TypeVar, Union

from numpy.typing import NDArray


class CudaArray(Protocol):
    """An array in GPU memory exposed through the CUDA array interface."""

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]: ...


class DLPackArray(Protocol):
    """An array exposed through DLPack: ``__dlpack__`` exports it, ``__dlpack_device__``
    says where it lives as ``(device type, device id)``."""

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __dlpack_device__(self) -> tuple[int, int]: ...


#: A NumPy array (float32 or float64 where it holds values; integers for class ids).
HostArray = NDArray[Any]

#: One array nnfast accepts: a NumPy array, or a GPU array of any library.
Array = Union[HostArray, CudaArray, DLPackArray]

#: An array whose kind a function keeps: a NumPy array in gives a NumPy array out, a GPU
#: array of some library gives a new array of that library (or the ``out`` given).
ArrayT = TypeVar("ArrayT", HostArray, CudaArray, DLPackArray)

#: One array, or a list or tuple of arrays (one per parameter) for the multi-tensor steps.
#: (A Sequence, so that a ``list[numpy.ndarray]`` fits; at run time only a list or tuple is
#: accepted.)
Arrays = Union[Array, Sequence[Array]]

#: One NumPy array, or a list or tuple of them (for ``nnfast.reference``, host only).
HostArrays = Union[HostArray, Sequence[HostArray]]

#: How a loss is reduced: its mean, its sum, or one loss per element or row.
Reduction = Literal["mean", "sum", "none"]

#: A learning rate for ``nnfast.optim``: a number, or a schedule called with the number of
#: steps already taken.
LearningRate = Union[float, Callable[[int], float]]
