"""Named kernels, their exact separable factors, and kernels given as text or files.

Every kernel is a float64 NumPy array laid out as the image it filters: ``(rows, columns)`` for
2-D, ``(planes, rows, columns)`` for 3-D; directions name axes the usual way, ``'x'`` the last
axis (columns), ``'y'`` the one before (rows), ``'z'`` the planes. Kernels are written for
*correlation* (as ``cv2.filter2D`` and ``scipy.ndimage.correlate``): the Sobel-x kernel
``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` responds positively where intensity grows to the
right.

=================  ====================================================  ===================
name               definition (reference)                                rank (2-D)
=================  ====================================================  ===================
sobel, scharr,     OpenCV's ``getDerivKernels`` (sizes 3, 5, 7, ... and  1 (integer factors)
prewitt            derivative orders for Sobel; Scharr is 3x3 only);
                   Prewitt: box smoothing x OpenCV's derivative
gaussian           SciPy's ``gaussian_filter`` (``truncate``,            1
                   ``radius = int(truncate * sigma + 0.5)``), sum 1;
                   with ``size``: ``cv2.getGaussianKernel``
box, binomial      ones / binomial coefficients (Pascal's triangle)      1
laplacian          ``[[0,1,0],[1,-4,1],[0,1,0]]`` (4 neighbours), 8      2
                   neighbours, or ``cv2.Laplacian``'s kernel (size >= 5)
log                SciPy's ``gaussian_laplace`` impulse response          2 (d in d-D)
dog                ``gaussian(sigma) - gaussian(sigma2)``                2
gabor              ``cv2.getGaborKernel`` (``gamma=1``: rank 2 at any    2 (1 at 0°, 90°)
                   angle, by ``cos(a + b) = cos a cos b - sin a sin b``)
disk               ``x**2 + y**2 <= radius**2``, sum 1                   grows with radius
motion             a line of ``length`` pixels at ``angle`` degrees      1 at 0° and 90°
=================  ====================================================  ===================

- :func:`get` builds a kernel by name, :func:`factors` gives its exact (closed-form) separable
  terms where they exist, :func:`available` lists names and parameters.
- :func:`parse` reads ``"sobel-x"``, ``"gaussian:sigma=2,size=9"``, a literal
  ``"1 2 1; 2 4 2; 1 2 1"`` or a ``.npy`` / ``.txt`` / ``.csv`` file.

Examples
--------
>>> from sepconv import kernels
>>> kernels.get("sobel-x")
array([[-1.,  0.,  1.],
       [-2.,  0.,  2.],
       [-1.,  0.,  1.]])
>>> column, row = kernels.factors("sobel-x").terms[0]
>>> column, row
(array([1., 2., 1.]), array([-1.,  0.,  1.]))
>>> kernels.parse("gaussian:sigma=1,size=3").round(4)
array([[0.0751, 0.1238, 0.0751],
       [0.1238, 0.2042, 0.1238],
       [0.0751, 0.1238, 0.0751]])
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_float,
    check_int,
    describe,
)
from .factor import Factorization, as_kernel

__all__ = [
    "available",
    "get",
    "factors",
    "parse",
    "parse_factors",
    "sobel",
    "scharr",
    "prewitt",
    "gaussian",
    "box",
    "binomial",
    "laplacian",
    "laplacian_of_gaussian",
    "difference_of_gaussians",
    "gabor",
    "disk",
    "motion",
]

Terms = list[list[np.ndarray]]
# The largest kernel sepconv builds (elements): 2**24 float64 values are 128 MiB.
MAX_ELEMENTS = 2**24
# Narrower Gaussians are unit impulses (and their squared widths underflow).
_MIN_SIGMA = 1e-6
# Binomial coefficients of longer rows overflow float64.
_MAX_BINOMIAL = 1023


# --------------------------------------------------------------------------------------------
# argument checks


def _check_ndim(ndim: Any, minimum: int = 1) -> int:
    ndim = check_int("ndim", ndim, minimum=minimum)
    if ndim > 8:
        raise SepconvValueError(f"`ndim` must be between {minimum} and 8, got {ndim}")
    return ndim


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise SepconvTypeError(f"`{name}` must be True or False, got {describe(value)}")
    return bool(value)


def _axis(direction: Any, ndim: int) -> int:
    names = ("x", "y", "z")[:ndim] if ndim <= 3 else ("x", "y", "z")
    direction = check_choice("direction", direction, names)
    return ndim - 1 - names.index(direction)


def _per_axis_float(name: str, value: Any, ndim: int) -> tuple[float, ...]:
    if isinstance(value, tuple | list | np.ndarray) and not isinstance(value, str):
        items = list(value)
        if len(items) != ndim:
            raise SepconvValueError(f"`{name}` must be a positive number or a tuple of {ndim} "
                                    f"such numbers, got {describe(value)}")
    else:
        items = [value] * ndim
    out = []
    for item in items:
        number = check_float(name, item)
        if number <= 0:
            raise SepconvValueError(f"`{name}` must be a positive number or a tuple of {ndim} "
                                    f"such numbers, got {describe(value)}")
        if number < _MIN_SIGMA:
            raise SepconvValueError(f"`{name}` must be at least {_MIN_SIGMA:g} (a narrower "
                                    f"Gaussian is a unit impulse), got {describe(value)}")
        out.append(number)
    return tuple(out)


def _per_axis_size(name: str, value: Any, ndim: int, *, odd: bool = False) -> tuple[int, ...]:
    what = "a positive odd integer" if odd else "a positive integer"
    accepted = f"{what} or a tuple of {ndim} such integers"
    if isinstance(value, tuple | list | np.ndarray) and not isinstance(value, str):
        items = list(value)
        if len(items) != ndim:
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
    else:
        items = [value] * ndim
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
        if item < 1 or (odd and item % 2 == 0):
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
        out.append(int(item))
    return tuple(out)


def _odd_size(name: str, value: Any, minimum: int = 3) -> int:
    value = check_int(name, value)
    if value < minimum or value % 2 == 0:
        raise SepconvValueError(f"`{name}` must be an odd integer >= {minimum}, got {value}")
    if value > _MAX_BINOMIAL:
        raise SepconvValueError(f"`{name}` must be at most {_MAX_BINOMIAL} (binomial "
                                f"coefficients overflow float64 beyond), got {value}")
    return value


def _check_elements(shape: tuple[int, ...], hint: str) -> tuple[int, ...]:
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise SepconvValueError(
            f"the kernel would have shape {shape} ({elements:,} elements), more than the "
            f"{MAX_ELEMENTS:,} sepconv builds; {hint}")
    return shape


def _outer(term: list[np.ndarray]) -> np.ndarray:
    out = term[0]
    for f in term[1:]:
        out = np.multiply.outer(out, f)
    return out


def _from_terms(terms: Terms) -> np.ndarray:
    out = _outer(terms[0]).astype(np.float64)
    for term in terms[1:]:
        out = out + _outer(term)
    return out


# --------------------------------------------------------------------------------------------
# 1-D building blocks


def _binomial_1d(n: int) -> np.ndarray:
    return np.array([math.comb(n - 1, k) for k in range(n)], dtype=np.float64)


def _derivative_1d(size: int, order: int) -> np.ndarray:
    """OpenCV's derivative kernel: coefficients of (1 + z)**(size-1-order) * (z - 1)**order."""
    poly = np.array([1.0])
    for _ in range(size - 1 - order):
        poly = np.convolve(poly, [1.0, 1.0])
    for _ in range(order):
        poly = np.convolve(poly, [-1.0, 1.0])
    return poly


