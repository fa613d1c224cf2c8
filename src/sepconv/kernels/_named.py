"""The named kernels, each written once: as its separable terms, built from 1-D factors.

A kernel function here returns its *terms* -- a list of terms, each a list of one 1-D factor
per axis, whose outer products add up to the kernel -- or, for kernels that have no
closed-form terms (a disk, an oblique motion blur, an elongated oblique Gabor kernel), the
array itself. ``@_kernel(name)`` registers the function under ``name`` (for
:func:`sepconv.kernels.get` and :func:`sepconv.kernels.factors`) and turns it into the
public function, which returns the float64 array the terms add up to. The 1-D factors come
from :mod:`sepconv.kernels._1d`, as kornia's ``get_*_kernel1d``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import SepconvValueError, check_float, check_int
from ._1d import (
    Terms,
    binomial_1d,
    compose,
    derivative_1d,
    gaussian_1d,
    gaussian_sizes,
)
from ._args import (
    _MAX_BINOMIAL,
    _MIN_SIGMA,
    MAX_ELEMENTS,
    Sigma,
    Size,
    _axis,
    _check_bool,
    _check_elements,
    _check_ndim,
    _odd_size,
    _per_axis_float,
    _per_axis_size,
)

#: registry name -> the function giving the kernel's terms (or its array)
BUILDERS: dict[str, Callable[..., Terms | np.ndarray]] = {}


def _kernel(name: str) -> Callable[[Callable[..., Terms | np.ndarray]], Callable[..., np.ndarray]]:
    """Register a kernel under ``name``; the public function returns its array."""

    def register(build: Callable[..., Terms | np.ndarray]) -> Callable[..., np.ndarray]:
        @functools.wraps(build)
        def kernel(*args: Any, **kwargs: Any) -> np.ndarray:
            return compose(build(*args, **kwargs))

        kernel.__signature__ = inspect.signature(build).replace(  # type: ignore[attr-defined]
            return_annotation="np.ndarray"
        )
        BUILDERS[name] = build
        return kernel

    return register


def _derivative_terms(axis: int, ndim: int, derivative: np.ndarray, smoothing: np.ndarray) -> Terms:
    return [[derivative if k == axis else smoothing for k in range(ndim)]]


def _derivative(
    direction: str, size: int, order: int, ndim: int, normalize: bool, smoothing: str
) -> Terms:
    """OpenCV's derivative kernel of ``order`` along ``direction`` times ``smoothing``
    (``'binomial'``: Sobel, ``'box'``: Prewitt) on every other axis; with ``normalize`` the
    smoothing sums to 1 and the derivative is scaled as ``getDerivKernels(normalize=True)``."""
    ndim = _check_ndim(ndim)
    axis = _axis(direction, ndim)
    size = _odd_size("size", size)
    order = check_int("order", order, minimum=1)
    if order >= size:
        raise SepconvValueError(f"`order` must be between 1 and size - 1 = {size - 1}, got {order}")
    _check_elements((size,) * ndim, "pass a smaller size")
    derivative = derivative_1d(size, order)
    smooth, total = (
        (binomial_1d(size), 2.0 ** (size - 1))
        if smoothing == "binomial"
        else (np.ones(size), float(size))
    )
    if _check_bool("normalize", normalize):
        derivative = derivative / 2.0 ** (size - order - 1)
        smooth = smooth / total
    return _derivative_terms(axis, ndim, derivative, smooth)


@_kernel("sobel")
def sobel(
    direction: str = "x", size: int = 3, order: int = 1, ndim: int = 2, normalize: bool = False
) -> Terms | np.ndarray:
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
    return _derivative(direction, size, order, ndim, normalize, "binomial")


@_kernel("scharr")
def scharr(
    direction: str = "x", size: int = 3, ndim: int = 2, normalize: bool = False
) -> Terms | np.ndarray:
    """Scharr derivative kernel ``[3, 10, 3]ᵀ ⊗ [-1, 0, 1]`` (3x3 only, as OpenCV).

    Examples
    --------
    >>> scharr("x")
    array([[ -3.,   0.,   3.],
           [-10.,   0.,  10.],
           [ -3.,   0.,   3.]])
    """
    ndim = _check_ndim(ndim)
    axis = _axis(direction, ndim)
    if check_int("size", size) != 3:
        raise SepconvValueError(f"`size` must be 3 for the Scharr kernel (as OpenCV), got {size}")
    smoothing = np.array([3.0, 10.0, 3.0])
    if _check_bool("normalize", normalize):
        smoothing = smoothing / 32.0
    terms = _derivative_terms(axis, ndim, np.array([-1.0, 0.0, 1.0]), smoothing)
    return terms


@_kernel("prewitt")
def prewitt(
    direction: str = "x", size: int = 3, ndim: int = 2, normalize: bool = False
) -> Terms | np.ndarray:
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
    return _derivative(direction, size, 1, ndim, normalize, "box")


@_kernel("gaussian")
def gaussian(
    sigma: Sigma = 1.0, size: Size | None = None, truncate: float = 4.0, ndim: int | None = None
) -> Terms | np.ndarray:
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
    if ndim is None:
        ndim = len(sigma) if isinstance(sigma, tuple | list) else 2
    ndim = _check_ndim(ndim)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    sizes = gaussian_sizes(sigmas, size, truncate)
    terms = [[gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]]
    return terms


@_kernel("box")
def box(size: Size = 3, ndim: int = 2, normalize: bool = True) -> Terms | np.ndarray:
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
    ndim = _check_ndim(ndim)
    sizes = _check_elements(_per_axis_size("size", size, ndim), "pass a smaller size")
    normalize = _check_bool("normalize", normalize)
    terms = [[np.full(n, 1.0 / n if normalize else 1.0) for n in sizes]]
    return terms


@_kernel("binomial")
def binomial(size: Size = 5, ndim: int = 2, normalize: bool = True) -> Terms | np.ndarray:
    """Binomial kernel: rows of Pascal's triangle, ``[1, 4, 6, 4, 1] / 16`` per axis for size 5.

    The binomial kernel is the discrete Gaussian of variance ``(size - 1) / 4``.

    Examples
    --------
    >>> binomial(3, normalize=False)
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    ndim = _check_ndim(ndim)
    sizes = _check_elements(_per_axis_size("size", size, ndim), "pass a smaller size")
    if max(sizes) > _MAX_BINOMIAL:
        raise SepconvValueError(
            f"`size` must be at most {_MAX_BINOMIAL} (binomial "
            f"coefficients overflow float64 beyond), got {size!r}"
        )
    normalize = _check_bool("normalize", normalize)
    terms = [[binomial_1d(n) / (2.0 ** (n - 1) if normalize else 1.0) for n in sizes]]
    return terms


