"""pytest configuration: a per-test seeded random generator and thread-count hygiene.

Comparison helpers and every tolerance live in ``_helpers.py``.
"""

import os
import warnings
import zlib

import numpy as np
import pytest

import nnfast

# Hypothesis imports its patch writer (and through it libcst) only when a property test
# fails; libcst raises a DeprecationWarning at import, which this project's
# filterwarnings=error turns into a pytest INTERNALERROR that hides the real failure.
# Import it now, with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst absent: hypothesis then skips writing patches itself
        pass


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: reproducible, different per test. Set the
    environment variable NNFAST_TEST_SEED to draw other inputs (to hunt flaky tolerances)."""
    extra = int(os.environ.get("NNFAST_TEST_SEED", "0"))
    return np.random.default_rng([zlib.crc32(request.node.nodeid.encode()), extra])


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """No test may leak a changed thread count into the next."""
    before = nnfast.get_num_threads()
    yield
    after = nnfast.get_num_threads()
    nnfast.set_num_threads(before)
    assert after == before, f"test changed the thread count from {before} to {after}"
