"""1-D factors the named kernels are built from, and the sum of outer products of terms.

As kornia's ``get_*_kernel1d``: binomial smoothing (Pascal's triangle), OpenCV's derivative
kernels and SciPy's sampled Gaussian and its second derivative.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import SepconvValueError, check_float
from ._args import MAX_ELEMENTS, Size, _check_elements, _per_axis_size

#: separable terms: a list of terms, each a list of one 1-D factor per axis
Terms = list[list[np.ndarray]]


def _outer(term: list[np.ndarray]) -> np.ndarray:
    out = term[0]
    for f in term[1:]:
        out = np.multiply.outer(out, f)
    return out


def compose(built: Terms | np.ndarray) -> np.ndarray:
    """The kernel as a new float64 array: the sum of the terms' outer products (an array is
    returned as a copy)."""
    if isinstance(built, np.ndarray):
        return np.array(built, dtype=np.float64, copy=True)
    out = _outer(built[0]).astype(np.float64)
    for term in built[1:]:
        out = out + _outer(term)
    return out


def binomial_1d(n: int) -> np.ndarray:
    return np.array([math.comb(n - 1, k) for k in range(n)], dtype=np.float64)


def derivative_1d(size: int, order: int) -> np.ndarray:
    """OpenCV's derivative kernel: coefficients of (1 + z)**(size-1-order) * (z - 1)**order."""
    poly = np.array([1.0])
    for _ in range(size - 1 - order):
        poly = np.convolve(poly, [1.0, 1.0])
    for _ in range(order):
        poly = np.convolve(poly, [-1.0, 1.0])
    return poly


def gaussian_1d(sigma: float, size: int, order: int = 0) -> np.ndarray:
    """SciPy's ``_gaussian_kernel1d`` on ``size`` points centred at ``(size - 1) / 2``."""
    x = np.arange(size) - (size - 1) / 2
    sigma2 = sigma * sigma
    phi = np.exp(-0.5 / sigma2 * x**2)
    phi = phi / phi.sum()
    if order == 0:
        return phi
    if order == 2:  # q(x) = x**2 / sigma**4 - 1 / sigma**2, in SciPy's order of operations
        q = (x[:, None] ** np.arange(3)).dot(np.array([-1.0 / sigma2, 0.0, 1.0 / sigma2**2]))
        return q * phi
    raise SepconvValueError(f"`order` must be 0 or 2, got {order}")  # pragma: no cover


def gaussian_sizes(
    sigmas: tuple[float, ...], size: Size | None, truncate: float
) -> tuple[int, ...]:
    if size is not None:
        return _check_elements(_per_axis_size("size", size, len(sigmas)), "pass a smaller size")
    truncate = check_float("truncate", truncate)
    if truncate <= 0:
        raise SepconvValueError(f"`truncate` must be a positive number, got {truncate!r}")
    sizes = []
    for s in sigmas:
        radius = truncate * s + 0.5
        sizes.append(2 * int(radius) + 1 if radius < MAX_ELEMENTS else MAX_ELEMENTS + 1)
    return _check_elements(tuple(sizes), "pass a smaller sigma, truncate or an explicit size")
