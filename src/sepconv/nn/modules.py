"""Layers: depthwise, depthwise separable (1-D, 2-D, 3-D) and spatially separable convolutions.

The layers follow ``torch.nn.Conv2d`` (``in_channels``, ``out_channels``, ``kernel_size``,
``stride``, ``padding``, ``dilation``, ``bias``, ``padding_mode``, ``device``, ``dtype``) plus
Keras (``depth_multiplier``, ``padding='valid'|'same'`` exact for every stride, the bias on the
pointwise step). Their convolutions are real ``torch.nn.ConvNd`` modules (the depthwise layers
subclass them), so FLOP counters, ONNX export, forward hooks and model surgery see standard
convolutions:

- :class:`DepthwiseConv2d` *is* an ``nn.Conv2d`` with ``groups=in_channels`` whose forward adds
  Keras padding and the fast memory format.
- :class:`SeparableConv2d` has the children ``depthwise`` (a :class:`DepthwiseConv2d`),
  optionally ``norm`` and ``act``, and ``pointwise`` (an ``nn.Conv2d`` 1x1), in that order.
- :class:`SpatiallySeparableConv2d` has the children ``column`` (``kh x 1``) and ``row``
  (``1 x kw``), registered in the order they run.

The ``padding`` attribute is ``'valid'``, ``'same'`` (resolved from the input size at every
call, as TensorFlow does), a tuple of ints (symmetric, as ``nn.Conv2d``) or a tuple of
``(before, after)`` pairs.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .. import cost as _cost
from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_positive_int,
    check_shape,
)
from . import functional as SF

__all__ = [
    "PointwiseConv1d",
    "PointwiseConv2d",
    "PointwiseConv3d",
    "DepthwiseConv1d",
    "DepthwiseConv2d",
    "DepthwiseConv3d",
    "SeparableConv1d",
    "SeparableConv2d",
    "SeparableConv3d",
    "SpatiallySeparableConv2d",
]


def _check_multiplier(value: Any) -> int:
    if (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not isinstance(value, numbers.Integral)):
        raise SepconvValueError(f"`depth_multiplier` must be a positive integer, got {value!r}")
    return check_positive_int("depth_multiplier", value)


def _padding_attribute(spec: str | SF.Pads) -> str | tuple:
    """``nn.Conv2d``-style ``padding``: a string, symmetric ints, or (before, after) pairs."""
    if isinstance(spec, str):
        return spec
    if all(before == after for before, after in spec):
        return tuple(before for before, _ in spec)
    return tuple(spec)


def _weight_and_bias(module: nn.Module) -> tuple[Tensor, Tensor | None]:
    """A convolution's weight and bias, read from its parameter dict when they are plain
    parameters (``nn.Module.__getattr__`` costs about a microsecond a call), else through the
    attribute (parametrized weights, e.g. ``torch.nn.utils.parametrizations.weight_norm``)."""
    params = module._parameters
    weight = params.get("weight")
    if weight is None:
        weight = module.weight
    bias = params["bias"] if "bias" in params else module.bias
    return weight, bias  # type: ignore[return-value]


def _spec_from_attribute(padding: Any, n: int) -> str | SF.Pads:
    if isinstance(padding, str):
        return padding
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in padding)
    return tuple(padding)


def _input_shape(input_shape: Any, n: int, channels: int) -> tuple[tuple[int, ...], int]:
    """torch's ``(N, C, *spatial)`` or ``(C, *spatial)`` -> cost's ``(*spatial, C)`` and N."""
    shape = check_shape("input_shape", input_shape, (n + 1, n + 2),
                        what="sizes (N, C, *spatial) or (C, *spatial)")
    batch = shape[0] if len(shape) == n + 2 else 1
    if shape[-n - 1] != channels:
        raise SepconvValueError(
            f"`input_shape` must have {channels} channels (torch's (N, C, *spatial) order), got "
            f"{shape}"
        )
    return (*shape[-n:], shape[-n - 1]), batch


class _KerasPaddingConv:
    """Mixin for an ``nn.ConvNd`` subclass: Keras padding, checked input, fast memory format."""

    _n: int

    def _setup(self, spec: str | SF.Pads, padding_mode: str) -> None:
        self.padding = _padding_attribute(spec)  # type: ignore[assignment]
        self.padding_mode = padding_mode

    def forward(self, input: Tensor, fast: bool | None = None) -> Tensor:
        """Convolve ``input`` ``(N, C, *spatial)`` or ``(C, *spatial)``; same memory format out.

        ``fast`` is for a parent layer that already chose the execution path for a batched
        ``input`` (and entered its memory format): the result then stays in that format.
        """
        n = self._n
        if fast is not None:
            return self._run(input, fast)
        unbatched = SF._check_input(input, n, self.in_channels)  # type: ignore[attr-defined]
        x = input.unsqueeze(0) if unbatched else input
        fast = SF._fast(x, n, self.weight)  # type: ignore[attr-defined]
        y = self._run(SF._enter(x, n) if fast else x, fast)
        if fast:
            y = SF._leave(y, x, n)
        return y.squeeze(0) if unbatched else y

    def _run(self, x: Tensor, fast: bool) -> Tensor:
        return SF._conv(x, self.weight, self.bias,  # type: ignore[attr-defined]
                        n=self._n, stride=self.stride,  # type: ignore[attr-defined]
                        spec=_spec_from_attribute(self.padding, self._n),  # type: ignore
                        dilation=self.dilation,  # type: ignore[attr-defined]
                        groups=self.groups,  # type: ignore[attr-defined]
                        padding_mode=self.padding_mode)  # type: ignore[attr-defined]


class _DepthwiseConvNd(_KerasPaddingConv):
    def __init__(
        self,
        in_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = "valid",
        dilation: Any = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        in_channels = check_positive_int("in_channels", in_channels)
        multiplier = _check_multiplier(depth_multiplier)
        kernel_size, stride, spec, dilation, padding_mode = SF._check_settings(
            self._n, kernel_size, stride, padding, dilation, padding_mode)
        super().__init__(  # type: ignore[call-arg]
            in_channels, in_channels * multiplier, kernel_size, stride, 0, dilation,
            groups=in_channels, bias=bool(bias), padding_mode="zeros", device=device,
            dtype=dtype)
        self.depth_multiplier = multiplier
        self._setup(spec, padding_mode)

    def _run(self, x: Tensor, fast: bool) -> Tensor:
        weight, bias = _weight_and_bias(self)
        return SF._depthwise_core(
            x, weight, bias, n=self._n, stride=self.stride,  # type: ignore
            spec=_spec_from_attribute(self.padding, self._n),  # type: ignore[attr-defined]
            dilation=self.dilation, padding_mode=self.padding_mode,  # type: ignore
            fast=fast)

    def cost(self, input_shape: Any) -> _cost.Cost:
        """Exact cost for an input of torch shape ``(N, C, *spatial)`` or ``(C, *spatial)``."""
        shape, batch = _input_shape(input_shape, self._n, self.in_channels)  # type: ignore
        return _cost.depthwise(
            shape, self.kernel_size, depth_multiplier=self.depth_multiplier,  # type: ignore
            stride=self.stride, padding=_spec_from_attribute(self.padding, self._n),  # type: ignore
            dilation=self.dilation, bias=self.bias is not None, batch=batch)  # type: ignore

    def load_keras_weights(self, weights: Any) -> _DepthwiseConvNd:
        """Copy weights from Keras's ``DepthwiseConvND.get_weights()``; see :mod:`.keras`."""
        from .keras import load_keras_weights

        return load_keras_weights(self, weights)  # type: ignore[arg-type]

    def to_keras_weights(self) -> list[Any]:
        """Weights in the layout of Keras's ``DepthwiseConvND.get_weights()``."""
        from .keras import to_keras_weights

        return to_keras_weights(self)  # type: ignore[arg-type]


