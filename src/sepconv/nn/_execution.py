"""How the separable layers run: the one door that the functions and the modules both go through.

A call runs in three steps, each a function here:

1. :func:`begin` checks the input, adds the batch axis of an unbatched input and chooses the
   execution path: the caller's memory format, or channels-last inside (``fast``, see
   :func:`fast`), entering it with one copy at most.
2. :func:`conv`, :func:`depthwise` and :func:`pointwise` run the convolutions with the layer's
   :class:`sepconv.padding.ConvPadding`, resolved when the layer was built. A 1-D or 2-D
   depthwise step with zero padding on a float32/float64 CPU tensor runs the native kernel
   (``sepconv.nn._native_depthwise``, on the input's memory format as it is) where the
   measured cost model (``sepconv.nn._dispatch``) says it beats PyTorch's kernels; an NCHW
   input it is chosen for is then not converted to channels-last. :func:`use_native_depthwise`
   forces the choice either way.
3. :func:`end` brings the result back to the caller's memory format and batch axes.

The plain composition (``F.pad`` where needed and the convolutions as written, in the caller's
memory format) runs instead while an exporter or tracer records a graph (``torch.jit.trace``,
``torch.onnx.export`` in both modes, ``torch.export``) and inside :func:`plain_composition`
(which :func:`sepconv.profile` uses), so graphs hold plain Conv (and Pad) nodes, FLOP counts
equal :mod:`sepconv.cost`, and Keras 'same' padding that depends on the input size is recorded
as shape arithmetic in the graph: an exported layer pads every input size right.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules import module as _module
from torch.utils._python_dispatch import _get_current_dispatch_mode as _dispatch_mode

from .._checks import SepconvTypeError, SepconvValueError
from ..padding import ConvPadding, conv_padding, flat_pads
from . import _pointwise_mm
from ._autotune import route as _forced_route
from ._autotune import switch as _switch

__all__ = ["plain_composition", "use_native_depthwise"]

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}
_FAST_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_PLAIN = contextvars.ContextVar("sepconv_plain_composition", default=False)
_NATIVE: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "sepconv_native_depthwise", default=None
)
_NATIVE_DTYPES = (torch.float32, torch.float64)
#: native_choice's decisions: (shapes, strides, dtypes, padding, setting) -> (cost model,
#: chosen, pads); an entry counts only for the model it was taken with
_CHOICES: dict[tuple, tuple[Any, bool, tuple]] = {}


@contextlib.contextmanager
def plain_composition() -> Iterator[None]:
    """Run sepconv's layers as the plain composition inside this block.

    ``F.pad`` where padding is needed and the convolutions as written, in the caller's memory
    format: the operators :mod:`sepconv.cost` counts, for a FLOP counter such as
    ``torch.utils.flop_counter.FlopCounterMode`` (outside this block it sees the fast path's
    operators: a 1x1 step as a batched matrix product, and a depthwise kernel with zero taps
    instead of a padded copy, whose products with zeros it counts too). Exporters and tracers
    get the plain composition without it.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.flop_counter import FlopCounterMode
    >>> from sepconv.nn import SeparableConv2d
    >>> from sepconv.nn.functional import plain_composition
    >>> layer = SeparableConv2d(8, 16, 3, stride=2, padding="same", bias=False)
    >>> with torch.no_grad(), plain_composition(), FlopCounterMode(display=False) as counter:
    ...     _ = layer(torch.zeros(1, 8, 16, 16))
    >>> counter.get_total_flops() == layer.cost((1, 8, 16, 16)).flops
    True
    """
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def use_native_depthwise(enabled: bool | None) -> contextlib.AbstractContextManager[None]:
    """Choose who runs the depthwise step of the layers and functions inside this block.

    A context manager: ``with use_native_depthwise(False): ...`` (a call without ``with``
    changes nothing).

    ``True``: the native kernel wherever it applies (a 1-D or 2-D depthwise step with zero
    padding on a float32/float64 CPU tensor, or a 3-D one on an NCDHW tensor, the native
    library built and ``SEPCONV_NATIVE`` not ``0``), on the input's memory format as given;
    elsewhere PyTorch's. ``False``: PyTorch's ``F.conv2d(groups=C)`` (``F.conv3d``) always.
    ``None`` (the default outside any block): the layers' timed choice
    (``sepconv.nn._autotune``), else the measured choice of ``sepconv.nn._dispatch``
    (constants written by ``python benchmarks/layers.py --calibrate``; 3-D: the native kernel
    on NCDHW tensors, :func:`native_choice3d`). The plain composition (graph recording,
    export, :func:`plain_composition`) and ``torch.compile`` always run PyTorch's operators.
    The results agree to rounding (1e-5 relative in float32) whichever runs.

    Raises ``TypeError`` when ``enabled`` is not True, False or None.

    Examples
    --------
    >>> import torch
    >>> from sepconv.nn import DepthwiseConv2d, use_native_depthwise
    >>> layer = DepthwiseConv2d(4, 3, padding="same")
    >>> x = torch.randn(2, 4, 9, 9)
    >>> with use_native_depthwise(True):
    ...     a = layer(x)
    >>> with use_native_depthwise(False):
    ...     b = layer(x)
    >>> bool(torch.allclose(a, b, rtol=1e-5, atol=1e-5))
    True
    """
    return _switch(_NATIVE, enabled)


def plain_requested() -> bool:
    """True when the plain composition must run (a graph is recorded, or asked for)."""
    # torch.onnx.export(dynamo=False) traces (is_tracing); dynamo=True and torch.export export.
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        return True
    if torch.compiler.is_compiling():
        return False
    return _PLAIN.get()


@functools.lru_cache(maxsize=1024)
def _cached_policy(
    n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, padding_mode: Any
) -> ConvPadding:
    return conv_padding(kernel_size, stride, padding, dilation, padding_mode, n=n)


def _exact(value: Any) -> bool:
    """An int, a str or a tuple of ints: a cache key that equals only itself (``1.0``, ``True``
    and ``np.int64(1)`` compare equal to ``1`` but must be checked on their own)."""
    kind = type(value)
    return kind is int or kind is str or (kind is tuple and all(type(v) is int for v in value))


def policy(
    n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, padding_mode: Any
) -> ConvPadding:
    """The checked :class:`ConvPadding` of a functional call (memoised: calls repeat)."""
    if (
        _exact(kernel_size)
        and _exact(stride)
        and _exact(padding)
        and _exact(dilation)
        and type(padding_mode) is str
        and not torch.compiler.is_compiling()
    ):
        return _cached_policy(n, kernel_size, stride, padding, dilation, padding_mode)
    return conv_padding(kernel_size, stride, padding, dilation, padding_mode, n=n)


def axes(n: int) -> str:
    return {1: "L", 2: "H, W", 3: "D, H, W"}[n]


def _autocast(device_type: str) -> bool:
    """Whether autocast is on for this device type (inputs of another dtype are then cast)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # PyTorch before 2.4: no device argument
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