@_kernel("laplacian")
def laplacian(size: int = 3, neighbours: int = 4) -> Terms | np.ndarray:
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
    size = _odd_size("size", size)
    _check_elements((size, size), "pass a smaller size")
    neighbours = check_int("neighbours", neighbours)
    if size == 3:
        if neighbours == 4:
            terms = [
                [np.array([0.0, 1.0, 0.0]), np.array([1.0, -2.0, 1.0])],
                [np.array([1.0, -2.0, 1.0]), np.array([0.0, 1.0, 0.0])],
            ]
        elif neighbours == 8:
            terms = [
                [np.ones(3), np.ones(3)],
                [np.array([0.0, 3.0, 0.0]), np.array([0.0, -3.0, 0.0])],
            ]
        else:
            raise SepconvValueError(f"`neighbours` must be 4 or 8, got {neighbours}")
    else:
        if neighbours != 4:
            raise SepconvValueError(
                f"`neighbours` applies to size 3 only; for size {size} the kernel is OpenCV's "
                f"Laplacian (second-derivative Sobel kernels), got neighbours={neighbours}"
            )
        second = derivative_1d(size, 2)
        smoothing = binomial_1d(size)
        terms = [[smoothing, second], [second, smoothing]]
    return terms


@_kernel("log")
def laplacian_of_gaussian(
    sigma: Sigma = 1.0,
    size: Size | None = None,
    truncate: float = 4.0,
    ndim: int = 2,
    zero_sum: bool = False,
) -> Terms | np.ndarray:
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
    ndim = _check_ndim(ndim, minimum=1)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    sizes = gaussian_sizes(sigmas, size, truncate)
    smooth = [gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]
    second = [gaussian_1d(s, n, order=2) for s, n in zip(sigmas, sizes)]
    if _check_bool("zero_sum", zero_sum):
        # subtracting c * g keeps every term in span{g, g''}: the rank stays ndim
        second = [d - (d.sum() / g.sum()) * g for d, g in zip(second, smooth)]
    terms = [[second[k] if k == axis else smooth[k] for k in range(ndim)] for axis in range(ndim)]
    return terms