def _gaussian_1d(sigma: float, size: int, order: int = 0) -> np.ndarray:
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


def _gaussian_sizes(sigmas: tuple[float, ...], size: Any, truncate: Any) -> tuple[int, ...]:
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


# --------------------------------------------------------------------------------------------
# kernels: each ``_name`` returns (array, exact terms or None); ``name`` returns the array


def _derivative_terms(axis: int, ndim: int, derivative: np.ndarray,
                      smoothing: np.ndarray) -> Terms:
    return [[derivative if k == axis else smoothing for k in range(ndim)]]


def _sobel(direction: str = "x", size: int = 3, order: int = 1, ndim: int = 2,
           normalize: bool = False) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    axis = _axis(direction, ndim)
    size = _odd_size("size", size)
    order = check_int("order", order, minimum=1)
    if order >= size:
        raise SepconvValueError(f"`order` must be between 1 and size - 1 = {size - 1}, "
                                f"got {order}")
    _check_elements((size,) * ndim, "pass a smaller size")
    derivative = _derivative_1d(size, order)
    smoothing = _binomial_1d(size)
    if _check_bool("normalize", normalize):
        derivative = derivative / 2.0 ** (size - order - 1)
        smoothing = smoothing / 2.0 ** (size - 1)
    terms = _derivative_terms(axis, ndim, derivative, smoothing)
    return _from_terms(terms), terms


def _scharr(direction: str = "x", size: int = 3, ndim: int = 2,
            normalize: bool = False) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    axis = _axis(direction, ndim)
    if check_int("size", size) != 3:
        raise SepconvValueError(f"`size` must be 3 for the Scharr kernel (as OpenCV), got {size}")
    smoothing = np.array([3.0, 10.0, 3.0])
    if _check_bool("normalize", normalize):
        smoothing = smoothing / 32.0
    terms = _derivative_terms(axis, ndim, np.array([-1.0, 0.0, 1.0]), smoothing)
    return _from_terms(terms), terms


def _prewitt(direction: str = "x", size: int = 3, ndim: int = 2,
             normalize: bool = False) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    axis = _axis(direction, ndim)
    size = _odd_size("size", size)
    _check_elements((size,) * ndim, "pass a smaller size")
    derivative = _derivative_1d(size, 1)
    smoothing = np.ones(size)
    if _check_bool("normalize", normalize):
        derivative = derivative / 2.0 ** (size - 2)
        smoothing = smoothing / size
    terms = _derivative_terms(axis, ndim, derivative, smoothing)
    return _from_terms(terms), terms


