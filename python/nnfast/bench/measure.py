"""Timing. For each case and size, the implementations and the roofline kernel
alternate sample by sample (a sample repeats one call until it lasts 2 ms), so
drift in the machine's speed hits all of them alike; every figure derives from
medians of these interleaved samples.

Beside PyTorch or DeepSpeed, the OpenMP runtimes they use keep their idle threads
spinning for milliseconds after each call, on cores the next implementation
measured then shares with them (README, Threads); OMP_WAIT_POLICY=PASSIVE in the
environment makes them sleep at once."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from nnfast import _core, adam_step

from .cases import Case, tiled_randn

MIN_SAMPLE_SECONDS = 2e-3  # a sample repeats a fast call until it lasts this long


@dataclass
class Measurement:
    kernel: str
    family: str
    shape: str
    elements: int
    dtype: str
    bytes_per_element: int
    seconds: dict = field(default_factory=dict)  # implementation -> per-call times
    paths: dict = field(default_factory=dict)  # peer implementation -> the path it took

    def median(self, impl):
        return float(np.median(self.seconds[impl]))

    def gigabytes_per_second(self, impl):
        return self.elements * self.bytes_per_element / self.median(impl) / 1e9

    def roofline_fraction(self, impl="nnfast"):
        """The roofline kernel's time over impl's: the fraction of the attainable rate."""
        return self.median("roofline") / self.median(impl)

    def speedup(self, over, impl="nnfast"):
        """How many times faster impl is than `over` (None if `over` was not measured)."""
        return self.median(over) / self.median(impl) if over in self.seconds else None


def _calls_per_sample(fn):
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return max(1, math.ceil(MIN_SAMPLE_SECONDS / max(elapsed, 1e-9)))


def interleaved(calls, repeat):
    """{name: [seconds per call] * repeat}, the calls alternating sample by sample."""
    counts = {}
    for name, fn in calls.items():
        fn()  # warm-up: a first call may start threads or fault pages in
        fn()
        counts[name] = _calls_per_sample(fn)
    seconds = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            k = counts[name]
            start = time.perf_counter()
            for _ in range(k):
                fn()
            seconds[name].append((time.perf_counter() - start) / k)
    return seconds


def _roofline_call(case, elements, dtype, rng):
    """The roofline kernel for the case's traffic: its reads, updates and writes over arrays
    of the dtype measured, or for a storage layout over float32 arrays of the same total
    bytes (the kernel takes one dtype and one length; the streams' sizes are evened out).
    A kernel of several passes gets the roofline of each pass, run in turn."""
    if case.traffic.passes:
        calls = [_traffic_call(t, elements, dtype, rng) for t in case.traffic.passes]

        def run_passes():
            for call in calls:
                call()
        return run_passes
    return _traffic_call(case.traffic, elements, dtype, rng)


def _traffic_call(t, elements, dtype, rng):
    """The roofline kernel of one pass of traffic t (see _roofline_call)."""
    if t.layout_bytes:
        accesses = t.reads + 2 * t.updates + t.writes
        elements = max(1, round(elements * t.bytes_per_element(0) / (4 * accesses)))
        dtype = np.dtype(np.float32)
    arrays = [tiled_randn(rng, elements, dtype, 1e-3)
              for _ in range(t.reads + t.updates + t.writes)]
    reads = arrays[:t.reads]
    updates = arrays[t.reads:t.reads + t.updates]
    writes = arrays[t.reads + t.updates:]
    return lambda: _core.memory_traffic(reads, updates, writes)


def measure(case: Case, n: float, dtype, repeat: int, seed: int = 0) -> Measurement:
    """Interleaved timings of the roofline kernel and every implementation of `case`."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    inputs = case.inputs(n, dtype, rng)
    calls = {"roofline": _roofline_call(case, inputs.elements, dtype, rng), **inputs.calls}
    result = Measurement(case.name, case.family, inputs.shape, inputs.elements,
                         case.layout or dtype.name,
                         case.traffic.bytes_per_element(dtype.itemsize), paths=inputs.paths)
    result.seconds = interleaved(calls, repeat)
    return result


def measure_call_overhead(repeat: int, n: int = 1000):
    """adam_step on n float32 elements against NumPy's np.add(a, b, out=c) on n."""
    rng = np.random.default_rng(0)
    p, g, a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(5))
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    seconds = interleaved({"adam_step": lambda: adam_step(p, g, m, v, step=10),
                           "np.add": lambda: np.add(a, b, out=c)}, repeat)
    return {name: float(np.median(s)) for name, s in seconds.items()}, seconds