_DEPTHWISE_DOC = """{n}-D depthwise convolution with Keras semantics (Keras ``DepthwiseConv{k}``).

    An ``nn.Conv{n}d`` with ``groups=in_channels`` and ``out_channels = in_channels *
    depth_multiplier`` (output channel ``c * M + m`` is input channel ``c`` with its ``m``-th
    kernel), plus Keras/TensorFlow-exact ``padding='same'`` for every stride and the fast
    memory format on CPU (see :mod:`sepconv.nn.functional`).

    Parameters
    ----------
    in_channels : int
    kernel_size : int or tuple of {n} ints
    stride : int or tuple of {n} ints
    padding : {{'valid', 'same'}}, int, tuple of ints or tuple of (before, after) pairs
    dilation : int or tuple of {n} ints
    depth_multiplier : int
        Kernels per input channel (``M``).
    bias : bool
        Learnable bias ``(in_channels * M,)`` (default True, as Keras).
    padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}
    device, dtype
        Of the parameters.

    Shape
    -----
    ``(N, C, {axes})`` or ``(C, {axes})`` -> ``(N, C * M, {axes_out})``.

    Examples
    --------
    >>> import torch
    >>> from sepconv.nn import DepthwiseConv{n}d
    >>> layer = DepthwiseConv{n}d(8, 3, stride=2, padding="same", depth_multiplier=2)
    >>> layer(torch.randn(1, 8, {example})).shape
    torch.Size([1, 16, {example_out}])
    >>> layer.cost((1, 8, {example})).multiplications
    {mults}
    """


