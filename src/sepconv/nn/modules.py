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
- :class:`SpatiallySeparableConv2d` (in ``sepconv.nn._spatial``, on these bases) has the
  children ``column`` (``kh x 1``) and ``row`` (``1 x kw``), registered in the order they run.

The ``padding`` attribute is ``'valid'``, ``'same'`` (as TensorFlow: from the input size when
the stride makes it depend on it), a tuple of ints (symmetric, as ``nn.Conv2d``) or a tuple of
``(before, after)`` pairs. Every convolution with Keras padding derives from
:class:`KerasPaddingConv`, which resolves the padding once when the layer is built
(:class:`sepconv.padding.ConvPadding`) and declares it to readers of layers
(:mod:`sepconv.convert`, :mod:`sepconv.models.inference`, :func:`sepconv.profile`) through
``keras_padding`` (:func:`sepconv.padding.padding_of`). The layers and the functions of
:mod:`sepconv.nn.functional` run through the same door, ``sepconv.nn._execution``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .. import cost as _cost
from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_positive_int,
    check_shape,
)
from ..padding import ConvPadding, IntOrInts, PaddingLike, conv_padding
from . import _autotune
from . import _execution as ex
from . import keras as _keras

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
]


def __getattr__(name: str) -> Any:
    # the spatially separable layer has its own module (``_spatial``, which builds on the
    # base classes here); it stays reachable under its old path, for pickles and imports
    if name in ("SpatiallySeparableConv2d", "_PassConv2d"):
        from . import _spatial

        return getattr(_spatial, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_multiplier(value: Any) -> int:
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not isinstance(value, numbers.Integral)
    ):
        raise SepconvValueError(f"`depth_multiplier` must be a positive integer, got {value!r}")
    return check_positive_int("depth_multiplier", value)


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


def _input_shape(input_shape: Any, n: int, channels: int) -> tuple[tuple[int, ...], int]:
    """torch's ``(N, C, *spatial)`` or ``(C, *spatial)`` -> cost's ``(*spatial, C)`` and N."""
    shape = check_shape(
        "input_shape", input_shape, (n + 1, n + 2), what="sizes (N, C, *spatial) or (C, *spatial)"
    )
    batch = shape[0] if len(shape) == n + 2 else 1
    if shape[-n - 1] != channels:
        raise SepconvValueError(
            f"`input_shape` must have {channels} channel{'s' * (channels != 1)} "
            f"(torch's (N, C, *spatial) order), got "
            f"{shape}"
        )
    return (*shape[-n:], shape[-n - 1]), batch


