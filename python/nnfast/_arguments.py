"""Checks of Python-level arguments, shared by every public function.

Arrays are validated in one place, the C++ bindings (``src/bindings.cpp``); this
module checks what only Python sees: hyperparameter values, step counts,
reduction names, and whether an argument is one array or a list of them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}


def array_list(value, name):
    """One array or a list/tuple of arrays, as a list (arrays are checked in C++).

    A NumPy scalar counts as one array (0-d arithmetic returns them); C++ accepts
    it only where the array is read, not written.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(
        f"{name}: expected a numpy.ndarray or a list of them, got {type(value).__name__}"
    )


def optional_array_list(value, name):
    return None if value is None else array_list(value, name)


def real(value, name):
    """A real number as float; TypeError otherwise, ValueError for NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name}: must not be NaN")
    return value


def nonnegative(value, name):
    value = real(value, name)
    if value < 0.0:
        raise ValueError(f"{name}: must be >= 0, got {value}")
    return value


def in_unit_interval(value, name, *, include_one=False):
    """A real in [0, 1) (or [0, 1] with include_one)."""
    value = real(value, name)
    if not (0.0 <= value < 1.0 or (include_one and value == 1.0)):
        bracket = "]" if include_one else ")"
        raise ValueError(f"{name}: must lie in [0, 1{bracket}, got {value}")
    return value


def step_count(step):
    """A 1-based step number (an integer >= 1)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an integer, got {type(step).__name__}")
    if step < 1:
        raise ValueError(f"step: must be >= 1 (the count including this update), got {step}")
    return int(step)


def flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def reduction_code(reduction):
    try:
        return REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(
            f"reduction: expected one of 'mean', 'sum', 'none', got {reduction!r}"
        ) from None
