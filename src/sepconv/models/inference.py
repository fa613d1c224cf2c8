"""Fast CPU inference: batch-norm folding, channels-last memory, TorchScript freezing.

:func:`fold_batch_norm` merges every batch normalization that directly follows a convolution
into that convolution's weights and bias (exact up to float rounding, eval mode only).
:func:`optimize_for_inference` adds channels-last memory and, given an example input, traces
and freezes the model with TorchScript so that oneDNN runs the convolutions with fused
activations. ``benchmarks/mobilenet.py`` times it against eager PyTorch, onnxruntime and Keras.

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
from collections.abc import Iterator

import torch
from torch import nn

from .._checks import SepconvTypeError, describe

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
        if (isinstance(depthwise, nn.Conv2d) and isinstance(norm, _NORM)
                and names.index("norm") == names.index("depthwise") + 1):
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


class _ChannelsLast(nn.Module):
    """Run ``model`` on a channels-last copy of a 4-D input."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def optimize_for_inference(model: nn.Module, example_input: torch.Tensor | None = None, *,
                           channels_last: bool = True, freeze: bool = True) -> nn.Module:
    """A copy of ``model`` prepared for fast CPU inference.

    Steps: eval mode, :func:`fold_batch_norm`, channels-last weights and inputs (oneDNN's
    preferred layout for convolutions), and, with an ``example_input`` and ``freeze=True``,
    ``torch.jit.trace`` + ``torch.jit.freeze`` (constant weights, convolution + ReLU fusion).
    Run the result under ``torch.inference_mode()`` for the lowest latency.

    Parameters
    ----------
    model : torch.nn.Module
        A 2-D convolutional network (input ``(N, C, H, W)``). Not changed.
    example_input : torch.Tensor, optional
        An input of the shape you will use; needed to trace. TorchScript records the
        'same' padding of this input size: use the traced model on inputs of this spatial size.
    channels_last : bool, default True
    freeze : bool, default True
        Trace and freeze (needs ``example_input``); otherwise return the eager folded copy.

    Returns
    -------
    torch.nn.Module
        Callable like ``model``; outputs equal ``model.eval()``'s up to float rounding
        (about 1e-5 relative).

    Examples
    --------
    >>> import torch
    >>> from sepconv.models import mnist_separable
    >>> net = mnist_separable().eval()
    >>> fast = optimize_for_inference(net)       # no example: eager, folded, channels-last
    >>> x = torch.randn(4, 1, 28, 28)
    >>> torch.allclose(fast(x), net(x), atol=1e-4)
    True
    """
    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise SepconvTypeError(
            f"`example_input` must be a torch.Tensor or None, got {describe(example_input)}"
        )
    fast = fold_batch_norm(model)
    if channels_last:
        fast = _ChannelsLast(fast.to(memory_format=torch.channels_last)).eval()
    if freeze and example_input is not None:
        with torch.no_grad():
            traced = torch.jit.trace(fast, example_input, check_trace=False)
            fast = torch.jit.freeze(traced.eval())
    return fast
