"""Loading sepconv's optional C extensions (``setup.py`` builds them; either may be missing).

Both native kernels (the separable filter ``sepconv._sepfilter`` and the depthwise convolution
``sepconv._depthwise``) are plain shared libraries called through ctypes, which releases the
GIL. They are loaded once per process, the first time they are asked for, under one rule:
``SEPCONV_NATIVE=0`` in the environment turns every one of them off, a library that was not
built or does not load counts as absent, and a library whose ``configure`` step reports it slow
on this processor (it has no AVX2+FMA code, or the CPU lacks AVX2 and FMA) counts as absent
too. Callers then use their fallback (OpenCV, PyTorch).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
from collections.abc import Callable

__all__ = ["load"]

_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL | None] = {}


def load(module: str, configure: Callable[[ctypes.CDLL], bool]) -> ctypes.CDLL | None:
    """The extension ``module`` (e.g. ``"sepconv._sepfilter"``) as a ctypes library, or ``None``.

    ``configure`` declares the functions' argument and result types and returns whether the
    library is worth using on this processor; it runs once. The answer is cached per process.

    >>> load("sepconv._no_such_extension", lambda lib: True) is None
    True
    """
    if module in _LOADED:
        return _LOADED[module]
    with _LOCK:
        if module in _LOADED:
            return _LOADED[module]
        lib = None
        if os.environ.get("SEPCONV_NATIVE", "1") != "0":
            try:
                spec = importlib.util.find_spec(module)
            except ImportError:
                spec = None
            if spec is not None and spec.origin:
                try:
                    lib = ctypes.CDLL(spec.origin)
                except OSError:
                    lib = None
        if lib is not None and not configure(lib):
            lib = None
        _LOADED[module] = lib
        return lib
