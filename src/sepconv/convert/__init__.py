"""Model surgery: replace the convolutions of a trained model by separable approximations.

Two factorizations of a convolution weight ``W`` of shape ``(C_out, C_in, *kernel)``:

``method='depthwise'`` (any of 1-D, 2-D, 3-D)
    For every input channel ``c`` the slice ``W[:, c]`` is a ``C_out x prod(kernel)`` matrix;
    its truncated SVD with ``M`` terms gives ``M`` depthwise kernels for channel ``c`` and the
    columns ``c*M .. c*M+M-1`` of a pointwise weight: a :class:`sepconv.nn.SeparableConv2d`
    with ``depth_multiplier=M``, the closest in the Frobenius norm (Eckart–Young); ``M =
    min(C_out, prod(kernel))`` is exact.
``method='spatial'`` (2-D)
    The matrix ``W[(c, i), (o, j)]`` of shape ``(C_in*kh) x (C_out*kw)`` truncated to ``K``
    terms gives ``K`` vertical ``kh x 1`` filters and ``C_out`` horizontal ``1 x kw`` filters
    on ``K`` channels: a :class:`sepconv.nn.SpatiallySeparableConv2d` with
    ``intermediate_channels=K`` (Jaderberg, Vedaldi & Zisserman, "Speeding up Convolutional
    Neural Networks with Low Rank Expansions", BMVC 2014, scheme 2, closed-form solution).
``method='depthwise+spatial'`` (2-D)
    Both in turn: the depthwise decoupling above, then every depthwise kernel split by its own
    SVD into ``kh x 1`` and ``1 x kw`` filters; ``r`` terms per input channel, the largest
    first, ``r = min(C_out, kh*kw) * min(kh, kw)`` exact (:func:`depthwise_spatial_factors`;
    Guo et al., "Network Decoupling: From Regular to Depthwise Separable Convolutions", BMVC
    2018, who combine decoupling with further decompositions for VGG-16).

Costs come from :mod:`sepconv.cost`. The weight error bounds the layer's error for any input,
up to its norm; with ``linear=True``, ``nn.Linear`` layers and 1x1 convolutions become two
thinner layers (:class:`LowRank`). What keeps a converted model accurate: ``calibration``
data, on which each layer's second factor is refitted to reproduce the original layer's output
from the activations the converted model feeds it (Zhang et al. 2016); a global ``budget`` of
mult-adds shared out by error versus cost; :func:`recalibrate_batchnorm`; and a short
:func:`finetune`, distilled from the original.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from sepconv.convert import convert
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 1))
>>> exact, report = convert(model, rank=9, min_speedup=0, input_size=(1, 16, 20, 20))
>>> [row.name for row in report.replaced], [row.reason for row in report.skipped]
(['0'], ['1x1 kernel: nothing spatial to separate'])
>>> x = torch.randn(1, 16, 20, 20)
>>> torch.allclose(exact(x), model(x), atol=1e-4)  # 9 = 3*3 terms: exact, and not cheaper
True
>>> row = report.replaced[0]
>>> row.mult_adds_before, row.mult_adds_after, row.reason
(1843200, 2361600, 'rank 9 as requested, 28% more mult-adds')
>>> cheap, report = convert(model, rank=2, input_size=(1, 16, 20, 20))
>>> round(report.replaced[0].speedup, 2)  # 2 terms: 3.5x fewer mult-adds, approximate
3.51
>>> calibration = torch.randn(8, 16, 20, 20)  # data-aware, within half the mult-adds
>>> fitted, report = convert(model, budget=0.5, calibration=calibration)
>>> report.mult_adds_after <= 0.5 * report.mult_adds_before, report.data_aware
(True, True)
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._api import public_dir as _public_dir
from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_float,
    check_positive_int,
    check_shape,
)
from .._files import atomic_write
from . import _budget, _centre, _combined, _curves, _fit, _latency, _whiten, _whole
from ._combined import DepthwiseSpatialConv2d
from ._factors import (
    _CONVS,
    METHODS,
    SPATIAL,
    depthwise_factors,
    depthwise_spatial_factors,
    spatial_factors,
)
from ._fit import calibration_batches
from ._kinds import _limit, _subset, _weight_spectra
from ._layers import _describe, _dims, _is_lowrank_candidate, _padding_of, _skip_reason
from ._lowrank import LowRank, linear_factors, lowrank_layer
from ._ranks import _check_rank_args, _pick_rank
from ._report import ConversionReport, LayerReport, replaced_reason, saving_reason
from ._train import finetune, recalibrate_batchnorm

__all__ = [
    "LayerReport",
    "ConversionReport",
    "depthwise_factors",
    "spatial_factors",
    "depthwise_spatial_factors",
    "DepthwiseSpatialConv2d",
    "to_separable",
    "convert",
    "rebuild",
    "save",
    "load",
    "recalibrate_batchnorm",
    "finetune",
    "LowRank",
    "linear_factors",
    "lowrank_layer",
]


def to_separable(
    conv: nn.Module,
    method: str = "depthwise",
    rank: int | None = None,
    rtol: float | None = None,
    *,
    covariance: Any = None,
) -> tuple[nn.Module, float]:
    """A separable layer approximating ``conv`` (an ``nn.Conv1d/2d/3d`` with ``groups=1``).

    Returns the new layer (a :class:`sepconv.nn.SeparableConvNd` or
    :class:`sepconv.nn.SpatiallySeparableConv2d`, on the weight's device and dtype, bias
    copied) and the relative weight error. ``covariance``, the second moment of the layer's
    input patches (methods 'depthwise' and 'spatial'; shapes in :func:`depthwise_factors` and
    :func:`spatial_factors`), weights the truncation by the inputs, and the error returned is
    then the weighted one.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> conv = nn.Conv2d(4, 8, 3, padding=1)
    >>> layer, error = to_separable(conv, "spatial", rank=12)
    >>> type(layer).__name__, layer.intermediate_channels, error < 1e-6
    ('SpatiallySeparableConv2d', 12, True)
    """
    method = check_choice("method", method, METHODS)
    _check_conv(conv, method)
    if method == _combined.METHOD:
        if covariance is not None:
            raise SepconvValueError(
                f"`covariance` is supported by methods 'depthwise' and 'spatial', got method "
                f"{method!r}"
            )
        column, row, pw, error = depthwise_spatial_factors(conv.weight, rank, rtol)
        layer = _empty_layer(conv, method, column.shape[0] // conv.in_channels)
        _combined.fill(layer, conv, column, row, pw)
        return layer, error
    if method == "depthwise":
        dw, pw, error = depthwise_factors(conv.weight, rank, rtol, covariance=covariance)
        layer = _empty_layer(conv, method, dw.shape[0] // conv.in_channels)
        with torch.no_grad():
            layer.depthwise.weight.copy_(torch.from_numpy(dw))
            layer.pointwise.weight.copy_(torch.from_numpy(pw))
            if conv.bias is not None:
                layer.pointwise.bias.copy_(conv.bias)
        return layer, error
    column, row, error = spatial_factors(conv.weight, rank, rtol, covariance=covariance)
    layer = _empty_layer(conv, method, column.shape[0])
    with torch.no_grad():
        layer.column.weight.copy_(torch.from_numpy(column))
        layer.row.weight.copy_(torch.from_numpy(row))
        if conv.bias is not None:
            layer.row.bias.copy_(conv.bias)
    return layer, error


def _check_conv(conv: nn.Module, method: str) -> int:
    n = _dims(conv)
    if n is None:
        raise SepconvTypeError(
            f"`conv` must be an nn.Conv1d, nn.Conv2d or nn.Conv3d, got {type(conv).__name__}"
        )
    if conv.groups != 1:
        raise SepconvValueError(f"`conv` must have groups=1, got groups={conv.groups}")
    if method in SPATIAL and n != 2:
        raise SepconvValueError(f"method {method!r} needs an nn.Conv2d, got {type(conv).__name__}")
    return n


def _empty_layer(conv: nn.Module, method: str, rank: int) -> nn.Module:
    """The separable layer that replaces ``conv`` with ``rank`` terms, weights not yet set."""
    from .. import nn as snn

    n = _check_conv(conv, method)
    if method == _combined.METHOD:
        return _combined.make_layer(conv, rank, _padding_of(conv))
    common = {
        "bias": conv.bias is not None,
        "padding_mode": conv.padding_mode,
        "device": conv.weight.device,
        "dtype": conv.weight.dtype,
    }
    if method == "depthwise":
        cls = {1: snn.SeparableConv1d, 2: snn.SeparableConv2d, 3: snn.SeparableConv3d}[n]
        return cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            _padding_of(conv),
            conv.dilation,
            depth_multiplier=rank,
            **common,
        )
    return snn.SpatiallySeparableConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        _padding_of(conv),
        conv.dilation,
        intermediate_channels=rank,
        **common,
    )


def _factor(
    module: nn.Module, kind: str, rank: int | None, rtol: float | None, moment: Any = None
) -> tuple[nn.Module, float, int]:
    """The factored layer, its weight error (weighted by ``moment`` if given) and its rank."""
    if kind == "lowrank":
        if rank is None:
            w = module.weight.detach().to("cpu", torch.float64).reshape(module.weight.shape[0], -1)
            if moment is not None:
                w = w.numpy() @ _whiten.roots(moment)[0]
            s = np.linalg.svd(np.asarray(w), compute_uv=False)
            rank = _pick_rank([s], len(s), rtol, float(np.linalg.norm(s)))
        layer, error = lowrank_layer(module, rank, covariance=moment)
        return layer, error, rank
    layer, error = to_separable(module, kind, rank, rtol, covariance=moment)
    return (
        layer,
        error,
        (layer.intermediate_channels if kind == "spatial" else layer.depth_multiplier),
    )


def _refactored(module: nn.Module, kind: str, rank: int, moment: np.ndarray) -> nn.Module:
    return _factor(module, kind, rank, None, moment)[0]


def _cost_function(module: nn.Module, kind: str, shape: Any, output_shape: Any) -> Any:
    """Mult-adds as a function of the rank (affine in it for every kind)."""
    if kind == "lowrank":
        c_out = module.weight.shape[0]
        positions = math.prod(output_shape) // c_out
        c_in = module.weight[0].numel()
        return lambda r: positions * r * (c_in + c_out)
    c1 = _empty_layer(module, kind, 1).cost(shape).multiplications
    c2 = _empty_layer(module, kind, 2).cost(shape).multiplications
    return lambda r: c1 + (r - 1) * (c2 - c1)


def convert(
    model: nn.Module,
    *,
    method: str = "depthwise",
    rank: int | None = None,
    rtol: float | None = None,
    budget: float | None = None,
    calibration: Any = None,
    input_size: Sequence[int] | None = None,
    min_speedup: float = 1.0,
    example_input: torch.Tensor | None = None,
    linear: bool = False,
    measure_latency: bool = False,
    inplace: bool = False,
    whiten: bool = True,
    recalibrate_bn: bool = True,
) -> tuple[nn.Module, ConversionReport]:
    """Replace the convolutions (and optionally linear layers) of ``model`` by factored ones.

    Every plain convolution (``groups=1``, kernel larger than 1) is factored with
    :func:`to_separable`; with ``linear``, every ``nn.Linear`` and 1x1 convolution by truncated
    SVD into a :class:`LowRank` pair. The ranks come from ``rank``, ``rtol`` or ``budget``
    (exactly one). A replacement is kept only when it saves at least ``min_speedup`` times the
    multiplications (counted by :mod:`sepconv.cost` for ``input_size``; without one,
    parameters), or, with ``measure_latency``, the measured CPU time. Layers inside sepconv's
    own layers are left alone; children are replaced through ``named_children`` recursively.

    With ``calibration``, the second factor of every converted layer (pointwise weights,
    horizontal filters, second thin layer) and its bias are refitted by least squares to
    reproduce the original layer's output on the activations the converted model feeds it
    (Zhang et al., TPAMI 2016), layer after layer in forward order, so errors do not
    accumulate. With ``whiten`` the first factors are chosen for the output too: each layer's
    truncation minimises ``||(W - W_r) S^{1/2}||_F``, ``S`` the second moment of its inputs
    in the original model (:func:`depthwise_factors`, :func:`spatial_factors`,
    :func:`linear_factors`; method 'depthwise+spatial' keeps the unweighted SVD), and a
    second candidate refits both factors to the converted model's inputs, in forward order
    (the full weight by least squares, its whitened truncation, then alternating least
    squares of the two factors for depthwise and spatial layers). Of the refitted whitened,
    refitted both-factor and refitted closed-form models, the one with the smallest output
    error on the calibration data is kept if not larger than the closed form's, else the
    closed form itself (``report.whitened`` and ``report.data_aware`` say which). A layer
    without bias whose output goes straight into an inference-mode batch norm is fitted with
    a free bias (truncation weighted by the input covariance), which is then moved into the
    norm's stored mean, so the model keeps its structure; its output error is measured as the
    norm passes it on (each channel weighted by ``|gamma| / sqrt(var + eps)``).

    Parameters
    ----------
    model : nn.Module
    method : {'depthwise', 'spatial', 'depthwise+spatial'}
        See the module documentation.
    rank : int, optional
        Terms per layer (depth multiplier, intermediate channels, separable terms per input
        channel, or SVD rank); capped per layer at the exact rank.
    rtol : float, optional
        Per layer, the fewest terms within this relative weight error, ``0 <= rtol < 1``
        (0: exact; an error of 1 is met by any rank).
    budget : float, optional
        ``0 < budget <= 1``: the convertible layers together keep at most this fraction of
        their mult-adds; ranks allocated greedily over each layer's error-versus-cost curve
        (output error on ``calibration`` when given, after the same refit of both factors
        for whitened depthwise and spatial layers; else weight error). Needs
        ``input_size`` or ``calibration``.
    calibration : Tensor ``(N, C, *spatial)`` or iterable of batches or (input, target) pairs
        Inputs for the data-aware refit (a few hundred to a thousand samples).
    input_size : sequence of int, optional
        ``(N, C, *spatial)``; default ``(1, *calibration.shape[1:])``.
    min_speedup : float
        Keep a replacement only if it is at least this many times cheaper (mult-adds, or
        measured time with ``measure_latency``).
    example_input : Tensor, optional
        Held-out batch on which the whole model's relative output error is measured.
    linear : bool
        Also factor ``nn.Linear`` layers and 1x1 convolutions.
    measure_latency : bool
        Measure each replacement's CPU latency at ``input_size`` (median of interleaved
        rounds, the current thread count) and the whole model's before and after. Without a
        ``budget``, ``min_speedup`` then judges measured time (a layer slower in practice is
        kept, with that reason); with one, the budget decides and latency is reported.
    inplace : bool
        Modify ``model`` itself instead of a deep copy.
    whiten : bool
        With ``calibration``: weight the first factors by the measured input moments (the
        default); ``False`` keeps the unweighted SVD and refits the second factors only.
    recalibrate_bn : bool
        With ``calibration`` and batch norms: re-estimate their statistics on it after the
        converted layers are fitted and refit the layers kept whole to the features so
        normalised (:func:`sepconv.convert._whole.refit_to_norms`; the default), so that a
        later :func:`recalibrate_batchnorm` does not undo the fit; ``False`` keeps them.

    Returns
    -------
    model : nn.Module
        The converted model (``model`` itself when ``inplace``), in ``model``'s mode.
    report : ConversionReport
        One row per layer: replaced or kept, why, rank, errors, costs, latency.

    Raises
    ------
    TypeError
        When ``model`` is not an ``nn.Module`` or ``calibration`` holds no tensors.
    ValueError
        When not exactly one of ``rank``, ``rtol``, ``budget`` is given, or a value is out
        of range (a budget below what rank 1 everywhere reaches included).
    """
    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    method = check_choice("method", method, METHODS)
    if budget is None:
        _check_rank_args(rank, rtol)
    elif rank is not None or rtol is not None:
        raise SepconvValueError("give one of `rank`, `rtol` or `budget`, not several")
    else:
        budget = check_float("budget", budget)
        if not 0 < budget <= 1:
            raise SepconvValueError(f"`budget` must be in (0, 1], got {budget!r}")
    min_speedup = check_float("min_speedup", min_speedup, minimum=0.0)
    batches = calibration_batches(calibration) if calibration is not None else None
    if input_size is None and batches is not None:
        input_size = (1, *batches[0].shape[1:])
    if input_size is not None:
        input_size = check_shape(
            "input_size", input_size, (2, 3, 4, 5), what="sizes (N, C, *spatial)"
        )
    if not isinstance(whiten, bool):
        raise SepconvTypeError(f"`whiten` must be True or False, got {whiten!r}")
    if not isinstance(recalibrate_bn, bool):
        raise SepconvTypeError(f"`recalibrate_bn` must be True or False, got {recalibrate_bn!r}")
    if (budget is not None or measure_latency) and input_size is None:
        raise SepconvValueError("`budget` and `measure_latency` need `input_size` or `calibration`")
    was_training = model.training
    needs_reference = batches is not None or measure_latency
    reference = copy.deepcopy(model) if inplace and needs_reference else model
    reference.eval()
    expected = None
    if example_input is not None:
        with torch.no_grad():
            expected = reference(example_input)
    target = model if inplace else copy.deepcopy(model)
    target.eval()
    profiled = {}
    if input_size is not None:
        from ..profiling import profile

        profiled = {row.name: row for row in profile(target, input_size).rows}

    from .. import nn as snn

    own = (
        snn.SeparableConv1d,
        snn.SeparableConv2d,
        snn.SeparableConv3d,
        snn.SpatiallySeparableConv2d,
        LowRank,
    )
    rows: dict[str, LayerReport | None] = {}
    candidates = []  # (name, parent, child name, module, kind)

    def visit(parent: nn.Module, prefix: str) -> None:
        for child_name, child in parent.named_children():
            name = f"{prefix}{child_name}"
            if isinstance(child, own):
                continue
            if linear and _is_lowrank_candidate(child):
                candidates.append((name, parent, child_name, child, "lowrank"))
                rows[name] = None
                continue
            if _dims(child) is None:
                if isinstance(child, tuple(_CONVS)):
                    rows[name] = LayerReport(
                        name,
                        _describe(child),
                        False,
                        f"{type(child).__name__} subclasses a convolution and its output "
                        f"matched none of a plain convolution with its attributes, Keras "
                        f"'same' or 'valid' padding on probe inputs (declare keras_padding "
                        f"if it pads another known way)",
                        parameters_before=sum(p.numel() for p in child.parameters()),
                    )
                    continue
                visit(child, f"{name}.")
                continue
            params = sum(p.numel() for p in child.parameters())
            reason = _skip_reason(child, method)
            if reason is not None:
                rows[name] = LayerReport(
                    name, _describe(child), False, reason, parameters_before=params
                )
                continue
            candidates.append((name, parent, child_name, child, method))
            rows[name] = None

    visit(target, "")
    costs = {}
    for name, _, _, child, kind in candidates:
        if name in profiled:
            costs[name] = _cost_function(
                child, kind, profiled[name].input_shape, profiled[name].output_shape
            )
    data = None
    fulls = {}
    moments: dict[str, np.ndarray] = {}
    centred: dict[str, nn.Module] = {}  # name: the batch norm its output goes into
    scaled: dict[str, Any] = {}  # name: (the norm's scale, its stored variance)
    if batches is not None:
        centred, scaled = _centre.prepare(target, candidates, batches[0])
        if whiten:
            layers = [(c[0], c[3], c[4]) for c in candidates]
            moments = _whiten.moments(reference, layers, batches)
        if budget is not None:
            fulls = {
                name: _factor(child, kind, _limit(child, kind), None, moments.get(name))[0]
                for name, _, _, child, kind in candidates
            }
        extra = _whole.find(target, own, {c[0] for c in candidates})
        data = _fit.Reference(
            reference,
            [c[0] for c in candidates] + extra,
            batches,
            curves=fulls,
            full=_curves.refitted(candidates, moments) if budget is not None else None,
            scales={name: d for name, (d, _) in scaled.items()},
        )
    chosen: dict[str, int | None] = {}
    budget_reason: dict[str, str] = {}
    if budget is not None:
        chosen, budget_reason = _allocate(
            candidates, costs, profiled, budget, min_speedup, data, fulls
        )
    replaced = []  # (name, layer)
    unweighted = {}  # name: the closed-form layer at the same rank, for whitened layers
    originals = {}  # name: (original module, kind, rank), for whitened layers
    for name, parent, child_name, child, kind in candidates:
        added = child.weight.shape[0] if name in centred else 0  # the bias folded at the end
        params = sum(p.numel() for p in child.parameters()) - added
        before = profiled[name].mult_adds if name in profiled else None
        if budget is not None and chosen[name] is None:
            rows[name] = LayerReport(
                name,
                _describe(child),
                False,
                budget_reason[name],
                kind,
                None,
                None,
                params,
                None,
                before,
                None,
            )
            continue
        layer_rank = chosen.get(name, None if rank is None else min(rank, _limit(child, kind)))
        moment = moments.get(name)
        layer, error, term = _factor(child, kind, layer_rank, None if layer_rank else rtol, moment)
        if moment is not None:
            unweighted[name] = _factor(child, kind, term, None)[:2]
            originals[name] = (child, kind, term)
            error = _whiten.weight_error(child, layer, kind)
        new_params = sum(p.numel() for p in layer.parameters()) - added
        after = costs[name](term) if name in costs else None
        ratio = before / after if name in costs else params / new_params
        latency = (None, None)
        if measure_latency and name in profiled:
            latency = tuple(
                1000 * t for t in _latency.compare(child, layer, profiled[name].input_shape)
            )
        common = (kind, term, error, params, new_params, before, after)
        timed = measure_latency and budget is None and latency[0] is not None
        counted = "time" if timed else "mult-adds" if name in costs else "parameters"
        judged = latency[0] / latency[1] if timed else ratio
        kept = judged < min_speedup
        if not kept:
            setattr(parent, child_name, layer)
            replaced.append((name, layer))
        rows[name] = LayerReport(
            name,
            _describe(child),
            not kept,
            saving_reason(term, judged, min_speedup, counted)
            if kept
            else budget_reason.get(name) or replaced_reason(term, rank, rtol, judged, counted),
            *common,
            latency_before_ms=latency[0],
            latency_after_ms=latency[1],
        )
    calibration_error = closed_error = None
    data_aware = whitened = recalibrated = False
    refitted: tuple[str, ...] = ()
    if batches is not None and replaced:
        whole = {name: target.get_submodule(name) for name in extra}
        if _whole.REFIT:  # and the candidates kept whole
            whole.update({c[0]: c[3] for c in candidates if not rows[c[0]].replaced})
        whole = {name: layer for name, layer in whole.items() if _whole.is_whole(layer)}
        order = _fit.forward_order(target, replaced + list(whole.items()), batches[0])
        order = _whole.after_first(order, set(whole))
        fitted, calibration_error, closed_error, kept = _whiten.fit(
            data, target, order, batches, unweighted, originals, _refactored
        )
        data_aware, whitened = kept is not None, kept in ("asymmetric", "whitened")
        for name, (_, weight_error) in unweighted.items():
            if not whitened:
                rows[name] = dataclasses.replace(rows[name], weight_error=weight_error)
        for name, (closed, fit) in fitted.items():
            if name in rows:
                fit = fit if data_aware else closed
                rows[name] = dataclasses.replace(
                    rows[name], closed_form_output_error=closed, output_error=fit
                )
        for name in data.unreached:
            if name in rows and rows[name].replaced:
                rows[name] = dataclasses.replace(
                    rows[name],
                    reason=f"{rows[name].reason}; not run on the calibration data: closed form",
                )
    _centre.finish(target, centred, scaled)
    if batches is not None and replaced:
        if recalibrate_bn and _whole.has_norms(target):
            fitted = _whole.refit_to_norms(data, target, order, batches, fitted, scaled)
            calibration_error, recalibrated = data.output_error(target, batches), True
            for name in set(whole) & set(fitted) & set(rows):
                closed, fit = fitted[name]
                rows[name] = dataclasses.replace(
                    rows[name], closed_form_output_error=closed, output_error=fit
                )
        refitted = tuple(  # the fits kept: refit() keeps no worse one
            n for n, _ in order if n in set(whole) & set(fitted) and fitted[n][1] < fitted[n][0]
        )
        refitted = refitted if data_aware or recalibrated else ()
        if not recalibrated and data_aware and _whole.has_norms(target):
            for name in refitted:  # fitted to the norms' statistics: see recalibrate_batchnorm
                target.get_submodule(name).__dict__["_sepconv_fitted_to_norms"] = True
    for name, _, _, _, kind in candidates:  # weight errors of the weights, not the scaled ones
        if name in scaled and rows[name].replaced:
            error = _whiten.weight_error(
                reference.get_submodule(name), target.get_submodule(name), kind
            )
            rows[name] = dataclasses.replace(rows[name], weight_error=error)
    model_latency = (None, None)
    if measure_latency:
        model_latency = tuple(1000 * t for t in _latency.compare(reference, target, input_size))
    output_error = None
    if expected is not None:
        with torch.no_grad():
            got = target(example_input)
        norm = float(torch.linalg.vector_norm(expected.double()))
        diff = float(torch.linalg.vector_norm((got - expected).double()))
        output_error = diff / norm if norm else diff
    reference.train(was_training)
    target.train(was_training)
    return target, ConversionReport(
        tuple(rows.values()),
        output_error,
        budget,
        data_aware,
        calibration_error,
        closed_error,
        *model_latency,
        threads=torch.get_num_threads() if measure_latency else None,
        whitened=whitened,
        refitted=refitted,
        recalibrated_bn=recalibrated,
    )


def _allocate(
    candidates: list[Any],
    costs: dict[str, Any],
    profiled: dict[str, Any],
    budget: float,
    min_speedup: float,
    data: _fit.Reference | None,
    fulls: dict[str, nn.Module],
) -> tuple[dict[str, int | None], dict[str, str]]:
    """Ranks within ``budget`` (see :mod:`._budget`) and the reason given for each layer."""
    curves = []
    unmeasured = {}
    for name, _, _, child, kind in candidates:
        if name not in profiled:
            unmeasured[name] = "not run on an input of input_size: no cost to budget"
            continue
        before = profiled[name].mult_adds
        limit = _limit(child, kind)
        ranks = [
            r
            for r in _budget.candidate_ranks(limit)
            if costs[name](r) * max(min_speedup, 1e-12) < before
        ]
        curve = _budget.Curve(name, before, ranks, [costs[name](r) for r in ranks])
        if ranks and data is not None and name in data.normals:
            curve.errors = data.curve(name, fulls[name], ranks, _subset(child, kind, limit))
        elif ranks:
            spectra = _weight_spectra(child, kind)
            norm = math.sqrt(sum(float(np.sum(s**2)) for s in spectra))
            curve.errors = _budget.weight_errors(spectra, norm, ranks)
        curves.append(curve)
    chosen: dict[str, int | None] = {
        **_budget.allocate(curves, budget),
        **dict.fromkeys(unmeasured),
    }
    total = sum(c.original for c in curves)

    reasons = dict(unmeasured)
    for c in curves:
        r = chosen[c.name]
        share = c.original / total
        error_kind = "output" if data is not None and c.name in data.normals else "weight"
        if not c.ranks:
            reasons[c.name] = "no rank saves mult-adds"
        elif r is None:
            reasons[c.name] = (
                f"budget keeps it whole ({share:.1%} of the mult-adds; at "
                f"rank {c.ranks[-1]} its {error_kind} error would be "
                f"{c.errors[-1]:.2e})"
            )
        else:
            i = c.ranks.index(r)
            reasons[c.name] = (
                f"rank {r} from the budget, {c.costs[i] / c.original:.0%} of its "
                f"mult-adds, {error_kind} error {c.errors[i]:.2e} when ranks were allocated"
            )
    return chosen, reasons


def _plan(layers: Any) -> list[dict[str, Any]]:
    """``[{'name', 'method', 'rank'}, ...]`` of the replaced layers, from a report or a list."""
    if isinstance(layers, ConversionReport):
        return [{"name": r.name, "method": r.method, "rank": r.rank} for r in layers.replaced]
    if not isinstance(layers, Sequence) or isinstance(layers, str):
        raise SepconvTypeError(
            f"`layers` must be a ConversionReport or a list of {{'name', 'method', 'rank'}} "
            f"dicts, got {type(layers).__name__}"
        )
    plan = []
    for entry in layers:
        if not isinstance(entry, dict) or not {"name", "method", "rank"} <= set(entry):
            raise SepconvValueError(
                f"`layers` entries must be dicts with 'name', 'method' and 'rank', got {entry!r}"
            )
        plan.append(
            {
                "name": entry["name"],
                "method": check_choice("method", entry["method"], (*METHODS, "lowrank")),
                "rank": check_positive_int("rank", entry["rank"]),
            }
        )
    return plan


def rebuild(model: nn.Module, layers: Any, *, inplace: bool = False) -> nn.Module:
    """Give ``model`` the structure of a converted model, so that its state dict loads.

    ``layers`` is a :class:`ConversionReport` or the list saved by :func:`save`. The named
    convolutions are replaced by separable layers of the recorded method and rank; their
    weights are left as initialised, to be overwritten by ``load_state_dict``.
    """
    if not isinstance(model, nn.Module):
        raise SepconvTypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    target = model if inplace else copy.deepcopy(model)
    for entry in _plan(layers):
        try:
            conv = target.get_submodule(entry["name"])
        except AttributeError:
            raise SepconvValueError(
                f"`layers` names {entry['name']!r}, which the model does not have"
            ) from None
        lowrank_entry = entry["method"] == "lowrank"
        if not (_is_lowrank_candidate(conv) if lowrank_entry else _dims(conv) is not None):
            raise SepconvValueError(
                f"`layers` names {entry['name']!r}, a {type(conv).__name__}, not an "
                f"{'nn.Linear or 1x1 convolution' if lowrank_entry else 'nn.Conv1d/2d/3d'}"
            )
        parent_name, _, child = entry["name"].rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        setattr(
            parent,
            child,
            lowrank_layer(conv, entry["rank"], empty=True)[0]
            if lowrank_entry
            else _empty_layer(conv, entry["method"], entry["rank"]),
        )
    return target


def save(
    model: nn.Module,
    report: ConversionReport,
    path: str | Any,
    *,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save a converted model as ``{'state_dict', 'conversion', 'metadata'}``, atomically.

    The file holds tensors, strings and numbers only, so :func:`load` reads it with
    ``torch.load(..., weights_only=True)``: no pickled code runs.
    """
    import os

    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"`path`: the folder {folder!r} does not exist")
    payload = {
        "state_dict": model.state_dict(),
        "conversion": _plan(report),
        "metadata": dict(metadata or {}),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load(path: str | Any, model: nn.Module) -> nn.Module:
    """Load a file written by :func:`save` into a copy of ``model`` (the unconverted network).

    Reads with ``weights_only=True``, rebuilds the separable layers, loads the state dict
    strictly and returns the converted model in eval mode.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or not {"state_dict", "conversion"} <= set(payload):
        raise SepconvValueError(
            f"`path` {str(path)!r} is not a file written by sepconv.convert.save (it has no "
            f"'state_dict' and 'conversion' entries)"
        )
    target = rebuild(model, payload["conversion"])
    target.load_state_dict(payload["state_dict"])
    return target.eval()


__dir__ = _public_dir(globals())
