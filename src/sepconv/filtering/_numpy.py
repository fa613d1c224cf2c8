"""NumPy engine: OpenCV for 2-D kernels, SciPy for the rest (1-D and N-D kernels).

Every function here takes a validated image (any memory layout, never modified), a float64
kernel already flipped for convolution, the anchor of the kernel per axis (see
:func:`._modes.kernel_anchor`) and returns a new float32 or float64 array.

OpenCV's ``filter2D`` and ``sepFilter2D`` take the anchor directly, so even kernels need no
shift; they have no ``wrap`` border and do not extend an axis shorter than the kernel's reach
the way SciPy does, so those cases are padded here first (with the SciPy extension) and
filtered with a border that is never read. ``constant`` with a non-zero ``cval`` is filtered as
``correlate(image - cval) + cval * kernel.sum()``, exact because filtering is linear.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

from . import _native, _nonfinite
from ._implementation import separable_choice
from ._modes import TABLE, extension_indices
from ._output import native_integer_io
from ._plan import implementation_of

__all__ = ["filter_numpy", "pad"]

_CV_DEPTHS = {
    np.dtype(np.uint8),
    np.dtype(np.uint16),
    np.dtype(np.int16),
    np.dtype(np.float32),
    np.dtype(np.float64),
}


def pad(image: np.ndarray, widths: list[tuple[int, int]], mode: str, cval: float) -> np.ndarray:
    """Extend ``image`` by ``(before, after)`` samples per leading axis, as ``scipy.ndimage``."""
    out = image
    for axis, (before, after) in enumerate(widths):
        if before == 0 and after == 0:
            continue
        idx = extension_indices(out.shape[axis], before, after, mode)
        if mode == "constant":
            taken = np.take(out, np.maximum(idx, 0), axis=axis)
            view = np.moveaxis(taken, axis, 0)
            view[idx < 0] = cval
            out = taken
        else:
            out = np.take(out, idx, axis=axis)
    return out


def _border(cv2: ModuleType, mode: str) -> int:
    return getattr(cv2, TABLE[mode].opencv)


def _fits(shape: tuple[int, ...], kernel_shape: tuple[int, ...], anchor: tuple[int, ...]) -> bool:
    """True when no extension reaches further than the axis length minus one."""
    return all(a <= n - 1 and k - 1 - a <= n - 1 for n, k, a in zip(shape, kernel_shape, anchor))


def _fft(
    x: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    work: np.dtype,
) -> np.ndarray:
    import scipy.fft
    from scipy.signal import fftconvolve

    nd = kernel.ndim
    widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, anchor)]
    # padded in the working type: an integer image's own type cannot hold every cval
    xp = pad(x.astype(work, copy=False), widths, mode, cval)
    flipped = kernel[(slice(None, None, -1),) * nd].astype(work)
    flipped = flipped.reshape(flipped.shape + (1,) * (x.ndim - nd))
    with scipy.fft.set_workers(os.cpu_count() or 1):
        out = fftconvolve(xp, flipped, mode="valid", axes=tuple(range(nd)))
    return np.ascontiguousarray(out, dtype=work)


def _opencv(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, int],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
    out: np.ndarray | None = None,
) -> np.ndarray:
    import cv2

    ddepth = cv2.CV_32F if work == np.float32 else cv2.CV_64F
    src = image
    if src.dtype not in _CV_DEPTHS or (work == np.float64 and src.dtype == np.float32):
        src = src.astype(work)
    offset = 0.0
    if mode == "constant" and cval != 0.0:
        src = src.astype(work) - work.type(cval)
        offset = cval * float(kernel.sum())
    crop = None
    if TABLE[mode].opencv is None or not _fits(image.shape[:2], kernel.shape, anchor):
        widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, anchor)]
        src = pad(src, widths, mode, 0.0)
        crop = (
            slice(anchor[0], anchor[0] + image.shape[0]),
            slice(anchor[1], anchor[1] + image.shape[1]),
        )
        border = cv2.BORDER_CONSTANT
    else:
        border = _border(cv2, mode)
    src = np.ascontiguousarray(src)
    point = (anchor[1], anchor[0])  # OpenCV: (x, y) = (column, row)
    channels = src.shape[2] if src.ndim == 3 else 1
    if channels > 4:  # OpenCV's filters take up to 4 interleaved channels efficiently
        out = np.stack(
            [
                _opencv(image[:, :, c], kernel, anchor, mode, cval, method, terms, work)
                for c in range(channels)
            ],
            axis=2,
        )
        return out

    if out is not None and (crop is not None or out.shape != src.shape):
        out = None  # OpenCV writes a padded result; it is cropped into a new array
    if method == "direct":
        out = cv2.filter2D(src, ddepth, kernel, dst=out, anchor=point, borderType=border)
    else:
        col, row = terms[0]
        out = cv2.sepFilter2D(src, ddepth, row, col, dst=out, anchor=point, borderType=border)
        if len(terms) > 1:
            scratch = np.empty_like(out)
            for col, row in terms[1:]:
                cv2.sepFilter2D(src, ddepth, row, col, dst=scratch, anchor=point, borderType=border)
                cv2.add(out, scratch, dst=out)
    if out.ndim < src.ndim:  # OpenCV drops a trailing channel axis of length 1
        out = out[..., None]
    if crop is not None:
        out = np.ascontiguousarray(out[crop])
    if offset:
        out += work.type(offset)
    return out


def _native_terms(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, int],
    mode: str,
    cval: float,
    terms: tuple,
    work: np.dtype,
    out: np.ndarray | None = None,
    out_dtype: np.dtype | None = None,
) -> tuple[np.ndarray, bool]:
    """Separable terms with the native kernel: any border mode and kernel reach, no padding.

    Integer images (uint8, uint16, int16) are read as they are and, with an integer
    ``out_dtype``, the result is rounded and saturated as it is written: no float copy of
    the image or of the result. Also returns whether a float result holds NaN or infinity.
    """
    direct = native_integer_io("native", 2, work, cval, image.dtype)
    if out_dtype is None or out_dtype == work or not direct:
        out_dtype = work
    src = image if direct or image.dtype == work else image.astype(work)
    offset = 0.0
    if mode == "constant" and cval != 0.0:
        src = src - work.type(cval)  # a new array: the input is never modified
        offset = cval * float(kernel.sum())
    if out is not None and not (
        out.flags.c_contiguous and out.dtype == out_dtype and out.shape == image.shape
    ):
        out = None  # written by the caller from a new result
    result, nonfinite = _native.separable_checked(
        src, terms, anchor, mode, out=out, work=work, out_dtype=out_dtype
    )
    if offset:
        result += work.type(offset)
    return result, nonfinite


def _scipy(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
) -> np.ndarray:
    from scipy import ndimage

    nd = kernel.ndim
    extra = image.ndim - nd
    origins = [a - k // 2 for k, a in zip(kernel.shape, anchor)]
    x = image.astype(work)  # a copy: the input is never modified
    if method == "direct":
        weights = kernel.reshape(kernel.shape + (1,) * extra)
        if _fits(image.shape[:nd], kernel.shape, anchor):
            return ndimage.correlate(
                x, weights, mode=mode, cval=cval, origin=origins + [0] * extra, output=work
            )
        # ndimage.correlate extends an axis shorter than the kernel's reach with a 'reflect'
        # of its own (not np.pad's 'symmetric'): extend it here, by the definition
        widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, anchor)]
        padded = ndimage.correlate(
            pad(x, widths, mode, cval),
            weights,
            mode="constant",
            origin=origins + [0] * extra,
            output=work,
        )
        return np.ascontiguousarray(
            padded[tuple(slice(a, a + n) for a, n in zip(anchor, image.shape))]
        )
    offset = 0.0
    if mode == "constant" and cval != 0.0:
        # 1-D passes would extend each intermediate result with cval: filter image - cval.
        x -= work.type(cval)
        offset = cval * float(kernel.sum())
    out = np.zeros(image.shape, dtype=work) if not terms else None
    for term in terms:
        y = x
        for axis, factor in enumerate(term):
            y = ndimage.correlate1d(
                y, factor, axis=axis, mode=mode, cval=0.0, origin=origins[axis], output=work
            )
        if out is None:
            out = y if y is not x else y.copy()
        else:
            out += y
    if offset:
        out += work.type(offset)
    return out  # type: ignore[return-value]


def _dispatch(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
    out: np.ndarray | None,
    out_dtype: np.dtype | None,
    native: bool,
) -> tuple[np.ndarray, bool]:
    """The filtered image, and ``True`` when the native kernel saw a non-finite output."""
    if method == "fft":
        return _fft(image, kernel, anchor, mode, cval, work), False
    if kernel.ndim == 2:
        if method != "direct" and native:
            return _native_terms(image, kernel, anchor, mode, cval, terms, work, out, out_dtype)
        return _opencv(image, kernel, anchor, mode, cval, method, terms, work, out), False
    return _scipy(image, kernel, anchor, mode, cval, method, terms, work), False


def filter_numpy(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
    out: np.ndarray | None = None,
    out_dtype: np.dtype | None = None,
    implementation: str | None = None,
) -> np.ndarray:
    """Filter ``image`` (spatial axes first, optional trailing channel axis).

    ``implementation`` is the plan's (``None``: the current choice, see
    :mod:`._implementation`).

    Returns a new array of dtype ``work``, or ``out`` (C-contiguous, the image's shape)
    filled with the result, written in place where the implementation can. With an integer
    ``out_dtype`` the native kernel may return that dtype directly (rounded half to even and
    saturated); callers check the result's dtype.

    A float image with NaN or infinities gets ``scipy.ndimage.correlate``'s values and NaN
    positions on every method (see :mod:`._nonfinite`): the native kernel reports them as it
    writes its output; other paths test the image first (:func:`._nonfinite.all_finite`).
    """
    work = np.dtype(work)
    if implementation is None:
        implementation = implementation_of(method, kernel.ndim, separable_choice())
    native = implementation == "native"
    if image.dtype.kind == "f" and not native and not _nonfinite.all_finite(image):
        result = _with_nonfinite(
            image, kernel, anchor, mode, cval, method, terms, work, out, out_dtype, native
        )
    else:
        result, seen = _dispatch(
            image, kernel, anchor, mode, cval, method, terms, work, out, out_dtype, native
        )
        if seen and not _nonfinite.all_finite(image):  # else finite values that overflowed
            result = _with_nonfinite(
                image,
                kernel,
                anchor,
                mode,
                cval,
                method,
                terms,
                work,
                result if result is out else None,
                out_dtype,
                native,
            )
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _with_nonfinite(
    image: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
    out: np.ndarray | None,
    out_dtype: np.dtype | None,
    native: bool,
) -> np.ndarray:
    """:func:`filter_numpy` of an image with NaN or infinities, as ``scipy.ndimage``."""
    result, _ = _dispatch(
        _nonfinite.zeroed(image),
        kernel,
        anchor,
        mode,
        cval,
        method,
        terms,
        work,
        out,
        out_dtype,
        native,
    )
    float32 = np.dtype(np.float32)

    def correlate(masks: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        return _dispatch(
            masks, footprint, anchor, mode, 0.0, "direct", (), float32, None, None, False
        )[0]

    return _nonfinite.set_nonfinite(result, image, kernel, correlate)
