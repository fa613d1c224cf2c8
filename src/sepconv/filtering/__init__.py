"""Filtering that takes the cheapest exact path: ``correlate``, ``convolve`` and ``plan``.

The kernel is factored once (:mod:`sepconv.factor`); :func:`plan` compares filtering with the
full kernel (``'direct'``), with one separable term (``'separable'``: one 1-D pass per axis),
with a sum of separable terms (``'lowrank'``) and with an FFT (``'fft'``), counting
multiplications with :func:`sepconv.cost.filtering` and estimating time with a cost model
measured on the project's benchmark machine. ``method='auto'`` takes the fastest estimate.

Engines, chosen by the type of ``image``:

- NumPy arrays ``(H, W)``, ``(H, W, C)`` (2-D kernel, channels filtered independently) and
  N-D arrays with an N-D kernel (optionally with a trailing channel axis): for 2-D kernels,
  separable terms run on sepconv's native kernel (:mod:`sepconv.filtering._native`: every
  term in one pass, every border mode, no padding copy) or ``cv2.sepFilter2D`` where it is not
  built, the full kernel on ``cv2.filter2D``; SciPy (one ``correlate1d`` pass per axis, or
  ``ndimage.correlate``) for N-D kernels; ``scipy.fft`` for ``'fft'``.
- torch tensors ``(N, C, H, W)`` (or ``(N, C, *spatial)`` with an N-D kernel), any device,
  differentiable with respect to the image: on CPU the NumPy engine (with its exact adjoint
  for the backward pass), on other devices 1-D passes as banded matrix products.
- dask arrays, shaped as NumPy arrays: lazily, block by block with ``map_overlap``.

Semantics are those of ``scipy.ndimage.correlate`` / ``convolve`` with ``origin=0``: a kernel
of size ``k`` is centred at ``k // 2`` (correlation); convolution flips the kernel and, for
even sizes, moves the centre as SciPy does. Border modes use SciPy's names, listed in
:data:`MODES` (the methods in :data:`METHODS`, the image dtypes in :data:`DTYPES`); see
:mod:`sepconv.filtering._modes` for their OpenCV, NumPy, dask and torch equivalents.

Integer images (uint8, uint16, int16) are filtered in float32, ``cval`` included (any finite
value: ``cval=300`` or ``-7.25`` on uint8 are those values, not uint8's), and the result is
rounded to the nearest integer (ties to even) and saturated to the range of the output type,
never wrapped around or truncated as ``scipy.ndimage`` does; pass ``output=np.float32`` to keep
the float result. These rules hold on every method and engine.

Pixels that are NaN or infinite give ``scipy.ndimage.correlate``'s values and NaN positions on
every method and engine. SciPy skips the kernel's zero weights (``|w| <= DBL_EPSILON``), so a
NaN reaches only the outputs under the non-zero weights, ``+inf`` and ``-inf`` contributions
meeting there give NaN, and one kind alone gives that infinity. Paths that multiply every tap
or transform the whole image (OpenCV, the native kernel, 1-D passes, FFT, banded matrix
products) would spread a NaN further, so such an image is filtered with its non-finite pixels
set to zero and the outputs under their footprint are then set (:mod:`._nonfinite`). Finding
out costs one vectorised read of a float image before filtering, and nothing on the native
separable path, which checks its output in registers as it writes it.

``mode='reflect'`` with a kernel that reaches beyond the whole axis follows the definition,
the half-sample symmetric extension of ``np.pad(mode='symmetric')`` repeated with period
``2n``, as ``scipy.ndimage.correlate1d`` does; ``scipy.ndimage.correlate`` (1.17) departs from
it there (a 28x3 image and a 36x25 kernel: 10-30% off).

What runs is the planner's choice (``Plan.implementation``); :func:`use_implementation`
chooses it for a block of code (tests, benchmarks).

Examples
--------
>>> from sepconv import filtering
>>> filtering.MODES
('reflect', 'mirror', 'nearest', 'constant', 'wrap')
>>> filtering.METHODS
('auto', 'direct', 'separable', 'lowrank', 'fft')
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._api import public_dir as _public_dir
from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_float,
    check_kernel,
    check_shape,
    dtype_eps,
)
from .._checks import dtype_name as _dtype_name
from . import _output
from ._implementation import use_implementation
from ._modes import MODES, kernel_anchor
from ._plan import METHODS, Plan, make_plan

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import torch
    from numpy.typing import ArrayLike, DTypeLike

#: an image: a NumPy array, a torch tensor or a dask array; the filters return the same type
Image = TypeVar("Image", np.ndarray, "torch.Tensor", "dask.array.Array")

__all__ = [
    "correlate",
    "convolve",
    "plan",
    "Plan",
    "MODES",
    "METHODS",
    "DTYPES",
    "use_implementation",
]

#: Image data types the filters accept.
DTYPES = ("uint8", "uint16", "int16", "float32", "float64")


def _engine_of(image: Any) -> str:
    """'numpy', 'torch' or 'dask', without importing torch or dask."""
    if isinstance(image, np.ndarray):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        return "torch"
    dask_array = sys.modules.get("dask.array")
    if dask_array is not None and isinstance(image, dask_array.Array):
        return "dask"
    raise SepconvTypeError(
        f"`image` must be a NumPy array, a torch tensor or a dask array, got "
        f"{type(image).__module__}.{type(image).__qualname__}"
    )


def _check_kernel(kernel: ArrayLike | torch.Tensor) -> tuple[np.ndarray, float | None]:
    """The kernel as float64, and the factorization tolerance its own precision calls for
    (``None``: float64's, the factorization's default)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(kernel, torch.Tensor) and kernel.requires_grad:
        raise SepconvTypeError(
            "`kernel` must be a constant array; a tensor that requires grad is not "
            "accepted (learnable kernels belong in sepconv.nn)"
        )
    weights, eps = check_kernel(kernel)
    if eps == dtype_eps(np.float64):
        return weights, None
    from sepconv import factor

    return weights, factor.default_tol(kernel)  # a float32 kernel: separable within its eps


