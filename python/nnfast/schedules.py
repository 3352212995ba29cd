"""Learning-rate schedules: callables from a step number to a learning rate.

A schedule plugs into ``nnfast.optim`` as ``lr``; the optimizer calls it with the number of
steps already taken (0 on the first step).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["ExponentialDecay"]


def _real(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return value


class ExponentialDecay:
    r"""Exponentially decaying learning rate.

    .. math::

        \mathrm{lr}(t) = \mathrm{lr}_0 \cdot r^{\,t / s}
        \qquad\text{or, with staircase,}\qquad
        \mathrm{lr}(t) = \mathrm{lr}_0 \cdot r^{\,\lfloor t / s \rfloor}

    where :math:`\mathrm{lr}_0` is ``initial_learning_rate``, :math:`r` is ``decay_rate``,
    :math:`s` is ``decay_steps`` and :math:`t` is the step number passed to the call.

    This is the lesson's ``LR_BASE * LR_DECAY ** (epoch / LR_STEP)`` and Keras's
    ``ExponentialDecay`` (same arguments and staircase rule). optax's ``exponential_decay``
    adds ``transition_begin`` and ``end_value``; ``exponential_decay(lr0, s, r)`` equals this.
    PyTorch's ``ExponentialLR(gamma)`` gives ``lr0 * gamma**epoch``, which is
    ``ExponentialDecay(lr0, 1, gamma)``.

    Args:
        initial_learning_rate: ``lr0``, >= 0.
        decay_steps: ``s``, > 0.
        decay_rate: ``r``, > 0.
        staircase: take the floor of ``t / s``, so the rate changes every ``s`` steps.

    Raises:
        TypeError: a non-real argument.
        ValueError: ``decay_steps <= 0``, ``initial_learning_rate < 0`` or
            ``decay_rate <= 0``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False) -> None:
        if not _real("initial_learning_rate", initial_learning_rate) >= 0:
            raise ValueError(
                f"initial_learning_rate must be >= 0, got {initial_learning_rate}")
        if not _real("decay_steps", decay_steps) > 0:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps}")
        if not _real("decay_rate", decay_rate) > 0:
            raise ValueError(f"decay_rate must be > 0, got {decay_rate}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = bool(staircase)

    def __call__(self, step: float) -> float:
        r"""The learning rate at ``step``, :math:`\mathrm{lr}_0 \cdot r^{t/s}` (floored
        exponent with ``staircase``).

        Args:
            step: :math:`t`, the number of steps already taken (any real).

        Returns:
            The rate, a Python float; ``inf`` where :math:`r > 1` makes it overflow.
        """
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        try:
            factor = self.decay_rate**exponent
        except OverflowError:  # decay_rate > 1 far along: the rate grows past any float
            factor = math.inf
        return float(self.initial_learning_rate * factor)

    def _key(self) -> tuple[float, float, float, bool]:
        return (self.initial_learning_rate, self.decay_steps, self.decay_rate, self.staircase)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExponentialDecay):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"ExponentialDecay(initial_learning_rate={self.initial_learning_rate!r}, "
                f"decay_steps={self.decay_steps!r}, decay_rate={self.decay_rate!r}, "
                f"staircase={self.staircase!r})")
