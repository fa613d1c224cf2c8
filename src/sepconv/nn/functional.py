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
sample with 64 or more channels). In inference on the CPU (no gradient needed), Keras 'same'
padding with the odd extra row at the bottom (stride 2 on even sizes) becomes symmetric
padding inside the convolution plus a leading zero tap on the depthwise kernel: the same
products with the input, without a padded copy of the input (a non-finite input value next to
such a zero tap gives NaN where TensorFlow gives a finite value); in training, and on other
devices, ``F.pad`` is cheaper overall. ``benchmarks/layers.py`` measures these choices
(``--device cuda`` too).

While ONNX export or tracing records a graph, and while a dispatch mode such as
``torch.utils.flop_counter.FlopCounterMode`` is active, the plain composition runs instead
(``F.pad`` where needed and the convolutions as written, in the caller's memory format), so
exported graphs hold plain Conv (and Pad) nodes and FLOP counts equal :mod:`sepconv.cost`.

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

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_ntuple,
    check_padding,
)
from ..padding import same_padding

__all__ = [
    "depthwise_conv1d",
    "depthwise_conv2d",
    "depthwise_conv3d",
    "separable_conv1d",
    "separable_conv2d",
    "separable_conv3d",
    "spatially_separable_conv2d",
    "PADDING_MODES",
]

#: The accepted ``padding_mode`` values, as ``torch.nn.Conv2d``.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}

Pads = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------------------------
# shared machinery (also used by the modules)
# --------------------------------------------------------------------------------------------
def _check_settings(
    n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, padding_mode: Any
) -> tuple[tuple[int, ...], tuple[int, ...], str | Pads, tuple[int, ...], str]:
    """Validate and normalise the settings shared by every layer (raises naming the argument)."""
    kernel_size = check_ntuple("kernel_size", kernel_size, n)
    stride = check_ntuple("stride", stride, n)
    dilation = check_ntuple("dilation", dilation, n)
    spec = check_padding("padding", padding, n)
    padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
    return kernel_size, stride, spec, dilation, padding_mode


def _resolve_pads(
    spatial: tuple[int, ...] | torch.Size,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    spec: str | Pads,
) -> Pads:
    """``(before, after)`` per spatial axis for this input size (cheap: no re-validation)."""
    if spec == "valid":
        return tuple((0, 0) for _ in kernel_size)
    if spec == "same":
        return tuple(
            same_padding(int(size), k, s, d)
            for size, k, s, d in zip(spatial, kernel_size, stride, dilation)
        )
    return spec  # type: ignore[return-value]


def _check_fits(
    spatial: tuple[int, ...] | torch.Size,
    kernel_size: tuple[int, ...],
    dilation: tuple[int, ...],
    pads: Pads,
    padding_mode: str,
) -> None:
    for axis, (size, k, d, (before, after)) in enumerate(zip(spatial, kernel_size, dilation, pads)):
        size = int(size)
        effective = (k - 1) * d + 1
        if size + before + after < effective:
            raise SepconvValueError(
                f"`kernel_size` {k} with dilation {d} spans {effective} elements along spatial "
                f"axis {axis}, more than the padded input's {size + before + after} "
                f"(input size {size}, padding {(before, after)}); use padding='same' or a "
                f"larger input"
            )
        if padding_mode == "reflect" and max(before, after) >= size:
            raise SepconvValueError(
                f"`padding_mode` 'reflect' needs a padding smaller than the input along every "
                f"axis, got padding {(before, after)} for size {size} along spatial axis {axis}; "
                f"use 'replicate' or a larger input"
            )
        if padding_mode == "circular" and max(before, after) > size:
            raise SepconvValueError(
                f"`padding_mode` 'circular' needs a padding no larger than the input along "
                f"every axis, got padding {(before, after)} for size {size} along spatial axis "
                f"{axis}"
            )


Plan = tuple[tuple[int, ...] | None, tuple[tuple[int, ...], tuple[int, ...]] | None,
             tuple[int, ...] | None]


