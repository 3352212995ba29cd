"""Size and cost of a dense (fully connected) network, as the lesson counts them."""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Iterable, SupportsIndex

__all__ = ["Complexity", "complexity"]


@dataclasses.dataclass(frozen=True)
class Complexity:
    """Complexity of a dense network.

    Attributes:
        layers: number of weight layers (hidden layers + the output layer).
        params: number of weights and biases, ``sum(n_in*n_out + n_out)``.
        macs: multiply-accumulates of one forward pass per sample, ``sum(n_in*n_out)``.
    """

    layers: int
    params: int
    macs: int


def complexity(layer_sizes: Iterable[SupportsIndex]) -> Complexity:
    """Layers, parameters and multiply-accumulates of a dense network.

    For consecutive sizes ``(n_in, n_out)``: ``params += n_in*n_out + n_out`` (weights and
    biases) and ``macs += n_in*n_out``; ``layers = len(layer_sizes) - 1`` (the input is not a
    layer). The lesson's ``[3, 4, 2]`` gives ``Complexity(layers=2, params=26, macs=20)``.

    Args:
        layer_sizes: sequence of positive integers, input size first, output size last.

    Returns:
        The network's :class:`Complexity`.

    Raises:
        TypeError: ``layer_sizes`` is not a sequence, or a size is not an integer.
        ValueError: fewer than two sizes, or a size < 1.
    """
    try:
        sizes: list[Any] = list(layer_sizes)
    except TypeError:
        raise TypeError(
            f"layer_sizes must be a sequence of integers, got {type(layer_sizes).__name__}"
        ) from None
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least two sizes (input and output), got {len(sizes)}")
    for i, size in enumerate(sizes):
        if isinstance(size, bool):
            raise TypeError(f"layer_sizes[{i}] must be an integer, got bool")
        try:
            sizes[i] = operator.index(size)
        except TypeError:
            raise TypeError(
                f"layer_sizes[{i}] must be an integer, got {type(size).__name__}") from None
        if sizes[i] < 1:
            raise ValueError(f"layer_sizes[{i}] must be positive, got {sizes[i]}")
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return Complexity(
        layers=len(pairs),
        params=sum(n_in * n_out + n_out for n_in, n_out in pairs),
        macs=sum(n_in * n_out for n_in, n_out in pairs),
    )