def static(value: Any) -> Any:
    """``value`` (a size, or a comparison of sizes) as a Python ``int`` or ``bool``: under
    ``torch.jit.trace`` (the TorchScript ONNX exporter) a size is a traced value, and converting
    it warns that the trace takes it as a constant, which is right here: the channel count of
    a layer's input (fixed by its weights) and the checks of its input's shape are constants
    of the layer. Without a trace, ``value`` as it is."""
    if not torch.jit.is_tracing():
        return value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if isinstance(value, Tensor) and value.dtype == torch.bool:
            return bool(value)
        return int(value)


def check_input(
    x: Any, n: int, channels: int, name: str = "input", dtype: torch.dtype | None = None
) -> bool:
    """Check ``x`` is ``(N, C, *spatial)`` or ``(C, *spatial)`` with ``channels`` channels
    and, given ``dtype`` (the layer's parameters'), of that dtype unless autocast is on.

    Returns True when ``x`` is unbatched.
    """
    if not isinstance(x, Tensor):
        raise SepconvTypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise SepconvTypeError(
            f"`{name}` must be a floating-point tensor (the layer's dtype), got dtype {x.dtype}"
        )
    if dtype is not None and x.dtype != dtype and not _autocast(x.device.type):
        raise SepconvTypeError(
            f"`{name}` has dtype {x.dtype} but the layer's parameters are {dtype}: convert "
            f"one to the other (`layer.to({x.dtype})` or `{name}.to({dtype})`)"
        )
    if x.dim() not in (n + 1, n + 2):
        raise SepconvValueError(
            f"`{name}` must have shape (N, C, {axes(n)}) or (C, {axes(n)}), got a "
            f"{x.dim()}-D tensor of shape {tuple(x.shape)}"
        )
    if static(x.shape[-n - 1] != channels):
        raise SepconvValueError(
            f"`{name}` must have {channels} channel{'s' * (channels != 1)} "
            f"(dimension {x.dim() - n - 1}), got shape "
            f"{tuple(x.shape)} with {x.shape[-n - 1]}"
            + (f" (a {n + 1}-D input is one sample, (C, {axes(n)}))" if x.dim() == n + 1 else "")
        )
    return x.dim() == n + 1


# --------------------------------------------------------------------------------------------
# the execution path
# --------------------------------------------------------------------------------------------
def needs_grad(x: Tensor, weight: Tensor | None) -> bool:
    """Training: the zero-tap kernel's backward costs more than the padded copy it saves."""
    return torch.is_grad_enabled() and (
        x.requires_grad or (weight is not None and weight.requires_grad)
    )


