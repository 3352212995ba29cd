"""The command line: help, version, commands and exit codes (nothing here times anything)."""

import json
import subprocess
import sys

import pytest

import nnfast
from nnfast.__main__ import main


@pytest.fixture
def nothing_measured(monkeypatch):
    """Fails the test if a benchmark starts measuring."""
    import nnfast.bench.__main__ as bench

    def refuse(*args, **kwargs):
        raise AssertionError("a benchmark was measured")

    monkeypatch.setattr(bench, "measure", refuse)
    monkeypatch.setattr(bench, "measure_call_overhead", refuse)


def exit_code(argv):
    """main(argv)'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_help_lists_the_commands(argv, capsys, nothing_measured):
    assert exit_code(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnfast")
    assert "bench" in out and "info" in out


def test_version(capsys, nothing_measured):
    assert exit_code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nnfast {nnfast.__version__}"


@pytest.mark.parametrize("argv", [["bench", "--help"], ["help", "bench"]])
def test_bench_help(argv, capsys, nothing_measured):
    assert exit_code(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnfast bench")
    for option in ("--kernels", "--sizes", "--threads", "--repeat", "--json", "--plot"):
        assert option in out


@pytest.mark.parametrize("argv", [["info", "--help"], ["help", "info"]])
def test_info_help_is_help(argv, capsys):
    assert exit_code(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnfast info")
    assert '"version"' not in out


def test_info_prints_the_build(capsys):
    assert exit_code(["info"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(nnfast.info()))


@pytest.mark.parametrize("argv", [["nope"], ["info", "--nope"], ["help", "nope"], ["--nope"]])
def test_usage_errors_exit_2(argv, capsys, nothing_measured):
    assert exit_code(argv) == 2
    assert "usage: nnfast" in capsys.readouterr().err


def test_module_entry_point_in_a_subprocess():
    done = subprocess.run([sys.executable, "-m", "nnfast", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nnfast {nnfast.__version__}"