def _gaussian(sigma: Any = 1.0, size: Any = None, truncate: float = 4.0,
              ndim: int | None = None) -> tuple[np.ndarray, Terms]:
    if ndim is None:
        ndim = len(sigma) if isinstance(sigma, tuple | list) else 2
    ndim = _check_ndim(ndim)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    sizes = _gaussian_sizes(sigmas, size, truncate)
    terms = [[_gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]]
    return _from_terms(terms), terms


def _box(size: Any = 3, ndim: int = 2, normalize: bool = True) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    sizes = _check_elements(_per_axis_size("size", size, ndim), "pass a smaller size")
    normalize = _check_bool("normalize", normalize)
    terms = [[np.full(n, 1.0 / n if normalize else 1.0) for n in sizes]]
    return _from_terms(terms), terms


def _binomial(size: Any = 5, ndim: int = 2, normalize: bool = True) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    sizes = _check_elements(_per_axis_size("size", size, ndim), "pass a smaller size")
    if max(sizes) > _MAX_BINOMIAL:
        raise SepconvValueError(f"`size` must be at most {_MAX_BINOMIAL} (binomial "
                                f"coefficients overflow float64 beyond), got {size!r}")
    normalize = _check_bool("normalize", normalize)
    terms = [[_binomial_1d(n) / (2.0 ** (n - 1) if normalize else 1.0) for n in sizes]]
    return _from_terms(terms), terms


def _laplacian(size: int = 3, neighbours: int = 4) -> tuple[np.ndarray, Terms]:
    size = _odd_size("size", size)
    _check_elements((size, size), "pass a smaller size")
    neighbours = check_int("neighbours", neighbours)
    if size == 3:
        if neighbours == 4:
            terms = [[np.array([0.0, 1.0, 0.0]), np.array([1.0, -2.0, 1.0])],
                     [np.array([1.0, -2.0, 1.0]), np.array([0.0, 1.0, 0.0])]]
        elif neighbours == 8:
            terms = [[np.ones(3), np.ones(3)],
                     [np.array([0.0, 3.0, 0.0]), np.array([0.0, -3.0, 0.0])]]
        else:
            raise SepconvValueError(f"`neighbours` must be 4 or 8, got {neighbours}")
    else:
        if neighbours != 4:
            raise SepconvValueError(
                f"`neighbours` applies to size 3 only; for size {size} the kernel is OpenCV's "
                f"Laplacian (second-derivative Sobel kernels), got neighbours={neighbours}")
        second = _derivative_1d(size, 2)
        smoothing = _binomial_1d(size)
        terms = [[smoothing, second], [second, smoothing]]
    return _from_terms(terms), terms


def _laplacian_of_gaussian(sigma: Any = 1.0, size: Any = None, truncate: float = 4.0,
                           ndim: int = 2, zero_sum: bool = False) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim, minimum=1)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    sizes = _gaussian_sizes(sigmas, size, truncate)
    smooth = [_gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]
    second = [_gaussian_1d(s, n, order=2) for s, n in zip(sigmas, sizes)]
    if _check_bool("zero_sum", zero_sum):
        # subtracting c * g keeps every term in span{g, g''}: the rank stays ndim
        second = [d - (d.sum() / g.sum()) * g for d, g in zip(second, smooth)]
    terms = [[second[k] if k == axis else smooth[k] for k in range(ndim)]
             for axis in range(ndim)]
    return _from_terms(terms), terms


def _difference_of_gaussians(sigma: Any = 1.0, sigma2: Any = None, size: Any = None,
                             truncate: float = 4.0, ndim: int = 2) -> tuple[np.ndarray, Terms]:
    ndim = _check_ndim(ndim)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    if sigma2 is None:
        sigmas2 = tuple(1.6 * s for s in sigmas)
    else:
        sigmas2 = _per_axis_float("sigma2", sigma2, ndim)
    wide = tuple(max(a, b) for a, b in zip(sigmas, sigmas2))
    sizes = _gaussian_sizes(wide, size, truncate)
    first = [_gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]
    second = [_gaussian_1d(s, n) for s, n in zip(sigmas2, sizes)]
    terms = [first, [-second[0], *second[1:]]]
    return _from_terms(terms), terms