def _check_dtype(name: str, dtype: DTypeLike | torch.dtype) -> np.dtype:
    text = _dtype_name(dtype)
    if text not in DTYPES:
        raise SepconvTypeError(f"`{name}` dtype must be one of {', '.join(DTYPES)}, got {text}")
    return np.dtype(text)


def _check_layout(engine: str, shape: tuple[int, ...], kernel_ndim: int) -> None:
    if engine == "torch":
        if len(shape) != kernel_ndim + 2:
            raise SepconvValueError(
                f"`image` must be a tensor (N, C, *spatial) with {kernel_ndim + 2} dimensions "
                f"for a {kernel_ndim}-D kernel, got shape {tuple(shape)}"
            )
    elif len(shape) not in (kernel_ndim, kernel_ndim + 1):
        layout = "(H, W) or (H, W, C)" if kernel_ndim == 2 else "(*spatial) or (*spatial, C)"
        raise SepconvValueError(
            f"`image` must have {kernel_ndim} or {kernel_ndim + 1} dimensions {layout} for a "
            f"{kernel_ndim}-D kernel, got shape {tuple(shape)}"
        )
    if math.prod(shape) == 0:
        raise SepconvValueError(f"`image` must not be empty, got shape {tuple(shape)}")


def _geometry(engine: str, shape: tuple[int, ...], kernel_ndim: int) -> tuple[tuple[int, ...], int]:
    """Spatial shape and number of channels (times batch) of an image shape."""
    if engine == "torch":
        return tuple(shape[2:]), int(shape[0]) * int(shape[1])
    spatial = tuple(shape[:kernel_ndim])
    channels = int(shape[kernel_ndim]) if len(shape) > kernel_ndim else 1
    return spatial, channels