def fast(
    x: Tensor,
    n: int,
    weight: Tensor | None = None,
    depthwise: ConvPadding | None = None,
    pointwise_after: bool = False,
) -> bool:
    """Whether this batched input runs channels-last inside (and comes back in its format).

    With ``depthwise`` (the padding of a first step that is a depthwise convolution with
    ``weight``), an NCHW input for which :func:`native_choice` picks the native kernel stays
    NCHW (the kernel reads it as it is); so does an NCDHW input of a depthwise step alone
    (not ``pointwise_after``) for which :func:`native_choice3d` picks the 3-D kernel (a
    pointwise step after it ran 1.1-2.7 x slower on NCDHW than on channels_last_3d, 2-core
    AMD EPYC, batch 1-4, 24-432 channels, so a separable layer's 3-D input runs as below, its
    depthwise step natively where it stays NCDHW). Otherwise:

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
    padded copy (see :func:`conv`), NCHW is as fast or faster than converting the input
    (batch 8, forward: 128 channels at 56x56, 7.3 ms against 9.7 ms through channels-last;
    1024 channels at 7x7, 5.0 ms against 6.8 ms). In training the conversion's
    backward adds a second transposing copy and NCHW wins at every channel count (batch 8,
    1024 channels at 7x7: 18 ms against 32 ms; batch 1, 32 -> 64 channels at 112x112: the
    naive NCHW composition 2.1 ms against 3.1 ms through channels-last).
    """
    if not (x.device.type == "cpu" and x.dtype in _FAST_DTYPES and x.dim() == n + 2):
        return False
    if plain_requested():
        return False
    forced = None if torch.compiler.is_compiling() else _forced_route()
    if forced is not None:  # a route timed or chosen by sepconv.nn._autotune
        return forced[0] == "cl"
    if depthwise is not None and weight is not None and x.is_contiguous():
        if (n < 3 and native_choice(x, weight, depthwise, n) is not None) or (
            n == 3 and not pointwise_after and native_choice3d(x, weight, depthwise) is not None
        ):
            return False
    if n == 2 and (x.shape[1] >= 64 or needs_grad(x, weight)):
        return in_run_format(x, n) and not x.is_contiguous()
    if x.shape[0] == 1 and x.shape[1] >= 64:
        return in_run_format(x, n) and not x.is_contiguous()
    return True


def on_device(x: Any, n: int, channels: int) -> bool:
    """Whether ``x`` is a batched ``(N, channels, *spatial)`` tensor off the CPU (a GPU):
    such a call runs its steps directly in the caller's memory format (the fast path,
    the routes and the native kernel are for the CPU)."""
    return isinstance(x, Tensor) and not x.is_cpu and x.dim() == n + 2 and x.shape[1] == channels


def unobserved(*modules: Any) -> bool:
    """Whether calling these modules' convolutions directly is what calling the modules would
    do: no hook on them or global (forward or backward), no ``forward`` set on the instance,
    no graph being recorded or compiled. A layer's GPU call then skips the module calls of its
    steps (at batch 1 a GPU call is launch-bound: per-call host work is its time)."""
    if (
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    ):
        return False
    for m in modules:
        if (
            m._forward_hooks
            or m._forward_pre_hooks
            or m._backward_hooks
            or m._backward_pre_hooks
            or "forward" in m.__dict__
        ):
            return False
    return not (plain_requested() or torch.compiler.is_compiling())


def zero_taps_pay(x: Tensor, weight: Tensor | None) -> bool:
    """Whether asymmetric zero padding runs as symmetric padding plus zero taps on the kernel
    (:func:`sepconv.padding.zero_taps`) rather than a padded copy of ``x``: in inference only
    (the weight gradient of the larger kernel costs more than the copy saves), always on the
    CPU, and on a GPU for NCHW inputs and channels-last ones up to 2**20 elements.

    Measured on an H200 (PyTorch 2.11, cuDNN; Keras 'same' stride-2 3x3 depthwise steps of
    MobileNetV1, throughput): NCHW 64 @ 112x112 batch 1, 0.014 ms against 0.035 ms for
    ``F.pad`` + 3x3; batch 32, 0.146 against 0.182 ms. Channels-last 128 @ 56x56 batch 1,
    0.013 against 0.027 ms, but batch 32, 0.265 against 0.077 ms (cuDNN's channels-last 4x4
    depthwise kernel is slow), and 64 @ 112x112 batch 1 (802,816 elements) even.
    """
    if needs_grad(x, weight):
        return False
    return x.is_cpu or x.is_contiguous() or x.numel() <= 1 << 20


