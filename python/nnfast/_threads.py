"""The thread count nnfast starts with.

The first of: the environment variable ``NNFAST_NUM_THREADS``, then
``OMP_NUM_THREADS`` (its first entry, as OpenMP reads a nested list), then the
cores this process may use: its CPU affinity mask, capped by its cgroup's CPU
quota (a container limited to 2 CPUs on a 64-core host gets 2). A variable that
is not a whole number in [1, 1024] is ignored with a RuntimeWarning.
"""

from __future__ import annotations

import math
import os
import warnings

from . import _core

MAX_THREADS = _core.MAX_THREADS  # what set_num_threads accepts at most


def _from_environment(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    first = text.split(",")[0].strip()
    if first.isdigit() and 1 <= int(first) <= MAX_THREADS:
        return int(first)
    warnings.warn(f"{name}={text!r} is not a thread count in [1, {MAX_THREADS}]; ignored",
                  RuntimeWarning, stacklevel=3)
    return None


def _read_words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """CPUs the cgroup's CPU quota allows, rounded up, or None where unlimited or unknown:
    cgroup v2's ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), else v1's
    ``cpu/cpu.cfs_quota_us`` over ``cpu/cpu.cfs_period_us`` (quota -1: unlimited)."""
    v2 = _read_words(os.path.join(root, "cpu.max"))
    v1 = (_read_words(os.path.join(root, "cpu", "cpu.cfs_quota_us"))
          + _read_words(os.path.join(root, "cpu", "cpu.cfs_period_us")))
    for fields in (v2, v1):
        if len(fields) != 2:
            continue
        quota, period = fields
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def available_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by its cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API on this OS
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit is not None else cores)


def default_thread_count() -> int:
    """The thread count at import (see the module docstring)."""
    for name in ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _from_environment(name)
        if n is not None:
            return n
    return min(available_cores(), MAX_THREADS)
