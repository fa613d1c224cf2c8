"""The cost model: the one place where multiplication, addition, parameter and memory counts live.

Every count is exact. A *multiplication* is one scalar product of an input value and a weight
(a "mult-add" in the MobileNet paper); FLOPs, where shown, are ``2 * multiplications`` (the
convention of ``torch.utils.flop_counter``). Each output element that sums ``p`` products costs
``p - 1`` additions, plus one when a bias is added. Multiplications by padded zeros count: every
framework performs them.

Shapes follow the image convention: ``input_shape`` is ``(*spatial, channels)``, so ``(H, W, C)``
for 2-D, ``(L, C)`` for 1-D and ``(D, H, W, C)`` for 3-D. Kernel sizes, strides and dilations are
an int (every spatial axis) or a tuple with one entry per spatial axis.

Examples
--------
The worked example: a 12x12x3 input, a 5x5 kernel, 256 filters, no padding.

>>> from sepconv import cost
>>> cost.conv((12, 12, 3), 5, 256, bias=False).multiplications
1228800
>>> sep = cost.separable((12, 12, 3), 5, 256, bias=False)
>>> sep.multiplications, [p.multiplications for p in sep.parts]
(53952, [4800, 49152])
>>> sep.output_shape
(8, 8, 256)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._api import public_dir as _public_dir
from ._checks import (
    SepconvValueError,
    check_choice,
    check_int,
    check_ntuple,
    check_positive_int,
    check_shape,
)
from .padding import output_size, resolve_padding, spatial_passes

__all__ = [
    "Cost",
    "Comparison",
    "conv",
    "depthwise",
    "pointwise",
    "separable",
    "spatially_separable",
    "filtering",
    "compare",
    "separable_ratio",
]

if TYPE_CHECKING:  # pragma: no cover
    from .padding import IntOrInts, PaddingLike


@dataclass(frozen=True)
class Cost:
    """Exact cost of one operation, or of a sequence of operations (``parts``).

    Attributes
    ----------
    operation : str
        What was costed, e.g. ``'conv 5x5, 3->256'``.
    input_shape, output_shape : tuple of int
        ``(*spatial, channels)`` of one sample.
    multiplications : int
        Scalar multiplications (mult-adds) for the whole batch.
    additions : int
        Scalar additions for the whole batch (bias additions included).
    weights, biases : int
        Learnable parameters, weights and biases counted apart.
    batch : int
        Number of samples the counts cover.
    parts : tuple of Cost
        The steps of a composite operation (depthwise then pointwise, ...).
    """

    operation: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    multiplications: int
    additions: int
    weights: int
    biases: int
    batch: int = 1
    parts: tuple[Cost, ...] = field(default=())

    @property
    def parameters(self) -> int:
        """Weights plus biases."""
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        """``2 * multiplications``, the FLOP convention of ``torch.utils.flop_counter``."""
        return 2 * self.multiplications

    @property
    def output_elements(self) -> int:
        """Number of output values for the whole batch (activation memory, in elements)."""
        return self.batch * math.prod(self.output_shape)

    def memory_bytes(self, itemsize: int = 4) -> int:
        """Bytes of parameters plus output activations (and intermediate ones of the parts)."""
        elements = self.parameters
        if self.parts:
            elements += sum(part.output_elements for part in self.parts)
        else:
            elements += self.output_elements
        return elements * itemsize

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` (JSON-ready), with ``parameters`` and ``flops`` added."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        data["parameters"] = self.parameters
        data["flops"] = self.flops
        data["parts"] = [part.to_dict() for part in self.parts]
        return data


def _chain(operation: str, *parts: Cost) -> Cost:
    return Cost(
        operation=operation,
        input_shape=parts[0].input_shape,
        output_shape=parts[-1].output_shape,
        multiplications=sum(p.multiplications for p in parts),
        additions=sum(p.additions for p in parts),
        weights=sum(p.weights for p in parts),
        biases=sum(p.biases for p in parts),
        batch=parts[0].batch,
        parts=tuple(parts),
    )


def _shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    return check_shape("input_shape", input_shape, (2, 3, 4), what="sizes (*spatial, channels)")


def _size_text(kernel_size: tuple[int, ...]) -> str:
    return "x".join(str(k) for k in kernel_size)


def _grouped(
    name: str,
    input_shape: tuple[int, ...],
    kernel_size: tuple[int, ...],
    out_channels: int,
    groups: int,
    *,
    stride: IntOrInts,
    padding: PaddingLike,
    dilation: IntOrInts,
    bias: bool,
    batch: int,
) -> Cost:
    """Cost of a grouped convolution: the formula every other one reduces to."""
    spatial, in_channels = input_shape[:-1], input_shape[-1]
    out_spatial = output_size(
        spatial, kernel_size, stride=stride, dilation=dilation, padding=padding
    )
    products = math.prod(kernel_size) * (in_channels // groups)
    outputs = batch * math.prod(out_spatial) * out_channels
    return Cost(
        operation=name,
        input_shape=tuple(input_shape),
        output_shape=(*out_spatial, out_channels),
        multiplications=outputs * products,
        additions=outputs * (products - 1 + int(bias)),
        weights=math.prod(kernel_size) * (in_channels // groups) * out_channels,
        biases=out_channels if bias else 0,
        batch=batch,
    )


def conv(
    input_shape: Sequence[int],
    kernel_size: IntOrInts,
    filters: int,
    *,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    groups: int = 1,
    bias: bool = True,
    batch: int = 1,
) -> Cost:
    """Normal (optionally grouped) convolution, as ``nn.Conv2d`` / ``keras.layers.Conv2D``.

    Every output element sums ``prod(kernel_size) * in_channels / groups`` products.

    >>> c = conv((12, 12, 3), 5, 256, padding="same", bias=False)
    >>> c.output_shape, c.multiplications
    ((12, 12, 256), 2764800)
    """
    input_shape = _shape(input_shape)
    n = len(input_shape) - 1
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    filters = check_positive_int("filters", filters)
    groups = check_positive_int("groups", groups)
    batch = check_positive_int("batch", batch)
    in_channels = input_shape[-1]
    if in_channels % groups or filters % groups:
        raise SepconvValueError(
            f"`groups` must divide both the input channels ({in_channels}) and `filters` "
            f"({filters}), got {groups}"
        )
    name = f"conv {_size_text(kernel_size)}, {in_channels}->{filters}"
    if groups > 1:
        name += f", groups={groups}"
    return _grouped(
        name,
        input_shape,
        kernel_size,
        filters,
        groups,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
        batch=batch,
    )


def depthwise(
    input_shape: Sequence[int],
    kernel_size: IntOrInts,
    *,
    depth_multiplier: int = 1,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    bias: bool = False,
    batch: int = 1,
) -> Cost:
    """Depthwise convolution: ``depth_multiplier`` kernels per input channel, no channel mixing.

    >>> depthwise((12, 12, 3), 5).multiplications
    4800
    """
    input_shape = _shape(input_shape)
    n = len(input_shape) - 1
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    multiplier = check_positive_int("depth_multiplier", depth_multiplier)
    batch = check_positive_int("batch", batch)
    channels = input_shape[-1]
    name = f"depthwise {_size_text(kernel_size)}, {channels} channels"
    if multiplier > 1:
        name += f" x{multiplier}"
    return _grouped(
        name,
        input_shape,
        kernel_size,
        channels * multiplier,
        channels,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
        batch=batch,
    )


def pointwise(
    input_shape: Sequence[int], filters: int, *, bias: bool = True, batch: int = 1
) -> Cost:
    """Pointwise (1x1) convolution mixing channels.

    >>> pointwise((8, 8, 3), 256, bias=False).multiplications
    49152
    """
    input_shape = _shape(input_shape)
    n = len(input_shape) - 1
    filters = check_positive_int("filters", filters)
    batch = check_positive_int("batch", batch)
    name = f"pointwise {_size_text((1,) * n)}, {input_shape[-1]}->{filters}"
    return _grouped(
        name,
        input_shape,
        (1,) * n,
        filters,
        1,
        stride=1,
        padding="valid",
        dilation=1,
        bias=bias,
        batch=batch,
    )


def separable(
    input_shape: Sequence[int],
    kernel_size: IntOrInts,
    filters: int,
    *,
    depth_multiplier: int = 1,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    bias: bool = True,
    depthwise_bias: bool = False,
    batch: int = 1,
) -> Cost:
    """Depthwise separable convolution: depthwise (with the stride) then pointwise.

    The semantics of ``keras.layers.SeparableConv2D``: stride, padding and dilation belong to
    the depthwise step; the bias to the pointwise step.

    >>> s = separable((12, 12, 3), 5, 256, padding="same", bias=False)
    >>> s.multiplications, [p.multiplications for p in s.parts]
    (121392, [10800, 110592])
    """
    dw = depthwise(
        input_shape,
        kernel_size,
        depth_multiplier=depth_multiplier,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=depthwise_bias,
        batch=batch,
    )
    pw = pointwise(dw.output_shape, filters, bias=bias, batch=batch)
    channels = dw.input_shape[-1]
    kernel = dw.operation.split()[1].rstrip(",")
    return _chain(f"separable {kernel}, {channels}->{filters}", dw, pw)


def spatially_separable(
    input_shape: Sequence[int],
    kernel_size: IntOrInts,
    filters: int,
    *,
    intermediate_channels: int | None = None,
    order: str = "column_first",
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    groups: int = 1,
    bias: bool = True,
    batch: int = 1,
) -> Cost:
    """Spatially separable 2-D convolution: a ``kh x 1`` pass then a ``1 x kw`` pass.

    Each pass takes the stride, dilation and padding of its own axis, so the output shape is
    that of the ``kh x kw`` convolution. The first pass maps ``C -> intermediate_channels``
    (default: ``C``, the Inception-v3 factorization), the second ``intermediate -> filters``;
    ``groups`` applies to both (``groups = C = filters`` is per-channel image filtering).
    ``order='row_first'`` runs the ``1 x kw`` pass first.

    >>> s = spatially_separable((12, 12, 3), 5, 256, bias=False)
    >>> [p.multiplications for p in s.parts]
    [4320, 245760]
    """
    input_shape = check_shape("input_shape", input_shape, 3, what="sizes (H, W, C)")
    kh, kw = check_ntuple("kernel_size", kernel_size, 2)
    sh, sw = check_ntuple("stride", stride, 2)
    dh, dw_ = check_ntuple("dilation", dilation, 2)
    filters = check_positive_int("filters", filters)
    groups = check_positive_int("groups", groups)
    batch = check_positive_int("batch", batch)
    order = check_choice("order", order, ("column_first", "row_first"))
    channels = input_shape[-1]
    mid = (
        channels
        if intermediate_channels is None
        else check_positive_int("intermediate_channels", intermediate_channels)
    )
    for name, value in (
        ("input channels", channels),
        ("intermediate_channels", mid),
        ("filters", filters),
    ):
        if value % groups:
            raise SepconvValueError(f"`groups` ({groups}) must divide {name} ({value})")
    pads = resolve_padding(
        input_shape[:2], (kh, kw), stride=(sh, sw), dilation=(dh, dw_), padding=padding
    )
    passes = spatial_passes((kh, kw), (sh, sw), (dh, dw_), pads, order)
    first = _grouped(
        f"conv {_size_text(passes[0].kernel_size)}, {channels}->{mid}",
        input_shape,
        passes[0].kernel_size,
        mid,
        groups,
        stride=passes[0].stride,
        padding=passes[0].padding,
        dilation=passes[0].dilation,
        bias=False,
        batch=batch,
    )
    second = _grouped(
        f"conv {_size_text(passes[1].kernel_size)}, {mid}->{filters}",
        first.output_shape,
        passes[1].kernel_size,
        filters,
        groups,
        stride=passes[1].stride,
        padding=passes[1].padding,
        dilation=passes[1].dilation,
        bias=bias,
        batch=batch,
    )
    return _chain(
        f"spatially separable {kh}x1 + 1x{kw}, {channels}->{mid}->{filters}", first, second
    )


def filtering(
    kernel_shape: Sequence[int], rank: int | None = None, image_shape: Sequence[int] | None = None
) -> Cost:
    """Cost of filtering one channel with a kernel, directly or as ``rank`` separable terms.

    Without ``image_shape`` the counts are per output element; with it, for a 'same'-sized
    output of that shape (as ``scipy.ndimage.correlate``). A separable term of a d-dimensional
    kernel runs d 1-D passes, ``sum(kernel_shape)`` multiplications; ``rank`` terms add up.

    >>> filtering((3, 3)).multiplications, filtering((3, 3), rank=1).multiplications
    (9, 6)
    >>> filtering((15, 15), rank=2).multiplications
    60
    """
    shape = check_shape("kernel_shape", kernel_shape, range(1, 33))
    if image_shape is None:
        elements = 1
        out_shape: tuple[int, ...] = (1,) * len(shape)
    else:
        out_shape = check_shape("image_shape", image_shape, len(shape))
        elements = math.prod(out_shape)
    if rank is None:
        products = math.prod(shape)
        return Cost(
            f"direct {_size_text(shape)}",
            out_shape,
            out_shape,
            elements * products,
            elements * (products - 1),
            products,
            0,
        )
    rank = check_int("rank", rank, minimum=1)
    products = rank * sum(shape)
    additions = rank * (sum(shape) - len(shape)) + rank - 1
    return Cost(
        f"{rank} separable term{'s' * (rank > 1)} {_size_text(shape)}",
        out_shape,
        out_shape,
        elements * products,
        elements * additions,
        products,
        0,
    )


def separable_ratio(kernel_size: IntOrInts, filters: int, depth_multiplier: int = 1) -> float:
    """The rule of thumb ``depth_multiplier * (1/filters + 1/prod(kernel_size))``.

    It is exact for the ratio separable / normal multiplications whenever both have the same
    output size.

    >>> round(separable_ratio((5, 5), 256), 6)
    0.043906
    """
    kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    return depth_multiplier * (1 / filters + 1 / math.prod(kernel_size))


@dataclass(frozen=True)
class Comparison:
    """Normal against depthwise separable against spatially separable, side by side."""

    normal: Cost
    depthwise_separable: Cost
    spatially_separable: Cost | None
    rule: float

    @property
    def rows(self) -> tuple[Cost, ...]:
        return tuple(
            r
            for r in (self.normal, self.depthwise_separable, self.spatially_separable)
            if r is not None
        )

    def ratio(self, other: Cost) -> float:
        """How many times fewer multiplications ``other`` needs than the normal convolution."""
        return self.normal.multiplications / other.multiplications

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": self.normal.to_dict(),
            "depthwise_separable": self.depthwise_separable.to_dict(),
            "spatially_separable": (
                self.spatially_separable.to_dict() if self.spatially_separable else None
            ),
            "rule": self.rule,
            "ratios": {
                "depthwise_separable": self.ratio(self.depthwise_separable),
                **(
                    {"spatially_separable": self.ratio(self.spatially_separable)}
                    if self.spatially_separable
                    else {}
                ),
            },
        }


def compare(
    input_shape: Sequence[int],
    kernel_size: IntOrInts,
    filters: int,
    *,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    depth_multiplier: int = 1,
    intermediate_channels: int | None = None,
    bias: bool = False,
    batch: int = 1,
) -> Comparison:
    """Compare a normal convolution with its depthwise and spatially separable replacements.

    The spatially separable row is given for 2-D inputs only.

    >>> c = compare((12, 12, 3), 5, 256)
    >>> c.normal.multiplications, c.depthwise_separable.multiplications
    (1228800, 53952)
    >>> round(c.ratio(c.depthwise_separable), 2)
    22.78
    """
    common = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "bias": bias,
        "batch": batch,
    }
    normal = conv(input_shape, kernel_size, filters, **common)
    dsep = separable(input_shape, kernel_size, filters, depth_multiplier=depth_multiplier, **common)
    ssep = None
    if len(normal.input_shape) == 3:
        ssep = spatially_separable(
            input_shape, kernel_size, filters, intermediate_channels=intermediate_channels, **common
        )
    n = len(normal.input_shape) - 1
    rule = separable_ratio(
        check_ntuple("kernel_size", kernel_size, n),
        filters,
        check_positive_int("depth_multiplier", depth_multiplier),
    )
    return Comparison(normal, dsep, ssep, rule)


__dir__ = _public_dir(globals())