def _gabor(sigma: float = 2.0, theta: float = 0.0, wavelength: float = 8.0,
           phase: float = 0.0, gamma: float = 1.0, size: Any = None
           ) -> tuple[np.ndarray, Terms | None]:
    sigma = check_float("sigma", sigma)
    wavelength = check_float("wavelength", wavelength)
    gamma = check_float("gamma", gamma)
    for name, value in (("sigma", sigma), ("wavelength", wavelength), ("gamma", gamma)):
        if value <= 0:
            raise SepconvValueError(f"`{name}` must be a positive number, got {value!r}")
    if min(sigma, sigma / gamma) < _MIN_SIGMA:
        raise SepconvValueError(f"`sigma` and `sigma / gamma` must be at least {_MIN_SIGMA:g}, "
                                f"got sigma={sigma!r}, gamma={gamma!r}")
    theta = check_float("theta", theta)
    phase = check_float("phase", phase)
    sigma_x, sigma_y = sigma, sigma / gamma
    c, s = math.cos(theta), math.sin(theta)
    if size is None:  # OpenCV's automatic size: 3 standard deviations
        extent = 3 * max(sigma_x, sigma_y)
        if extent > MAX_ELEMENTS:
            _check_elements((2 * MAX_ELEMENTS,), "pass a smaller sigma or an explicit size")
        xmax = max(round(max(abs(3 * sigma_x * c), abs(3 * sigma_y * s))), 1)
        ymax = max(round(max(abs(3 * sigma_x * s), abs(3 * sigma_y * c))), 1)
    else:
        height, width = _per_axis_size("size", size, 2, odd=True)
        ymax, xmax = height // 2, width // 2
    _check_elements((2 * ymax + 1, 2 * xmax + 1), "pass a smaller sigma or an explicit size")
    # cv2.getGaborKernel stores v(x, y) at kernel[ymax - y, xmax - x]
    x = xmax - np.arange(2 * xmax + 1, dtype=np.float64)
    y = ymax - np.arange(2 * ymax + 1, dtype=np.float64)
    xx, yy = np.meshgrid(x, y)
    xr = xx * c + yy * s
    yr = -xx * s + yy * c
    k = 2 * math.pi / wavelength
    array = (np.exp(-0.5 / sigma_x**2 * xr * xr - 0.5 / sigma_y**2 * yr * yr)
             * np.cos(k * xr + phase))
    if gamma != 1.0 and abs(s * c) > 1e-12:
        return array, None
    # isotropic envelope: exp(-(x^2 + y^2) / 2 sigma^2) = gy(y) gx(x), and
    # cos(k c x + k s y + phase) = cos(k c x + phase) cos(k s y) - sin(k c x + phase) sin(k s y)
    ex = np.exp(-0.5 / sigma_x**2 * (x * c) ** 2 - 0.5 / sigma_y**2 * (x * s) ** 2)
    ey = np.exp(-0.5 / sigma_x**2 * (y * s) ** 2 - 0.5 / sigma_y**2 * (y * c) ** 2)
    terms = [[ey * np.cos(k * s * y), ex * np.cos(k * c * x + phase)],
             [-ey * np.sin(k * s * y), ex * np.sin(k * c * x + phase)]]
    terms = [t for t in terms if np.any(np.abs(t[0]) > 1e-15) and np.any(np.abs(t[1]) > 1e-15)]
    return array, terms or [[ey * 0, ex * 0]]


def _disk(radius: int = 3, normalize: bool = True) -> tuple[np.ndarray, None]:
    radius = check_int("radius", radius, minimum=1)
    _check_elements((2 * radius + 1,) * 2, "pass a smaller radius")
    offsets = np.arange(-radius, radius + 1)
    inside = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2
    array = inside.astype(np.float64)
    if _check_bool("normalize", normalize):
        array /= array.sum()
    return array, None


def _motion(length: int = 9, angle: float = 0.0, normalize: bool = True
            ) -> tuple[np.ndarray, Terms | None]:
    length = check_int("length", length, minimum=1)
    if length > 4096:
        raise SepconvValueError(f"`length` must be at most 4096, got {length}")
    angle = check_float("angle", angle)
    normalize = _check_bool("normalize", normalize)
    radians = math.radians(angle)
    dx, dy = round(math.cos(radians), 12), -round(math.sin(radians), 12)  # rows grow downwards
    half = length / 2
    rx, ry = math.ceil(half * abs(dx) - 0.5 - 1e-9), math.ceil(half * abs(dy) - 0.5 - 1e-9)
    array = np.zeros((2 * ry + 1, 2 * rx + 1))
    # each pixel gets the length of the segment inside its unit square: split the segment
    # where it crosses a pixel border, give each piece to the pixel of its midpoint
    cuts = {-half, half}
    for step, extent in ((dx, rx), (dy, ry)):
        if step != 0.0:
            for border in np.arange(-extent - 0.5, extent + 1.0):
                t = border / step
                if -half < t < half:
                    cuts.add(float(t))
    ordered = sorted(cuts)
    for t0, t1 in zip(ordered, ordered[1:]):
        mid = (t0 + t1) / 2
        row, column = round(ry + mid * dy), round(rx + mid * dx)
        array[row, column] += t1 - t0
    if normalize:
        array /= array.sum()
    if array.shape[0] == 1 or array.shape[1] == 1:
        terms = [[array[:, 0] if array.shape[1] == 1 else np.ones(1),
                  array[0] if array.shape[0] == 1 else np.ones(1)]]
        return array, terms
    return array, None


# The public functions are written out (rather than generated) for their docstrings.


