"""Shared pieces of the hypothesis fuzz tests (test_train_fuzz.py, test_data_fuzz.py).

Each parser gets one property, run twice: a short deterministic run in the default suite and a long
one (DEEPATLAS_FUZZ_CASES, default 3000 cases) marked slow. The property is always the same: a
well-formed result or a one-line UserError, never another exception.
"""

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from deepatlas.errors import UserError

SLOW = int(os.environ.get("DEEPATLAS_FUZZ_CASES", "3000"))
SHORT = 150


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=n < 1000, database=None,
                    suppress_health_check=list(HealthCheck))


def run_both(test):
    """Two tests from one property: a short deterministic one (default suite) and a long one (slow)."""
    short = fuzz(SHORT)(given(data=st.data())(test))
    long = pytest.mark.slow(fuzz(SLOW)(given(data=st.data())(test)))
    return short, long


def tmpfile(raw: bytes, name: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    d = tempfile.TemporaryDirectory()
    p = Path(d.name) / name
    p.write_bytes(raw)
    return d, p


def edits(data, raw: bytes) -> bytes:
    """A few random byte edits, truncations or insertions of a valid file."""
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        i = data.draw(st.integers(0, max(len(b) - 1, 0)))
        if kind == "flip" and b:
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            b = b[:i]
        elif kind == "insert":
            b[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "set" and b:
            b[i] = data.draw(st.integers(0, 255))
    return bytes(b)


REFUSED = object()  # what one_line returns for a UserError (a parser may itself return None)


def one_line(fn, *args, **kwargs):
    """fn's result, or REFUSED when it raised a one-line UserError (any other exception fails the test)."""
    try:
        out = fn(*args, **kwargs)
    except UserError as e:
        assert "\n" not in str(e), str(e)
        event("refused with a UserError")  # shown by pytest --hypothesis-show-statistics
        return REFUSED
    event("parsed")
    return out


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12)
