"""What the benchmark ran on: CPU, flags, versions, commit."""

from __future__ import annotations

import importlib.metadata
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
    try:
        versions["deepspeed"] = importlib.metadata.version("deepspeed")
    except importlib.metadata.PackageNotFoundError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "cpu_flags": [f for f in flags if f.startswith(("avx", "sse", "fma"))],
            "nnfast": nnfast.info(), "versions": versions, "commit": _commit()}


def headline(info):
    """One line naming the machine and the versions (above the table, atop the plot)."""
    versions = ", ".join(f"{name} {v}" for name, v in info["versions"].items() if name != "nnfast")
    return (f"nnfast {info['versions']['nnfast']} | {info['nnfast']['simd']} | "
            f"{info['nnfast']['threads']} threads | {info['cpu']} ({info['cores']} cores) | "
            f"{versions}")