def tapped_weight(weight: Tensor, taps: tuple[int, ...], owner: Any = None) -> Tensor:
    """``weight`` with zero taps (:func:`sepconv.padding.zero_taps`), kept on ``owner`` (the
    layer) while ``weight`` is the same tensor, unchanged (its version counter and storage):
    padding the kernel anew costs a small call's time (3x3 -> 4x4 for 512 channels: 0.02 ms
    on one CPU core, where the 14x14 stride-2 depthwise step itself takes 0.05 ms; on a GPU a
    launch). Inference only (callers check :func:`zero_taps_pay`)."""
    if owner is None or torch.compiler.is_compiling() or weight.is_inference():
        return torch.constant_pad_nd(weight, taps)  # (an inference tensor has no version)
    kept = owner.__dict__.get("_sepconv_tapped")
    stamp = (weight._version, weight.data_ptr(), weight.device, taps)
    if kept is None or kept[0] is not weight or kept[1] != stamp:
        kept = owner.__dict__["_sepconv_tapped"] = (
            weight,
            stamp,
            torch.constant_pad_nd(weight, taps),
        )
    return kept[2]


def device_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    padding: ConvPadding,
    groups: int,
    n: int,
    owner: Any,
) -> Tensor:
    """One convolution with Keras padding on a batched GPU ``x`` whose call
    :func:`unobserved` allows: :func:`conv`'s result with the least host work.

    ``owner``: the layer, which keeps its zero-tapped kernel (:func:`tapped_weight`).
    """
    inside, tapped, outside = padding.plan(x.shape[2:])
    if inside is not None:
        return CONV[n](x, weight, bias, padding.stride, inside, padding.dilation, groups)
    if tapped is not None and zero_taps_pay(x, weight):
        return CONV[n](
            x,
            tapped_weight(weight, tapped[1], owner),
            bias,
            padding.stride,
            tapped[0],
            padding.dilation,
            groups,
        )
    if outside is not None:
        x = F.pad(x, outside, mode="constant" if padding.mode == "zeros" else padding.mode)
    return CONV[n](x, weight, bias, padding.stride, 0, padding.dilation, groups)


def in_run_format(x: Tensor, n: int) -> bool:
    """Channels-last: ``(N, *spatial, C)`` in memory (for 1-D, ``(N, L, C)``)."""
    if n == 1:
        return x.transpose(1, 2).is_contiguous()
    return x.is_contiguous(memory_format=_CHANNELS_LAST[n])


class _Converted(torch.autograd.Function):
    """``x.contiguous(memory_format=...)`` whose gradient comes back in ``x``'s own format.

    A plain conversion hands the caller a gradient in the converted format (its backward is
    the identity): for a leaf input ``AccumulateGrad`` then copies it into the leaf's layout
    outside the layer, and a timed route (:mod:`sepconv.nn._autotune`, which differentiates
    with ``torch.autograd.grad``) would not see that copy. Measured on one core, batch 8,
    128 -> 256 channels at 56x56, stride 2: 31.5 ms a training step with ``.backward()``
    against 27.4 ms timed, so the channels-last route was kept where NCHW took 27.7.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, memory_format: torch.memory_format) -> Tensor:
        ctx.caller = torch.contiguous_format if x.is_contiguous() else None
        if ctx.caller is None and x.dim() in (4, 5):
            cl = _CHANNELS_LAST[x.dim() - 2]
            ctx.caller = cl if x.is_contiguous(memory_format=cl) else None
        return x.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        if ctx.caller is not None:
            grad = grad.contiguous(memory_format=ctx.caller)
        return grad, None


def convert(x: Tensor, memory_format: torch.memory_format) -> Tensor:
    """``x`` in ``memory_format`` (one copy at most); in training its gradient comes back in
    the caller's format (:class:`_Converted`)."""
    if (
        x.requires_grad
        and torch.is_grad_enabled()
        and not x.is_contiguous(memory_format=memory_format)
        and not (torch.compiler.is_compiling() or plain_requested())
    ):
        return _Converted.apply(x, memory_format)
    return x.contiguous(memory_format=memory_format)


def _enter(x: Tensor, n: int) -> Tensor:
    """``x`` in the run format (one copy at most)."""
    if n == 1:
        return x if in_run_format(x, 1) else x.transpose(1, 2).contiguous().transpose(1, 2)
    return convert(x, _CHANNELS_LAST[n])


def caller_is_channels_last(x: Tensor, n: int) -> bool:
    return not x.is_contiguous() and in_run_format(x, n)


