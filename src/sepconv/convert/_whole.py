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


def has_norms(model: nn.Module) -> bool:
    """Whether ``model`` holds a batch norm that keeps running statistics."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        for m in model.modules()
    )


def refit_to_norms(
    data: Any,
    target: nn.Module,
    order: list[tuple[str, nn.Module]],
    batches: list[torch.Tensor],
    fitted: dict[str, tuple[float, float]],
    scaled: dict[str, Any],
) -> dict[str, tuple[float, float]]:
    """Batch-norm statistics re-estimated on ``batches``, with the whole layers refitted to them.

    A layer kept whole after a converted one is fitted to the features the converted model
    feeds it, as its batch norms normalise them; re-estimating the norms' statistics later
    (:func:`sepconv.convert.recalibrate_batchnorm`, which the statistics of a converted model
    call for) changes those features and can undo the fit. So the statistics are re-estimated
    first and each whole layer of ``order`` (``(name, layer)`` in forward order, converted
    ones included) refitted after them, in forward order, the statistics re-estimated again
    after each refit (a refit changes the inputs of the norms after it) and at the end: the
    model is left as one further re-estimation on the same samples would leave it (in
    chunks of :data:`sepconv.convert._fit.CHUNK`: each chunk weighs the same).

    ``data``: the :class:`sepconv.convert._fit.Reference` whose samples hold the original
    layers' outputs; those of the layers in ``scaled`` (``{name: (d, var)}``, whose outputs
    were sampled as their batch norm passes them on, :func:`sepconv.convert._centre.scale`)
    are divided by ``d`` here, as the scaling has been undone. ``fitted``: ``{name:
    (closed-form error, fitted error)}`` of the earlier refit, updated for the layers
    refitted here and returned (the closed-form error kept, the fitted one measured with the
    new statistics).
    """
    from . import _fit
    from ._train import recalibrate_batchnorm

    for name, (d, _) in scaled.items():
        if name in data.samples:
            data.samples[name] = [(i, y / d.to(y.dtype)) for i, y in data.samples[name]]
    fitted = dict(fitted)
    # equal chunks, so that a batch and the same samples in other batches give one result
    chunks = list(torch.cat(batches).split(_fit.CHUNK))
    for name, layer in order:
        if not is_whole(layer) or name in data.unreached:
            continue
        recalibrate_batchnorm(target, chunks)
        errors = _fit.refit(data, target, [(name, layer)], batches)
        if name in errors:
            closed = fitted[name][0] if name in fitted else errors[name][0]
            fitted[name] = (closed, errors[name][1])
    recalibrate_batchnorm(target, chunks)
    return fitted
