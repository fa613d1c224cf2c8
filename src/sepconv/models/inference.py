"""Fast CPU inference: batch-norm folding, channels-last memory, TorchScript freezing.

:func:`fold_batch_norm` merges every batch normalization that directly follows a convolution
into that convolution's weights and bias (exact up to float rounding, eval mode only).
:func:`optimize_for_inference` adds channels-last memory and, given an example input, traces
and freezes the model with TorchScript so that oneDNN runs the convolutions with fused
activations (or compiles it with ``torch.compile``). ``benchmarks/mobilenet.py`` times it
against eager PyTorch, onnxruntime and Keras.

Examples
--------
>>> import torch
>>> from sepconv.models import mobilenet_v1, optimize_for_inference
>>> net = mobilenet_v1(width_multiplier=0.25, resolution=64).eval()
>>> x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
>>> fast = optimize_for_inference(net, x)
>>> torch.allclose(fast(x), net(x), atol=1e-4)
True
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .._checks import SepconvTypeError, SepconvValueError, check_choice, describe
from ..padding import flat_pads, padding_of, resolve_padding, zero_taps

__all__ = ["fold_batch_norm", "optimize_for_inference"]

_NORM = nn.modules.batchnorm._BatchNorm


def _conv_norm_pairs(model: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Conv2d]]:
    """(parent, norm name, conv) for every batch norm that directly follows a convolution.

    Two structures are recognised: siblings in a container whose ``forward`` runs its
    children in order (``nn.Sequential`` and its subclasses: a convolution immediately followed
    by a batch norm), and a separable convolution (``depthwise``, then ``norm``) whose last
    child, the pointwise convolution, is followed by a batch norm sibling (MobileNet's block).
    """
    for parent in model.modules():
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            for before, after in zip(names, names[1:]):
                first, second = parent._modules[before], parent._modules[after]
                if isinstance(second, _NORM):
                    conv = _last_conv(first)
                    if conv is not None:
                        yield parent, after, conv
        depthwise = parent._modules.get("depthwise")
        norm = parent._modules.get("norm")
        names = list(parent._modules)
        if (
            isinstance(depthwise, nn.Conv2d)
            and isinstance(norm, _NORM)
            and names.index("norm") == names.index("depthwise") + 1
        ):
            yield parent, "norm", depthwise


def _last_conv(module: nn.Module) -> nn.Conv2d | None:
    """The convolution whose output is ``module``'s output, if ``module`` ends with one."""
    if isinstance(module, nn.Conv2d):
        return module
    names = list(module._modules)
    if names and names[-1] == "pointwise" and isinstance(module._modules["pointwise"], nn.Conv2d):
        return module._modules["pointwise"]
    return None


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: nn.modules.batchnorm._BatchNorm) -> None:
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.affine:
        shift = shift + norm.bias
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    conv.weight.copy_(conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
    conv.bias = nn.Parameter(bias * scale + shift)


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with batch norms folded into the preceding convolutions.

    Each ``BatchNorm`` that directly follows a convolution (see Notes) is replaced by
    ``nn.Identity`` and the convolution gets ``weight * gamma / sqrt(var + eps)`` and bias
    ``(bias - mean) * gamma / sqrt(var + eps) + beta``. The result computes the same function
    as ``model.eval()`` up to float rounding; ``model`` itself is not changed.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        The folded copy, in eval mode.

    Notes
    -----
    Recognised: a convolution immediately followed by a batch norm in an ``nn.Sequential``
    (``ConvNormAct``, plain sequential stacks), a :class:`sepconv.nn.SeparableConv2d` with a
    ``norm_layer`` (the depthwise step) and a separable convolution followed by a batch norm
    (the pointwise step of MobileNet's block). Batch norms elsewhere are left as they are.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> folded = fold_batch_norm(net)
    >>> folded
    Sequential(
      (0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1))
      (1): Identity()
      (2): ReLU()
    )
    >>> x = torch.randn(1, 3, 8, 8)
    >>> torch.allclose(folded(x), net(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")
    model = copy.deepcopy(model).eval()
    for parent, name, conv in list(_conv_norm_pairs(model)):
        norm = parent._modules[name]
        if not isinstance(norm, _NORM) or not norm.track_running_stats:
            continue
        _fold(conv, norm)
        parent._modules[name] = nn.Identity()
    return model


def _effective_pads(module: nn.Conv2d, spatial: tuple[int, int]) -> tuple | None:
    """(before, after) per axis that ``module`` pads its input by, or None if it needs no change
    (zero padding that is symmetric and static already) or pads in another mode."""
    if getattr(module, "padding_mode", "zeros") != "zeros":
        return None
    if not isinstance(module.padding, str) and all(isinstance(p, int) for p in module.padding):
        return None  # symmetric and static already
    return resolve_padding(
        spatial,
        module.kernel_size,
        stride=module.stride,
        dilation=module.dilation,
        padding=padding_of(module),
    )


@torch.no_grad()
def _static_padding_conv(module: nn.Conv2d, pads: tuple) -> nn.Conv2d | None:
    """A plain ``nn.Conv2d`` with symmetric padding computing what ``module`` computes.

    An asymmetric padding (TensorFlow's 'same' with stride 2 on even sizes: ``(b, b + 1)``)
    becomes symmetric padding and a kernel with zero taps (:func:`sepconv.padding.zero_taps`):
    the same products, and no padded copy of the input.
    """
    taps = zero_taps(pads, module.dilation)
    if taps is None:
        return None
    padding, per_axis = taps
    weight = torch.nn.functional.pad(module.weight, flat_pads(per_axis))
    conv = nn.Conv2d(
        module.in_channels,
        module.out_channels,
        tuple(weight.shape[2:]),
        stride=module.stride,
        padding=padding,
        dilation=module.dilation,
        groups=module.groups,
        bias=module.bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    conv.weight.copy_(weight)
    if module.bias is not None:
        conv.bias.copy_(module.bias)
    return conv


def _make_padding_static(model: nn.Module, example_input: torch.Tensor) -> None:
    """Replace, in place, convolutions that pad inside ``forward`` by static-padding ones."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: tuple) -> None:
            sizes.setdefault(name, tuple(int(s) for s in args[0].shape[-2:]))

        return hook

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not module._modules:
            handles.append(module.register_forward_pre_hook(record(name)))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    for name, spatial in sizes.items():
        module = model.get_submodule(name)
        pads = _effective_pads(module, spatial)
        if pads is None:
            continue
        replacement = _static_padding_conv(module, pads)
        if replacement is None:
            continue
        parent_name, _, child = name.rpartition(".")
        model.get_submodule(parent_name)._modules[child] = replacement


class _Prepared(nn.Module):
    """Run ``model`` on a channels-last copy of the input, checking its size if fixed."""

    def __init__(
        self, model: nn.Module, channels_last: bool, spatial: tuple[int, ...] | None
    ) -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.spatial = spatial

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.spatial is not None
            and not torch.jit.is_tracing()
            and tuple(x.shape[-2:]) != self.spatial
        ):
            raise SepconvValueError(
                f"this model was optimized for inputs of height x width "
                f"{self.spatial[0]}x{self.spatial[1]} (its example input), got "
                f"{tuple(x.shape)}; call optimize_for_inference again with such an input"
            )
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


def optimize_for_inference(
    model: nn.Module,
    example_input: torch.Tensor | None = None,
    *,
    mode: str | None = None,
    channels_last: bool = True,
) -> nn.Module:
    """A copy of ``model`` prepared for fast CPU inference.

    Every mode starts with eval mode and :func:`fold_batch_norm`, then:

    - ``'eager'``: channels-last weights and inputs (oneDNN's preferred layout).
    - ``'jit'`` (the default when ``example_input`` is given): ``torch.jit.trace`` on the
      example, ``torch.jit.freeze`` (weights become constants) and
      ``torch.jit.optimize_for_inference`` (oneDNN convolutions with fused ReLU, prepacked
      weights). Builds in about a second.
    - ``'compile'``: ``torch.compile`` with Inductor's freezing (needs a C++ compiler; the
      first call compiles, about 10-60 s on two cores).

    Run the result under ``torch.inference_mode()`` for the lowest latency;
    ``benchmarks/mobilenet.py`` times the modes against onnxruntime and Keras.

    Parameters
    ----------
    model : torch.nn.Module
        A 2-D convolutional network (input ``(N, C, H, W)``). Not changed.
    example_input : torch.Tensor, optional
        An input of the shape you will use; ``'jit'`` needs it. With it, the result is
        specialised to the example's height and width: convolutions that pad inside
        ``forward`` (Keras 'same' with stride 2) become plain ``nn.Conv2d`` with static
        symmetric padding (an asymmetric ``(0, 1)`` pad becomes padding 1 and a zero-extended
        4x4 kernel), and other sizes raise ``ValueError``. Without it (``'eager'``), any size
        runs.
    mode : {'eager', 'jit', 'compile'}, optional
        Default ``'jit'`` with an example input, ``'eager'`` without.
    channels_last : bool, default True
        Channels-last memory format for weights and inputs.

    Returns
    -------
    torch.nn.Module or torch.jit.ScriptModule
        Callable like ``model``; outputs equal ``model.eval()``'s up to float rounding
        (about 1e-5 relative).

    Examples
    --------
    >>> import torch
    >>> from sepconv.models import mnist_separable
    >>> net = mnist_separable().eval()
    >>> fast = optimize_for_inference(net)       # no example: 'eager', any input size
    >>> x = torch.randn(4, 1, 28, 28)
    >>> torch.allclose(fast(x), net(x), atol=1e-4)
    True
    >>> optimize_for_inference(net, mode="jit")
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `example_input` is needed for mode='jit' (tracing)
    """
    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise SepconvTypeError(
            f"`example_input` must be a torch.Tensor or None, got {describe(example_input)}"
        )
    if mode is None:
        mode = "eager" if example_input is None else "jit"
    mode = check_choice("mode", mode, ("eager", "jit", "compile"))
    if mode == "jit" and example_input is None:
        raise SepconvValueError("`example_input` is needed for mode='jit' (tracing)")
    fast = fold_batch_norm(model)
    spatial = None
    if example_input is not None:
        _make_padding_static(fast, example_input)
        spatial = tuple(int(s) for s in example_input.shape[-2:])
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    fast = _Prepared(fast, channels_last, spatial).eval()
    if mode == "jit":
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing turns sizes into constants (the model is shape-specific, as documented)
            # and torch.jit announces its deprecation in favour of torch.compile.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(fast, example_input, check_trace=False)
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    elif mode == "compile":
        fast = torch.compile(fast, options={"freezing": True})
    return fast
