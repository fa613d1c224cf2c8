"""MobileNetV1 (Howard et al., 2017) built from :mod:`sepconv.nn` layers.

The architecture is :data:`MOBILENET_V1_TABLE`, Table 1 of the paper written out row by row. The
last depthwise layer runs at 7x7 with stride 1: the paper prints "s2" there, a misprint (its own
7x7 output size and its 569M mult-adds need stride 1, and Keras's ``MobileNet`` uses 1).

Padding is TensorFlow/Keras-exact ``'same'`` everywhere, so a stride-2 layer on an even input
pads one row and one column at the bottom/right only, exactly as Keras's ``MobileNet`` (which
writes it as ``ZeroPadding2D(((0, 1), (0, 1)))`` then ``'valid'``). Batch normalization uses
Keras's ``epsilon=1e-3``, so weights carry over from Keras unchanged.

References
----------
A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861, 2017.

Examples
--------
>>> import torch
>>> from sepconv.models import mobilenet_v1
>>> net = mobilenet_v1(width_multiplier=0.25, resolution=128, num_classes=10).eval()
>>> net(torch.zeros(2, 3, 128, 128)).shape
torch.Size([2, 10])
>>> from sepconv import profile
>>> p = profile(mobilenet_v1(), (1, 3, 224, 224))
>>> p.total_mult_adds, p.total_parameters
(568740352, 4231976)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import cost as _cost
from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_float,
    check_positive_int,
    describe,
)
from ..nn import SeparableConv2d, _autotune
from ..nn.modules import KerasPaddingConv
from ..padding import conv_padding
from ._registry import register

__all__ = [
    "MOBILENET_V1_TABLE",
    "Conv2dSame",
    "MobileNetV1",
    "ConvNormAct",
    "SeparableBlock",
    "mobilenet_v1",
    "mobilenet_v1_conv",
]

#: Table 1 of the paper, one row per layer: (type, stride, filters). ``'conv'`` is a full 3x3
#: convolution, ``'conv dw'`` a 3x3 depthwise convolution (filters: the channels it keeps),
#: ``'conv pw'`` a 1x1 convolution. Every layer is followed by batch normalization and ReLU.
#: Input sizes are those of the 224x224 model.
MOBILENET_V1_TABLE: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),  # 224x224x3
    ("conv dw", 1, 32),  # 112x112x32
    ("conv pw", 1, 64),  # 112x112x32
    ("conv dw", 2, 64),  # 112x112x64
    ("conv pw", 1, 128),  # 56x56x64
    ("conv dw", 1, 128),  # 56x56x128
    ("conv pw", 1, 128),  # 56x56x128
    ("conv dw", 2, 128),  # 56x56x128
    ("conv pw", 1, 256),  # 28x28x128
    ("conv dw", 1, 256),  # 28x28x256
    ("conv pw", 1, 256),  # 28x28x256
    ("conv dw", 2, 256),  # 28x28x256
    ("conv pw", 1, 512),  # 14x14x256
    ("conv dw", 1, 512),  # 14x14x512  } five times
    ("conv pw", 1, 512),  # 14x14x512  }
    ("conv dw", 1, 512),
    ("conv pw", 1, 512),
    ("conv dw", 1, 512),
    ("conv pw", 1, 512),
    ("conv dw", 1, 512),
    ("conv pw", 1, 512),
    ("conv dw", 1, 512),
    ("conv pw", 1, 512),
    ("conv dw", 2, 512),  # 14x14x512
    ("conv pw", 1, 1024),  # 7x7x512
    ("conv dw", 1, 1024),  # 7x7x1024 (printed "s2" in the paper: a misprint)
    ("conv pw", 1, 1024),  # 7x7x1024
    # then: average pool 7x7 -> 1x1x1024, fully connected 1024 -> 1000, softmax
)


def _keras_batch_norm(num_features: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(num_features, eps=1e-3)


class Conv2dSame(KerasPaddingConv, nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow/Keras-exact ``'same'`` padding for any stride.

    The output is ``ceil(H / stride) x ceil(W / stride)``. A :class:`sepconv.nn.modules.
    KerasPaddingConv` (as timm's ``Conv2dSame``: the padding is resolved when the layer is
    built): stride 1 pads inside the convolution; otherwise the input is zero-padded with the
    odd extra row/column at the bottom/right, as TensorFlow and Keras do, from the input size
    (also in an exported graph). The input stays in its memory format. ``padding`` and
    ``keras_padding`` are ``'same'``.

    Examples
    --------
    >>> import torch
    >>> conv = Conv2dSame(3, 8, 3, stride=2)
    >>> conv(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 8, 112, 112])
    >>> conv.cost((1, 3, 224, 224)).multiplications
    2709504
    """

    _n = 2
    _fast_path = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = True,
    ) -> None:
        policy = conv_padding(kernel_size, stride, "same", n=2)
        super().__init__(
            in_channels, out_channels, policy.kernel_size, policy.stride, padding=0, bias=bias
        )
        self._use_padding(policy)

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost for a torch input shape ``(N, C, H, W)``, via :func:`sepconv.cost.conv`."""
        n, c, h, w = input_shape
        return _cost.conv(
            (h, w, c),
            self.kernel_size,
            self.out_channels,
            stride=self.stride,
            padding="same",
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            batch=n,
        )


class ConvNormAct(nn.Sequential):
    """A full convolution with ``'same'`` padding, then normalization, then activation.

    Children ``conv`` (an ``nn.Conv2d``), ``norm`` and ``act``. Input ``(N, C_in, H, W)``,
    output ``(N, C_out, ceil(H / stride), ceil(W / stride))``.

    Examples
    --------
    >>> import torch
    >>> block = ConvNormAct(3, 8, 3, stride=2)
    >>> block(torch.zeros(1, 3, 9, 10)).shape
    torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        norm_layer = norm_layer or _keras_batch_norm
        activation = activation or nn.ReLU
        super().__init__()
        self.conv = Conv2dSame(in_channels, out_channels, kernel_size, stride, bias=False)
        self.norm = norm_layer(out_channels)
        self.act = activation()