def sobel(direction: str = "x", size: int = 3, order: int = 1, ndim: int = 2,
          normalize: bool = False) -> np.ndarray:
    """Sobel derivative kernel, as OpenCV's ``getDerivKernels``.

    A derivative of ``order`` along ``direction`` times binomial smoothing ``[1, 2, 1]`` (size 3),
    ``[1, 4, 6, 4, 1]`` (size 5), ... along every other axis.

    Parameters
    ----------
    direction : {'x', 'y', 'z'}
        Axis of the derivative: 'x' the last (columns), 'y' the rows, 'z' the planes (3-D).
    size : int
        Odd size >= 3 along every axis (OpenCV's ``ksize``).
    order : int
        Derivative order, ``1 <= order < size``.
    ndim : int
        2 for images, 3 for volumes.
    normalize : bool
        Scale as ``getDerivKernels(..., normalize=True)`` (smoothing sums to 1).

    Returns
    -------
    ndarray, shape (size,) * ndim

    Examples
    --------
    >>> sobel("y")
    array([[-1., -2., -1.],
           [ 0.,  0.,  0.],
           [ 1.,  2.,  1.]])
    >>> sobel(size=5)[2]
    array([ -6., -12.,   0.,  12.,   6.])
    """
    return _sobel(direction, size, order, ndim, normalize)[0]


def scharr(direction: str = "x", size: int = 3, ndim: int = 2,
           normalize: bool = False) -> np.ndarray:
    """Scharr derivative kernel ``[3, 10, 3]ᵀ ⊗ [-1, 0, 1]`` (3x3 only, as OpenCV).

    Examples
    --------
    >>> scharr("x")
    array([[ -3.,   0.,   3.],
           [-10.,   0.,  10.],
           [ -3.,   0.,   3.]])
    """
    return _scharr(direction, size, ndim, normalize)[0]


def prewitt(direction: str = "x", size: int = 3, ndim: int = 2,
            normalize: bool = False) -> np.ndarray:
    """Prewitt derivative kernel: box smoothing times OpenCV's first-derivative kernel.

    Size 3 gives ``[1, 1, 1]ᵀ ⊗ [-1, 0, 1]``; size 5 ``[1, 1, 1, 1, 1]ᵀ ⊗ [-1, -2, 0, 2, 1]``.
    With ``normalize`` the smoothing sums to 1 and the derivative is scaled as OpenCV's.

    Examples
    --------
    >>> prewitt("y")
    array([[-1., -1., -1.],
           [ 0.,  0.,  0.],
           [ 1.,  1.,  1.]])
    """
    return _prewitt(direction, size, ndim, normalize)[0]


def gaussian(sigma: Any = 1.0, size: Any = None, truncate: float = 4.0,
             ndim: int | None = None) -> np.ndarray:
    """Sampled Gaussian, normalised to sum 1, as ``scipy.ndimage.gaussian_filter``.

    Parameters
    ----------
    sigma : float or tuple of float
        Standard deviation, one for every axis or one per axis.
    size : int or tuple of int, optional
        Size per axis (then ``truncate`` is ignored; for odd sizes this equals
        ``cv2.getGaussianKernel(size, sigma)`` per axis; even sizes are centred between two
        samples). Default: ``2 * int(truncate * sigma + 0.5) + 1`` as SciPy.
    truncate : float
        Radius in standard deviations when ``size`` is not given (SciPy's default 4).
    ndim : int, optional
        Number of axes (default: ``len(sigma)`` for a tuple, else 2).

    Returns
    -------
    ndarray, shape ``size`` per axis
        The outer product of the 1-D Gaussians of each axis.

    Examples
    --------
    >>> gaussian(1.0).shape, gaussian(2.0, truncate=2.0).shape, gaussian(1.0, ndim=3).shape
    ((9, 9), (9, 9), (9, 9, 9))
    >>> float(gaussian((1.0, 2.0)).sum())
    1.0
    """
    return _gaussian(sigma, size, truncate, ndim)[0]


def box(size: Any = 3, ndim: int = 2, normalize: bool = True) -> np.ndarray:
    """Box (mean) filter: ``ones / count`` (or ones with ``normalize=False``).

    Examples
    --------
    >>> box(3, normalize=False)
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    >>> box((2, 4)).shape
    (2, 4)
    """
    return _box(size, ndim, normalize)[0]


def binomial(size: Any = 5, ndim: int = 2, normalize: bool = True) -> np.ndarray:
    """Binomial kernel: rows of Pascal's triangle, ``[1, 4, 6, 4, 1] / 16`` per axis for size 5.

    The binomial kernel is the discrete Gaussian of variance ``(size - 1) / 4``.

    Examples
    --------
    >>> binomial(3, normalize=False)
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _binomial(size, ndim, normalize)[0]


def laplacian(size: int = 3, neighbours: int = 4) -> np.ndarray:
    """Discrete Laplacian: rank 2, ``d²/dx² + d²/dy²``.

    Size 3: the 4-neighbour stencil ``[[0,1,0],[1,-4,1],[0,1,0]]`` (``cv2.Laplacian`` with
    ``ksize=1``) or the 8-neighbour one ``[[1,1,1],[1,-8,1],[1,1,1]]``. Odd sizes >= 5: OpenCV's
    ``cv2.Laplacian(ksize=size)`` kernel, the sum of the second-derivative Sobel kernels.

    Examples
    --------
    >>> laplacian()
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    return _laplacian(size, neighbours)[0]


