"""Layers whose output goes straight into a batch norm: fit the centred output.

A batch norm in inference mode computes ``(y - mean) / sqrt(var + eps) * gamma + beta`` with
its stored ``mean``: a constant offset ``b`` per channel in its input is undone exactly by
storing ``mean + b`` instead (and :func:`sepconv.convert.recalibrate_batchnorm` finds it by
itself). So for a convolution without bias that feeds a batch norm, the factored layer may
be fitted with a free bias: its least squares, whitening and alternation then spend no rank on
the mean of the output, whose error the norm absorbs. The truncation that minimises the error
left after the best offset is weighted by the covariance of the inputs rather than their
second moment (``E||(W - W_r) x + b||^2`` is smallest at ``b = -(W - W_r) E[x]``, where it is
``||(W - W_r) Cov(x)^{1/2}||^2``).

The norm also scales each channel by ``|gamma| / sqrt(var + eps)``, so the error the next
layer sees is the output error weighted by that scale, not the raw one: a channel the norm
shrinks matters less. With :data:`WEIGHT`, the layer's output channels are multiplied by the
scale and the norm's stored statistics divided by it while the layer is factored and fitted
(the model computes the same), so the whitened truncation, the alternating least squares and
the budget's error curves all measure the error the norm passes on.

Here the layers that feed a batch norm are found by one forward pass (the norm's input is the
very tensor the layer returned), given a zero bias (and scaled) while they are factored and
fitted, and at the end the scale is undone and the fitted bias moved into the norm's stored
mean and removed, so the converted model has the original's structure and state-dict keys and
computes what it computed with the bias.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._fit import probe, structure

#: Fit layers that feed a batch norm with a free bias (folded into the norm).
CENTRE = True

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def feeding(model: nn.Module, layers: list[tuple[str, nn.Module]], x: torch.Tensor) -> dict:
    """``{name: norm}`` for the bias-free ``layers`` whose output an inference-mode batch norm
    with stored statistics takes as its input in ``model(x[:1])``."""
    candidates = {
        name: module
        for name, module in layers
        if isinstance(getattr(module, "bias", 0), type(None))
        and isinstance(getattr(module, "weight", None), torch.Tensor)
    }
    if not CENTRE or not candidates:
        return {}
    outputs: dict[int, tuple[str, torch.Tensor]] = {}  # the tensors held: no id reused
    found: dict[str, nn.Module] = {}
    spoiled: set[str] = set()

    def after(name: str, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            outputs[id(output)] = (name, output)

    def before(norm: nn.Module, inputs: tuple[Any, ...]) -> None:
        entry = outputs.get(id(inputs[0])) if inputs else None
        if entry is None or entry[1] is not inputs[0]:
            return
        name = entry[0]
        if norm.training or norm.running_mean is None or name in found:
            spoiled.add(name)
        found[name] = norm

    probe(
        model,
        x,
        [
            (module, lambda _, i, o, name=name: after(name, o))
            for name, module in candidates.items()
        ],
        [(m, before) for m in model.modules() if isinstance(m, _NORMS)],
    )
    return {name: norm for name, norm in found.items() if name not in spoiled}


def add_bias(module: nn.Module) -> None:
    """Give a bias-free convolution or linear layer a zero bias (its output is unchanged)."""
    weight = module.weight
    module.bias = nn.Parameter(
        torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device),
        requires_grad=weight.requires_grad,
    )


def remove_bias(module: nn.Module) -> torch.Tensor:
    """Remove ``module``'s bias and return it (detached)."""
    bias = module.bias.detach().clone()
    module.register_parameter("bias", None)
    return bias


def fold(layer: nn.Module, norm: nn.Module) -> None:
    """Move the bias of ``layer``'s last factor (or of ``layer``) into ``norm``'s stored mean.

    ``norm(layer(x))`` is unchanged: the norm subtracts ``mean - bias`` from the output that
    no longer has ``bias`` added.
    """
    try:
        last = structure(layer)[1]
    except AttributeError:
        last = layer
    bias = remove_bias(last)
    with torch.no_grad():
        norm.running_mean.sub_(bias.to(norm.running_mean.dtype))


#: Measure the error of a layer that feeds a batch norm as the norm passes it on (each output
#: channel weighted by the norm's scale ``|gamma| / sqrt(var + eps)``).
WEIGHT = True


def scales(centred: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Per layer, the scale of the batch norm it feeds (float64, floored at 1e-3 of the largest,
    so that no channel's error counts for nothing)."""
    if not WEIGHT:
        return {}
    out = {}
    for name, norm in centred.items():
        d = torch.rsqrt(norm.running_var.detach().double() + norm.eps)
        if norm.weight is not None:
            d = d * norm.weight.detach().double().abs()
        top = float(d.max()) if d.numel() else 0.0
        if top > 0:
            out[name] = d.clamp(min=1e-3 * top)
    return out


def _scale_rows(module: nn.Module, d: torch.Tensor) -> None:
    shape = (-1,) + (1,) * (module.weight.ndim - 1)
    module.weight.mul_(d.to(module.weight.dtype).reshape(shape))
    if module.bias is not None:
        module.bias.mul_(d.to(module.bias.dtype))


def scale(module: nn.Module, norm: nn.Module, d: torch.Tensor) -> torch.Tensor:
    """Multiply the output channels of ``module`` by ``d`` and make ``norm`` undo it.

    Returns the norm's stored variance, for :func:`unscale`. ``norm(module(x))`` is unchanged:
    the norm's mean is scaled by ``d`` and its ``var + eps`` by ``d**2``.
    """
    var = norm.running_var.detach().clone()
    with torch.no_grad():
        _scale_rows(module, d)
        norm.running_mean.mul_(d.to(norm.running_mean.dtype))
        norm.running_var.copy_((var.double() + norm.eps) * d**2 - norm.eps)
    return var


def unscale(layer: nn.Module, norm: nn.Module, d: torch.Tensor, var: torch.Tensor) -> None:
    """Undo :func:`scale` on the layer that replaced the module (its last factor), or on the
    module itself if it was kept."""
    try:
        last = structure(layer)[1]
    except AttributeError:
        last = layer
    with torch.no_grad():
        _scale_rows(last, 1 / d)
        norm.running_mean.div_(d.to(norm.running_mean.dtype))
        norm.running_var.copy_(var)


def prepare(target: nn.Module, candidates: list[Any], x: torch.Tensor) -> tuple[dict, dict]:
    """Before the data-aware fit: ``(centred, scaled)``.

    ``centred``: ``{name: norm}`` of the ``(name, parent, child name, module, kind)``
    candidates that feed a batch norm, given a zero bias; ``scaled``: ``{name: (d, var)}``
    of those of kind 'depthwise', 'spatial' or 'lowrank', their output channels multiplied
    by the norm's scale ``d`` (:func:`scale`, ``var`` its stored variance).
    """
    centred = feeding(target, [(c[0], c[3]) for c in candidates], x)
    kinds = {c[0]: c[4] for c in candidates}
    for name in centred:
        add_bias(target.get_submodule(name))
    weights = scales(
        {n: m for n, m in centred.items() if kinds[n] in ("depthwise", "spatial", "lowrank")}
    )
    scaled = {n: (d, scale(target.get_submodule(n), centred[n], d)) for n, d in weights.items()}
    return centred, scaled


def finish(target: nn.Module, centred: dict, scaled: dict) -> None:
    """After the fit: scales undone (:func:`unscale`), biases folded (:func:`fold`)."""
    for name, norm in centred.items():
        if name in scaled:
            unscale(target.get_submodule(name), norm, *scaled[name])
        fold(target.get_submodule(name), norm)
