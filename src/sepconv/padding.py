"""Output sizes and padding, the one place they are computed.

``'same'`` padding is TensorFlow/Keras-exact: the output has ``ceil(n / stride)`` elements along
an axis and the total padding ``max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)`` is
split with the odd extra element at the end (bottom/right). PyTorch's ``padding='same'`` agrees
with it only for stride 1 and puts the odd extra element at the same end.

Examples
--------
>>> from sepconv.padding import resolve_padding, output_size
>>> resolve_padding((12, 12), (5, 5), stride=1, dilation=1, padding="same")
((2, 2), (2, 2))
>>> resolve_padding((224, 224), (3, 3), stride=2, dilation=1, padding="same")
((0, 1), (0, 1))
>>> output_size((12, 12), (5, 5), stride=1, dilation=1, padding="valid")
(8, 8)
"""

from __future__ import annotations

from typing import Any

from ._checks import (
    SepconvValueError,
    check_ntuple,
    check_padding,
    check_positive_int,
    check_shape,
)

__all__ = ["same_padding", "resolve_padding", "output_size"]


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding ``(before, after)`` for one axis."""
    size = check_positive_int("size", size)
    kernel = check_positive_int("kernel", kernel)
    stride = check_positive_int("stride", stride)
    dilation = check_positive_int("dilation", dilation)
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    input_size: tuple[int, ...],
    kernel_size: Any,
    *,
    stride: Any = 1,
    dilation: Any = 1,
    padding: Any = "valid",
) -> tuple[tuple[int, int], ...]:
    """Explicit ``(before, after)`` padding per spatial axis for any accepted ``padding``."""
    input_size = check_shape("input_size", input_size, range(1, 33))
    n = len(input_size)
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    stride = check_ntuple("stride", stride, n)
    dilation = check_ntuple("dilation", dilation, n)
    spec = check_padding("padding", padding, n)
    if spec == "valid":
        return tuple((0, 0) for _ in range(n))
    if spec == "same":
        return tuple(
            same_padding(size, k, s, d)
            for size, k, s, d in zip(input_size, kernel_size, stride, dilation)
        )
    return spec


def output_size(
    input_size: tuple[int, ...],
    kernel_size: Any,
    *,
    stride: Any = 1,
    dilation: Any = 1,
    padding: Any = "valid",
) -> tuple[int, ...]:
    """Spatial output size of a convolution; raises if the kernel does not fit the input."""
    input_size = check_shape("input_size", input_size, range(1, 33))
    n = len(input_size)
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    stride = check_ntuple("stride", stride, n)
    dilation = check_ntuple("dilation", dilation, n)
    pads = resolve_padding(input_size, kernel_size, stride=stride, dilation=dilation,
                           padding=padding)
    out = []
    for axis, (size, k, s, d, (before, after)) in enumerate(
        zip(input_size, kernel_size, stride, dilation, pads)
    ):
        effective = (k - 1) * d + 1
        padded = size + before + after
        if padded < effective:
            raise SepconvValueError(
                f"`kernel_size` {k} with dilation {d} spans {effective} elements along spatial "
                f"axis {axis}, more than the padded input's {padded} "
                f"(input size {size}, padding {padding!r}); use padding='same' or a larger input"
            )
        out.append((padded - effective) // s + 1)
    return tuple(out)