@_kernel("dog")
def difference_of_gaussians(
    sigma: Sigma = 1.0,
    sigma2: Sigma | None = None,
    size: Size | None = None,
    truncate: float = 4.0,
    ndim: int = 2,
) -> Terms | np.ndarray:
    """Difference of Gaussians ``gaussian(sigma) - gaussian(sigma2)`` on one grid: rank 2.

    ``sigma2`` defaults to ``1.6 * sigma`` (Marr & Hildreth's approximation of the LoG); the
    size follows the wider Gaussian. Both Gaussians sum to 1, so the kernel sums to 0.

    Examples
    --------
    >>> dog = difference_of_gaussians(1.0)
    >>> dog.shape, abs(float(dog.sum())) < 1e-15
    ((13, 13), True)
    """
    ndim = _check_ndim(ndim)
    sigmas = _per_axis_float("sigma", sigma, ndim)
    if sigma2 is None:
        sigmas2 = tuple(1.6 * s for s in sigmas)
    else:
        sigmas2 = _per_axis_float("sigma2", sigma2, ndim)
    wide = tuple(max(a, b) for a, b in zip(sigmas, sigmas2))
    sizes = gaussian_sizes(wide, size, truncate)
    first = [gaussian_1d(s, n) for s, n in zip(sigmas, sizes)]
    second = [gaussian_1d(s, n) for s, n in zip(sigmas2, sizes)]
    terms = [first, [-second[0], *second[1:]]]
    return terms


@_kernel("gabor")
def gabor(
    sigma: float = 2.0,
    theta: float = 0.0,
    wavelength: float = 8.0,
    phase: float = 0.0,
    gamma: float = 1.0,
    size: Size | None = None,
) -> Terms | np.ndarray:
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
    sigma = check_float("sigma", sigma)
    wavelength = check_float("wavelength", wavelength)
    gamma = check_float("gamma", gamma)
    for name, value in (("sigma", sigma), ("wavelength", wavelength), ("gamma", gamma)):
        if value <= 0:
            raise SepconvValueError(f"`{name}` must be a positive number, got {value!r}")
    if min(sigma, sigma / gamma) < _MIN_SIGMA:
        raise SepconvValueError(
            f"`sigma` and `sigma / gamma` must be at least {_MIN_SIGMA:g}, "
            f"got sigma={sigma!r}, gamma={gamma!r}"
        )
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
    k = 2 * math.pi / wavelength
    if gamma != 1.0 and abs(s * c) > 1e-12:  # elongated and oblique: no closed-form terms
        xx, yy = np.meshgrid(x, y)
        xr = xx * c + yy * s
        yr = -xx * s + yy * c
        return np.exp(-0.5 / sigma_x**2 * xr * xr - 0.5 / sigma_y**2 * yr * yr) * np.cos(
            k * xr + phase
        )
    # isotropic envelope: exp(-(x^2 + y^2) / 2 sigma^2) = gy(y) gx(x), and
    # cos(k c x + k s y + phase) = cos(k c x + phase) cos(k s y) - sin(k c x + phase) sin(k s y)
    ex = np.exp(-0.5 / sigma_x**2 * (x * c) ** 2 - 0.5 / sigma_y**2 * (x * s) ** 2)
    ey = np.exp(-0.5 / sigma_x**2 * (y * s) ** 2 - 0.5 / sigma_y**2 * (y * c) ** 2)
    terms = [
        [ey * np.cos(k * s * y), ex * np.cos(k * c * x + phase)],
        [-ey * np.sin(k * s * y), ex * np.sin(k * c * x + phase)],
    ]
    terms = [t for t in terms if np.any(np.abs(t[0]) > 1e-15) and np.any(np.abs(t[1]) > 1e-15)]
    return terms or [[ey * 0, ex * 0]]


@_kernel("disk")
def disk(radius: int = 3, normalize: bool = True) -> Terms | np.ndarray:
    """Flat disk ``x**2 + y**2 <= radius**2`` of size ``2 * radius + 1``, summing to 1.

    Not separable: its rank grows with the radius (one term per distinct row width, about).

    Examples
    --------
    >>> disk(1, normalize=False)
    array([[0., 1., 0.],
           [1., 1., 1.],
           [0., 1., 0.]])
    """
    radius = check_int("radius", radius, minimum=1)
    _check_elements((2 * radius + 1,) * 2, "pass a smaller radius")
    offsets = np.arange(-radius, radius + 1)
    inside = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2
    array = inside.astype(np.float64)
    if _check_bool("normalize", normalize):
        array /= array.sum()
    return array


@_kernel("motion")
def motion(length: int = 9, angle: float = 0.0, normalize: bool = True) -> Terms | np.ndarray:
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
    if array.shape[0] == 1 or array.shape[1] == 1:  # a row or a column: one term
        return [
            [
                array[:, 0] if array.shape[1] == 1 else np.ones(1),
                array[0] if array.shape[0] == 1 else np.ones(1),
            ]
        ]
    return array
