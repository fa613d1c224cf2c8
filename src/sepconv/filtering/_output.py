"""The result's type and home: rounding, saturation, and when ``output=`` is written directly.

Integer results are the float result rounded to the nearest integer (ties to even, as
``np.rint`` and the native kernel) and saturated to the type's range; a NaN (from a float
image with NaN pixels) becomes 0 and infinities saturate.
"""

from __future__ import annotations

import numpy as np

from ._native import INTEGER_TYPES

__all__ = ["round_to", "native_integer_io", "direct_output", "deliver"]


def round_to(result: np.ndarray, dtype: np.dtype, nan: bool = False) -> np.ndarray:
    """Cast a float result (owned, may be modified) to ``dtype``, rounding and saturating
    (``nan``: the result may hold NaN, which becomes 0)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if nan:
            np.nan_to_num(result, copy=False, nan=0.0)
        np.rint(result, out=result)
        np.clip(result, info.min, info.max, out=result)
    return result.astype(dtype, copy=False)


def native_integer_io(
    implementation: str, ndim: int, work: np.dtype, cval: float, in_dtype: np.dtype
) -> bool:
    """Whether the native kernel reads this integer image as it is (and may write an integer
    output, rounded and saturated, as it goes): float32 work, a zero border value."""
    return (
        implementation == "native"
        and ndim == 2
        and work == np.float32
        and cval == 0.0
        and in_dtype in INTEGER_TYPES
    )


def direct_output(
    out_array: np.ndarray | None, image: np.ndarray, work: np.dtype, integer_io: bool
) -> bool:
    """Whether ``output=`` is handed to the engine to be written in place: C-contiguous, not
    overlapping the image, and of the working type or an integer type the native kernel
    writes (``integer_io``); otherwise the result is computed apart and copied in."""
    return (
        out_array is not None
        and out_array.flags.c_contiguous
        and not np.may_share_memory(out_array, image)
        and (out_array.dtype == work or integer_io)
    )


def deliver(
    result: np.ndarray, out_array: np.ndarray | None, out_dtype: np.dtype, nan: bool
) -> np.ndarray:
    """The engine's result as the caller asked for it: ``out_array`` filled (unless the
    engine wrote it already), or ``result`` rounded and saturated to ``out_dtype``."""
    if result is out_array:
        return out_array
    if result.dtype.kind == "f":  # else already rounded and saturated to ``out_dtype``
        result = round_to(result, out_dtype, nan=nan)
    if out_array is not None:
        out_array[...] = result
        return out_array
    return result