class DepthwiseConv1d(_DepthwiseConvNd, nn.Conv1d):
    _n = 1
    __doc__ = _DEPTHWISE_DOC.format(n=1, k="1D", axes="L", axes_out="L_out", example="9",
                                    example_out="5", mults=16 * 3 * 5)


class DepthwiseConv2d(_DepthwiseConvNd, nn.Conv2d):
    _n = 2
    __doc__ = _DEPTHWISE_DOC.format(n=2, k="2D", axes="H, W", axes_out="H_out, W_out",
                                    example="9, 8", example_out="5, 4",
                                    mults=16 * 9 * 5 * 4)


class DepthwiseConv3d(_DepthwiseConvNd, nn.Conv3d):
    _n = 3
    __doc__ = _DEPTHWISE_DOC.format(n=3, k="3D (Keras has none)", axes="D, H, W",
                                    axes_out="D_out, H_out, W_out", example="4, 9, 8",
                                    example_out="2, 5, 4", mults=16 * 27 * 2 * 5 * 4)


class _PointwiseConvNd:
    """Mixin for the 1x1 ``nn.ConvNd`` of a separable layer (the fast CPU path, see forward)."""

    _n: int

    def forward(self, input: Tensor, contiguous_output: bool = False,
                fast: bool | None = None) -> Tensor:
        """1x1 convolution of a batched ``input``.

        A channels-last ``input`` gives a channels-last result on the CPU, or a contiguous
        one with ``contiguous_output`` (written directly by a batched matrix product).
        ``fast``: the parent layer's choice of execution path, when it made one.
        """
        if fast is None:
            fast = SF._fast(input, self._n)
        weight, bias = _weight_and_bias(self)  # type: ignore[arg-type]
        return SF._pointwise_core(input, weight, bias, n=self._n, fast=fast,
                                  contiguous_output=contiguous_output)


class PointwiseConv1d(_PointwiseConvNd, nn.Conv1d):
    """The 1x1 ``nn.Conv1d`` of :class:`SeparableConv1d` (fast on channels-last inputs)."""

    _n = 1


class PointwiseConv2d(_PointwiseConvNd, nn.Conv2d):
    """The 1x1 ``nn.Conv2d`` of :class:`SeparableConv2d` (fast on channels-last inputs).

    Examples
    --------
    >>> import torch
    >>> conv = PointwiseConv2d(8, 4, 1)
    >>> x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    >>> conv(x, contiguous_output=True).is_contiguous()
    True
    """

    _n = 2