def laplacian_of_gaussian(sigma: Any = 1.0, size: Any = None, truncate: float = 4.0,
                          ndim: int = 2, zero_sum: bool = False) -> np.ndarray:
    """Laplacian of Gaussian, as the impulse response of ``scipy.ndimage.gaussian_laplace``.

    ``sum over axes k of g''_k ⊗ (g on the other axes)``: rank ``ndim`` (2 for images), with
    ``g`` SciPy's sampled Gaussian (sum 1) and ``g''`` its second derivative. The sampled
    kernel does not sum exactly to zero; ``zero_sum=True`` subtracts from each ``g''`` the
    multiple of ``g`` that makes its sum zero, which zeroes the response to flat regions and
    keeps the rank (unlike MATLAB's ``fspecial('log')``, whose mean subtraction adds a term).
    The centre is negative (a bright blob gives a negative response).

    Examples
    --------
    >>> from sepconv.factor import rank
    >>> log = laplacian_of_gaussian(1.4)
    >>> log.shape, rank(log), rank(laplacian_of_gaussian(1.4, zero_sum=True))
    ((13, 13), 2, 2)
    """
    return _laplacian_of_gaussian(sigma, size, truncate, ndim, zero_sum)[0]


def difference_of_gaussians(sigma: Any = 1.0, sigma2: Any = None, size: Any = None,
                            truncate: float = 4.0, ndim: int = 2) -> np.ndarray:
    """Difference of Gaussians ``gaussian(sigma) - gaussian(sigma2)`` on one grid: rank 2.

    ``sigma2`` defaults to ``1.6 * sigma`` (Marr & Hildreth's approximation of the LoG); the
    size follows the wider Gaussian. Both Gaussians sum to 1, so the kernel sums to 0.

    Examples
    --------
    >>> dog = difference_of_gaussians(1.0)
    >>> dog.shape, abs(float(dog.sum())) < 1e-15
    ((13, 13), True)
    """
    return _difference_of_gaussians(sigma, sigma2, size, truncate, ndim)[0]


def gabor(sigma: float = 2.0, theta: float = 0.0, wavelength: float = 8.0, phase: float = 0.0,
          gamma: float = 1.0, size: Any = None) -> np.ndarray:
    """Gabor kernel, equal to ``cv2.getGaborKernel((size, size), sigma, theta, wavelength, gamma,
    phase, ktype=cv2.CV_64F)``.

    ``exp(-(x'² + gamma² y'²) / (2 sigma²)) * cos(2 pi x' / wavelength + phase)`` with
    ``x' = x cos(theta) + y sin(theta)``, ``y' = -x sin(theta) + y cos(theta)`` (``theta`` in
    radians), sampled as OpenCV does (value at offset ``(x, y)`` stored at
    ``[ymax - y, xmax - x]``). With ``gamma = 1`` (round envelope) the kernel has rank 2 at
    any angle and phase -- ``cos(a + b) = cos a cos b - sin a sin b`` -- and rank 1 when
    ``theta`` is a multiple of 90°; an elongated envelope (``gamma != 1``) at an oblique angle
    is not a short sum of separable terms.

    Parameters
    ----------
    size : int or (int, int), optional
        Odd size(s); default OpenCV's: 3 standard deviations of the rotated envelope.

    Examples
    --------
    >>> from sepconv.factor import rank
    >>> g = gabor(sigma=3.0, theta=0.5, wavelength=6.0, phase=1.0)
    >>> g.shape, rank(g), rank(gabor(theta=0.0))
    ((17, 17), 2, 1)
    """
    return _gabor(sigma, theta, wavelength, phase, gamma, size)[0]


def disk(radius: int = 3, normalize: bool = True) -> np.ndarray:
    """Flat disk ``x**2 + y**2 <= radius**2`` of size ``2 * radius + 1``, summing to 1.

    Not separable: its rank grows with the radius (one term per distinct row width, about).

    Examples
    --------
    >>> disk(1, normalize=False)
    array([[0., 1., 0.],
           [1., 1., 1.],
           [0., 1., 0.]])
    """
    return _disk(radius, normalize)[0]


def motion(length: int = 9, angle: float = 0.0, normalize: bool = True) -> np.ndarray:
    """Linear motion blur: a line of ``length`` pixels at ``angle`` degrees, summing to 1.

    The angle is counter-clockwise from the x axis, as seen on the image (rows grow
    downwards), as MATLAB's ``fspecial('motion')``. The line is a segment of ``length`` pixels
    centred on the kernel's centre pixel, and each pixel gets the length of the segment inside
    it (so ``length=4`` gives ``[1, 2, 2, 2, 1] / 8``). Horizontal and vertical blurs are one
    row or column (rank 1); oblique ones are not separable.

    Examples
    --------
    >>> motion(3)
    array([[0.33333333, 0.33333333, 0.33333333]])
    >>> motion(4)
    array([[0.125, 0.25 , 0.25 , 0.25 , 0.125]])
    >>> motion(5, 45).shape
    (5, 5)
    """
    return _motion(length, angle, normalize)[0]


# --------------------------------------------------------------------------------------------
# registry


