"""What the benchmark ran on: CPU, flags, versions, commit."""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess

import numpy as np

import nnfast


def _cpu():
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = value.split()
                break
    except OSError:
        pass
    return model, flags


def _commit():
    """The commit nnfast was built from (recorded at build time), else the checkout's."""
    built = nnfast.info().get("commit")
    if built:
        return built
    here = pathlib.Path(nnfast.__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def describe():
    model, flags = _cpu()
    versions = {"nnfast": nnfast.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    try:
        import torch
        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "cpu_flags": [f for f in flags if f.startswith(("avx", "sse", "fma"))],
            "nnfast": nnfast.info(), "versions": versions, "commit": _commit()}
