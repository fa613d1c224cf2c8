"""torch engine: ``(N, C, *spatial)`` tensors, any device, differentiable in the image.

A 1-D pass of ``k`` taps along one axis is computed as matrix products with a small banded
(Toeplitz) matrix: the axis is cut into blocks of ``B`` outputs, each block reads ``B + k - 1``
inputs, and ``out_block = band @ window`` with ``band`` of shape ``(B, B + k - 1)``. This runs
on the BLAS matrix product, which is fast on every device, instead of a single-channel
convolution (``F.conv2d`` with one input channel is slow on CPU: two 1-D ``conv2d`` passes
measured slower than one 2-D ``conv2d`` with the full kernel). The image is padded once, with
the SciPy extension of ``mode`` (see :mod:`._modes`), so every pass is a 'valid' correlation.
``'direct'`` runs ``F.conv2d``/``conv3d``/``conv1d`` on the padded image.

On CPU, tensors go through the NumPy engine instead (the native kernel, or OpenCV's
vectorised 1-D passes where it is not built), inside a
``torch.autograd.Function`` whose backward pass is the adjoint filter (a correlation with the
flipped kernel, folded back along the border extension), also run by the NumPy engine
(``use_implementation(torch_cpu='matmul')`` runs the device code on CPU instead; the NumPy
engine's 1-D passes measured 10x faster than the matrix products on a 2-core CPU).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._modes import extension_indices

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["filter_torch", "band_matrix"]

_BLOCK = 16  # outputs per block of a pass (16 measured fastest of 16/24/32/48 for k = 9)


def band_matrix(factor: torch.Tensor, block: int) -> torch.Tensor:
    """The ``(block, block + k - 1)`` matrix whose row ``i`` holds ``factor`` at column ``i``.

    ``band @ window`` is the valid correlation of a window of ``block + k - 1`` samples with
    ``factor``.
    """
    import torch

    k = factor.shape[-1]
    band = factor.new_zeros((block, block + k - 1))
    rows = torch.arange(block, device=factor.device)[:, None]
    cols = rows + torch.arange(k, device=factor.device)[None, :]
    band[rows.expand(block, k), cols] = factor.expand(block, k)
    return band


def _pad(
    x: torch.Tensor, widths: list[tuple[int, int]], mode: str, cval: float, extra: list[int]
) -> torch.Tensor:
    """Extend the spatial axes of ``x`` (N, C, *spatial) as SciPy does, plus ``extra`` samples
    after each axis whose values are never used (room for whole blocks)."""
    import torch
    import torch.nn.functional as F

    nd = len(widths)
    if mode == "constant":
        pads: list[int] = []
        for (before, after), more in zip(reversed(widths), reversed(extra)):
            pads += [before, after + more]
        return F.pad(x, pads, value=cval)
    for axis in range(nd):
        dim = 2 + axis
        n = x.shape[dim]
        before, after = widths[axis]
        more = extra[axis]
        if before == 0 and after == 0 and more == 0:
            continue
        head = tail = None
        if mode == "reflect" and before <= n and after <= n:
            head = x.narrow(dim, 0, before).flip(dim)
            tail = x.narrow(dim, n - after, after).flip(dim)
        elif mode == "mirror" and before <= n - 1 and after <= n - 1:
            head = x.narrow(dim, 1, before).flip(dim)
            tail = x.narrow(dim, n - 1 - after, after).flip(dim)
        elif mode == "wrap" and before <= n and after <= n:
            head = x.narrow(dim, n - before, before)
            tail = x.narrow(dim, 0, after)
        elif mode == "nearest":
            shape = list(x.shape)
            shape[dim] = before
            head = x.narrow(dim, 0, 1).expand(shape)
            shape[dim] = after
            tail = x.narrow(dim, n - 1, 1).expand(shape)
        if head is None:
            idx = extension_indices(n, before, after, mode)
            if more:
                idx = np.concatenate([idx, np.zeros(more, dtype=idx.dtype)])
            x = x.index_select(dim, torch.from_numpy(idx).to(x.device))
            continue
        parts = [head, x, tail]
        if more:
            shape = list(x.shape)
            shape[dim] = more
            parts.append(x.new_zeros(shape))
        x = torch.cat(parts, dim)
    return x


def _pad_2d(
    x: torch.Tensor, widths: list[tuple[int, int]], mode: str, cval: float, extra: list[int]
) -> torch.Tensor:
    """:func:`_pad` for (N, C, H, W) with one allocation and one copy of the image."""
    import torch

    (top, bottom), (left, right) = widths
    batch, channels, height, width = x.shape
    rows = top + height + bottom
    cols = left + width + right
    out = x.new_empty((batch, channels, rows + extra[0], cols + extra[1]))
    if extra[0]:
        out[:, :, rows:].zero_()
    if extra[1]:
        out[:, :, :rows, cols:].zero_()
    out[:, :, top : top + height, left : left + width] = x
    if mode == "constant":
        out[:, :, :top, :cols] = cval
        out[:, :, top + height : rows, :cols] = cval
        out[:, :, top : top + height, :left] = cval
        out[:, :, top : top + height, left + width : cols] = cval
        return out
    idx = extension_indices(width, left, right, mode)
    if left:
        head = torch.from_numpy(idx[:left]).to(x.device)
        out[:, :, top : top + height, :left] = x.index_select(3, head)
    if right:
        tail = torch.from_numpy(idx[left + width :]).to(x.device)
        out[:, :, top : top + height, left + width : cols] = x.index_select(3, tail)
    idx = extension_indices(height, top, bottom, mode) + top
    if top:
        head = torch.from_numpy(idx[:top]).to(x.device)
        out[:, :, :top, :cols] = out[:, :, :, :cols].index_select(2, head)
    if bottom:
        tail = torch.from_numpy(idx[top + height :]).to(x.device)
        out[:, :, top + height : rows, :cols] = out[:, :, :, :cols].index_select(2, tail)
    return out


def _pass(x: torch.Tensor, factors: list[torch.Tensor], dim: int, n_out: int) -> list[torch.Tensor]:
    """Valid correlation of ``x`` along ``dim`` with each of ``factors`` (same length k).

    ``x`` has ``blocks * B + k - 1`` samples along ``dim``; returns tensors with ``n_out``
    samples there, one per factor.
    """
    import torch

    k = factors[0].shape[0]
    block = _BLOCK
    bands = torch.cat([band_matrix(f, block) for f in factors], 0)  # (r*B, B+k-1)
    last = dim == x.ndim - 1
    windows = x.unfold(dim, block + k - 1, block)  # (..., nb, [rest], B+k-1)
    if last:
        # (..., nb, B+k-1) @ (B+k-1, r*B) -> (..., nb, r*B)
        out = torch.matmul(windows, bands.t())
        out = out.unflatten(-1, (len(factors), block))  # (..., nb, r, B)
        results = []
        for t in range(len(factors)):
            y = out.select(-2, t).flatten(-2)
            results.append(y.narrow(-1, 0, n_out))
        return results
    # along a leading axis: the window axis is last; move it before the trailing axes
    windows = windows.movedim(-1, dim + 1)  # (..., nb, B+k-1, *rest)
    rest = windows.shape[dim + 2 :]
    flat = windows.flatten(dim + 2) if rest else windows
    out = torch.matmul(bands, flat)  # (..., nb, r*B, prod(rest))
    out = out.unflatten(dim + 1, (len(factors), block))  # (..., nb, r, B, prod(rest))
    results = []
    for t in range(len(factors)):
        y = out.select(dim + 1, t).flatten(dim, dim + 1)  # (..., nb*B, prod(rest))
        y = y.narrow(dim, 0, n_out)
        if rest:
            y = y.unflatten(-1, rest)
        results.append(y)
    return results


def _separable_2d(
    x: torch.Tensor,
    terms: list[tuple[torch.Tensor, torch.Tensor]],
    widths: list[tuple[int, int]],
    mode: str,
    cval: float,
) -> torch.Tensor:
    """Sum of separable terms on (N, C, H, W) with two banded matrix products per term.

    The batch and channel axes are moved next to the columns, so the column pass is one batch
    of ``(B, B + kh - 1) @ (B + kh - 1, N * C * W')`` products over row blocks and the row pass
    one batch of ``(rows, B + kw - 1) @ (B + kw - 1, B)`` products over column blocks, both on
    strided views of the padded image (no copies of the windows).
    """
    import torch

    batch, channels, height, width = x.shape
    m = batch * channels
    block = _BLOCK
    kh, kw = terms[0][0].shape[0], terms[0][1].shape[0]
    nbh = -(-height // block)
    nbw = -(-width // block)
    row_length = -(-(nbw * block + kw - 1) // block) * block  # a multiple of the block
    extra = [nbh * block - height, row_length - (width + kw - 1)]
    xp = _pad_2d(x, widths, mode, cval, extra)  # (N, C, nbh*B + kh - 1, row_length)
    padded_height = xp.shape[2]
    if m == 1:
        cols = xp.reshape(padded_height, row_length)
    else:
        cols = xp.reshape(m, padded_height, row_length).permute(1, 0, 2)
        cols = cols.reshape(padded_height, m * row_length)
    length = cols.shape[1]
    col_windows = cols.unfold(0, block + kh - 1, block).transpose(1, 2)  # (nbh, B+kh-1, L)
    total = None
    for col_factor, row_factor in terms:
        col_band = band_matrix(col_factor, block)
        y = torch.matmul(col_band, col_windows)  # (nbh, B, L)
        y = y.reshape(nbh * block, length)
        row_windows = y.unfold(1, block + kw - 1, block).permute(1, 0, 2)  # (nJ, R, B+kw-1)
        row_band = band_matrix(row_factor, block).t()
        z = torch.matmul(row_windows, row_band)  # (nJ, R, B)
        total = z if total is None else total + z
    blocks_per_row = row_length // block
    missing = m * blocks_per_row - total.shape[0]
    if missing:
        total = torch.cat([total, total.new_zeros((missing, *total.shape[1:]))], 0)
    out = total.reshape(m, blocks_per_row, nbh * block, block)[:, :nbw, :height]
    out = out.permute(0, 2, 1, 3).reshape(m, height, nbw * block)[:, :, :width]
    return out.reshape(batch, channels, height, width)


def _planes(
    array: np.ndarray,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray:
    """``fn(plane, out_plane)`` for every ``(n, c)`` plane of an ``(N, C, *spatial)`` array,
    into one new ``(N, C, *shape)`` array."""
    out = np.empty(array.shape[:2] + tuple(shape), dtype=dtype)
    for index in np.ndindex(*array.shape[:2]):
        view = out[index]
        result = fn(array[index], view)
        if result is not view:
            view[...] = result
    return out


def _adjoint(
    grad: np.ndarray,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    method: str,
    terms: tuple,
    work: np.dtype,
    implementation: str,
) -> np.ndarray:
    """Gradient with respect to the image of ``filter_numpy`` (one plane), given ``grad``.

    The filter is a 'valid' correlation of the extended image; its adjoint is a 'full'
    convolution of ``grad`` (a correlation with the flipped kernel over ``grad`` padded with
    zeros), folded back onto the image along the extension indices of ``mode``.
    """
    from ._numpy import filter_numpy

    nd = kernel.ndim
    flip = (slice(None, None, -1),) * nd
    flipped = kernel[flip].copy()
    flipped_terms = tuple(tuple(f[::-1].copy() for f in term) for term in terms)
    padded = np.pad(grad, [(k - 1, k - 1) for k in kernel.shape])
    full = filter_numpy(
        padded,
        flipped,
        (0,) * nd,
        "constant",
        0.0,
        method,
        flipped_terms,
        work,
        implementation=implementation,
    )
    out = full[tuple(slice(0, n + k - 1) for n, k in zip(grad.shape, kernel.shape))]
    for axis in range(nd):
        n, k, a = grad.shape[axis], kernel.shape[axis], anchor[axis]
        moved = np.moveaxis(out, axis, 0)
        folded = moved[a : a + n].copy()
        idx = extension_indices(n, a, k - 1 - a, mode)
        border = np.ones(idx.shape, bool)
        border[a : a + n] = False
        border &= idx >= 0
        if border.any():
            np.add.at(folded, idx[border], moved[border])
        out = np.moveaxis(folded, 0, axis)
    return np.ascontiguousarray(out)


@functools.lru_cache(maxsize=1)
def _opencv_function() -> type[torch.autograd.Function]:
    """``torch.autograd.Function`` running the NumPy (OpenCV) engine on CPU tensors."""
    import torch

    class OpenCVFilter(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any,
            x: torch.Tensor,
            kernel: np.ndarray,
            anchor: tuple[int, ...],
            mode: str,
            cval: float,
            method: str,
            terms: tuple,
            implementation: str,
        ) -> torch.Tensor:
            from ._numpy import filter_numpy

            array = x.detach().contiguous().numpy()
            work = array.dtype
            ctx.settings = (kernel, anchor, mode, method, terms, work, implementation)
            out = _planes(
                array,
                lambda plane, dst: filter_numpy(
                    plane,
                    kernel,
                    anchor,
                    mode,
                    cval,
                    method,
                    terms,
                    work,
                    dst,
                    implementation=implementation,
                ),
                array.shape[2:],
                work,
            )
            return torch.from_numpy(out)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            kernel, anchor, mode, method, terms, work, implementation = ctx.settings
            array = grad.detach().contiguous().numpy().astype(work, copy=False)
            out = _planes(
                array,
                lambda plane, dst: _adjoint(
                    plane, kernel, anchor, mode, method, terms, work, implementation
                ),
                array.shape[2:],
                work,
            )
            return torch.from_numpy(out), None, None, None, None, None, None, None

    return OpenCVFilter


def filter_torch(
    image: torch.Tensor,
    kernel: np.ndarray,
    anchor: tuple[int, ...],
    mode: str,
    cval: float,
    method: str,
    terms: tuple,
    out_dtype: str,
    implementation: str,
) -> torch.Tensor:
    """Filter a ``(N, C, *spatial)`` tensor; returns a new tensor of dtype ``out_dtype``.

    CPU tensors run the NumPy engine with the plan's ``implementation`` unless it names the
    device code (``'torch ...'``, see :func:`sepconv.filtering.use_implementation`)."""
    import torch
    import torch.nn.functional as F

    nd = kernel.ndim
    work = (
        torch.float64
        if torch.float64 in (image.dtype, getattr(torch, out_dtype))
        else torch.float32
    )
    x = image.to(work)
    spatial = tuple(x.shape[2:])
    widths = [(a, k - 1 - a) for k, a in zip(kernel.shape, anchor)]
    batch, channels = x.shape[:2]

    if x.device.type == "cpu" and not implementation.startswith("torch"):
        out = _opencv_function().apply(x, kernel, anchor, mode, cval, method, terms, implementation)
    elif image.dtype.is_floating_point and not bool(torch.isfinite(x).all()):
        # NaN or infinities: SciPy's values and NaN positions (see ._nonfinite)
        from ._nonfinite import set_nonfinite_torch

        x0 = torch.where(torch.isfinite(x), x, x.new_zeros(()))
        out = filter_torch(
            x0, kernel, anchor, mode, cval, method, terms, str(work)[6:], implementation
        )

        def correlate(masks: torch.Tensor, footprint: np.ndarray) -> torch.Tensor:
            return filter_torch(
                masks, footprint, anchor, mode, 0.0, "direct", (), str(work)[6:], "torch F.conv"
            )

        out = set_nonfinite_torch(out, x, kernel, correlate)
    elif method in ("direct", "fft"):
        xp = _pad(x, widths, mode, cval, [0] * nd)
        weight = torch.as_tensor(np.array(kernel), dtype=work, device=x.device)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(nd)
        if conv is None:
            raise NotImplementedError(f"the torch engine filters 1-D to 3-D images, got {nd}-D")
        xp = xp.reshape(batch * channels, 1, *xp.shape[2:])
        out = conv(xp, weight[None, None])
        out = out.reshape(batch, channels, *spatial)
    elif nd == 2:
        pairs = [
            tuple(torch.as_tensor(np.array(f), dtype=work, device=x.device) for f in term)
            for term in terms
        ]
        out = _separable_2d(x, pairs, widths, mode, cval)
    else:
        blocks = [-(-n // _BLOCK) for n in spatial]
        extra = [b * _BLOCK - n for b, n in zip(blocks, spatial)]
        xp = _pad(x, widths, mode, cval, extra)
        xp = xp.reshape(batch * channels, *xp.shape[2:])
        out = None
        factors = [
            [torch.as_tensor(np.array(term[axis]), dtype=work, device=x.device) for term in terms]
            for axis in range(nd)
        ]
        # The first pass (the first spatial axis) runs every term in one matrix product.
        current = _pass(xp, factors[0], 1, spatial[0])
        for t in range(len(terms)):
            y = current[t]
            for axis in range(1, nd):
                y = _pass(y, [factors[axis][t]], 1 + axis, spatial[axis])[0]
            out = y if out is None else out + y
        out = out.reshape(batch, channels, *spatial)
    dtype = getattr(torch, out_dtype)
    if not dtype.is_floating_point:  # half to even, saturated; NaN (float images) becomes 0
        info = torch.iinfo(dtype)
        if image.dtype.is_floating_point:
            out = out.nan_to_num(0.0)
        out = out.round().clamp(info.min, info.max)
    return out.to(dtype)
