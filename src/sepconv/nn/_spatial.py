"""The spatially separable layer: a ``kh x 1`` pass and a ``1 x kw`` pass (:mod:`sepconv.nn`).

Each pass is a real ``nn.Conv2d`` with Keras padding (:class:`sepconv.nn.modules.KerasPaddingConv`),
so FLOP counters, ONNX export and model surgery see two standard convolutions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .. import cost as _cost
from .._checks import SepconvValueError, check_choice, check_positive_int
from ..padding import ConvPadding, IntOrInts, PaddingLike, conv_padding, spatial_passes
from . import _autotune
from . import _execution as ex
from .modules import KerasPaddingConv, _input_shape

__all__ = ["SpatiallySeparableConv2d"]


class _PassConv2d(KerasPaddingConv, nn.Conv2d):
    """One 1-D pass (``kh x 1`` or ``1 x kw``) of a spatially separable convolution."""

    _n = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        policy: ConvPadding,
        groups: int,
        bias: bool,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            policy.kernel_size,  # type: ignore
            policy.stride,
            0,
            policy.dilation,
            groups=groups,
            bias=bias,
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )
        self._use_padding(policy)


class SpatiallySeparableConv2d(nn.Module):
    """Spatially separable 2-D convolution: ``kh x 1`` then ``1 x kw`` (or the other order).

    The factorization of Inception-v3 (Szegedy et al. 2016, ``n x 1`` followed by ``1 x n``)
    and of Jaderberg et al. 2014 (vertical then horizontal filters through
    ``intermediate_channels`` channels). Each pass takes the stride, dilation and padding of
    its own axis, so the output has the shape of the ``kh x kw`` convolution. Cost:
    :func:`sepconv.cost.spatially_separable`.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of 2 ints
        ``(kh, kw)`` of the equivalent full kernel.
    stride, padding, dilation
        Of the equivalent ``kh x kw`` convolution; ``'same'`` is Keras-exact.
    intermediate_channels : int, optional
        Channels between the passes (default ``in_channels``).
    order : {'column_first', 'row_first'}
    groups : int
        Groups of both passes; must divide the three channel counts.
    bias : bool
        Bias of the second pass.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
    device, dtype
        Of the parameters.

    Examples
    --------
    >>> import torch
    >>> from sepconv.nn import SpatiallySeparableConv2d
    >>> layer = SpatiallySeparableConv2d(3, 256, 5, bias=False)
    >>> [name for name, _ in layer.named_children()]
    ['column', 'row']
    >>> layer(torch.randn(1, 3, 12, 12)).shape
    torch.Size([1, 256, 8, 8])
    >>> [p.multiplications for p in layer.cost((1, 3, 12, 12)).parts]
    [4320, 245760]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrInts,
        stride: IntOrInts = 1,
        padding: PaddingLike = "valid",
        dilation: IntOrInts = 1,
        intermediate_channels: int | None = None,
        order: str = "column_first",
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        mid = (
            in_channels
            if intermediate_channels is None
            else check_positive_int("intermediate_channels", intermediate_channels)
        )
        groups = check_positive_int("groups", groups)
        order = check_choice("order", order, ("column_first", "row_first"))
        whole = conv_padding(kernel_size, stride, padding, dilation, padding_mode, n=2)
        for name, value in (
            ("in_channels", in_channels),
            ("intermediate_channels", mid),
            ("out_channels", out_channels),
        ):
            if value % groups:
                raise SepconvValueError(f"`groups` ({groups}) must divide `{name}` ({value})")
        channels = ((in_channels, mid, False), (mid, out_channels, bool(bias)))
        for p, (cin, cout, has_bias) in zip(
            spatial_passes(whole.kernel_size, whole.stride, whole.dilation, whole.spec, order),
            channels,
        ):
            policy = ConvPadding(p.kernel_size, p.stride, p.dilation, p.padding, whole.mode)
            self.add_module(p.name, _PassConv2d(cin, cout, policy, groups, has_bias, device, dtype))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.intermediate_channels = mid
        self.kernel_size = whole.kernel_size
        self.stride = whole.stride
        self.padding = whole.attribute
        self.keras_padding = whole.spec
        self.dilation = whole.dilation
        self.groups = groups
        self.order = order
        self.padding_mode = whole.mode

    def __getstate__(self) -> dict:
        """Pickle without the per-call caches (``sepconv.nn._autotune.CACHES``)."""
        return _autotune.without_caches(super().__getstate__())

    def forward(self, input: Tensor) -> Tensor:
        """The two passes, output in the caller's memory format; on the CPU in the memory
        format timed fastest for this input (:mod:`sepconv.nn._autotune`)."""
        if ex.on_device(input, 2, self.in_channels):  # a batched GPU input: no route to time
            return self._forward(input)
        return _autotune.tuned_call(self, input, self._forward, False)

    def _forward(self, input: Tensor) -> Tensor:
        modules = self._modules
        first, second = (
            (modules["column"], modules["row"])
            if self.order == "column_first"
            else (modules["row"], modules["column"])
        )
        run, x, fast, unbatched = ex.begin(
            input, 2, self.in_channels, getattr(first, "weight", None)
        )
        for step in (first, second):  # a pass replaced by a plain module: called without fast
            run = step(run, fast=fast) if isinstance(step, _PassConv2d) else step(run)
        return ex.end(run, x, 2, fast, unbatched)

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost (:func:`sepconv.cost.spatially_separable`) for ``(N, C, H, W)``."""
        shape, batch = _input_shape(input_shape, 2, self.in_channels)
        second = self.row if self.order == "column_first" else self.column
        return _cost.spatially_separable(
            shape,
            self.kernel_size,
            self.out_channels,
            intermediate_channels=self.intermediate_channels,
            order=self.order,
            stride=self.stride,
            padding=self.keras_padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=second.bias is not None,
            batch=batch,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, "
            f"intermediate_channels={self.intermediate_channels}, order={self.order!r}"
        )