_BUILDERS: dict[str, Callable[..., tuple[np.ndarray, Any]]] = {
    "sobel": _sobel,
    "scharr": _scharr,
    "prewitt": _prewitt,
    "gaussian": _gaussian,
    "box": _box,
    "binomial": _binomial,
    "laplacian": _laplacian,
    "log": _laplacian_of_gaussian,
    "dog": _difference_of_gaussians,
    "gabor": _gabor,
    "disk": _disk,
    "motion": _motion,
}
# alias -> (kernel, parameters the alias fixes, defaults it changes)
_ALIASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    **{f"{n}-{d}": (n, {"direction": d}, {}) for n in ("sobel", "prewitt") for d in "xy"},
    "sobel-z": ("sobel", {"direction": "z"}, {"ndim": 3}),
    "prewitt-z": ("prewitt", {"direction": "z"}, {"ndim": 3}),
    "scharr-x": ("scharr", {"direction": "x"}, {}),
    "scharr-y": ("scharr", {"direction": "y"}, {}),
    "laplacian-of-gaussian": ("log", {}, {}),
    "difference-of-gaussians": ("dog", {}, {}),
    "gauss": ("gaussian", {}, {}),
    "mean": ("box", {}, {}),
    "average": ("box", {}, {}),
}


def _defaults(name: str, fixed: dict[str, Any] | None = None,
              changed: dict[str, Any] | None = None) -> dict[str, Any]:
    fixed, changed = fixed or {}, changed or {}
    return {p.name: changed.get(p.name, p.default)
            for p in inspect.signature(_BUILDERS[name]).parameters.values()
            if p.name not in fixed}


def available() -> dict[str, dict[str, Any]]:
    """Kernel names and their parameters with defaults (aliases such as 'sobel-x' included).

    Examples
    --------
    >>> names = available()
    >>> names["gaussian"]
    {'sigma': 1.0, 'size': None, 'truncate': 4.0, 'ndim': None}
    >>> names["sobel-x"]
    {'size': 3, 'order': 1, 'ndim': 2, 'normalize': False}
    """
    out = {name: _defaults(name) for name in _BUILDERS}
    for alias, (name, fixed, changed) in _ALIASES.items():
        out[alias] = _defaults(name, fixed, changed)
    return out


def _resolve(name: Any, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(name, str):
        raise SepconvTypeError(f"`name` must be a kernel name (a string), got {describe(name)}")
    key = name.strip().lower().replace("_", "-")
    if key in _ALIASES:
        canonical, fixed, changed = _ALIASES[key]
        clash = sorted(set(fixed) & set(params))
        if clash:
            raise SepconvValueError(f"kernel {name!r} fixes `{clash[0]}`={fixed[clash[0]]!r}; "
                                    f"use {canonical!r} to choose it")
        params = {**changed, **fixed, **params}
        key = canonical
    if key not in _BUILDERS:
        close = [n for n in available() if n.startswith(key[:3])] if key else []
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise SepconvValueError(f"unknown kernel {name!r}{hint}; known kernels: "
                                f"{', '.join(_BUILDERS)} (see sepconv.kernels.available())")
    accepted = _defaults(key)
    for param in params:
        if param not in accepted:
            raise SepconvValueError(f"unknown parameter `{param}` for kernel {name!r}; "
                                    f"accepted: {', '.join(accepted) or 'none'}")
    return key, params


def get(name: str, **params: Any) -> np.ndarray:
    """The named kernel as a float64 array.

    Parameters
    ----------
    name : str
        A name from :func:`available` (case-insensitive; ``_`` and ``-`` are the same).
    **params
        The kernel's parameters (see the kernel's function, e.g. :func:`gaussian`).

    Examples
    --------
    >>> get("binomial", size=3, normalize=False)[1]
    array([2., 4., 2.])
    >>> get("gaussian", sigma=1, colour=2)
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: unknown parameter `colour` for kernel 'gaussian'; accepted: sigma, size, truncate, ndim
    """  # noqa: E501
    key, params = _resolve(name, params)
    return _BUILDERS[key](**params)[0]


def factors(name: str, **params: Any) -> Factorization | None:
    """The exact separable terms of a named kernel, or None when it has no closed form.

    The terms are those the kernel is built from (for a Gabor kernel, the ``cos(a + b)``
    expansion), so they are exact rather than computed by an SVD; disks and oblique motion
    blurs return None (use :func:`sepconv.factor.lowrank`).

    Examples
    --------
    >>> f = factors("log", sigma=2.0)
    >>> f.rank, f.method, f.is_exact
    (2, 'closed-form', True)
    >>> factors("binomial", size=5, normalize=False).terms[0]
    (array([1., 4., 6., 4., 1.]), array([1., 4., 6., 4., 1.]))
    >>> factors("disk") is None
    True
    """
    key, params = _resolve(name, params)
    array, terms = _BUILDERS[key](**params)
    if terms is None:
        return None
    return Factorization.from_terms(terms, kernel=array)


# --------------------------------------------------------------------------------------------
# parsing

_NAME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?::(.*))?$", re.DOTALL)
_FILE_SUFFIXES = (".npy", ".txt", ".csv")