def _padding_plan(
    spatial: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
    dilation: tuple[int, ...], spec: str | Pads, padding_mode: str,
) -> Plan:
    """How :func:`_conv` pads this input size: ``(inside, tapped, outside)``.

    ``inside``: the convolution's own symmetric zero padding, when that is all it takes.
    ``tapped``: ``(symmetric padding, zero taps in F.pad order for the kernel)`` giving the
    same products as asymmetric zero padding, when the taps fall on the dilation grid.
    ``outside``: ``F.pad`` amounts for the input (None when there is no padding).
    """
    pads = _resolve_pads(spatial, kernel_size, stride, dilation, spec)
    _check_fits(spatial, kernel_size, dilation, pads, padding_mode)
    outside = _pad_flat(pads) if any(before or after for before, after in pads) else None
    if padding_mode != "zeros":
        return None, None, outside
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads), None, None
    sym = tuple(max(pair) for pair in pads)
    if not all((p - before) % d == 0 and (p - after) % d == 0
               for p, (before, after), d in zip(sym, pads, dilation)):
        return None, None, outside
    taps = tuple(((p - before) // d, (p - after) // d)
                 for p, (before, after), d in zip(sym, pads, dilation))
    return None, (sym, _pad_flat(taps)), outside


_padding_plan_cached = functools.lru_cache(maxsize=4096)(_padding_plan)


def _plan(
    spatial: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
    dilation: tuple[int, ...], spec: str | Pads, padding_mode: str,
) -> Plan:
    """Checked padding plan for this input size (memoised: forward calls repeat)."""
    if torch.compiler.is_compiling():  # traced once per shape; no cache inside the graph
        return _padding_plan(spatial, kernel_size, stride, dilation, spec, padding_mode)
    return _padding_plan_cached(spatial, kernel_size, stride, dilation, spec, padding_mode)


def _check_input(x: Tensor, n: int, channels: int, name: str = "input") -> bool:
    """Check ``x`` is ``(N, C, *spatial)`` or ``(C, *spatial)`` with ``channels`` channels.

    Returns True when ``x`` is unbatched.
    """
    if not isinstance(x, Tensor):
        raise SepconvTypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (n + 1, n + 2):
        raise SepconvValueError(
            f"`{name}` must have shape (N, C, {_axes(n)}) or (C, {_axes(n)}), got a "
            f"{x.dim()}-D tensor of shape {tuple(x.shape)}"
        )
    if x.shape[-n - 1] != channels:
        raise SepconvValueError(
            f"`{name}` must have {channels} channels (dimension {x.dim() - n - 1}), got shape "
            f"{tuple(x.shape)} with {x.shape[-n - 1]}"
        )
    return x.dim() == n + 1


def _axes(n: int) -> str:
    return {1: "L", 2: "H, W", 3: "D, H, W"}[n]


_FAST_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _plain_requested() -> bool:
    """True when the plain composition (F.pad + convolutions as written) must run.

    While ONNX export or tracing records a graph, and while a dispatch mode such as
    ``torch.utils.flop_counter.FlopCounterMode`` watches the operators, the layers run exactly
    the convolutions the cost model counts, in the caller's memory format.
    """
    # torch.onnx.export(dynamo=False) traces (is_tracing); dynamo=True and torch.export export.
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        return True
    if torch.compiler.is_compiling():
        return False
    return torch._C._len_torch_dispatch_stack() > 0


def _fast(x: Tensor, n: int, weight: Tensor | None = None) -> bool:
    """Whether this input runs channels-last inside (and comes back in the caller's format).

    The rule: a channels-last input runs there (no copy). An NCHW input with 64 or more
    channels runs in NCHW (2-D: any batch; 1-D and 3-D, which ``benchmarks/layers.py`` does
    not measure: a single sample only). An NCHW input with fewer channels is converted (one
    copy) in inference; in training (a gradient needed for ``x`` or ``weight``, the first
    step's weight) a 2-D one stays NCHW.

    Measured on a 2-core CPU, 2 threads, MobileNetV1 shapes (``benchmarks/layers.py`` and
    interleaved A/B runs of the candidate paths in one process): PyTorch's NCHW depthwise
    kernel is pathological with few channels and a large image (32 channels at 112x112,
    batch 8: 15 ms, against 0.8 ms in channels-last plus 1.2 ms for the conversion), but from
    64 channels on, with the Keras 'same' padding done by the zero-tap kernel rather than a
    padded copy (see :func:`_conv`), NCHW is as fast or faster than converting the input
    (batch 8, forward: 128 channels at 56x56, 7.3 ms against 9.7 ms through channels-last;
    1024 channels at 7x7, 5.0 ms against 6.8 ms). In training the conversion's
    backward adds a second transposing copy and NCHW wins at every channel count (batch 8,
    1024 channels at 7x7: 18 ms against 32 ms; batch 1, 32 -> 64 channels at 112x112: the
    naive NCHW composition 2.1 ms against 3.1 ms through channels-last).
    """
    if not (x.device.type == "cpu" and x.dtype in _FAST_DTYPES and x.dim() == n + 2):
        return False
    if _plain_requested():
        return False
    if n == 2 and (x.shape[1] >= 64 or _needs_grad(x, weight)):
        return _in_run_format(x, n) and not x.is_contiguous()
    if x.shape[0] == 1 and x.shape[1] >= 64:
        return _in_run_format(x, n) and not x.is_contiguous()
    return True


def _in_run_format(x: Tensor, n: int) -> bool:
    """Channels-last: ``(N, *spatial, C)`` in memory (for 1-D, ``(N, L, C)``)."""
    if n == 1:
        return x.transpose(1, 2).is_contiguous()
    return x.is_contiguous(memory_format=_CHANNELS_LAST[n])


def _enter(x: Tensor, n: int) -> Tensor:
    """``x`` in the run format (one copy at most)."""
    if n == 1:
        return x if _in_run_format(x, 1) else x.transpose(1, 2).contiguous().transpose(1, 2)
    return x.contiguous(memory_format=_CHANNELS_LAST[n])


def _caller_is_channels_last(x: Tensor, n: int) -> bool:
    return not x.is_contiguous() and _in_run_format(x, n)


def _leave(y: Tensor, x: Tensor, n: int) -> Tensor:
    """``y`` (run format) in the memory format of the caller's ``x``."""
    return y if _caller_is_channels_last(x, n) else y.contiguous()


def _pad_flat(pads: Pads) -> tuple[int, ...]:
    return tuple(p for pair in reversed(pads) for p in pair)


def _conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    n: int,
    stride: tuple[int, ...],
    spec: str | Pads,
    dilation: tuple[int, ...],
    groups: int,
    padding_mode: str,
    extend_kernel: bool = False,
) -> Tensor:
    """One convolution with Keras padding on a batched ``x``, in ``x``'s memory format.

    Symmetric zero padding stays inside the convolution. Asymmetric zero padding (Keras
    'same' at stride 2 on an even size: one row at the bottom) is, with ``extend_kernel``,
    turned into symmetric padding plus leading zero taps on the kernel: the same products
    with the input, with no padded copy of the input (cheap for a depthwise kernel). Other
    padding goes through ``F.pad``.
    """
    # int(): under tracing (ONNX export) sizes are traced tensors; the graph is shape-specific.
    spatial = tuple(int(size) for size in x.shape[-n:])
    if int(x.shape[1]) == 1 and x.stride(1) != math.prod(spatial):
        # A one-channel view of channels-last memory (stride 1 on the channel axis): torch
        # 2.13's oneDNN convolution reads it wrongly for some strides (e.g. (1, 3): errors of
        # order 1e32), while the same values in standard strides are right. A copy is cheap
        # for one channel.
        x = x.clone(memory_format=torch.contiguous_format)
    kernel_size = tuple(int(k) for k in weight.shape[-n:])
    inside, tapped, outside = _plan(spatial, kernel_size, tuple(stride), tuple(dilation), spec,
                                    padding_mode)
    conv = _CONV[n]
    if inside is not None:
        return conv(x, weight, bias, stride, inside, dilation, groups)
    if extend_kernel and tapped is not None:
        sym, taps = tapped
        return conv(x, torch.constant_pad_nd(weight, taps), bias, stride, sym, dilation, groups)
    if outside is not None:
        x = F.pad(x, outside, mode="constant" if padding_mode == "zeros" else padding_mode)
    return conv(x, weight, bias, stride, 0, dilation, groups)