class PointwiseConv3d(_PointwiseConvNd, nn.Conv3d):
    """The 1x1 ``nn.Conv3d`` of :class:`SeparableConv3d` (fast on channels-last inputs)."""

    _n = 3


# --------------------------------------------------------------------------------------------
def _make_norm(norm_layer: Any, channels: int) -> nn.Module | None:
    if norm_layer is None:
        return None
    if not callable(norm_layer):
        raise SepconvTypeError(
            f"`norm_layer` must be None or a callable taking the channel count (such as "
            f"nn.BatchNorm2d), got {norm_layer!r}")
    module = norm_layer(channels)
    if not isinstance(module, nn.Module):
        raise SepconvTypeError(
            f"`norm_layer` must return an nn.Module, got {type(module).__name__}")
    return module


def _make_activation(activation: Any) -> nn.Module | None:
    if activation is None or isinstance(activation, nn.Module):
        return activation
    if not callable(activation):
        raise SepconvTypeError(
            f"`activation` must be None, an nn.Module or a callable returning one (such as "
            f"nn.ReLU), got {activation!r}")
    module = activation()
    if not isinstance(module, nn.Module):
        raise SepconvTypeError(
            f"`activation` must return an nn.Module, got {type(module).__name__}")
    return module


class _SeparableConvNd(nn.Module):
    _n: int
    _depthwise_cls: type[nn.Module]
    _conv_cls: type[nn.Module]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = "valid",
        dilation: Any = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        depthwise_bias: bool = False,
        padding_mode: str = "zeros",
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: nn.Module | Callable[[], nn.Module] | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        multiplier = _check_multiplier(depth_multiplier)
        self.depthwise = self._depthwise_cls(
            in_channels, kernel_size, stride, padding, dilation, multiplier,
            bias=depthwise_bias, padding_mode=padding_mode, device=device, dtype=dtype)
        norm = _make_norm(norm_layer, in_channels * multiplier)
        act = _make_activation(activation)
        if norm is not None:
            self.norm = norm
        if act is not None:
            self.act = act
        self.pointwise = self._conv_cls(in_channels * multiplier, out_channels, 1, bias=bool(bias),
                                        device=device, dtype=dtype)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth_multiplier = multiplier

    # nn.Conv2d's attributes, read from the depthwise step (which owns them, as in Keras).
    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.depthwise.kernel_size  # type: ignore[return-value]

    @property
    def stride(self) -> tuple[int, ...]:
        return self.depthwise.stride  # type: ignore[return-value]

    @property
    def padding(self) -> str | tuple:
        return self.depthwise.padding  # type: ignore[return-value]

    @property
    def dilation(self) -> tuple[int, ...]:
        return self.depthwise.dilation  # type: ignore[return-value]

    @property
    def padding_mode(self) -> str:
        return self.depthwise.padding_mode  # type: ignore[return-value]

    def forward(self, input: Tensor) -> Tensor:
        """Depthwise, then norm and activation when given, then pointwise.

        On the CPU the path is chosen once per call (:mod:`sepconv.nn.functional`): the
        caller's memory format, or channels-last inside for an NCHW input with few channels in
        inference, the pointwise step then writing the NCHW result directly.
        """
        n = self._n
        modules = self._modules  # plain dict lookups: nn.Module.__getattr__ is slow per call
        depthwise, pointwise = modules["depthwise"], modules["pointwise"]
        unbatched = SF._check_input(input, n, self.in_channels)
        x = input.unsqueeze(0) if unbatched else input
        ours = isinstance(depthwise, _DepthwiseConvNd)
        fast = SF._fast(x, n, _weight_and_bias(depthwise)[0] if ours
                        else getattr(depthwise, "weight", None))
        if ours:
            y = depthwise(SF._enter(x, n) if fast else x, fast=fast)
        else:  # replaced by model surgery: a plain module
            y = depthwise(SF._enter(x, n) if fast else x)
        norm, act = modules.get("norm"), modules.get("act")
        if norm is not None:
            y = norm(y)
        if act is not None:
            y = act(y)
        if isinstance(pointwise, _PointwiseConvNd):
            y = pointwise(y, contiguous_output=fast and not SF._caller_is_channels_last(x, n),
                          fast=fast)
        else:  # replaced by model surgery: a plain module
            y = pointwise(y)
            if fast:
                y = SF._leave(y, x, n)
        return y.squeeze(0) if unbatched else y

    def cost(self, input_shape: Any) -> _cost.Cost:
        """Exact cost (:func:`sepconv.cost.separable`) for a torch shape ``(N, C, *spatial)``.

        Norm and activation, when present, are not counted.
        """
        shape, batch = _input_shape(input_shape, self._n, self.in_channels)
        return _cost.separable(
            shape, self.kernel_size, self.out_channels, depth_multiplier=self.depth_multiplier,
            stride=self.stride, padding=_spec_from_attribute(self.padding, self._n),
            dilation=self.dilation, bias=self.pointwise.bias is not None,
            depthwise_bias=self.depthwise.bias is not None, batch=batch)

    def load_keras_weights(self, weights: Any) -> _SeparableConvNd:
        """Copy weights from Keras's ``SeparableConvND.get_weights()``; see :mod:`.keras`."""
        from .keras import load_keras_weights

        return load_keras_weights(self, weights)  # type: ignore[arg-type]

    def to_keras_weights(self) -> list[Any]:
        """Weights in the layout of Keras's ``SeparableConvND.get_weights()``."""
        from .keras import to_keras_weights

        return to_keras_weights(self)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, "
                f"depth_multiplier={self.depth_multiplier}")


