"""dask engine: lazy, block by block with ``map_overlap``, for images larger than memory.

Each block is extended by the kernel's reach on every axis (``depth = max(anchor,
k - 1 - anchor)``: dask extends symmetrically except with ``boundary='none'``) and filtered
with the NumPy engine; dask trims the overlap afterwards. The outer border of the image is
extended by dask with the matching boundary (``reflect`` -> ``'reflect'``, ``nearest`` ->
``'nearest'``, ``wrap`` -> ``'periodic'``, ``constant`` -> ``cval``); dask has no ``mirror``
boundary, so for ``mirror`` dask adds nothing (``'none'``) and each edge block is extended by
the NumPy engine itself, which is exact because an edge block is longer than the reach. An
axis not longer than the reach is first put in a single chunk.

Kernels of even size reach one sample further on one side than on the other. dask overlaps
asymmetrically only with ``boundary='none'``, so for them the image is first extended lazily
with the mode (``dask.array.pad`` with the matching ``np.pad`` mode), overlapped by exactly
``(anchor, k - 1 - anchor)`` and cropped back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._modes import TABLE

if TYPE_CHECKING:  # pragma: no cover
    import dask.array

__all__ = ["filter_dask"]


def filter_dask(
    image: dask.array.Array,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    work: np.dtype,
    out_dtype: np.dtype,
    implementation: str,
) -> dask.array.Array:
    """Lazy filtered dask array with ``image``'s shape and chunks, dtype ``out_dtype``
    (``implementation``: the plan's, followed in every block whatever thread runs it)."""
    from ._numpy import filter_numpy
    from ._output import round_to

    boundary_of = TABLE[mode].dask
    if boundary_of is None:
        boundary_of = "none"  # blocks at the image's edge are extended by the NumPy engine
    elif mode == "constant":
        boundary_of = cval
    depth: dict[int, int] = {}
    boundary: dict[int, str | float] = {}
    single: dict[int, int] = {}
    for axis in range(image.ndim):
        reach = 0
        if axis < kernel.ndim:
            k, a = kernel.shape[axis], anchor[axis]
            reach = max(a, k - 1 - a)
        if reach and reach >= image.shape[axis]:
            single[axis] = -1  # the whole axis in one block: no overlap needed
            reach = 0
        depth[axis] = reach
        boundary[axis] = boundary_of if reach else "none"
    x = image.rechunk(single) if single else image
    if mode == "constant" and cval != 0.0 and x.dtype.kind in "iu":
        x = x.astype(work)  # dask extends the blocks with cval in the image's own type

    def block(values: np.ndarray) -> np.ndarray:
        result = filter_numpy(
            values, kernel, anchor, mode, cval, method, terms, work, implementation=implementation
        )
        return round_to(result, out_dtype, nan=values.dtype.kind == "f")

    meta = np.empty((0,) * x.ndim, dtype=out_dtype)
    uneven = [axis for axis in range(kernel.ndim) if depth[axis] and kernel.shape[axis] % 2 == 0]
    if not uneven:
        return x.map_overlap(block, depth=depth, boundary=boundary, dtype=out_dtype, meta=meta)

    import dask.array as da

    widths = [
        (anchor[axis], kernel.shape[axis] - 1 - anchor[axis]) if depth.get(axis) else (0, 0)
        for axis in range(x.ndim)
    ]
    options = {"constant_values": cval} if mode == "constant" else {}
    padded = da.pad(x, widths, mode=TABLE[mode].numpy, **options)
    out = padded.map_overlap(
        block,
        depth={axis: widths[axis] for axis in range(x.ndim)},
        boundary="none",
        dtype=out_dtype,
        meta=meta,
    )
    out = out[tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))]
    return out.rechunk(x.chunks)