def _needs_grad(x: Tensor, weight: Tensor | None) -> bool:
    """Training: the zero-tap kernel's backward costs more than the padded copy it saves."""
    return torch.is_grad_enabled() and (
        x.requires_grad or (weight is not None and weight.requires_grad))


def _depthwise_core(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    n: int,
    stride: tuple[int, ...],
    spec: str | Pads,
    dilation: tuple[int, ...],
    padding_mode: str,
    fast: bool,
) -> Tensor:
    """Depthwise step on a batched ``x`` (in the run format when ``fast``); same format out."""
    if fast and n == 1:
        # 1-D runs as 2-D channels-last with a 1 x k kernel: (N, C, 1, L) is a view.
        lifted = spec if isinstance(spec, str) else ((0, 0), *spec)
        y = _conv(x.unsqueeze(2), weight.unsqueeze(2), bias, n=2, stride=(1, *stride),
                  spec=lifted, dilation=(1, *dilation), groups=int(x.shape[1]),
                  padding_mode=padding_mode, extend_kernel=not _needs_grad(x, weight))
        return y.squeeze(2)
    # The zero-tap kernel pays on the CPU only: on CUDA a padded copy is cheap, and cuDNN's
    # depthwise kernels are fast for 3 x 3 but not for the 4 x 4 kernel it would make
    # (MobileNetV1 64 -> 128 channels at 112x112, batch 8, channels-last, on an H200: the layer
    # took 0.23 ms a call with it, 0.13 ms with F.pad).
    return _conv(x, weight, bias, n=n, stride=stride, spec=spec, dilation=dilation,
                 groups=int(x.shape[1]), padding_mode=padding_mode,
                 extend_kernel=(x.device.type == "cpu" and not _needs_grad(x, weight)
                                and (fast or not _plain_requested())))


