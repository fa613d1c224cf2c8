"""Functional forms of the separable layers: depthwise, depthwise separable, spatially separable.

Every function is a correlation (as every deep-learning framework's convolution) on a tensor
``(N, C, *spatial)`` or an unbatched ``(C, *spatial)``, with the arguments of
``torch.nn.functional.conv2d`` plus Keras's semantics:

- ``padding`` is ``'valid'``, ``'same'``, an int, a tuple of ints (symmetric per axis) or a tuple
  of ``(before, after)`` pairs. ``'same'`` is TensorFlow/Keras-exact for every stride: the
  output has ``ceil(n / stride)`` elements and the odd extra padding element goes at the end
  (bottom/right), computed by :func:`sepconv.padding.same_padding` from the input size.
- ``padding_mode`` is ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``, as in
  ``torch.nn.Conv2d``.
- Depthwise weights have torch's grouped layout ``(C * M, 1, *kernel_size)``: output channel
  ``c * M + m`` is input channel ``c`` correlated with its ``m``-th kernel, the order of
  TensorFlow's ``depthwise_conv2d`` and of ``groups=C`` in torch.

Speed on CPU (float32, bfloat16, float16): a channels-last input runs channels-last (no copy;
1-D inputs run as ``1 x k`` 2-D convolutions). PyTorch's NCHW depthwise (grouped) convolution
is an order of magnitude slower than the channels-last one with few channels and large images,
so in inference an NCHW input with fewer than 64 channels is made channels-last once, both
steps run there, and the pointwise step writes the NCHW result directly, as one batched matrix
product ``W @ y[n]^T``, instead of converting afterwards. With 64 or more channels, and in
training, the conversion does not pay and an NCHW input stays NCHW (2-D; 1-D and 3-D: a single
sample with 64 or more channels). A 3-D depthwise step on an NCDHW input (float32/float64, zero
padding) runs sepconv's native 3-D kernel, forward and gradients, and stays NCDHW (at X3D-M's
shapes, ``benchmarks/depthwise3d.py``: 0.27-1.26 x the time of PyTorch's NCDHW depthwise
convolution forward, 0.49 in geometric mean; 0.06-0.44 x forward and backward); a separable 3-D
call converts as above (its 1x1x1 step is slow on NCDHW) and runs the kernel where it stays
NCDHW. That is the rule of these functions and of calls that are not timed; the layers of
:mod:`sepconv.nn.modules` time their routes on the first call of an input configuration instead
(``sepconv.nn._autotune``). In inference on the CPU (no gradient needed), Keras 'same' padding
with the odd extra row at the bottom (stride 2 on even sizes) becomes symmetric padding inside
the convolution plus a leading zero tap on the depthwise kernel: the same products with the
input, without a padded copy of the input (a non-finite input value next to such a zero tap
gives NaN where TensorFlow gives a finite value); in training, and on other
devices, ``F.pad`` is cheaper overall. ``benchmarks/layers.py`` measures these choices
(``--device cuda`` too).

While ONNX export or tracing records a graph, and inside :func:`plain_composition`, the plain
composition runs instead (``F.pad`` where needed and the convolutions as written, in the
caller's memory format), so exported graphs hold plain Conv (and Pad) nodes, 'same' padding
follows the input size in the graph (an exported layer is right at every size), and FLOP
counts equal :mod:`sepconv.cost`. The execution path lives in ``sepconv.nn._execution``, the
one door these functions and the layers of :mod:`sepconv.nn.modules` share.

Exporting with dynamic sizes (torch 2.13, checked in onnxruntime by ``tests/test_nn_onnx.py``):
``torch.onnx.export(dynamo=False, dynamic_axes=...)`` records every padding mode right at every
size; ``torch.onnx.export(dynamo=True, dynamic_shapes=...)`` and ``torch.export`` record zero
and replicate padding right. Reflect and circular padding that depends on the input size
(``'same'`` with a stride above 1), which that exporter pads on the wrong side or cannot
record, raises ``ValueError`` naming the layer under ``torch.export``;
``torch.onnx.export(dynamo=True)`` then falls back to a graph of the example's static sizes,
which onnxruntime refuses at other sizes.

Examples
--------
>>> import torch
>>> from sepconv.nn import functional as SF
>>> x = torch.ones(1, 3, 12, 12)
>>> dw = torch.ones(3, 1, 5, 5)
>>> pw = torch.ones(256, 3, 1, 1)
>>> SF.separable_conv2d(x, dw, pw).shape
torch.Size([1, 256, 8, 8])
>>> SF.separable_conv2d(x, dw, pw, padding="same").shape
torch.Size([1, 256, 12, 12])
>>> SF.depthwise_conv2d(torch.ones(1, 3, 7, 7), dw[:, :, :3, :3], stride=2, padding="same")[0, 0]
tensor([[4., 6., 6., 4.],
        [6., 9., 9., 6.],
        [6., 9., 9., 6.],
        [4., 6., 6., 4.]])
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .._api import public_dir as _public_dir
from .._checks import SepconvTypeError, SepconvValueError, check_choice
from ..padding import PADDING_MODES, IntOrInts, PaddingLike, spatial_passes
from . import _execution as _ex
from ._execution import plain_composition

__all__ = [
    "depthwise_conv1d",
    "depthwise_conv2d",
    "depthwise_conv3d",
    "separable_conv1d",
    "separable_conv2d",
    "separable_conv3d",
    "spatially_separable_conv2d",
    "plain_composition",
    "PADDING_MODES",
]


def _check_weight(name: str, weight: Any, n: int) -> Tensor:
    if not isinstance(weight, Tensor):
        raise SepconvTypeError(f"`{name}` must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != n + 2:
        raise SepconvValueError(
            f"`{name}` must have {n + 2} dimensions (out_channels, in_channels / groups, "
            f"{_ex.axes(n)}), got shape {tuple(weight.shape)}"
        )
    return weight


# --------------------------------------------------------------------------------------------
# depthwise
# --------------------------------------------------------------------------------------------
def _depthwise(
    n: int,
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    padding_mode: str,
) -> Tensor:
    weight = _check_weight("weight", weight, n)
    if weight.shape[1] != 1:
        raise SepconvValueError(
            f"`weight` of a depthwise convolution must have shape (C * depth_multiplier, 1, "
            f"{_ex.axes(n)}), got {tuple(weight.shape)}"
        )
    padding = _ex.policy(n, tuple(weight.shape[2:]), stride, padding, dilation, padding_mode)
    channels = input.shape[-n - 1] if isinstance(input, Tensor) and input.dim() > n else 0
    if channels == 0 or weight.shape[0] % channels:
        raise SepconvValueError(
            f"`weight` must have C * depth_multiplier output channels for an input with C "
            f"channels, got weight {tuple(weight.shape)} for input "
            f"{tuple(input.shape) if isinstance(input, Tensor) else input!r}"
        )
    run, x, fast, unbatched = _ex.begin(input, n, channels, weight, depthwise=padding)
    y = _ex.depthwise(run, weight, bias, padding, n, fast)
    return _ex.end(y, x, n, fast, unbatched)


def depthwise_conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """1-D depthwise convolution (``keras.layers.DepthwiseConv1D``).

    Parameters
    ----------
    input : Tensor
        ``(N, C, L)`` or ``(C, L)``.
    weight : Tensor
        ``(C * M, 1, k)``; output channel ``c * M + m`` uses input channel ``c``.
    bias : Tensor, optional
        ``(C * M,)``.
    stride, padding, dilation, padding_mode
        As :func:`depthwise_conv2d`.

    Returns
    -------
    Tensor
        ``(N, C * M, L_out)``.

    Examples
    --------
    >>> import torch
    >>> depthwise_conv1d(torch.arange(5.0)[None, None], torch.ones(2, 1, 3), padding="same")
    tensor([[[1., 3., 6., 9., 7.],
             [1., 3., 6., 9., 7.]]])
    """
    return _depthwise(1, input, weight, bias, stride, padding, dilation, padding_mode)


def depthwise_conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """2-D depthwise convolution (``keras.layers.DepthwiseConv2D``, torch ``groups=C``).

    Each input channel is correlated with its own ``depth_multiplier`` (``M``) kernels; channels
    are not mixed. Cost: ``C * M * kh * kw`` multiplications per output position
    (:func:`sepconv.cost.depthwise`).

    Parameters
    ----------
    input : Tensor
        ``(N, C, H, W)`` or ``(C, H, W)``.
    weight : Tensor
        ``(C * M, 1, kh, kw)``; output channel ``c * M + m`` uses input channel ``c``.
    bias : Tensor, optional
        ``(C * M,)``.
    stride : int or tuple of 2 ints
    padding : {'valid', 'same'}, int, tuple of ints or tuple of (before, after) pairs
        ``'same'`` is TensorFlow/Keras-exact for every stride.
    dilation : int or tuple of 2 ints
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}

    Returns
    -------
    Tensor
        ``(N, C * M, H_out, W_out)`` in the memory format of ``input``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> depthwise_conv2d(x, torch.ones(1, 1, 3, 3), stride=2, padding="same")
    tensor([[[[45., 39.],
              [66., 50.]]]])
    """
    return _depthwise(2, input, weight, bias, stride, padding, dilation, padding_mode)


def depthwise_conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """3-D depthwise convolution (torch ``conv3d`` with ``groups=C``, Keras padding).

    Parameters
    ----------
    input : Tensor
        ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
    weight : Tensor
        ``(C * M, 1, kd, kh, kw)``.
    bias : Tensor, optional
        ``(C * M,)``.
    stride, padding, dilation, padding_mode
        As :func:`depthwise_conv2d`, with 3 spatial axes.

    Returns
    -------
    Tensor
        ``(N, C * M, D_out, H_out, W_out)``.

    Examples
    --------
    >>> import torch
    >>> depthwise_conv3d(torch.ones(1, 2, 5, 5, 5), torch.ones(4, 1, 3, 3, 3), stride=2,
    ...                  padding="same").shape
    torch.Size([1, 4, 3, 3, 3])
    """
    return _depthwise(3, input, weight, bias, stride, padding, dilation, padding_mode)


# --------------------------------------------------------------------------------------------
# depthwise separable
# --------------------------------------------------------------------------------------------
def _separable(
    n: int,
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None,
    depthwise_bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    padding_mode: str,
) -> Tensor:
    depthwise_weight = _check_weight("depthwise_weight", depthwise_weight, n)
    pointwise_weight = _check_weight("pointwise_weight", pointwise_weight, n)
    if depthwise_weight.shape[1] != 1:
        raise SepconvValueError(
            f"`depthwise_weight` must have shape (C * depth_multiplier, 1, {_ex.axes(n)}), got "
            f"{tuple(depthwise_weight.shape)}"
        )
    if pointwise_weight.shape[1] != depthwise_weight.shape[0] or any(
        k != 1 for k in pointwise_weight.shape[2:]
    ):
        raise SepconvValueError(
            f"`pointwise_weight` must have shape (out_channels, {depthwise_weight.shape[0]}, "
            f"{', '.join('1' * n)}) to follow `depthwise_weight` "
            f"{tuple(depthwise_weight.shape)}, got {tuple(pointwise_weight.shape)}"
        )
    padding = _ex.policy(
        n, tuple(depthwise_weight.shape[2:]), stride, padding, dilation, padding_mode
    )
    channels = input.shape[-n - 1] if isinstance(input, Tensor) and input.dim() > n else 0
    if channels == 0 or depthwise_weight.shape[0] % channels:
        raise SepconvValueError(
            f"`depthwise_weight` must have C * depth_multiplier output channels for an input "
            f"with C channels, got {tuple(depthwise_weight.shape)} for input "
            f"{tuple(input.shape) if isinstance(input, Tensor) else input!r}"
        )
    run, x, fast, unbatched = _ex.begin(input, n, channels, depthwise_weight)
    y = _ex.depthwise(run, depthwise_weight, depthwise_bias, padding, n, fast)
    y = _ex.pointwise(
        y,
        pointwise_weight,
        bias,
        n,
        fast,
        contiguous_output=fast and not _ex.caller_is_channels_last(x, n),
    )
    return _ex.end(y, x, n, fast, unbatched)


def separable_conv1d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """1-D depthwise separable convolution (``keras.layers.SeparableConv1D``).

    Parameters
    ----------
    input : Tensor
        ``(N, C, L)`` or ``(C, L)``.
    depthwise_weight : Tensor
        ``(C * M, 1, k)``.
    pointwise_weight : Tensor
        ``(F, C * M, 1)``.
    bias, depthwise_bias : Tensor, optional
        ``(F,)`` (pointwise step, as Keras) and ``(C * M,)``.
    stride, padding, dilation, padding_mode
        Of the depthwise step, as :func:`separable_conv2d`.

    Returns
    -------
    Tensor
        ``(N, F, L_out)``.

    Examples
    --------
    >>> import torch
    >>> separable_conv1d(torch.ones(1, 2, 6), torch.ones(2, 1, 3), torch.ones(4, 2, 1),
    ...                  stride=2, padding="same")
    tensor([[[6., 6., 4.],
             [6., 6., 4.],
             [6., 6., 4.],
             [6., 6., 4.]]])
    """
    return _separable(
        1,
        input,
        depthwise_weight,
        pointwise_weight,
        bias,
        depthwise_bias,
        stride,
        padding,
        dilation,
        padding_mode,
    )


def separable_conv2d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """2-D depthwise separable convolution (``keras.layers.SeparableConv2D``).

    A depthwise convolution (stride, padding and dilation belong to it) followed by a 1x1
    pointwise convolution mixing the ``C * M`` channels into ``F`` (Howard et al. 2017,
    "MobileNets"; Chollet 2017, "Xception"). Cost: :func:`sepconv.cost.separable`, about
    ``1 / F + 1 / (kh * kw)`` of the normal convolution's.

    Parameters
    ----------
    input : Tensor
        ``(N, C, H, W)`` or ``(C, H, W)``.
    depthwise_weight : Tensor
        ``(C * M, 1, kh, kw)``.
    pointwise_weight : Tensor
        ``(F, C * M, 1, 1)``.
    bias : Tensor, optional
        ``(F,)``, added by the pointwise step (Keras's ``bias``).
    depthwise_bias : Tensor, optional
        ``(C * M,)``, added by the depthwise step (Keras has none).
    stride : int or tuple of 2 ints
    padding : {'valid', 'same'}, int, tuple of ints or tuple of (before, after) pairs
    dilation : int or tuple of 2 ints
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}

    Returns
    -------
    Tensor
        ``(N, F, H_out, W_out)`` in the memory format of ``input``.

    Examples
    --------
    The worked example: 12x12x3 input, 5x5 kernels, 256 filters.

    >>> import torch
    >>> x = torch.ones(1, 3, 12, 12)
    >>> y = separable_conv2d(x, torch.ones(3, 1, 5, 5), torch.ones(256, 3, 1, 1))
    >>> tuple(y.shape), y[0, 0, 0, 0].item()
    ((1, 256, 8, 8), 75.0)
    """
    return _separable(
        2,
        input,
        depthwise_weight,
        pointwise_weight,
        bias,
        depthwise_bias,
        stride,
        padding,
        dilation,
        padding_mode,
    )


def separable_conv3d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """3-D depthwise separable convolution.

    Parameters
    ----------
    input : Tensor
        ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
    depthwise_weight : Tensor
        ``(C * M, 1, kd, kh, kw)``.
    pointwise_weight : Tensor
        ``(F, C * M, 1, 1, 1)``.
    bias, depthwise_bias : Tensor, optional
        ``(F,)`` and ``(C * M,)``.
    stride, padding, dilation, padding_mode
        As :func:`separable_conv2d`, with 3 spatial axes.

    Returns
    -------
    Tensor
        ``(N, F, D_out, H_out, W_out)``.

    Examples
    --------
    >>> import torch
    >>> separable_conv3d(torch.ones(2, 3, 4, 4, 4), torch.ones(3, 1, 3, 3, 3),
    ...                  torch.ones(5, 3, 1, 1, 1), padding="same").shape
    torch.Size([2, 5, 4, 4, 4])
    """
    return _separable(
        3,
        input,
        depthwise_weight,
        pointwise_weight,
        bias,
        depthwise_bias,
        stride,
        padding,
        dilation,
        padding_mode,
    )


# --------------------------------------------------------------------------------------------
# spatially separable
# --------------------------------------------------------------------------------------------
def spatially_separable_conv2d(
    input: Tensor,
    column_weight: Tensor,
    row_weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrInts = 1,
    padding: PaddingLike = "valid",
    dilation: IntOrInts = 1,
    groups: int = 1,
    order: str = "column_first",
    padding_mode: str = "zeros",
) -> Tensor:
    """Spatially separable 2-D convolution: a ``kh x 1`` pass and a ``1 x kw`` pass.

    As in Inception-v3 (Szegedy et al. 2016) and Jaderberg et al. 2014, "Speeding up
    convolutional neural networks with low rank expansions". Each pass takes the stride,
    dilation and padding of its own axis, so the output shape is that of the ``kh x kw``
    convolution; ``'same'`` padding is Keras-exact per axis. Cost:
    :func:`sepconv.cost.spatially_separable`.

    Parameters
    ----------
    input : Tensor
        ``(N, C, H, W)`` or ``(C, H, W)``.
    column_weight : Tensor
        The ``kh x 1`` pass: ``(mid, C / groups, kh, 1)`` when it runs first
        (``order='column_first'``), else ``(F, mid / groups, kh, 1)``.
    row_weight : Tensor
        The ``1 x kw`` pass: ``(F, mid / groups, 1, kw)`` when it runs second, else
        ``(mid, C / groups, 1, kw)``.
    bias : Tensor, optional
        ``(F,)``, added by the second pass.
    stride, padding, dilation
        Of the equivalent ``kh x kw`` convolution, as :func:`separable_conv2d`.
    groups : int
        Groups of both passes (``groups = C = mid = F`` filters each channel on its own).
    order : {'column_first', 'row_first'}
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}

    Returns
    -------
    Tensor
        ``(N, F, H_out, W_out)``.

    Examples
    --------
    A Sobel filter, ``[1, 2, 1]^T`` then ``[-1, 0, 1]``, on a horizontal ramp:

    >>> import torch
    >>> x = torch.arange(5.0).repeat(5, 1)[None, None]
    >>> col = torch.tensor([1.0, 2.0, 1.0]).reshape(1, 1, 3, 1)
    >>> row = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    >>> spatially_separable_conv2d(x, col, row)
    tensor([[[[8., 8., 8.],
              [8., 8., 8.],
              [8., 8., 8.]]]])
    """
    column_weight = _check_weight("column_weight", column_weight, 2)
    row_weight = _check_weight("row_weight", row_weight, 2)
    if column_weight.shape[3] != 1:
        raise SepconvValueError(
            f"`column_weight` must have shape (out, in / groups, kh, 1), got "
            f"{tuple(column_weight.shape)}"
        )
    if row_weight.shape[2] != 1:
        raise SepconvValueError(
            f"`row_weight` must have shape (out, in / groups, 1, kw), got {tuple(row_weight.shape)}"
        )
    order = check_choice("order", order, ("column_first", "row_first"))
    kernel_size = (int(column_weight.shape[2]), int(row_weight.shape[3]))
    whole = _ex.policy(2, kernel_size, stride, padding, dilation, padding_mode)
    first_weight, second_weight = (
        (column_weight, row_weight) if order == "column_first" else (row_weight, column_weight)
    )
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise SepconvValueError(f"`groups` must be a positive integer, got {groups!r}")
    channels = first_weight.shape[1] * groups
    _ex.check_input(input, 2, channels)
    if second_weight.shape[1] * groups != first_weight.shape[0]:
        raise SepconvValueError(
            f"the second pass's weight {tuple(second_weight.shape)} does not take the first "
            f"pass's {first_weight.shape[0]} channels with `groups`={groups}"
        )
    first, second = (
        _ex.policy(2, p.kernel_size, p.stride, p.padding, p.dilation, whole.mode)
        for p in spatial_passes(whole.kernel_size, whole.stride, whole.dilation, whole.spec, order)
    )
    run, x, fast, unbatched = _ex.begin(input, 2, channels, first_weight)
    y = _ex.conv(run, first_weight, None, first, groups, 2, is_fast=fast)
    y = _ex.conv(y, second_weight, bias, second, groups, 2, is_fast=fast)
    return _ex.end(y, x, 2, fast, unbatched)


__dir__ = _public_dir(globals())