_SEPARABLE_DOC = """{n}-D depthwise separable convolution (Keras ``SeparableConv{k}``).

    A :class:`DepthwiseConv{n}d` (which owns ``stride``, ``padding`` and ``dilation``), an
    optional norm and activation, then a 1x1 ``nn.Conv{n}d`` mixing channels (Howard et al. 2017,
    "MobileNets"; Chollet 2017, "Xception"). Children: ``depthwise``, ``norm``, ``act``,
    ``pointwise``. On CPU both steps run channels-last and the output comes back in the
    caller's memory format.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of {n} ints
    stride : int or tuple of {n} ints
    padding : {{'valid', 'same'}}, int, tuple of ints or tuple of (before, after) pairs
        ``'same'`` is Keras/TensorFlow-exact for every stride.
    dilation : int or tuple of {n} ints
    depth_multiplier : int
        Depthwise kernels per input channel (``M``).
    bias : bool
        Bias of the pointwise step (default True, as Keras).
    depthwise_bias : bool
        Bias of the depthwise step (default False; Keras has none).
    padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}
    norm_layer : callable, optional
        Called with ``in_channels * M``, e.g. ``nn.BatchNorm{n}d``.
    activation : nn.Module or callable returning one, optional
        E.g. ``nn.ReLU``.
    device, dtype
        Of the parameters.

    Shape
    -----
    ``(N, C, {axes})`` or ``(C, {axes})`` -> ``(N, out_channels, {axes_out})``.

    Examples
    --------
    >>> import torch
    >>> from sepconv.nn import SeparableConv{n}d
    >>> layer = SeparableConv{n}d(3, 256, 5)
    >>> layer(torch.randn(1, 3, {example})).shape
    torch.Size([1, 256, {example_out}])
    >>> layer.cost((1, 3, {example})).multiplications
    {mults}
    """


class SeparableConv1d(_SeparableConvNd):
    _n = 1
    _depthwise_cls = DepthwiseConv1d
    _conv_cls = PointwiseConv1d
    __doc__ = _SEPARABLE_DOC.format(n=1, k="1D", axes="L", axes_out="L_out", example="12",
                                    example_out="8", mults=3 * 5 * 8 + 256 * 3 * 8)


class SeparableConv2d(_SeparableConvNd):
    _n = 2
    _depthwise_cls = DepthwiseConv2d
    _conv_cls = PointwiseConv2d
    __doc__ = _SEPARABLE_DOC.format(n=2, k="2D", axes="H, W", axes_out="H_out, W_out",
                                    example="12, 12", example_out="8, 8", mults=53952)


