"""Layers kept whole after converted ones: their weights refitted to the converted inputs.

The asymmetric reconstruction of Zhang, Zou, He & Sun (TPAMI 2016) fits each layer to the
*original* layer's output from the inputs the *converted* network feeds it, so that the errors
of earlier layers are corrected rather than passed on. A layer that the conversion keeps whole
(a classifier, a 1x1 convolution, a layer the budget leaves alone) can be fitted the same way
at no cost: its full weight and bias are a linear least-squares problem on its tap features,
with the same sampled positions, normal equations and ridge towards the original weights as
the second factors (:func:`sepconv.convert._fit.refit`), and the refit is kept only where it
lowers the layer's error. Layers that run before the first converted layer see unchanged
inputs and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._fit import _rows, _tap_features

#: Refit the layers kept whole that run after a converted layer.
REFIT = True
#: Widest layer refitted (inputs per output, ``C_in * prod(kernel)``): its normal equations
#: are a square system of this size.
WIDTH = 6144

_PLAIN = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_whole(module: nn.Module) -> bool:
    """A plain ``nn.Linear`` or ``nn.ConvNd`` (``groups=1``, not a subclass) that fits."""
    return (
        type(module) in _PLAIN
        and getattr(module, "groups", 1) == 1
        and module.weight[0].numel() <= WIDTH
    )


def find(model: nn.Module, skip: tuple[type, ...], names: set[str]) -> list[str]:
    """Names of the plain layers of ``model`` (:func:`is_whole`) outside ``skip`` modules and
    not in ``names`` (the conversion candidates, which are sampled anyway)."""
    if not REFIT:
        return []
    found = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for child_name, child in parent.named_children():
            name = f"{prefix}{child_name}"
            if isinstance(child, skip):
                continue
            if name not in names and is_whole(child):
                found.append(name)
            visit(child, f"{name}.")

    visit(model, "")
    return found


def features(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``input -> (positions, inputs per output)``: what the layer's weight multiplies."""
    if isinstance(layer, nn.Linear):
        return lambda z: _rows(z, True)
    return lambda z: _rows(_tap_features(layer, z), False)


def after_first(order: list[tuple[str, nn.Module]], whole: set[str]) -> list[Any]:
    """``order`` without the whole layers that run before the first converted one."""
    kept, started = [], False
    for name, layer in order:
        if name not in whole:
            started = True
        if started:
            kept.append((name, layer))
    return kept