def _param_value(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if "x" in lowered and re.fullmatch(r"[0-9.+-]+(x[0-9.+-]+)+", lowered):
        return tuple(_param_value(part) for part in lowered.split("x"))
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_params(name: str, text: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise SepconvValueError(f"kernel parameters must be written name=value, separated "
                                    f"by commas, e.g. 'gaussian:sigma=2,size=9'; got {item!r} "
                                    f"in {name!r}")
        params[key] = _param_value(value)
    return params


def _literal(text: str) -> np.ndarray:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError) as exc:
            raise SepconvValueError(f"cannot read the kernel literal {text!r}: {exc}") from None
        return as_kernel(value)
    rows = [r for r in re.split(r"[;\n]", stripped) if r.strip()]
    if not rows:
        raise SepconvValueError(f"`text` must not be empty, got {text!r}")
    values = []
    for row in rows:
        cells = [c for c in re.split(r"[,\s]+", row.strip()) if c]
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            raise SepconvValueError(f"cannot read the kernel literal {text!r}: {row.strip()!r} "
                                    f"is not a row of numbers") from None
    lengths = sorted({len(r) for r in values})
    if len(lengths) > 1:
        raise SepconvValueError(f"kernel literal {text!r} is ragged: its rows have "
                                f"{' and '.join(map(str, lengths))} entries")
    array = np.array(values)
    if array.shape[0] == 1:
        array = array[0]
    return as_kernel(array)


def _load(path: str) -> np.ndarray:
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise SepconvValueError(f"cannot read kernel file {path!r}: no such file")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with open(path, encoding="utf-8") as handle:
                content = handle.read()
            lines = [ln for ln in content.splitlines() if ln.strip() and not ln.lstrip()
                     .startswith("#")]
            if not lines:
                raise SepconvValueError(f"kernel file {path!r} holds no numbers")
            return _literal("\n".join(lines))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, SepconvValueError):
            raise SepconvValueError(f"kernel file {path!r}: {exc}") from None
        raise SepconvValueError(f"cannot read kernel file {path!r}: {exc}") from None
    return as_kernel(array, name=f"kernel in {path}")


def parse(text: str) -> np.ndarray:
    """A kernel given as text: a name with parameters, numbers, or a file.

    Parameters
    ----------
    text : str or path-like
        - a name from :func:`available`, with parameters after a colon:
          ``"sobel-x"``, ``"gaussian:sigma=2,size=9"``, ``"gabor:theta=0.5,phase=1"``
          (``size=9x7`` gives a tuple);
        - numbers, rows separated by ``;`` or newlines, entries by spaces or commas:
          ``"1 2 1; 2 4 2; 1 2 1"`` (one row gives a 1-D kernel), or a nested list
          ``"[[1, 2], [3, 4]]"``;
        - a ``.npy`` file (loaded without pickles) or a ``.txt`` / ``.csv`` file of rows of
          numbers (``#`` comment lines skipped).

    Returns
    -------
    ndarray
        float64.

    Raises
    ------
    SepconvValueError
        Empty or ragged text, NaN/Inf, unknown names or parameters, unreadable files.
    SepconvTypeError
        Non-string input, or a file holding complex, boolean or object data.

    Examples
    --------
    >>> parse("1 2 1; 2 4 2; 1 2 1")[0]
    array([1., 2., 1.])
    >>> parse("1, 0, -1").shape
    (3,)
    >>> parse("sobel-y").shape
    (3, 3)
    >>> parse("1 2; 3")
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: kernel literal '1 2; 3' is ragged: its rows have 1 and 2 entries
    """  # noqa: E501
    if isinstance(text, os.PathLike):
        return _load(os.fspath(text))
    if not isinstance(text, str):
        raise SepconvTypeError(f"`text` must be a string or a path, got {describe(text)}")
    stripped = text.strip()
    if not stripped:
        raise SepconvValueError("`text` must not be empty: give a kernel name such as "
                                "'sobel-x', numbers such as '1 2 1; 2 4 2; 1 2 1' or a file")
    if stripped.lower().endswith(_FILE_SUFFIXES) or os.path.isfile(stripped):
        return _load(stripped)
    named = _named(stripped)
    if named is not None:
        return get(named[0], **named[1])
    return _literal(stripped)


def _named(stripped: str) -> tuple[str, dict[str, Any]] | None:
    match = _NAME.match(stripped)
    if match and not re.fullmatch(r"[0-9eE.+-]+", match.group(1)):
        name, rest = match.group(1), match.group(2) or ""
        return name, _parse_params(name, rest)
    return None


def parse_factors(text: str) -> Factorization | None:
    """The closed-form factors of a kernel named in ``text`` (as :func:`parse` reads it).

    None when ``text`` holds numbers or a file, or names a kernel without closed-form factors.

    Examples
    --------
    >>> parse_factors("log:sigma=2").rank
    2
    >>> parse_factors("1 2 1") is None
    True
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped or stripped.lower().endswith(_FILE_SUFFIXES) or os.path.isfile(stripped):
        return None
    named = _named(stripped)
    return factors(named[0], **named[1]) if named is not None else None