def _common(
    kernel: ArrayLike | torch.Tensor, mode: str, cval: float, method: str, tol: float | None
) -> tuple[np.ndarray, str, float, str, float | None]:
    weights, kernel_tol = _check_kernel(kernel)
    mode = check_choice("mode", mode, MODES)
    cval = check_float("cval", cval)
    if cval != 0.0 and mode != "constant":
        raise SepconvValueError(
            f"`cval` is only used with mode='constant', got cval={cval!r} with mode={mode!r}"
        )
    method = check_choice("method", method, METHODS)
    tol = kernel_tol if tol is None else check_float("tol", tol, minimum=0.0)
    return weights, mode, cval, method, tol


def _filter(
    image: Image,
    kernel: ArrayLike | torch.Tensor,
    mode: str,
    cval: float,
    method: str,
    tol: float | None,
    output: DTypeLike | np.ndarray,
    flipped: bool,
) -> Image:
    engine = _engine_of(image)
    weights, mode, cval, method, tol = _common(kernel, mode, cval, method, tol)
    if flipped:
        weights = weights[(slice(None, None, -1),) * weights.ndim].copy()
    anchor = kernel_anchor(weights.shape, flipped)
    in_dtype = _check_dtype("image", image.dtype)
    shape = tuple(int(s) for s in image.shape)
    _check_layout(engine, shape, weights.ndim)

    out_array = None
    if output is None:
        out_dtype = in_dtype
    elif isinstance(output, np.ndarray):
        if engine != "numpy":
            raise SepconvTypeError(
                f"`output` must be None or a dtype for a {engine} image, got an array"
            )
        if output.shape != image.shape:
            raise SepconvValueError(
                f"`output` must have the image's shape {shape}, got shape {output.shape}"
            )
        if not output.flags.writeable:
            raise SepconvValueError("`output` must be a writeable array, got a read-only one")
        out_array = output
        out_dtype = _check_dtype("output", output.dtype)
    else:
        out_dtype = _check_dtype("output", output)
    work = np.dtype(np.float64 if np.float64 in (in_dtype, out_dtype) else np.float32)
    spatial, channels = _geometry(engine, shape, weights.ndim)
    chosen = make_plan(
        weights,
        shape,
        spatial=spatial,
        channels=channels,
        dtype=_dtype_name(work),
        source_depth=_dtype_name(in_dtype),
        method=method,
        tol=tol,
        engine=engine,
    )

    if engine == "torch":
        from ._torch import filter_torch

        return filter_torch(
            image,
            weights,
            anchor,
            mode,
            cval,
            chosen.method,
            chosen.terms,
            out_dtype.name,
            chosen.implementation,
        )
    if engine == "dask":
        from ._dask import filter_dask

        return filter_dask(
            image,
            weights,
            anchor,
            mode,
            cval,
            chosen.method,
            chosen.terms,
            work,
            out_dtype,
            chosen.implementation,
        )

    from ._numpy import filter_numpy

    integer_io = _output.native_integer_io(
        chosen.implementation, weights.ndim, work, cval, in_dtype
    )
    direct = _output.direct_output(out_array, image, work, integer_io)
    result = filter_numpy(
        image,
        weights,
        anchor,
        mode,
        cval,
        chosen.method,
        chosen.terms,
        work,
        out=out_array if direct else None,
        out_dtype=out_dtype,
        implementation=chosen.implementation,
    )
    return _output.deliver(result, out_array, out_dtype, nan=in_dtype.kind == "f")


