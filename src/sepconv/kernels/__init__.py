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
- Every kernel is written once, as the sum of its separable terms built from 1-D factors
  (binomial, OpenCV's derivatives, SciPy's Gaussian; :mod:`sepconv.kernels._1d`): the array
  :func:`get` returns is that sum, and :func:`factors` returns those very terms, bit for bit,
  rather than an SVD of the array.
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

from .._api import public_dir as _public_dir
from ._args import MAX_ELEMENTS as MAX_ELEMENTS  # the largest kernel built (elements)
from ._named import (
    binomial,
    box,
    difference_of_gaussians,
    disk,
    gabor,
    gaussian,
    laplacian,
    laplacian_of_gaussian,
    motion,
    prewitt,
    scharr,
    sobel,
)
from ._parse import parse, parse_factors
from ._registry import available, factors, get

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

# the public home of every name above
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

__dir__ = _public_dir(globals())
