"""Images with NaN or infinities: SciPy's values and NaN positions on every path.

``scipy.ndimage.correlate`` sums ``w * x`` over the kernel's taps, skipping the taps whose
weight is zero (``|w| <= DBL_EPSILON``, its "footprint"). A NaN or an infinity therefore
reaches exactly the outputs whose footprint covers it: the output is NaN when a NaN is under
the footprint or when infinities of opposite signed contribution meet there, ``+inf`` or
``-inf`` when only infinities of one signed contribution are there, and the finite sum of the
other taps elsewhere. Paths that multiply every tap (OpenCV, the native kernel, separable
passes, banded matrix products) or transform the whole image (FFT) spread a NaN further.

Every engine follows the same rule: the image is filtered with its non-finite pixels set to
zero (any method; the finite outputs are then SciPy's), and the outputs under the footprint
of a non-finite pixel are set from two counts, correlations of the masks ``+inf or NaN`` and
``-inf or NaN`` with the footprints of the positive and of the negative weights.

Finding out whether an image has a non-finite pixel must cost little on finite images:
:func:`all_finite` reads the image once with vectorised native code (``np.isfinite`` where
that is not built), and the native separable kernel checks its output in registers as it
writes it (see :func:`._native.separable_checked`), so the default path does not read the
image twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EPS", "all_finite", "footprints", "zeroed", "set_nonfinite", "set_nonfinite_torch"]

#: weights with ``|w| <= EPS`` are outside the footprint, as in ``scipy.ndimage.correlate``
EPS = float(np.finfo(np.float64).eps)


def all_finite(image: np.ndarray) -> bool:
    """True when no pixel of ``image`` is NaN or infinite (integer images: always).

    One vectorised pass of the native code (``x - x`` summed: 0 exactly when every pixel is
    finite) where it is built and the image contiguous, else ``np.isfinite(image).all()``.
    """
    if image.dtype.kind != "f":
        return True
    finite = _native.all_finite(image)
    if finite is None:
        finite = bool(np.isfinite(image).all())
    return finite


def footprints(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """0/1 kernels of the positive and of the negative weights (``None``: no negative one)."""
    positive = (kernel > EPS).astype(np.float64)
    negative = kernel < -EPS
    return positive, negative.astype(np.float64) if negative.any() else None


def zeroed(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with its non-finite pixels set to zero."""
    return np.where(np.isfinite(image), image, image.dtype.type(0))


def set_nonfinite(
    result: np.ndarray,
    image: np.ndarray,
    kernel: np.ndarray,
    correlate: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Write NaN and infinities into ``result`` (filtered from :func:`zeroed` ``image``).

    ``correlate(masks, footprint)`` filters a float32 image (the image's shape, twice the
    channels) with a 0/1 kernel, with the anchor and border mode of the filter
    (``'constant'`` with a zero ``cval``). Returns ``result``, modified in place.
    """
    nan = np.isnan(image)
    up = (image == np.inf) | nan  # contributes +inf through a positive weight
    down = (image == -np.inf) | nan
    channels = image.ndim > kernel.ndim
    join = np.concatenate if channels else np.stack
    masks = join([up, down], axis=-1).astype(np.float32)
    half = masks.shape[-1] // 2
    positive, negative = footprints(kernel)
    counts = np.asarray(correlate(masks, positive), dtype=np.float32)
    if negative is not None:
        swapped = np.asarray(correlate(masks, negative), dtype=np.float32)
        counts += np.concatenate([swapped[..., half:], swapped[..., :half]], axis=-1)
    plus = counts[..., :half] > 0.5
    minus = counts[..., half:] > 0.5
    if not channels:
        plus, minus = plus[..., 0], minus[..., 0]
    result[plus & minus] = np.nan
    result[plus & ~minus] = np.inf
    result[minus & ~plus] = -np.inf
    return result


def set_nonfinite_torch(
    out: torch.Tensor,
    x: torch.Tensor,
    kernel: np.ndarray,
    correlate: Callable[[torch.Tensor, np.ndarray], torch.Tensor],
) -> torch.Tensor:
    """:func:`set_nonfinite` for ``(N, C, *spatial)`` tensors; returns a new tensor.

    ``correlate(masks, footprint)`` filters an ``(N, 2C, *spatial)`` tensor directly.
    """
    import torch

    nan = torch.isnan(x)
    up = (x == np.inf) | nan
    down = (x == -np.inf) | nan
    masks = torch.cat([up, down], 1).to(out.dtype)
    positive, negative = footprints(kernel)
    counts = correlate(masks, positive)
    if negative is not None:
        swapped = correlate(masks, negative)
        counts = counts + torch.cat(swapped.chunk(2, 1)[::-1], 1)
    plus, minus = (c > 0.5 for c in counts.chunk(2, 1))
    values = out.new_tensor([np.nan, np.inf, -np.inf])
    special = torch.where(plus & minus, values[0], torch.where(plus, values[1], values[2]))
    return torch.where(plus | minus, special, out)