def correlate(
    image: Image,
    kernel: ArrayLike | torch.Tensor,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    tol: float | None = None,
    output: DTypeLike | np.ndarray = None,
) -> Image:
    """Correlate an image with a kernel, taking the cheapest exact path.

    Same result as ``scipy.ndimage.correlate(image, kernel, mode=mode, cval=cval)`` (the
    kernel is not flipped; a kernel of size ``k`` is centred at ``k // 2``), computed directly,
    as one separable term, as a sum of separable terms or with an FFT, whichever
    :func:`plan` estimates fastest.

    Parameters
    ----------
    image : numpy.ndarray, torch.Tensor or dask.array.Array
        NumPy or dask: ``(H, W)`` or ``(H, W, C)`` for a 2-D kernel (channels filtered
        independently); in general ``(*spatial)`` or ``(*spatial, C)`` with one spatial axis
        per kernel axis. torch: ``(N, C, *spatial)``. dtype uint8, uint16, int16, float32 or
        float64. Never modified.
    kernel : array_like
        Real, finite weights, one axis per spatial axis of ``image``.
    mode : {'reflect', 'mirror', 'nearest', 'constant', 'wrap'}
        How the image is extended beyond its borders (SciPy's names; OpenCV: BORDER_REFLECT,
        BORDER_REFLECT_101, BORDER_REPLICATE, BORDER_CONSTANT, BORDER_WRAP).
    cval : float
        Value outside the image for ``mode='constant'``; an error with any other mode.
    method : {'auto', 'direct', 'separable', 'lowrank', 'fft'}
        ``'separable'`` needs a kernel of rank 1 within ``tol``; ``'lowrank'`` sums the
        terms :func:`sepconv.factor.lowrank` finds within ``tol``.
    tol : float, optional
        Approximation tolerance of the factorization (as :func:`sepconv.factor.lowrank`);
        ``None`` keeps the result exact up to rounding.
    output : dtype or numpy.ndarray, optional
        dtype of the result (default: the image's), or an array of the image's shape to fill
        and return. Integer outputs are rounded (ties to even) and saturated. Computation is
        in float32, or float64 when the image or the output is float64.

    Returns
    -------
    numpy.ndarray, torch.Tensor or dask.array.Array
        The filtered image, same type and shape as ``image``.

    Notes
    -----
    An image with NaN or infinite pixels gives SciPy's values and NaN positions (zero
    weights skipped, as SciPy does) on every method; a NaN written to an integer output
    becomes 0 and infinities saturate. Integer images use any finite ``cval`` as a float.
    See :mod:`sepconv.filtering` for both rules and for 'reflect' with kernels larger than
    the image (the definition, ``np.pad(mode='symmetric')``, not SciPy's departure from it).

    Raises
    ------
    ValueError
        Empty image, dimension mismatch, NaN in the kernel, unknown mode or method, ``cval``
        with a non-constant mode, ``method='separable'`` with a kernel of higher rank.
    TypeError
        Unsupported image or kernel type or dtype (bool, complex, float16, ...).

    See Also
    --------
    convolve, plan, scipy.ndimage.correlate, cv2.filter2D, cv2.sepFilter2D

    Examples
    --------
    >>> import numpy as np
    >>> import sepconv
    >>> image = np.arange(20, dtype=np.float32).reshape(4, 5)
    >>> sobel_x = np.outer([1, 2, 1], [-1, 0, 1])
    >>> sepconv.correlate(image, sobel_x)
    array([[4., 8., 8., 8., 4.],
           [4., 8., 8., 8., 4.],
           [4., 8., 8., 8., 4.],
           [4., 8., 8., 8., 4.]], dtype=float32)
    >>> sepconv.correlate(np.full((3, 3), 250, np.uint8), np.ones((3, 3)) / 8)
    array([[255, 255, 255],
           [255, 255, 255],
           [255, 255, 255]], dtype=uint8)
    >>> with_nan = np.ones((3, 5))
    >>> with_nan[1, 2] = np.nan
    >>> sepconv.correlate(with_nan, [[1.0, 0.0, -1.0]])  # the zero weight is skipped
    array([[ 0.,  0.,  0.,  0.,  0.],
           [ 0., nan,  0., nan,  0.],
           [ 0.,  0.,  0.,  0.,  0.]])
    >>> sepconv.correlate(np.array([[1, 2, 3, 2, 1]], np.uint8), np.ones((1, 3)),
    ...                   mode="constant", cval=2.5)
    array([[6, 6, 7, 6, 6]], dtype=uint8)
    """
    return _filter(image, kernel, mode, cval, method, tol, output, flipped=False)


