"""Depthwise decoupling followed by spatial factorization: ``method='depthwise+spatial'``.

Guo et al., "Network Decoupling: From Regular to Depthwise Separable Convolutions" (BMVC 2018),
write a trained convolution as a sum of depthwise separable blocks (the per-input-channel SVD
of :func:`sepconv.convert.depthwise_factors`) and report combining the decoupling with further
decompositions on VGG-16; here the further one is the spatial factorization of Jaderberg,
Vedaldi & Zisserman (BMVC 2014) applied to every depthwise ``kh x kw`` kernel,
``D = sum_s u_s v_s^T`` (its own SVD, at most ``min(kh, kw)`` terms).

For one input channel ``c`` the weight slice becomes ``W[:, c] = sum_{m,s} p_m (x) u_{m,s}
v_{m,s}^T`` with terms that are mutually orthogonal in the Frobenius inner product (the ``p_m``
are orthogonal across ``m``; for one ``m`` the ``u_s v_s^T`` are), so keeping the ``r`` terms of
largest norm per channel is the best choice among them, and the error is the root of the
discarded squared norms. ``r`` runs from 1 to ``min(C_out, kh*kw) * min(kh, kw)``, which is
exact. The layer: a ``kh x 1`` convolution with ``groups=C_in`` (``C_in -> C_in*r``), a ``1 x kw``
depthwise convolution on those ``C_in*r`` channels, and a pointwise ``C_in*r -> C_out`` with
the original bias. Per output position it costs ``C_in*r*(kh + kw + C_out)`` mult-adds against
``C_in*C_out*kh*kw``; depthwise decoupling alone at multiplier ``M`` costs
``C_in*M*(kh*kw + C_out)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .. import cost as _cost
from .._checks import SepconvValueError
from ..factor import lowrank
from ..nn import SeparableConv2d, SpatiallySeparableConv2d

METHOD = "depthwise+spatial"


def _terms(array: np.ndarray) -> list[list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]]:
    """Per input channel, ``(norm, pointwise column, u, v)`` of every term, largest first."""
    c_out, c_in, kh, kw = array.shape
    per_channel = []
    for c in range(c_in):
        matrix = array[:, c].reshape(c_out, kh * kw)
        terms = []
        for left, right in lowrank(matrix, rank=min(matrix.shape)).terms:
            kernel = lowrank(right.reshape(kh, kw), rank=min(kh, kw))
            for u, v in kernel.terms:
                norm = float(np.linalg.norm(left) * np.linalg.norm(u) * np.linalg.norm(v))
                terms.append((norm, left, u, v))
        terms.sort(key=lambda t: -t[0])
        per_channel.append(terms)
    return per_channel


def combined_limit(shape: tuple[int, ...]) -> int:
    """Exact rank ``min(C_out, kh*kw) * min(kh, kw)`` for a weight of shape ``shape``."""
    c_out, _, kh, kw = shape
    return min(c_out, kh * kw) * min(kh, kw)


def combined_spectra(array: np.ndarray) -> list[np.ndarray]:
    """Per input channel, the norms of the terms, largest first (the 'singular values')."""
    return [np.array([t[0] for t in terms]) for terms in _terms(array)]


def combined_factors(
    array: np.ndarray,
    rank: int | None,
    rtol: float | None,
    pick_rank: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Column ``(C_in*r, 1, kh, 1)``, row ``(C_in*r, 1, 1, kw)`` and pointwise weights.

    See :func:`sepconv.convert.depthwise_spatial_factors` for the public entry point.
    """
    if array.ndim != 4:
        raise SepconvValueError(
            f"`weight` must have shape (C_out, C_in, kh, kw) for method {METHOD!r}, got shape "
            f"{array.shape}"
        )
    c_out, c_in, kh, kw = array.shape
    limit = combined_limit(array.shape)
    if rank is not None and rank > limit:
        raise SepconvValueError(
            f"`rank` must be at most min(C_out, kh*kw) * min(kh, kw) = {limit} for a weight of "
            f"shape {array.shape}, got {rank}"
        )
    per_channel = _terms(array)
    norm = float(np.linalg.norm(array))
    if rank is None:
        rank = pick_rank(
            [np.array([t[0] for t in terms]) for terms in per_channel], limit, rtol, norm
        )
    column = np.zeros((c_in * rank, 1, kh, 1))
    row = np.zeros((c_in * rank, 1, 1, kw))
    pointwise = np.zeros((c_out, c_in * rank, 1, 1))
    approx = np.zeros_like(array)
    for c, terms in enumerate(per_channel):
        for j, (_, left, u, v) in enumerate(terms[:rank]):
            column[c * rank + j, 0, :, 0] = u
            row[c * rank + j, 0, 0, :] = v
            pointwise[:, c * rank + j, 0, 0] = left
            approx[:, c] += left[:, None, None] * np.outer(u, v)[None]
    error = float(np.linalg.norm(array - approx))
    return column, row, pointwise, (error / norm if norm else 0.0)


