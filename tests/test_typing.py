"""nnfast's types: mypy passes on the package and on a typed use of it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import nnfast

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "nnfast"


def test_mypy_passes_on_the_package_and_a_typed_use(tmp_path):
    """One mypy run (the configuration in pyproject.toml: strict, torch not followed) over
    the package and tests/typing_usage.py, whose deliberate type errors must be reported."""
    pytest.importorskip("mypy", reason="mypy is not installed (it is in the test extra)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy_cache"), "--no-error-summary",
         str(PACKAGE), str(ROOT / "tests" / "typing_usage.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_typed_use_runs():
    """tests/typing_usage.py is a working program, not only a well-typed one."""
    pytest.importorskip("typing_extensions", reason="typing_extensions comes with mypy")
    spec = importlib.util.spec_from_file_location("typing_usage", ROOT / "tests" / "typing_usage.py")
    usage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(usage)
    usage.main()


def test_the_package_ships_its_types():
    """py.typed marks the package as typed; the compiled modules have stubs beside them."""
    for name in ("py.typed", "_core.pyi", "_cuda.pyi"):
        assert (PACKAGE / name).is_file(), name
    installed = Path(nnfast.__file__).parent
    assert (installed / "py.typed").is_file() and (installed / "_core.pyi").is_file()