def convolve(
    image: Image,
    kernel: ArrayLike | torch.Tensor,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    tol: float | None = None,
    output: DTypeLike | np.ndarray = None,
) -> Image:
    """Convolve an image with a kernel (the kernel flipped), as ``scipy.ndimage.convolve``.

    Parameters and returns as :func:`correlate`. For a kernel of even size along an axis,
    the flipped kernel is centred at ``(k - 1) // 2`` there, which is what
    ``scipy.ndimage.convolve`` does with ``origin=0``.

    Examples
    --------
    >>> import numpy as np
    >>> import sepconv
    >>> image = np.zeros((1, 5))
    >>> image[0, 2] = 1.0
    >>> sepconv.convolve(image, [[1.0, 2.0, 3.0]], mode="constant")
    array([[0., 1., 2., 3., 0.]])
    >>> sepconv.correlate(image, [[1.0, 2.0, 3.0]], mode="constant")
    array([[0., 3., 2., 1., 0.]])
    """
    return _filter(image, kernel, mode, cval, method, tol, output, flipped=True)


def plan(
    kernel: ArrayLike | torch.Tensor,
    image_shape: Sequence[int],
    dtype: DTypeLike | torch.dtype = np.float32,
    *,
    method: str = "auto",
    tol: float | None = None,
    engine: str = "numpy",
) -> Plan:
    """Say which method ``method='auto'`` takes for this kernel and image, and why.

    Parameters
    ----------
    kernel : array_like
        The kernel, as given to :func:`correlate`.
    image_shape : tuple of int
        Shape of the image, as its array has it: ``(H, W)`` or ``(H, W, C)`` for NumPy and
        dask, ``(N, C, H, W)`` for torch.
    dtype : dtype
        The image's dtype (uint8, uint16, int16, float32, float64).
    method : str
        ``'auto'`` or a fixed method (the plan then reports its estimates).
    tol : float, optional
        Factorization tolerance, as in :func:`correlate`.
    engine : {'numpy', 'torch', 'dask'}
        The engine the image goes to: it says how ``image_shape`` is read and, for torch,
        what runs (see :func:`use_implementation`). The timing model is the NumPy engine's
        for all three: dask runs that engine per block, CPU tensors run it, and on other
        devices its ranking of the methods holds within its accuracy.

    Returns
    -------
    Plan
        ``method``, ``reason``, ``rank``, ``terms``, ``multiplications`` (from
        :func:`sepconv.cost.filtering`) and ``seconds`` (the cost model's estimates);
        ``str(plan)`` explains it in a few lines.

    Examples
    --------
    >>> import numpy as np
    >>> import sepconv
    >>> gauss = np.outer(*[np.exp(-np.arange(-7, 8) ** 2 / 8.0)] * 2)
    >>> p = sepconv.plan(gauss, (2048, 2048), np.float32)
    >>> p.method, p.rank
    ('separable', 1)
    >>> p.multiplications["direct"] // p.multiplications["separable"]
    7
    """
    weights, kernel_tol = _check_kernel(kernel)
    engine = check_choice("engine", engine, ("numpy", "torch", "dask"))
    method = check_choice("method", method, METHODS)
    tol = kernel_tol if tol is None else check_float("tol", tol, minimum=0.0)
    ndims = (weights.ndim + 2,) if engine == "torch" else (weights.ndim, weights.ndim + 1)
    shape = check_shape("image_shape", image_shape, ndims)
    in_dtype = _check_dtype("dtype", dtype)
    work = "float64" if in_dtype == np.float64 else "float32"
    spatial, channels = _geometry(engine, shape, weights.ndim)
    return make_plan(
        weights,
        shape,
        spatial=spatial,
        channels=channels,
        dtype=work,
        source_depth=in_dtype.name,
        method=method,
        tol=tol,
        engine=engine,
    )


__dir__ = _public_dir(globals())