def _pointwise_core(
    y: Tensor, weight: Tensor, bias: Tensor | None, *, n: int, fast: bool,
    contiguous_output: bool,
) -> Tensor:
    """1x1 convolution. On the fast path a channels-last ``y`` gives a channels-last result,
    or, with ``contiguous_output``, a contiguous (NCHW) one written directly by one batched
    matrix product (``W @ y[n]^T``), with no conversion pass."""
    if not fast or (n > 1 and not contiguous_output) or not _in_run_format(y, n):
        out = _CONV[n](y, weight, bias)
        return out.contiguous() if contiguous_output else out
    batch, channels = int(y.shape[0]), int(y.shape[1])
    spatial = tuple(int(size) for size in y.shape[2:])
    matrix = weight.reshape(weight.shape[0], channels)
    rows = y.movedim(1, -1).reshape(batch, -1, channels)  # (N, L, C), a view
    if contiguous_output:
        # bmm on the transposed view reads it in place (matmul would copy it first).
        expanded = matrix.expand(batch, -1, -1)
        if bias is None:
            out = torch.bmm(expanded, rows.transpose(1, 2))  # (N, F, L)
        else:
            out = torch.baddbmm(bias.view(1, -1, 1), expanded, rows.transpose(1, 2))
        return out.view(batch, -1, *spatial)
    if n == 1:
        return F.linear(rows, matrix, bias).transpose(1, 2)
    return _CONV[n](y, weight, bias)


def _check_weight(name: str, weight: Any, n: int) -> Tensor:
    if not isinstance(weight, Tensor):
        raise SepconvTypeError(f"`{name}` must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != n + 2:
        raise SepconvValueError(
            f"`{name}` must have {n + 2} dimensions (out_channels, in_channels / groups, "
            f"{_axes(n)}), got shape {tuple(weight.shape)}"
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
            f"{_axes(n)}), got {tuple(weight.shape)}"
        )
    _, stride, spec, dilation, padding_mode = _check_settings(
        n, tuple(weight.shape[2:]), stride, padding, dilation, padding_mode)
    channels = input.shape[-n - 1] if isinstance(input, Tensor) and input.dim() > n else 0
    if channels == 0 or weight.shape[0] % channels:
        raise SepconvValueError(
            f"`weight` must have C * depth_multiplier output channels for an input with C "
            f"channels, got weight {tuple(weight.shape)} for input "
            f"{tuple(input.shape) if isinstance(input, Tensor) else input!r}"
        )
    unbatched = _check_input(input, n, channels)
    x = input.unsqueeze(0) if unbatched else input
    fast = _fast(x, n, weight)
    y = _depthwise_core(_enter(x, n) if fast else x, weight, bias, n=n, stride=stride,
                        spec=spec, dilation=dilation, padding_mode=padding_mode, fast=fast)
    if fast:
        y = _leave(y, x, n)
    return y.squeeze(0) if unbatched else y


def depthwise_conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
            f"`depthwise_weight` must have shape (C * depth_multiplier, 1, {_axes(n)}), got "
            f"{tuple(depthwise_weight.shape)}"
        )
    if (pointwise_weight.shape[1] != depthwise_weight.shape[0]
            or any(k != 1 for k in pointwise_weight.shape[2:])):
        raise SepconvValueError(
            f"`pointwise_weight` must have shape (out_channels, {depthwise_weight.shape[0]}, "
            f"{', '.join('1' * n)}) to follow `depthwise_weight` "
            f"{tuple(depthwise_weight.shape)}, got {tuple(pointwise_weight.shape)}"
        )
    _, stride, spec, dilation, padding_mode = _check_settings(
        n, tuple(depthwise_weight.shape[2:]), stride, padding, dilation, padding_mode)
    channels = input.shape[-n - 1] if isinstance(input, Tensor) and input.dim() > n else 0
    if channels == 0 or depthwise_weight.shape[0] % channels:
        raise SepconvValueError(
            f"`depthwise_weight` must have C * depth_multiplier output channels for an input "
            f"with C channels, got {tuple(depthwise_weight.shape)} for input "
            f"{tuple(input.shape) if isinstance(input, Tensor) else input!r}"
        )
    unbatched = _check_input(input, n, channels)
    x = input.unsqueeze(0) if unbatched else input
    fast = _fast(x, n, depthwise_weight)
    y = _depthwise_core(_enter(x, n) if fast else x, depthwise_weight, depthwise_bias, n=n,
                        stride=stride, spec=spec, dilation=dilation, padding_mode=padding_mode,
                        fast=fast)
    y = _pointwise_core(y, pointwise_weight, bias, n=n, fast=fast,
                        contiguous_output=fast and not _caller_is_channels_last(x, n))
    return y.squeeze(0) if unbatched else y


