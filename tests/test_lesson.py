"""The lesson, reproduced: the three examples run, and lr_decay.py prints the lesson's first
six lines verbatim (float32 arithmetic with float32-rounded scalars, as TensorFlow)."""

import pathlib
import subprocess
import sys

import pytest

from _helpers import LESSON_LINES

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _run(script):
    return subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                          text=True, timeout=300, cwd=EXAMPLES.parent)


def test_lr_decay_prints_the_lessons_lines():
    result = _run("lr_decay.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 40, f"expected one line per epoch (40), got {len(lines)}"
    assert tuple(lines[:6]) == LESSON_LINES


@pytest.mark.parametrize("script", ["regularization.py", "optimizers.py"])
def test_example_runs(script):
    result = _run(script)
    assert result.returncode == 0, f"{script} failed:\n{result.stderr}"
    assert result.stdout.strip(), f"{script} printed nothing"
    assert "nan" not in result.stdout.lower(), f"{script} printed NaN:\n{result.stdout}"