def begin(
    input: Tensor,
    n: int,
    channels: int,
    weight: Tensor | None,
    *,
    allow_fast: bool = True,
    depthwise: ConvPadding | None = None,
    pointwise_after: bool = False,
) -> tuple[Tensor, Tensor, bool, bool]:
    """Step 1: ``(x to run, batched caller x, fast, unbatched)`` for a call on ``input``.

    ``allow_fast=False`` keeps the caller's memory format (a full convolution).
    ``depthwise``: the padding of the first step when it is a depthwise convolution with
    ``weight``; ``pointwise_after``: a pointwise step follows it (see :func:`fast`).
    """
    unbatched = check_input(input, n, channels, dtype=None if weight is None else weight.dtype)
    x = input.unsqueeze(0) if unbatched else input
    is_fast = allow_fast and fast(x, n, weight, depthwise, pointwise_after)
    return (_enter(x, n) if is_fast else x), x, is_fast, unbatched


def in_callers_format(y: Tensor, x: Tensor) -> Tensor:
    """``y``, contiguous where the caller's ``x`` is (a GPU call's result, which PyTorch's
    convolution gives in channels-last for channels-last weights)."""
    return y.contiguous() if x.is_contiguous() and not y.is_contiguous() else y


def end(y: Tensor, x: Tensor, n: int, is_fast: bool, unbatched: bool) -> Tensor:
    """Step 3: ``y`` in the memory format of the caller's batched ``x``, batch axis as given
    (an NCHW caller's result contiguous also where PyTorch's convolution answers in
    channels-last for channels-last weights, as ``layer.to(memory_format=torch.channels_last)``
    leaves them; a channels-last caller's result channels-last also where PyTorch's 3-D
    convolution of a channels_last_3d input with NCDHW weights answers in NCDHW)."""
    if not caller_is_channels_last(x, n):
        y = y.contiguous()
    elif n > 1 and not in_run_format(y, n):
        y = y.contiguous(memory_format=_CHANNELS_LAST[n])
    return y.squeeze(0) if unbatched else y


# --------------------------------------------------------------------------------------------
# the convolutions
# --------------------------------------------------------------------------------------------
def _clamp(value: Any) -> Any:
    """``max(value, 0)`` for a traced scalar (ONNX export) or a symbolic size (torch.export)."""
    if isinstance(value, Tensor):
        return value.clamp(min=0)
    return torch.sym_max(value, 0)


def _standard_strides_if_one_channel(x: Tensor, spatial: tuple[int, ...]) -> Tensor:
    if int(x.shape[1]) == 1 and x.stride(1) != math.prod(spatial):
        # A one-channel view of channels-last memory (stride 1 on the channel axis): torch
        # 2.13's oneDNN convolution reads it wrongly for some strides (e.g. (1, 3): errors of
        # order 1e32), while the same values in standard strides are right. A copy is cheap
        # for one channel.
        return x.clone(memory_format=torch.contiguous_format)
    return x


class ExportRefused(SepconvValueError):
    """A layer's padding cannot be recorded right in a graph with dynamic sizes."""


def _check_exportable(padding: ConvPadding) -> None:
    """Refuse what an exporter would record wrongly, or not at all, for dynamic sizes.

    Measured with torch 2.13 and onnxruntime: the TorchScript exporter (``torch.onnx.export``
    with ``dynamo=False``) records input-dependent zero, reflect and replicate padding right,
    and circular padding written as slices (:func:`_circular_pad`); the dynamo exporter records
    zero and replicate padding right, puts input-dependent reflect padding on the wrong side
    (silently), and fails on circular padding or gets sliced padding wrong.
    """
    if padding.mode in ("circular", "reflect") and not torch.jit.is_tracing():
        raise ExportRefused(
            f"padding_mode={padding.mode!r} with padding={padding.spec!r} at stride "
            f"{padding.stride} depends on the input size, which torch.export (and "
            f"torch.onnx.export(dynamo=True)) cannot record right with dynamic sizes; export "
            f"with static sizes, or with torch.onnx.export(dynamo=False)"
        )


def _circular_pad(x: Tensor, pads: tuple[Any, ...]) -> Tensor:
    """Circular padding by slices and concatenation, which a tracer records for any size
    (the TorchScript ONNX exporter refuses ``F.pad(mode='circular')`` with traced pads)."""
    for axis, (before, after) in enumerate(zip(pads[::2], pads[1::2])):
        dim = x.dim() - 1 - axis
        size = x.shape[dim]
        x = torch.cat([x.narrow(dim, size - before, before), x, x.narrow(dim, 0, after)], dim)
    return x