def separable_conv1d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
    return _separable(1, input, depthwise_weight, pointwise_weight, bias, depthwise_bias,
                      stride, padding, dilation, padding_mode)


def separable_conv2d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
    return _separable(2, input, depthwise_weight, pointwise_weight, bias, depthwise_bias,
                      stride, padding, dilation, padding_mode)


def separable_conv3d(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    bias: Tensor | None = None,
    depthwise_bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
    return _separable(3, input, depthwise_weight, pointwise_weight, bias, depthwise_bias,
                      stride, padding, dilation, padding_mode)


# --------------------------------------------------------------------------------------------
# spatially separable
# --------------------------------------------------------------------------------------------
def _spatial_plan(
    spec: str | Pads,
    order: str,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings of the two passes; padding stays per-axis ('same' resolved at run time)."""
    kh, kw = kernel_size
    if isinstance(spec, str):
        col_spec: str | Pads = spec
        row_spec: str | Pads = spec
    else:
        col_spec = (spec[0], (0, 0))
        row_spec = ((0, 0), spec[1])
    column = {"kernel_size": (kh, 1), "stride": (stride[0], 1), "dilation": (dilation[0], 1),
              "spec": col_spec}
    row = {"kernel_size": (1, kw), "stride": (1, stride[1]), "dilation": (1, dilation[1]),
           "spec": row_spec}
    return (column, row) if order == "column_first" else (row, column)


def spatially_separable_conv2d(
    input: Tensor,
    column_weight: Tensor,
    row_weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
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
            f"{tuple(column_weight.shape)}")
    if row_weight.shape[2] != 1:
        raise SepconvValueError(
            f"`row_weight` must have shape (out, in / groups, 1, kw), got "
            f"{tuple(row_weight.shape)}")
    order = check_choice("order", order, ("column_first", "row_first"))
    kernel_size = (int(column_weight.shape[2]), int(row_weight.shape[3]))
    _, stride, spec, dilation, padding_mode = _check_settings(
        2, kernel_size, stride, padding, dilation, padding_mode)
    first_weight, second_weight = ((column_weight, row_weight) if order == "column_first"
                                   else (row_weight, column_weight))
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise SepconvValueError(f"`groups` must be a positive integer, got {groups!r}")
    channels = first_weight.shape[1] * groups
    unbatched = _check_input(input, 2, channels)
    if second_weight.shape[1] * groups != first_weight.shape[0]:
        raise SepconvValueError(
            f"the second pass's weight {tuple(second_weight.shape)} does not take the first "
            f"pass's {first_weight.shape[0]} channels with `groups`={groups}")
    first, second = _spatial_plan(spec, order, kernel_size, stride, dilation)
    x = input.unsqueeze(0) if unbatched else input
    fast = _fast(x, 2, first_weight)
    run = _enter(x, 2) if fast else x
    y = _conv(run, first_weight, None, n=2, stride=first["stride"], spec=first["spec"],
              dilation=first["dilation"], groups=groups, padding_mode=padding_mode)
    y = _conv(y, second_weight, bias, n=2, stride=second["stride"], spec=second["spec"],
              dilation=second["dilation"], groups=groups, padding_mode=padding_mode)
    if fast:
        y = _leave(y, x, 2)
    return y.squeeze(0) if unbatched else y