class SeparableConv3d(_SeparableConvNd):
    _n = 3
    _depthwise_cls = DepthwiseConv3d
    _conv_cls = PointwiseConv3d
    __doc__ = _SEPARABLE_DOC.format(n=3, k="3D (Keras has none)", axes="D, H, W",
                                    axes_out="D_out, H_out, W_out", example="6, 6, 6",
                                    example_out="2, 2, 2",
                                    mults=3 * 125 * 8 + 256 * 3 * 8)


# --------------------------------------------------------------------------------------------
class _PassConv2d(_KerasPaddingConv, nn.Conv2d):
    """One 1-D pass (``kh x 1`` or ``1 x kw``) of a spatially separable convolution."""

    _n = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], spec: str | SF.Pads, dilation: tuple[int, int],
                 groups: int, bias: bool, padding_mode: str, device: Any, dtype: Any) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0,  # type: ignore
                         dilation, groups=groups, bias=bias, padding_mode="zeros",
                         device=device, dtype=dtype)
        self._setup(spec, padding_mode)


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
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = "valid",
        dilation: Any = 1,
        intermediate_channels: int | None = None,
        order: str = "column_first",
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        mid = in_channels if intermediate_channels is None else check_positive_int(
            "intermediate_channels", intermediate_channels)
        groups = check_positive_int("groups", groups)
        order = check_choice("order", order, ("column_first", "row_first"))
        kernel_size, stride, spec, dilation, padding_mode = SF._check_settings(
            2, kernel_size, stride, padding, dilation, padding_mode)
        for name, value in (("in_channels", in_channels), ("intermediate_channels", mid),
                            ("out_channels", out_channels)):
            if value % groups:
                raise SepconvValueError(f"`groups` ({groups}) must divide `{name}` ({value})")
        first, second = SF._spatial_plan(spec, order, kernel_size, stride, dilation)
        common = {"groups": groups, "padding_mode": padding_mode, "device": device,
                  "dtype": dtype}
        passes = [
            (first, in_channels, mid, False),
            (second, mid, out_channels, bool(bias)),
        ]
        for plan, cin, cout, has_bias in passes:
            module = _PassConv2d(cin, cout, plan["kernel_size"], plan["stride"], plan["spec"],
                                 plan["dilation"], bias=has_bias, **common)
            self.add_module("column" if plan["kernel_size"][1] == 1 else "row", module)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.intermediate_channels = mid
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = _padding_attribute(spec)
        self.dilation = dilation
        self.groups = groups
        self.order = order
        self.padding_mode = padding_mode

    def forward(self, input: Tensor) -> Tensor:
        """The two passes, channels-last on CPU, output in the caller's memory format."""
        unbatched = SF._check_input(input, 2, self.in_channels)
        x = input.unsqueeze(0) if unbatched else input
        first, second = ((self.column, self.row) if self.order == "column_first"
                         else (self.row, self.column))
        fast = SF._fast(x, 2, first.weight)
        y = second(first(SF._enter(x, 2) if fast else x))
        if fast:
            y = SF._leave(y, x, 2)
        return y.squeeze(0) if unbatched else y

    def cost(self, input_shape: Any) -> _cost.Cost:
        """Exact cost (:func:`sepconv.cost.spatially_separable`) for ``(N, C, H, W)``."""
        shape, batch = _input_shape(input_shape, 2, self.in_channels)
        second = self.row if self.order == "column_first" else self.column
        return _cost.spatially_separable(
            shape, self.kernel_size, self.out_channels,
            intermediate_channels=self.intermediate_channels, order=self.order,
            stride=self.stride, padding=_spec_from_attribute(self.padding, 2),
            dilation=self.dilation, groups=self.groups, bias=second.bias is not None,
            batch=batch)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, "
                f"intermediate_channels={self.intermediate_channels}, order={self.order!r}")