def _plain_conv(
    x: Tensor, weight: Tensor, bias: Tensor | None, padding: ConvPadding, groups: int, n: int
) -> Tensor:
    """``F.pad`` + the convolution, with 'same' from the input size as a graph records it."""
    sizes = tuple(x.shape[-n:])
    if all(type(size) is int for size in sizes):  # eager: the checked plan
        x = _standard_strides_if_one_channel(x, sizes)
        plan = padding.plan(sizes, cache=False)
        if plan.inside is not None:
            return CONV[n](x, weight, bias, padding.stride, plan.inside, padding.dilation, groups)
        pads: tuple[Any, ...] | None = plan.outside
    elif padding.static is not None:
        pads = flat_pads(padding.static)
    else:  # traced scalars or symbols: the 'same' arithmetic goes into the graph
        _check_exportable(padding)
        pads = padding.symbolic_pads(sizes, _clamp)
    if padding.mode == "circular" and pads is not None and not all(type(p) is int for p in pads):
        x = _circular_pad(x, pads)
    elif pads is not None and (not all(type(p) is int for p in pads) or any(pads)):
        x = F.pad(x, pads, mode="constant" if padding.mode == "zeros" else padding.mode)
    return CONV[n](x, weight, bias, padding.stride, 0, padding.dilation, groups)


def conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    padding: ConvPadding,
    groups: int,
    n: int,
    *,
    is_fast: bool = False,
    extend_kernel: bool = False,
    owner: Any = None,
) -> Tensor:
    """One convolution with Keras padding on a batched ``x``, in ``x``'s memory format.

    Symmetric zero padding stays inside the convolution. Asymmetric zero padding (Keras
    'same' at stride 2 on an even size: one row at the bottom) is, with ``extend_kernel``,
    turned into symmetric padding plus leading zero taps on the kernel
    (:func:`sepconv.padding.zero_taps`): the same products with the input, with no padded copy
    of the input (cheap for a depthwise kernel). Other padding goes through ``F.pad``.
    ``is_fast``: :func:`begin` chose the fast path (so the plain composition was not asked for).
    ``owner``: the layer, which keeps its zero-tapped kernel (:func:`tapped_weight`).
    """
    if not is_fast and plain_requested():
        return _plain_conv(x, weight, bias, padding, groups, n)
    compiling = torch.compiler.is_compiling()
    # int(): a compiled graph is traced once per shape (eager sizes are ints already).
    spatial = tuple(int(size) for size in x.shape[-n:]) if compiling else x.shape[-n:]
    if x.shape[1] == 1:
        x = _standard_strides_if_one_channel(x, spatial)
    run = planned_conv(padding, spatial, groups, n, extend_kernel, owner, cache=not compiling)
    if is_fast and owner is not None and n == 2 and not compiling:
        weight = channels_last_weight(weight, owner)
    return run(x, weight, bias)


def channels_last_weight(weight: Tensor, owner: Any) -> Tensor:
    """A 2-D convolution's ``weight`` in channels-last memory, for a channels-last input,
    kept on ``owner`` (the layer) while ``weight`` is the same tensor, unchanged; ``weight``
    itself in training (a gradient wanted for it), where it is channels-last already (a
    depthwise or 1x1 kernel), and for an inference tensor (no version counter).

    PyTorch's CPU convolution copies an NCHW weight to the input's memory format on every
    call (``aten::contiguous`` inside ``mkldnn_convolution``): for Inception-v3's 1x7 pass of
    128 channels at 17x17, batch 1, 0.12 ms of a 0.8 ms convolution. The copy made once gives
    the convolution the same operands, so the same result."""
    if (
        weight.dim() != 4
        or weight.is_contiguous(memory_format=torch.channels_last)
        or (weight.requires_grad and torch.is_grad_enabled())
        or weight.is_inference()
    ):
        return weight
    kept = owner.__dict__.get("_sepconv_cl_weight")
    stamp = (weight._version, weight.data_ptr(), weight.device, weight.dtype, weight.shape)
    if kept is None or kept[0] is not weight or kept[1] != stamp:
        kept = owner.__dict__["_sepconv_cl_weight"] = (
            weight,
            stamp,
            weight.detach().contiguous(memory_format=torch.channels_last),
        )
    return kept[2]


