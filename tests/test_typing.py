"""nnfast's types: mypy passes on the package and on a typed use of it, and the stubs of the
compiled modules name every function and argument as the modules do at run time."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
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


def _stub_signatures(module):
    """{function: [argument names, as the runtime names them]} of python/nnfast/<module>.pyi,
    following its re-exports from the other stub."""
    tree = ast.parse((PACKAGE / f"{module}.pyi").read_text(encoding="utf-8"))
    signatures = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            # pybind11 calls an argument the binding does not name arg0, arg1, ...; the stub
            # declares such arguments positional-only.
            unnamed = [f"arg{i}" for i in range(len(args.posonlyargs))]
            keywords = ["**" + args.kwarg.arg] if args.kwarg else []
            signatures[node.name] = (unnamed + [a.arg for a in args.args + args.kwonlyargs]
                                     + keywords)
        elif isinstance(node, ast.ImportFrom) and node.module in ("nnfast._core", "nnfast._cuda"):
            source = _stub_signatures(node.module.split(".")[1])
            signatures.update({alias.asname or alias.name: source[alias.name]
                               for alias in node.names})
    return signatures


def _split_top_level(text):
    """Split ``text`` at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _runtime_signature(function):
    """The argument names pybind11 writes in the first line of a binding's docstring,
    ``name(a: type, b: type = default) -> type``."""
    first_line = function.__doc__.splitlines()[0]
    match = re.fullmatch(rf"{function.__name__}\((.*)\) -> .+", first_line)
    assert match, first_line
    return [p.split(":")[0].split("=")[0].strip() for p in _split_top_level(match.group(1))]


@pytest.mark.parametrize("module_name", ["_core", "_cuda"])
def test_stubs_match_the_compiled_modules(module_name):
    """Every function of the module has a stub and every stub a function, with the same
    argument names in the same order."""
    try:
        module = importlib.import_module(f"nnfast.{module_name}")
    except ImportError:
        pytest.skip(f"nnfast.{module_name} is not built here (nnfast built without CUDA)")
    stubs = _stub_signatures(module_name)
    runtime = {name: _runtime_signature(getattr(module, name)) for name in dir(module)
               if not name.startswith("__") and callable(getattr(module, name))}
    assert sorted(stubs) == sorted(runtime)
    mismatched = {name: (stubs[name], runtime[name]) for name in stubs
                  if stubs[name] != runtime[name]}
    assert not mismatched, "stub vs runtime argument names: " + repr(mismatched)
