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

__all__ = ["load", "switch"]

_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL | None] = {}


_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on", "")


def switch(name: str) -> bool:
    """Whether the environment variable ``name`` leaves a feature on: unset, ``1``, ``true``,
    ``yes`` or ``on`` (any case) is on; ``0``, ``false``, ``no`` or ``off`` is off.

    Raises ``ValueError`` (:class:`sepconv.SepconvValueError`) naming the variable for any
    other value, rather than guessing.

    >>> import os
    >>> os.environ["SEPCONV_EXAMPLE"] = "off"
    >>> switch("SEPCONV_EXAMPLE"), switch("SEPCONV_UNSET_EXAMPLE")
    (False, True)
    >>> del os.environ["SEPCONV_EXAMPLE"]
    """
    value = os.environ.get(name, "1").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    from ._checks import SepconvValueError

    raise SepconvValueError(
        f"environment variable {name}={os.environ[name]!r} is not a switch: use 1, true, yes or "
        f"on (or leave it unset) to keep it on, 0, false, no or off to turn it off"
    )


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
        if switch("SEPCONV_NATIVE"):
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