class SeparableBlock(nn.Sequential):
    """MobileNet's depthwise separable block (Figure 3 of the paper, right).

    3x3 depthwise convolution, normalization, activation, 1x1 pointwise convolution,
    normalization, activation. Children: ``conv`` (a :class:`sepconv.nn.SeparableConv2d`, whose
    own children are ``depthwise``, ``norm``, ``act`` and ``pointwise``), then ``norm`` and
    ``act``.

    Examples
    --------
    >>> import torch
    >>> block = SeparableBlock(8, 16, stride=2)
    >>> block(torch.zeros(1, 8, 10, 10)).shape
    torch.Size([1, 16, 5, 5])
    >>> [name for name, _ in block.named_modules()][1:]
    ['conv', 'conv.depthwise', 'conv.norm', 'conv.act', 'conv.pointwise', 'norm', 'act']
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        norm_layer = norm_layer or _keras_batch_norm
        activation = activation or nn.ReLU
        super().__init__()
        self.conv = SeparableConv2d(
            in_channels,
            out_channels,
            3,
            stride=stride,
            padding="same",
            bias=False,
            norm_layer=norm_layer,
            activation=activation,
        )
        self.norm = norm_layer(out_channels)
        self.act = activation()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """The three children in turn; in inference on the CPU, where the separable layer's
        timed route is its fused kernel, one call of that kernel with the batch norm folded
        into the pointwise weights and the activation a clamp of the output
        (:func:`sepconv.nn._autotune.fused_with`)."""
        modules = self._modules
        y = _autotune.fused_with(modules["conv"], input, modules)
        if y is not None:
            return y
        for module in modules.values():
            input = module(input)
        return input


def _converts(x: torch.Tensor) -> bool:
    """Whether :class:`MobileNetV1` runs this input channels-last inside: a batched NCHW
    float CPU tensor, outside tracing, scripting, export and compilation (their graphs keep
    the caller's format)."""
    return (
        type(x) is torch.Tensor
        and x.dim() == 4
        and x.is_cpu
        and x.is_floating_point()
        and x.is_contiguous()
        and not x.is_contiguous(memory_format=torch.channels_last)
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


class MobileNetV1(nn.Module):
    """MobileNetV1: a full 3x3 convolution, 13 depthwise separable blocks, pooling, a classifier.

    Build it with :func:`mobilenet_v1`. Input ``(N, in_channels, H, W)``, output logits
    ``(N, num_classes)`` (no softmax). Children: ``stem`` (:class:`ConvNormAct`), ``blocks``
    (13 :class:`SeparableBlock`, or :class:`ConvNormAct` for the "Conv MobileNet"), ``pool``,
    ``flatten``, ``dropout``, ``classifier`` (``nn.Linear``).

    Attributes
    ----------
    width_multiplier : float
        The paper's alpha: every layer has ``int(filters * alpha)`` channels.
    resolution : int
        The input size the model is meant for (``default_input_size[1:]``); the network itself
        accepts any size.
    separable : bool
        False for the "Conv MobileNet" of the paper's Table 4.
    default_input_size : tuple of int
        ``(in_channels, resolution, resolution)``.
    num_features : int
        Channels entering the classifier, ``int(1024 * alpha)``.
    """

    def __init__(
        self,
        *,
        width_multiplier: float = 1.0,
        resolution: int = 224,
        num_classes: int = 1000,
        separable: bool = True,
        in_channels: int = 3,
        dropout: float = 1e-3,
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        alpha = check_float("width_multiplier", width_multiplier)
        if alpha <= 0:
            raise SepconvValueError(f"`width_multiplier` must be > 0, got {width_multiplier!r}")
        smallest = min(filters for _, _, filters in MOBILENET_V1_TABLE)
        if int(smallest * alpha) < 1:
            raise SepconvValueError(
                f"`width_multiplier` must leave every layer at least one channel "
                f"(>= {1 / smallest}), got {width_multiplier!r}"
            )
        resolution = check_positive_int("resolution", resolution)
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        dropout = check_float("dropout", dropout, minimum=0.0)
        if dropout >= 1:
            raise SepconvValueError(f"`dropout` must be in [0, 1), got {dropout!r}")
        if not isinstance(separable, bool):
            raise SepconvTypeError(f"`separable` must be True or False, got {describe(separable)}")
        for name, value in (("norm_layer", norm_layer), ("activation", activation)):
            if value is not None and not callable(value):
                raise SepconvTypeError(
                    f"`{name}` must be a callable that builds a module (e.g. "
                    f"{'nn.BatchNorm2d' if name == 'norm_layer' else 'nn.ReLU'}) or None, "
                    f"got {describe(value)}"
                )
        self.width_multiplier = alpha
        self.resolution = resolution
        self.separable = separable
        self.default_input_size = (in_channels, resolution, resolution)
        layer = functools.partial(ConvNormAct, norm_layer=norm_layer, activation=activation)
        block = functools.partial(SeparableBlock, norm_layer=norm_layer, activation=activation)

        _, stride, filters = MOBILENET_V1_TABLE[0]
        channels = int(filters * alpha)
        self.stem = layer(in_channels, channels, 3, stride)
        blocks = []
        rows = MOBILENET_V1_TABLE[1:]
        # Rows pair up: a depthwise layer (with the stride), then a pointwise one (the filters).
        for (_, stride, _), (_, _, filters) in zip(rows[::2], rows[1::2]):
            out = int(filters * alpha)
            if separable:
                blocks.append(block(channels, out, stride))
            else:
                blocks.append(layer(channels, out, 3, stride))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.num_features = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal (fan-out) convolution weights, unit/zero norms, N(0, 0.01) classifier.

        The fan-out is counted per group, as He et al. define it (the outputs one input
        reaches): a depthwise kernel's is its taps times its depth multiplier, where PyTorch's
        ``kaiming_normal_`` counts every output channel, which shrinks a fresh model's
        activations about tenfold a block in eval mode."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_out = module.out_channels // module.groups * kh * kw
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._NormBase) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling: ``(N, num_features, ceil(H/32), ceil(W/32))``, in
        ``x``'s memory format.

        On the CPU a batched NCHW input runs channels-last inside, converted once here (and the
        feature map back), instead of by each layer whose timed route is channels-last (which
        converts its input and its output back: two copies of every activation). Outputs
        agree with an NCHW run to rounding; ``benchmarks/mobilenet.py`` times the model."""
        if _converts(x):
            return self.blocks(
                self.stem(x.contiguous(memory_format=torch.channels_last))
            ).contiguous()
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _converts(x):  # pooled, the memory format no longer matters: not converted back
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.blocks(self.stem(x))
        return self.classifier(self.dropout(self.flatten(self.pool(x))))

    def extra_repr(self) -> str:
        return (
            f"width_multiplier={self.width_multiplier}, resolution={self.resolution}, "
            f"separable={self.separable}"
        )


@register("mobilenet_v1")
def mobilenet_v1(
    *,
    width_multiplier: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    separable: bool = True,
    in_channels: int = 3,
    dropout: float = 1e-3,
    norm_layer: Callable[[int], nn.Module] | None = None,
    activation: Callable[[], nn.Module] | None = None,
) -> MobileNetV1:
    """MobileNetV1 (Howard et al., 2017) with width multiplier alpha and resolution rho.

    Parameters
    ----------
    width_multiplier : float, default 1.0
        The paper's alpha: each layer has ``int(filters * alpha)`` channels (Keras's rounding;
        the paper's 1.0, 0.75, 0.5 and 0.25 give whole numbers everywhere).
    resolution : int, default 224
        The input size the model is meant for (the paper's 224, 192, 160, 128 for rho = 1,
        6/7, 5/7, 4/7). Recorded as ``default_input_size``, which :func:`sepconv.profile` and
        ``sepconv profile`` use; the network accepts any input size.
    num_classes : int, default 1000
        Outputs of the classifier (logits; apply softmax yourself).
    separable : bool, default True
        False builds the paper's "Conv MobileNet": each depthwise separable block becomes a
        full 3x3 convolution with batch normalization and ReLU.
    in_channels : int, default 3
    dropout : float, default 1e-3
        Dropout before the classifier (Keras's default).
    norm_layer : callable, optional
        Builds a normalization module from a channel count. Default: ``nn.BatchNorm2d`` with
        ``eps=1e-3`` (Keras's).
    activation : callable, optional
        Builds an activation module. Default ``nn.ReLU`` (the paper); pass ``nn.ReLU6`` to
        match Keras's ``MobileNet`` and TF-Slim's reference implementation.

    Returns
    -------
    MobileNetV1
        Input ``(N, in_channels, H, W)``, output ``(N, num_classes)``.

    Notes
    -----
    Counting mult-adds of the convolutions and the fully connected layer only, as the paper
    does, the 1.0-224 model needs 568,740,352 mult-adds ("569M") and has 4,210,088
    convolution and classifier parameters, 4,231,976 with batch normalization's scales and
    shifts ("4.2M"); see :func:`sepconv.profile`.

    Examples
    --------
    >>> import torch
    >>> net = mobilenet_v1(width_multiplier=0.5, resolution=160).eval()
    >>> net.default_input_size, net.num_features
    ((3, 160, 160), 512)
    >>> net(torch.zeros(1, 3, 160, 160)).shape
    torch.Size([1, 1000])
    >>> mobilenet_v1(width_multiplier=0.01)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `width_multiplier` must leave every layer at least ...
    """
    return MobileNetV1(
        width_multiplier=width_multiplier,
        resolution=resolution,
        num_classes=num_classes,
        separable=separable,
        in_channels=in_channels,
        dropout=dropout,
        norm_layer=norm_layer,
        activation=activation,
    )


@register("mobilenet_v1_conv")
def mobilenet_v1_conv(**kwargs: Any) -> MobileNetV1:
    """The paper's "Conv MobileNet": :func:`mobilenet_v1` with full 3x3 convolutions.

    Takes the keyword arguments of :func:`mobilenet_v1` except ``separable``.

    Examples
    --------
    >>> net = mobilenet_v1_conv(width_multiplier=0.25)
    >>> type(net.blocks[0]).__name__, net.separable
    ('ConvNormAct', False)
    """
    if "separable" in kwargs:
        raise SepconvValueError(
            "`separable` is fixed to False by 'mobilenet_v1_conv'; use mobilenet_v1(separable=...)"
        )
    return mobilenet_v1(separable=False, **kwargs)
