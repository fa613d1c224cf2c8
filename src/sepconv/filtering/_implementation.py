"""Which code runs a filter: the defaults, and :func:`use_implementation` to choose.

The planner (:mod:`._plan`) asks this module once per plan and records the answer in
``Plan.implementation``; the engines run what the plan says.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from .._checks import SepconvValueError, check_choice
from . import _native

__all__ = [
    "use_implementation",
    "separable_choice",
    "torch_cpu_choice",
    "SEPARABLE",
    "TORCH_CPU",
    "DESCRIPTIONS",
]

#: what runs separable terms of 2-D kernels on NumPy arrays (and CPU tensors)
SEPARABLE = ("native", "opencv")
#: what runs CPU tensors: the NumPy engine under autograd, or the banded matrix products
#: that other devices run
TORCH_CPU = ("numpy", "matmul")

#: ``Plan.implementation`` -> the words ``Plan.explain`` uses
DESCRIPTIONS = {
    "native": "sepconv's native separable kernel (all terms in one pass)",
    "cv2.sepFilter2D": "cv2.sepFilter2D",
    "cv2.filter2D": "cv2.filter2D",
    "scipy.fft": "scipy.fft",
    "scipy.ndimage.correlate": "scipy.ndimage.correlate",
    "scipy.ndimage.correlate1d": "scipy.ndimage.correlate1d, one pass per axis",
    "torch F.conv": "F.conv with the full kernel",
    "torch banded matmul": "banded matrix products, one per 1-D pass",
}

_CHOICE: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "sepconv_filtering_implementation", default=(None, None)
)


def separable_choice() -> str:
    """``'native'`` or ``'opencv'``: what runs separable terms now."""
    chosen = _CHOICE.get()[0]
    if chosen is not None:
        return chosen
    return "native" if _native.available() else "opencv"


def torch_cpu_choice() -> str:
    """``'numpy'`` or ``'matmul'``: what runs CPU tensors now."""
    return _CHOICE.get()[1] or "numpy"


@contextlib.contextmanager
def use_implementation(
    separable: str | None = None, *, torch_cpu: str | None = None
) -> Iterator[None]:
    """Choose the code that runs filters inside a ``with`` block (tests, benchmarks).

    The default is the fastest on this machine: sepconv's native kernel for separable terms
    where it is built and the processor has AVX2 and FMA (else ``cv2.sepFilter2D``), and the
    NumPy engine for CPU tensors. The choice holds for the current thread or task
    (:mod:`contextvars`) and ends with the block; results agree to rounding whichever runs.

    Parameters
    ----------
    separable : {'native', 'opencv'}, optional
        What runs separable terms of 2-D kernels: the native kernel, or
        ``cv2.sepFilter2D`` (one call per term, summed). ``None`` keeps the current choice.
    torch_cpu : {'numpy', 'matmul'}, optional
        What runs CPU tensors: the NumPy engine wrapped for autograd, or the banded matrix
        products that other devices run. ``None`` keeps the current choice.

    Raises
    ------
    ValueError
        An unknown name, or ``separable='native'`` where the native kernel is not available
        (not built, the processor lacks AVX2/FMA, or ``SEPCONV_NATIVE=0``).

    Examples
    --------
    >>> import numpy as np
    >>> import sepconv
    >>> from sepconv.filtering import use_implementation
    >>> kernel = np.outer([1, 2, 1], [1, 2, 1])
    >>> with use_implementation("opencv"):
    ...     sepconv.plan(kernel, (64, 64), method="separable").implementation
    'cv2.sepFilter2D'
    """
    current = _CHOICE.get()
    if separable is not None:
        separable = check_choice("separable", separable, SEPARABLE)
        if separable == "native" and not _native.available():
            raise SepconvValueError(
                "`separable` 'native' needs sepconv's native kernel, which is not available "
                "here (not built, no AVX2/FMA, or SEPCONV_NATIVE=0); use 'opencv'"
            )
    if torch_cpu is not None:
        torch_cpu = check_choice("torch_cpu", torch_cpu, TORCH_CPU)
    token = _CHOICE.set((separable or current[0], torch_cpu or current[1]))
    try:
        yield
    finally:
        _CHOICE.reset(token)