class KerasPaddingConv:
    """Base (mixin before ``nn.ConvNd``) of every convolution with Keras padding.

    ``padding`` is ``'valid'``, ``'same'`` (TensorFlow/Keras-exact for every stride), symmetric
    ints or ``(before, after)`` pairs, with any ``padding_mode``; it is resolved once, when the
    layer is built or its ``padding``/``padding_mode`` is set
    (:func:`sepconv.padding.conv_padding`, as timm's ``get_padding_value``), and ``forward``
    only runs it. The protocol readers of layers follow: ``keras_padding`` (``'valid'``,
    ``'same'`` or the pairs, :func:`sepconv.padding.padding_of`) and ``padding_mode``.

    Subclasses: :class:`DepthwiseConv1d`/``2d``/``3d``, the passes of
    :class:`SpatiallySeparableConv2d`, ``sepconv.models.Conv2dSame``. ``_fast_path``: whether an
    NCHW input may run channels-last inside (the depthwise and pass convolutions; a full
    convolution stays in the caller's format).
    """

    _n: int
    _fast_path: bool = True
    _padding: ConvPadding

    def _set_padding(self, padding: Any, padding_mode: str) -> None:
        self._use_padding(
            conv_padding(
                self.kernel_size,
                self.stride,
                padding,
                self.dilation,  # type: ignore[attr-defined]
                padding_mode,
                n=self._n,
            )
        )

    def _use_padding(self, policy: ConvPadding) -> None:
        self.__dict__["_padding"] = policy
        # Mirrored in the instance dict for nn.ConvNd.extra_repr, which formats with it.
        self.__dict__["padding"] = policy.attribute
        self.__dict__["padding_mode"] = policy.mode

    @property
    def padding(self) -> Any:  # type: ignore[override]
        """``'valid'``, ``'same'``, symmetric ints or ``(before, after)`` pairs per axis."""
        policy = self.__dict__.get("_padding")
        return self.__dict__.get("_torch_padding", 0) if policy is None else policy.attribute

    @padding.setter
    def padding(self, value: Any) -> None:
        if "_padding" not in self.__dict__:  # nn.ConvNd.__init__: ours is set right after
            self.__dict__["_torch_padding"] = value
            return
        self._set_padding(value, self._padding.mode)

    @property
    def padding_mode(self) -> str:
        """``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``."""
        policy = self.__dict__.get("_padding")
        return "zeros" if policy is None else policy.mode

    @padding_mode.setter
    def padding_mode(self, value: str) -> None:
        if "_padding" in self.__dict__:
            self._set_padding(self._padding.spec, value)

    @property
    def keras_padding(self) -> str | tuple[tuple[int, int], ...]:
        """The padding in Keras terms: ``'valid'``, ``'same'`` or ``(before, after)`` pairs."""
        return self._padding.spec

    def __getstate__(self) -> dict:
        """Pickle without the per-call caches (``sepconv.nn._autotune.CACHES``)."""
        return _autotune.without_caches(super().__getstate__())  # type: ignore[misc]

    def __setstate__(self, state: dict) -> None:
        """Unpickle, resolving the padding of a layer pickled before it was kept resolved."""
        super().__setstate__(state)  # type: ignore[misc]
        if "_padding" not in self.__dict__:
            padding = "same" if state.get("_dynamic") else state.get("padding", 0)
            self._set_padding(padding, state.get("padding_mode", "zeros"))

    def forward(self, input: Tensor, fast: bool | None = None) -> Tensor:
        """Convolve ``input`` ``(N, C, *spatial)`` or ``(C, *spatial)``; same memory format out.

        ``fast`` is for a parent layer that already chose the execution path for a batched
        ``input`` (and entered its memory format): the result then stays in that format.
        """
        if fast is None and ex.on_device(input, self._n, self.in_channels):  # type: ignore
            # a batched GPU input: no route to choose, no format to change
            if type(self)._run is _DepthwiseConvNd._run and ex.unobserved():
                weight, bias = _weight_and_bias(self)
                return ex.in_callers_format(
                    ex.device_conv(input, weight, bias, self._padding, self.groups, self._n, self),
                    input,
                )
            return ex.in_callers_format(self._named_run(input, False), input)
        if fast is not None:
            return self._named_run(input, fast)
        policy = self._depthwise_padding()
        if policy is not None and self._n > 1:
            return _autotune.tuned_call(self, input, self._forward, policy.mode == "zeros")
        return self._forward(input)

    def _named_run(self, input: Tensor, fast: bool) -> Tensor:
        """:meth:`_run`, an export refusal naming the layer."""
        try:
            return self._run(input, fast)
        except ex.ExportRefused as error:  # name the layer (no cost unless raised)
            raise ex.ExportRefused(f"{type(self).__name__}({self.extra_repr()}): {error}") from None

    def _forward(self, input: Tensor) -> Tensor:
        try:
            weight = _weight_and_bias(self)[0] if self._fast_path else None  # type: ignore
            run, x, fast, unbatched = ex.begin(
                input,
                self._n,
                self.in_channels,  # type: ignore
                weight,
                allow_fast=self._fast_path,
                depthwise=self._depthwise_padding(),
            )
            return ex.end(self._run(run, fast), x, self._n, fast, unbatched)
        except ex.ExportRefused as error:  # name the layer (no cost unless raised)
            raise ex.ExportRefused(f"{type(self).__name__}({self.extra_repr()}): {error}") from None

    def _depthwise_padding(self) -> ConvPadding | None:
        """The padding, for a depthwise convolution (whose step may run the native kernel)."""
        return None

    def _run(self, x: Tensor, fast: bool) -> Tensor:
        weight, bias = _weight_and_bias(self)  # type: ignore[arg-type]
        return ex.conv(
            x,
            weight,
            bias,
            self._padding,
            self.groups,  # type: ignore[attr-defined]
            self._n,
            is_fast=fast,
            owner=self,
        )


