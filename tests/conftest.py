"""Fixtures shared by the test modules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest


def _tf_same(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding ``(before, after)``, written out independently of sepconv."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.fixture
def tf_same() -> Callable[..., tuple[int, int]]:
    """TensorFlow's 'SAME' padding rule for one axis, as the tests' own oracle."""
    return _tf_same


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -c CODE`` (or ``python ARGS...``) in a fresh interpreter."""

    def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, *(("-c", code) if code is not None else ()), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    return run
