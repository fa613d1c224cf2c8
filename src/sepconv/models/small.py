"""Small twin networks for 28x28 digits: depthwise separable against full convolutions.

:data:`SMALL_NET_TABLE` is MobileNet in miniature: a full 3x3 convolution with stride 2, then
three 3x3 layers that are depthwise separable blocks in ``mnist_separable`` and full
convolutions in ``mnist_conv``; global average pooling and a linear classifier end both. The
twins have the same layers, channels and output sizes, so they differ only in how each 3x3
layer is computed. ``sepconv train`` trains both and compares them.

Examples
--------
>>> from sepconv import profile
>>> from sepconv.models import mnist_separable, mnist_conv
>>> sep = profile(mnist_separable(), (1, 1, 28, 28)).total_mult_adds
>>> full = profile(mnist_conv(), (1, 1, 28, 28)).total_mult_adds
>>> sep, full, round(full / sep, 2)
(1804480, 14508416, 8.04)
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from .._checks import SepconvTypeError, SepconvValueError, check_float, check_positive_int
from ._registry import register
from .mobilenet import ConvNormAct, SeparableBlock

__all__ = ["SMALL_NET_TABLE", "SmallNet", "mnist_separable", "mnist_conv"]

#: (type, stride, filters) per layer; input sizes for 28x28 digits.
SMALL_NET_TABLE: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),  # 28x28x1 -> 14x14x32, a full convolution in both twins
    ("block", 1, 64),  # 14x14x32 -> 14x14x64
    ("block", 2, 128),  # 14x14x64 -> 7x7x128
    ("block", 1, 128),  # 7x7x128 -> 7x7x128
    # then: global average pooling, fully connected 128 -> 10
)


def _batch_norm(num_features: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(num_features)


class SmallNet(nn.Module):
    """The small twin network of :data:`SMALL_NET_TABLE`.

    Input ``(N, in_channels, H, W)``, output logits ``(N, num_classes)``. Children ``stem``,
    ``blocks``, ``pool``, ``flatten``, ``classifier``. Build it with :func:`mnist_separable` or
    :func:`mnist_conv`.
    """

    def __init__(
        self,
        *,
        separable: bool = True,
        width_multiplier: float = 1.0,
        in_channels: int = 1,
        num_classes: int = 10,
        resolution: int = 28,
    ) -> None:
        super().__init__()
        if not isinstance(separable, bool):
            raise SepconvTypeError(f"`separable` must be True or False, got {separable!r}")
        alpha = check_float("width_multiplier", width_multiplier)
        if int(min(f for _, _, f in SMALL_NET_TABLE) * alpha) < 1:
            raise SepconvValueError(
                f"`width_multiplier` must leave every layer at least one channel, "
                f"got {width_multiplier!r}"
            )
        in_channels = check_positive_int("in_channels", in_channels)
        num_classes = check_positive_int("num_classes", num_classes)
        resolution = check_positive_int("resolution", resolution)
        self.separable = separable
        self.width_multiplier = alpha
        self.default_input_size = (in_channels, resolution, resolution)
        # PyTorch's batch-norm defaults: the short training runs here need fast statistics.
        layer = functools.partial(ConvNormAct, norm_layer=_batch_norm)
        block = functools.partial(SeparableBlock, norm_layer=_batch_norm)
        _, stride, filters = SMALL_NET_TABLE[0]
        channels = int(filters * alpha)
        self.stem = layer(in_channels, channels, 3, stride)
        blocks = []
        for _, stride, filters in SMALL_NET_TABLE[1:]:
            out = int(filters * alpha)
            blocks.append(
                block(channels, out, stride) if separable else layer(channels, out, 3, stride)
            )
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(self.flatten(self.pool(x)))


@register("mnist_separable")
def mnist_separable(**kwargs: Any) -> SmallNet:
    """The depthwise separable twin of :data:`SMALL_NET_TABLE` (28x28x1 input, 10 classes).

    Keyword arguments: ``width_multiplier``, ``in_channels``, ``num_classes``, ``resolution``.

    Examples
    --------
    >>> import torch
    >>> mnist_separable()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    return SmallNet(separable=True, **kwargs)


@register("mnist_conv")
def mnist_conv(**kwargs: Any) -> SmallNet:
    """The full-convolution twin of :func:`mnist_separable`: same layers, full 3x3 kernels.

    Examples
    --------
    >>> import torch
    >>> mnist_conv()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    return SmallNet(separable=False, **kwargs)