class _DepthwiseConvNd(KerasPaddingConv):
    _keras_layout = "depthwise"

    def __init__(
        self,
        in_channels: int,
        kernel_size: IntOrInts,
        stride: IntOrInts = 1,
        padding: PaddingLike = "valid",
        dilation: IntOrInts = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        in_channels = check_positive_int("in_channels", in_channels)
        multiplier = _check_multiplier(depth_multiplier)
        policy = conv_padding(kernel_size, stride, padding, dilation, padding_mode, n=self._n)
        super().__init__(  # type: ignore[call-arg]
            in_channels,
            in_channels * multiplier,
            policy.kernel_size,
            policy.stride,
            0,
            policy.dilation,
            groups=in_channels,
            bias=bool(bias),
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )
        self.depth_multiplier = multiplier
        self._use_padding(policy)

    def _depthwise_padding(self) -> ConvPadding | None:
        return self._padding

    def _run(self, x: Tensor, fast: bool) -> Tensor:
        weight, bias = _weight_and_bias(self)
        return ex.depthwise(x, weight, bias, self._padding, self._n, fast, self)

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost for an input of torch shape ``(N, C, *spatial)`` or ``(C, *spatial)``."""
        shape, batch = _input_shape(input_shape, self._n, self.in_channels)  # type: ignore
        return _cost.depthwise(
            shape,
            self.kernel_size,
            depth_multiplier=self.depth_multiplier,  # type: ignore
            stride=self.stride,
            padding=self.keras_padding,  # type: ignore[attr-defined]
            dilation=self.dilation,
            bias=self.bias is not None,
            batch=batch,
        )  # type: ignore

    def load_keras_weights(self, weights: Any) -> _DepthwiseConvNd:
        """Copy weights from Keras's ``DepthwiseConvND.get_weights()``; see :mod:`.keras`."""
        return _keras.load_keras_weights(self, weights)  # type: ignore[return-value]

    def to_keras_weights(self) -> list[Any]:
        """Weights in the layout of Keras's ``DepthwiseConvND.get_weights()``."""
        return _keras.to_keras_weights(self)  # type: ignore[arg-type]


_DEPTHWISE_DOC = """{n}-D depthwise convolution with Keras semantics ({keras}).

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
    ``(N, C, {axes})`` -> ``(N, C * M, {axes_out})``; an unbatched ``(C, {axes})`` ->
    ``(C * M, {axes_out})``.

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
    __doc__ = _DEPTHWISE_DOC.format(
        n=1,
        keras="Keras ``DepthwiseConv1D``",
        axes="L",
        axes_out="L_out",
        example="9",
        example_out="5",
        mults=16 * 3 * 5,
    )


class DepthwiseConv2d(_DepthwiseConvNd, nn.Conv2d):
    _n = 2
    __doc__ = _DEPTHWISE_DOC.format(
        n=2,
        keras="Keras ``DepthwiseConv2D``",
        axes="H, W",
        axes_out="H_out, W_out",
        example="9, 8",
        example_out="5, 4",
        mults=16 * 9 * 5 * 4,
    )


class DepthwiseConv3d(_DepthwiseConvNd, nn.Conv3d):
    _n = 3
    __doc__ = _DEPTHWISE_DOC.format(
        n=3,
        keras="Keras has no 3-D one",
        axes="D, H, W",
        axes_out="D_out, H_out, W_out",
        example="4, 9, 8",
        example_out="2, 5, 4",
        mults=16 * 27 * 2 * 5 * 4,
    )


class _PointwiseConvNd:
    """Mixin for the 1x1 ``nn.ConvNd`` of a separable layer (the fast CPU path, see forward)."""

    _n: int
    #: A 1x1 convolution pads nothing (the protocol of :func:`sepconv.padding.padding_of`).
    keras_padding = "valid"

    def forward(
        self, input: Tensor, contiguous_output: bool = False, fast: bool | None = None
    ) -> Tensor:
        """1x1 convolution of a batched ``input``.

        A channels-last ``input`` gives a channels-last result on the CPU, or a contiguous
        one with ``contiguous_output`` (written directly by a batched matrix product).
        ``fast``: the parent layer's choice of execution path, when it made one.
        """
        if fast is None:
            fast = ex.fast(input, self._n)
        weight, bias = _weight_and_bias(self)  # type: ignore[arg-type]
        return ex.pointwise(input, weight, bias, self._n, fast, contiguous_output)


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
            f"nn.BatchNorm2d), got {norm_layer!r}"
        )
    module = norm_layer(channels)
    if not isinstance(module, nn.Module):
        raise SepconvTypeError(
            f"`norm_layer` must return an nn.Module, got {type(module).__name__}"
        )
    return module


def _make_activation(activation: Any) -> nn.Module | None:
    if activation is None or isinstance(activation, nn.Module):
        return activation
    if not callable(activation):
        raise SepconvTypeError(
            f"`activation` must be None, an nn.Module or a callable returning one (such as "
            f"nn.ReLU), got {activation!r}"
        )
    module = activation()
    if not isinstance(module, nn.Module):
        raise SepconvTypeError(
            f"`activation` must return an nn.Module, got {type(module).__name__}"
        )
    return module


def _norm_and_activation(modules: dict[str, Any], y: Tensor) -> Tensor:
    """A separable layer's optional ``norm`` then ``act`` children applied to ``y``."""
    norm, act = modules.get("norm"), modules.get("act")
    if norm is not None:
        y = norm(y)
    if act is not None:
        y = act(y)
    return y


class _SeparableConvNd(nn.Module):
    _keras_layout = "separable"
    _n: int
    _depthwise_cls: type[nn.Module]
    _conv_cls: type[nn.Module]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrInts,
        stride: IntOrInts = 1,
        padding: PaddingLike = "valid",
        dilation: IntOrInts = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        depthwise_bias: bool = False,
        padding_mode: str = "zeros",
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: nn.Module | Callable[[], nn.Module] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        multiplier = _check_multiplier(depth_multiplier)
        self.depthwise = self._depthwise_cls(
            in_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            multiplier,
            bias=depthwise_bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        norm = _make_norm(norm_layer, in_channels * multiplier)
        act = _make_activation(activation)
        if norm is not None:
            self.norm = norm
        if act is not None:
            self.act = act
        self.pointwise = self._conv_cls(
            in_channels * multiplier, out_channels, 1, bias=bool(bias), device=device, dtype=dtype
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth_multiplier = multiplier

    def __getstate__(self) -> dict:
        """Pickle without the per-call caches (``sepconv.nn._autotune.CACHES``)."""
        return _autotune.without_caches(super().__getstate__())

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
    def keras_padding(self) -> str | tuple[tuple[int, int], ...]:
        return self.depthwise.keras_padding  # type: ignore[return-value]

    @property
    def padding_mode(self) -> str:
        return self.depthwise.padding_mode  # type: ignore[return-value]

    def forward(self, input: Tensor) -> Tensor:
        """Depthwise, then norm and activation when given, then pointwise.

        On the CPU the route is chosen once per input configuration
        (:mod:`sepconv.nn._autotune`): the caller's memory format or the other one inside,
        the depthwise step by PyTorch or the native kernel, or, in inference, both steps in
        one native pass (:mod:`sepconv.nn._fused`, with a batch norm in eval mode and a ReLU,
        ReLU6 or Hardtanh between them), whichever was timed fastest; on channels-last inside
        for an NCHW caller, the pointwise step writes the NCHW result directly.
        """
        modules = self._modules
        depthwise, pointwise = modules["depthwise"], modules["pointwise"]
        ours = isinstance(depthwise, _DepthwiseConvNd)
        if ours and ex.on_device(input, self._n, self.in_channels):
            # A batched GPU input: no route to time or format to change. Its call is
            # launch-bound at small sizes, so the host work per call is its time
            # (benchmarks/layers_overhead.py): where nothing observes the steps' calls, their
            # convolutions run directly.
            if (
                type(depthwise).forward is KerasPaddingConv.forward
                and type(pointwise).forward is _PointwiseConvNd.forward
                and ex.unobserved(depthwise, pointwise)
            ):
                weight, bias = _weight_and_bias(depthwise)
                y = ex.device_conv(
                    input, weight, bias, depthwise._padding, depthwise.groups, self._n, depthwise
                )
                y = _norm_and_activation(modules, y)
                weight, bias = _weight_and_bias(pointwise)
                return ex.in_callers_format(ex.CONV[self._n](y, weight, bias), input)
            y = _norm_and_activation(modules, depthwise(input, fast=False))
            if isinstance(pointwise, _PointwiseConvNd):
                return ex.in_callers_format(pointwise(y, fast=False), input)
            return pointwise(y)
        if self._n > 1:
            native_ok = ours and depthwise.padding_mode == "zeros"
            return _autotune.tuned_call(self, input, self._forward, native_ok)
        return self._forward(input)

    def _forward(self, input: Tensor) -> Tensor:
        n = self._n
        modules = self._modules  # plain dict lookups: nn.Module.__getattr__ is slow per call
        depthwise, pointwise = modules["depthwise"], modules["pointwise"]
        ours = isinstance(depthwise, _DepthwiseConvNd)
        run, x, fast, unbatched = ex.begin(
            input,
            n,
            self.in_channels,
            _weight_and_bias(depthwise)[0] if ours else getattr(depthwise, "weight", None),
            depthwise=depthwise._padding if ours else None,
            pointwise_after=True,
        )
        # A child replaced by model surgery (a plain module) is called without `fast`.
        y = depthwise(run, fast=fast) if ours else depthwise(run)
        y = _norm_and_activation(modules, y)
        if isinstance(pointwise, _PointwiseConvNd):
            y = pointwise(
                y, contiguous_output=fast and not ex.caller_is_channels_last(x, n), fast=fast
            )
        else:
            y = pointwise(y)
        return ex.end(y, x, n, fast, unbatched)

    def cost(self, input_shape: tuple[int, ...]) -> _cost.Cost:
        """Exact cost (:func:`sepconv.cost.separable`) for a torch shape ``(N, C, *spatial)``.

        Norm and activation, when present, are not counted.
        """
        shape, batch = _input_shape(input_shape, self._n, self.in_channels)
        return _cost.separable(
            shape,
            self.kernel_size,
            self.out_channels,
            depth_multiplier=self.depth_multiplier,
            stride=self.stride,
            padding=self.keras_padding,
            dilation=self.dilation,
            bias=self.pointwise.bias is not None,
            depthwise_bias=self.depthwise.bias is not None,
            batch=batch,
        )

    def load_keras_weights(self, weights: Any) -> _SeparableConvNd:
        """Copy weights from Keras's ``SeparableConvND.get_weights()``; see :mod:`.keras`."""
        return _keras.load_keras_weights(self, weights)  # type: ignore[return-value]

    def to_keras_weights(self) -> list[Any]:
        """Weights in the layout of Keras's ``SeparableConvND.get_weights()``."""
        return _keras.to_keras_weights(self)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, "
            f"depth_multiplier={self.depth_multiplier}"
        )


_SEPARABLE_DOC = """{n}-D depthwise separable convolution ({keras}).

    A :class:`DepthwiseConv{n}d` (which owns ``stride``, ``padding`` and ``dilation``), an
    optional norm and activation, then a 1x1 ``nn.Conv{n}d`` mixing channels (Howard et al. 2017,
    "MobileNets"; Chollet 2017, "Xception"). Children: ``depthwise``, ``norm``, ``act``,
    ``pointwise``. Each call runs the route timed fastest for this layer and input
    (``sepconv.nn._autotune``: NCHW or channels-last, NCDHW or ``channels_last_3d`` in 3-D,
    PyTorch's or the native depthwise kernel, in 2-D inference also the fused kernel) and the
    output comes back in the caller's memory format.
    An input of another dtype than the parameters raises ``TypeError`` (unless autocast is on).

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
    ``(N, C, {axes})`` -> ``(N, out_channels, {axes_out})``; an unbatched ``(C, {axes})``
    -> ``(out_channels, {axes_out})``.

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
    __doc__ = _SEPARABLE_DOC.format(
        n=1,
        keras="Keras ``SeparableConv1D``",
        axes="L",
        axes_out="L_out",
        example="12",
        example_out="8",
        mults=3 * 5 * 8 + 256 * 3 * 8,
    )


class SeparableConv2d(_SeparableConvNd):
    _n = 2
    _depthwise_cls = DepthwiseConv2d
    _conv_cls = PointwiseConv2d
    __doc__ = _SEPARABLE_DOC.format(
        n=2,
        keras="Keras ``SeparableConv2D``",
        axes="H, W",
        axes_out="H_out, W_out",
        example="12, 12",
        example_out="8, 8",
        mults=53952,
    )


class SeparableConv3d(_SeparableConvNd):
    _n = 3
    _depthwise_cls = DepthwiseConv3d
    _conv_cls = PointwiseConv3d
    __doc__ = _SEPARABLE_DOC.format(
        n=3,
        keras="Keras has no 3-D one",
        axes="D, H, W",
        axes_out="D_out, H_out, W_out",
        example="6, 6, 6",
        example_out="2, 2, 2",
        mults=3 * 125 * 8 + 256 * 3 * 8,
    )