def planned_conv(
    padding: ConvPadding,
    spatial: tuple[int, ...],
    groups: int,
    n: int,
    extend_kernel: bool,
    owner: Any = None,
    *,
    cache: bool = True,
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """``f(x, weight, bias)``: the convolution :func:`conv` runs on inputs of these spatial
    sizes, its padding plan (:meth:`sepconv.padding.ConvPadding.plan`) decided once (the one
    home of that choice, which prepared calls, ``sepconv.nn._prepared``, keep): symmetric zero
    padding inside the convolution, asymmetric zero padding as zero taps with
    ``extend_kernel``, else ``F.pad`` in the padding mode."""
    inside, tapped, outside = padding.plan(spatial, cache=cache)
    stride, dilation, conv_n = padding.stride, padding.dilation, CONV[n]
    if inside is not None:
        return lambda x, w, b: conv_n(x, w, b, stride, inside, dilation, groups)
    if extend_kernel and tapped is not None:
        sym, taps = tapped
        return lambda x, w, b: conv_n(
            x, tapped_weight(w, taps, owner), b, stride, sym, dilation, groups
        )
    mode = "constant" if padding.mode == "zeros" else padding.mode
    if outside is None:
        return lambda x, w, b: conv_n(x, w, b, stride, 0, dilation, groups)
    return lambda x, w, b: conv_n(F.pad(x, outside, mode=mode), w, b, stride, 0, dilation, groups)


def _native_setting() -> bool | None:
    """The native kernel's setting for this call: :func:`use_native_depthwise`'s, else the
    route forced by the layer's timing (``sepconv.nn._autotune``), else None (decide)."""
    setting = _NATIVE.get()
    if setting is None:
        forced = _forced_route()
        setting = None if forced is None else forced[1]
    return setting


def _native_refused(x: Tensor, setting: bool | None) -> bool:
    """Whether the native kernel may not run on ``x`` whatever the shapes: refused by the
    setting, not a float32/float64 CPU tensor (a subclass, a fake tensor), the plain
    composition asked for, or a ``TorchDispatchMode`` active (it sees PyTorch's operators)."""
    return (
        setting is False
        or x.dtype not in _NATIVE_DTYPES
        or x.device.type != "cpu"
        or type(x) is not Tensor
        or plain_requested()
        or _dispatch_mode() is not None
    )


def native_choice(
    x: Tensor, weight: Tensor, padding: ConvPadding, n: int
) -> tuple[Tensor, Tensor, tuple, bool] | None:
    """``(x, weight, pads, forced)`` as the native kernel takes them (2-D; a 1-D step lifted
    to ``1 x k``) where it runs the depthwise step on the batched ``x`` as given, else None.

    None unless: not recording a graph or compiling, no ``TorchDispatchMode`` active (a FLOP
    counter, fake tensors: they see PyTorch's operators, not the C kernel), not refused by
    :func:`use_native_depthwise`, zero padding, a float32/float64 CPU tensor, and (unless
    forced) ``sepconv.nn._dispatch.should_use_native`` measures it faster than PyTorch's
    kernels on this input and on the input converted to the other memory format (in training,
    a gradient wanted for ``x`` or ``weight``: forward and backward together).
    """
    if n > 2 or padding.mode != "zeros" or torch.compiler.is_compiling():
        return None
    setting = _native_setting()
    if _native_refused(x, setting):
        return None
    from . import _dispatch  # imported on first use: ctypes and the cost model's file

    model = _dispatch._model()
    training = needs_grad(x, weight)
    key = (
        n,
        x.shape,
        x.stride(),
        x.dtype,
        weight.shape,
        weight.dtype,
        weight.device.type,
        padding,
        setting,
        training,
    )
    found = _CHOICES.get(key)
    if found is not None and found[0] is model:
        chosen, pads = found[1], found[2]
    else:
        x4, w4, lifted = (
            (x.unsqueeze(2), weight.unsqueeze(2), padding.lifted)
            if n == 1
            else (x, weight, padding)
        )
        spatial = (int(x4.shape[2]), int(x4.shape[3]))
        lifted.plan(spatial)  # checks that the kernel fits, as the PyTorch path does
        pads = lifted.pads(spatial)
        if setting:
            chosen = _dispatch.native._applies(x4, w4, None)
        else:
            chosen = _dispatch.should_use_native(
                x4, w4, lifted.stride, pads, lifted.dilation, training
            )
        if len(_CHOICES) >= 4096:
            _CHOICES.clear()
        _CHOICES[key] = (model, chosen, pads)
    if not chosen:
        return None
    if n == 1:
        return x.unsqueeze(2), weight.unsqueeze(2), pads, bool(setting)
    return x, weight, pads, bool(setting)


def _native_depthwise(
    x: Tensor, weight: Tensor, bias: Tensor | None, padding: ConvPadding, n: int
) -> Tensor | None:
    """The native kernel's result where :func:`native_choice` picks it, else None."""
    chosen = native_choice(x, weight, padding, n)
    if chosen is None:
        return None
    from . import _dispatch

    x4, w4, pads, forced = chosen
    lifted = padding.lifted if n == 1 else padding
    stride, dilation = lifted.stride, lifted.dilation
    backward = (
        "native"
        if forced or not torch.is_grad_enabled()
        else _dispatch.backward_kernel(x4, w4, stride, pads, dilation)
    )
    y = _dispatch.native.depthwise_conv2d(x4, w4, bias, stride, pads, dilation, backward=backward)
    if y is None:
        return None
    return y.squeeze(2) if n == 1 else y


def native_choice3d(x: Tensor, weight: Tensor, padding: ConvPadding) -> tuple | None:
    """The padding ``((front, back), (top, bottom), (left, right))`` with which the native 3-D
    kernel (``sepconv.nn._native_depthwise.depthwise_conv3d``) runs a depthwise step on the
    batched ``x`` as given, else None: as :func:`native_choice` (zero padding, a float32 or
    float64 CPU tensor, no graph recording, compiling or ``TorchDispatchMode``, not refused by
    :func:`use_native_depthwise`), on an input whose rows have unit stride (NCDHW, not
    ``torch.channels_last_3d``). Layers time it against PyTorch's routes on their first call
    (:mod:`sepconv.nn._autotune`); this is the untimed choice: on NCDHW inputs at X3D-M's
    shapes (2-core AMD EPYC, 2 threads, ``python benchmarks/depthwise3d.py``) the kernel took
    0.27-1.26 x the time of PyTorch's NCDHW depthwise convolution forward (above 1 only at
    432 channels, 14x14 frames, stride 2), and 0.06-0.44 x forward and backward (its input
    gradient by its forward, its weight gradient its own)."""
    if padding.mode != "zeros" or torch.compiler.is_compiling():
        return None
    if (
        _native_refused(x, _native_setting())
        or x.dim() != 5
        or (x.stride(4) != 1 and x.shape[4] != 1)
    ):
        return None
    from . import _native_depthwise as native

    if not native.available():
        return None
    spatial = tuple(int(size) for size in x.shape[2:])
    padding.plan(spatial)  # checks that the kernel fits, as the PyTorch path does
    return padding.pads(spatial)


def depthwise(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    padding: ConvPadding,
    n: int,
    is_fast: bool,
    owner: Any = None,
) -> Tensor:
    """Depthwise step on a batched ``x`` (in the run format when ``is_fast``); same format out.

    The native kernel where :func:`native_choice` picks it, PyTorch's convolution otherwise.
    ``owner``: the layer, which keeps its zero-tapped kernel (:func:`tapped_weight`).
    """
    if n < 3 and x.is_cpu:
        y = _native_depthwise(x, weight, bias, padding, n)
        if y is not None:
            return y
    elif x.is_cpu:
        pads = native_choice3d(x, weight, padding)
        if pads is not None:
            from . import _native_depthwise as native

            y = native.depthwise_conv3d(x, weight, bias, padding.stride, pads, padding.dilation)
            if y is not None:
                return y
    if is_fast and n == 1:
        # 1-D runs as 2-D channels-last with a 1 x k kernel: (N, C, 1, L) is a view.
        y = conv(
            x.unsqueeze(2),
            weight.unsqueeze(2),
            bias,
            padding.lifted,
            int(x.shape[1]),
            2,
            is_fast=True,
            extend_kernel=not needs_grad(x, weight),
        )
        return y.squeeze(2)
    # Asymmetric zero padding: zero taps or a padded copy, as measured (zero_taps_pay).
    return conv(
        x,
        weight,
        bias,
        padding,
        static(x.shape[1]),
        n,
        is_fast=is_fast,
        extend_kernel=zero_taps_pay(x, weight),
        owner=owner,
    )


def _pointwise_by_mm() -> bool:
    """Whether the route forced for this call runs the 1x1 step by matrix products."""
    forced = None if torch.compiler.is_compiling() else _forced_route()
    return forced is not None and len(forced) > 2 and forced[2] == "mm"


def pointwise(
    y: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    n: int,
    is_fast: bool,
    contiguous_output: bool,
    by_mm: bool | None = None,
) -> Tensor:
    """1x1 convolution. On the fast path a channels-last ``y`` gives a channels-last result,
    or, with ``contiguous_output``, a contiguous (NCHW) one written directly by one batched
    matrix product (``W @ y[n]^T``), with no conversion pass. An empty ``y`` (a batch of 0)
    runs PyTorch's convolution. ``by_mm``: by matrix products (:mod:`._pointwise_mm`); None:
    where the route forced for this call says so."""
    if static(y.numel() == 0):
        out = CONV[n](y, weight, bias)
        return out.contiguous() if contiguous_output else out
    if by_mm is None:
        by_mm = _pointwise_by_mm()
    if n == 2 and y.dim() == 4 and by_mm:
        out = _pointwise_mm.pointwise(y, weight, bias)
        return out.contiguous() if contiguous_output else out
    if not is_fast or (n > 1 and not contiguous_output) or not in_run_format(y, n):
        out = CONV[n](y, weight, bias)
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
    return CONV[n](y, weight, bias)