class SpatialDepthwise2d(nn.Module):
    """Depthwise step of :class:`DepthwiseSpatialConv2d`: ``kh x 1`` (groups ``C_in``), ``1 x kw``.

    ``column`` maps ``C_in`` channels to ``C_in*r`` (``r`` vertical filters per channel),
    ``row`` filters each of them with its own horizontal filter. Each pass takes its axis's
    stride, dilation and padding (:func:`sepconv.padding.spatial_passes`), so the output has
    the shape of a ``kh x kw`` depthwise convolution with multiplier ``r``.
    """

    def __init__(
        self,
        in_channels: int,
        rank: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        padding_mode: str,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__()
        mid = in_channels * rank
        common = {
            "kernel_size": kernel_size,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "bias": False,
            "padding_mode": padding_mode,
            "device": device,
            "dtype": dtype,
        }
        first = SpatiallySeparableConv2d(
            in_channels, mid, intermediate_channels=mid, groups=in_channels, **common
        )
        second = SpatiallySeparableConv2d(mid, mid, groups=mid, **common)
        self.column, self.row = first.column, second.row
        self.in_channels, self.rank = in_channels, rank
        for name in (
            "kernel_size",
            "stride",
            "padding",
            "keras_padding",
            "dilation",
            "padding_mode",
        ):
            setattr(self, name, getattr(first, name))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.row(self.column(input))

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost of the two passes (:func:`sepconv.cost.conv`) for ``(N, C, H, W)``."""
        from ..padding import resolve_padding, spatial_passes

        batch, channels, *spatial = input_shape
        pads = resolve_padding(
            tuple(spatial),
            self.kernel_size,
            stride=self.stride,
            dilation=self.dilation,
            padding=self.keras_padding,
        )
        passes = spatial_passes(self.kernel_size, self.stride, self.dilation, pads)
        mid = channels * self.rank
        first = _cost.conv(
            (*spatial, channels),
            passes[0].kernel_size,
            mid,
            stride=passes[0].stride,
            padding=passes[0].padding,
            dilation=passes[0].dilation,
            groups=channels,
            bias=False,
            batch=batch,
        )
        second = _cost.conv(
            first.output_shape,
            passes[1].kernel_size,
            mid,
            stride=passes[1].stride,
            padding=passes[1].padding,
            dilation=passes[1].dilation,
            groups=mid,
            bias=False,
            batch=batch,
        )
        return _cost._chain(
            f"depthwise {self.kernel_size[0]}x1 + 1x{self.kernel_size[1]}, "
            f"{channels} channels x{self.rank}",
            first,
            second,
        )


class DepthwiseSpatialConv2d(SeparableConv2d):
    """Depthwise separable layer whose depthwise kernels are spatially separable.

    ``depthwise`` is a :class:`SpatialDepthwise2d` (``kh x 1`` then ``1 x kw``), then a
    pointwise ``C_in*r -> C_out``; ``depth_multiplier`` is ``r``, the terms per input channel.
    Cost: the three convolutions, counted by :func:`sepconv.cost.conv`. Made by
    :func:`sepconv.convert.to_separable` with ``method='depthwise+spatial'``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sepconv.convert import to_separable
    >>> conv = nn.Conv2d(8, 16, 3, padding=1)
    >>> layer, error = to_separable(conv, "depthwise+spatial", rank=1)
    >>> type(layer).__name__, layer.depth_multiplier
    ('DepthwiseSpatialConv2d', 1)
    >>> cost = layer.cost((1, 8, 10, 10))  # 8 * (3 + 3 + 16) per output pixel
    >>> cost.multiplications, [p.multiplications for p in cost.parts[0].parts]
    (17600, [2400, 2400])
    >>> layer(torch.randn(1, 8, 10, 10)).shape
    torch.Size([1, 16, 10, 10])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        rank: int,
        bias: bool,
        padding_mode: str,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            depth_multiplier=rank,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self.depthwise = SpatialDepthwise2d(
            in_channels, rank, kernel_size, stride, padding, dilation, padding_mode, device, dtype
        )

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost for a torch shape ``(N, C, H, W)`` (or ``(C, H, W)``)."""
        shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
        dw = self.depthwise.cost(shape)
        pw = _cost.pointwise(
            dw.output_shape, self.out_channels, bias=self.pointwise.bias is not None, batch=shape[0]
        )
        return _cost._chain(f"decoupled {dw.operation}, {self.out_channels} filters", dw, pw)


def make_layer(conv: nn.Module, rank: int, padding: Any) -> DepthwiseSpatialConv2d:
    """The layer replacing ``conv`` with ``rank`` terms per input channel, weights unset."""
    return DepthwiseSpatialConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        padding,
        conv.dilation,
        rank,
        conv.bias is not None,
        conv.padding_mode,
        conv.weight.device,
        conv.weight.dtype,
    )


def fill(
    layer: nn.Module, conv: nn.Module, column: np.ndarray, row: np.ndarray, pointwise: np.ndarray
) -> None:
    """Copy the factors (and ``conv``'s bias) into ``layer``."""
    with torch.no_grad():
        layer.depthwise.column.weight.copy_(torch.from_numpy(column))
        layer.depthwise.row.weight.copy_(torch.from_numpy(row))
        layer.pointwise.weight.copy_(torch.from_numpy(pointwise))
        if conv.bias is not None:
            layer.pointwise.bias.copy_(conv.bias)
