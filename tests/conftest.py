"""Fixtures shared by the test modules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

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


@pytest.fixture(scope="module")
def torch_single_thread() -> Iterator[None]:
    """Run a module's many tiny torch calls on one thread, then restore the thread count.

    On a busy 2-core machine torch's intra-op threads contend with each other and with other
    processes: the many small convolutions of the reference tests take several times longer.
    Use with ``pytestmark = pytest.mark.usefixtures("torch_single_thread")``.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _fresh_autotune_timings() -> None:
    """Each test times its layers' routes itself: the timings layers of one configuration
    share in a process (sepconv.nn._autotune) would otherwise carry from one test to the next
    in whatever order the tests run."""
    autotune = sys.modules.get("sepconv.nn._autotune")
    if autotune is not None:
        autotune._SHARED.clear()
