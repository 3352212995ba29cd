"""Timing: the implementations of a case alternate call by call, so drift in the
machine's speed hits all of them alike; each figure is a median."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .cases import Case

MIN_SAMPLE_SECONDS = 2e-3  # a sample repeats a fast call until it lasts this long


@dataclass
class Measurement:
    kernel: str
    elements: int
    dtype: str
    bytes_per_element: int
    seconds: dict = field(default_factory=dict)  # implementation -> per-call times

    def median(self, impl):
        return float(np.median(self.seconds[impl]))

    def gigabytes_per_second(self, impl):
        return self.elements * self.bytes_per_element / self.median(impl) / 1e9

    def speedup(self, impl="nnfast", over="numpy"):
        return self.median(over) / self.median(impl)


def _calls_per_sample(fn):
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return max(1, math.ceil(MIN_SAMPLE_SECONDS / max(elapsed, 1e-9)))


def measure(case: Case, n: int, dtype, repeat: int, seed: int = 0) -> Measurement:
    """Median-ready timings of every implementation of `case` at size n."""
    dtype = np.dtype(dtype)
    elements, calls = case.make(n, dtype, np.random.default_rng(seed))
    scale = dtype.itemsize // 4
    result = Measurement(case.name, elements, dtype.name, case.bytes_per_element * scale)
    counts = {impl: _calls_per_sample(fn) for impl, fn in calls.items()}  # also warms up
    for impl in calls:
        result.seconds[impl] = []
    for _ in range(repeat):
        for impl, fn in calls.items():
            k = counts[impl]
            start = time.perf_counter()
            for _ in range(k):
                fn()
            result.seconds[impl].append((time.perf_counter() - start) / k)
    return result
