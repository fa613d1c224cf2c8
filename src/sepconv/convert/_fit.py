"""Data-aware factors: the second factor of each layer refitted by least squares on activations.

Zhang, Zou, He & Sun, "Accelerating Very Deep Convolutional Networks for Classification and
Detection" (TPAMI 2016), fit each factored layer to the *original* layer's response on the
inputs the *approximated* network feeds it ("asymmetric reconstruction"), so the errors of
earlier layers are corrected instead of accumulated. Here the first factor (the depthwise
kernels, the vertical ``kh x 1`` filters, or the first thin layer) stays as given (closed
form, or whitened and refitted by :mod:`sepconv.convert._whiten`) and the second (pointwise
weights, horizontal ``1 x kw`` filters, second thin layer), bias included, is the linear
least-squares solution: the layer's output is linear in it. The
normal equations are accumulated in float64 over a seeded random sample of output positions;
a small ridge term pulls unidentified directions (dead channels) to the closed-form values.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import SepconvTypeError, SepconvValueError

#: Output positions sampled per layer for the normal equations.
ROWS = 32768
#: Samples per internal chunk of a calibration batch (bounds the memory of one pass).
CHUNK = 64


class _Stop(Exception):
    """Raised by a forward hook to end a forward pass once the activation is captured."""


def calibration_batches(calibration: Any) -> list[torch.Tensor]:
    """The inputs of ``calibration`` as a list of tensors of at most :data:`CHUNK` samples."""
    if isinstance(calibration, torch.Tensor):
        items: Iterable[Any] = [calibration]
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes)):
        items = calibration
    else:
        raise SepconvTypeError(
            f"`calibration` must be a tensor batch (N, C, *spatial) or an iterable of batches "
            f"or (input, target) pairs, got {type(calibration).__name__}"
        )
    batches = []
    for item in items:
        if isinstance(item, (tuple, list)) and item:
            item = item[0]
        if not isinstance(item, torch.Tensor) or item.ndim < 2 or not item.is_floating_point():
            shape = tuple(item.shape) if isinstance(item, torch.Tensor) else ""
            raise SepconvValueError(
                f"`calibration` batches must be floating-point tensors (N, C, *spatial), got "
                f"{type(item).__name__}{shape}"
            )
        batches.extend(item.split(CHUNK))
    if not batches:
        raise SepconvValueError("`calibration` must hold at least one batch, got none")
    return batches


def run_to(
    model: nn.Module,
    module: nn.Module,
    x: torch.Tensor,
    take: Callable[[tuple[Any, ...], Any], Any],
) -> Any:
    """Run ``model`` on ``x`` until ``module`` has run once; return ``take(inputs, output)``."""
    captured = []

    def hook(_: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        captured.append(take(inputs, output))
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise SepconvValueError(
            "`calibration`: a layer to convert did not run in the model's forward pass"
        )
    return captured[0]


def _rows(t: torch.Tensor, linear: bool) -> torch.Tensor:
    """``(N, C, *spatial)`` (or ``(..., C)`` for a linear layer) as ``(positions, C)``."""
    if linear:
        return t.reshape(-1, t.shape[-1])
    return t.movedim(1, -1).reshape(-1, t.shape[1])


def _tap_features(second: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Inputs of every weight of ``second`` (a convolution, groups 1) at every output position.

    Channel ``k * taps + t`` is ``z``'s channel ``k`` seen through tap ``t`` of ``second``'s
    kernel, with ``second``'s own stride, dilation and padding: the output is linear in the
    weight, ``second(z)[o] = sum_j weight.reshape(C_out, -1)[o, j] * features[j]``.
    """
    channels, taps = second.in_channels, math.prod(second.kernel_size)
    probe = copy.deepcopy(second)
    eye = torch.eye(taps, dtype=z.dtype, device=z.device).repeat(channels, 1)
    probe.weight = nn.Parameter(
        eye.reshape(channels * taps, 1, *second.kernel_size), requires_grad=False
    )
    probe.bias = None
    probe.groups = channels
    probe.out_channels = channels * taps
    return probe(z)


def structure(layer: nn.Module) -> tuple[nn.Module, nn.Module, Callable[[Any], torch.Tensor], bool]:
    """``(first, second, features(first_output) -> rows, linear)`` of a factored layer."""
    from .. import nn as snn
    from ._lowrank import LowRank

    if isinstance(layer, LowRank):
        linear = isinstance(layer[1], nn.Linear)
        return layer[0], layer[1], lambda z: _rows(z, linear), linear
    if isinstance(layer, snn.SpatiallySeparableConv2d):
        return layer.column, layer.row, lambda z: _rows(_tap_features(layer.row, z), False), False
    return layer.depthwise, layer.pointwise, lambda z: _rows(z, False), False


def second_weight(second: nn.Module) -> np.ndarray:
    """``theta`` of shape ``(features (+1 for the bias), C_out)`` of the second factor."""
    weight = second.weight.detach().to("cpu", torch.float64)
    theta = weight.reshape(weight.shape[0], -1).T.numpy()
    if second.bias is not None:
        theta = np.vstack([theta, second.bias.detach().to("cpu", torch.float64).numpy()[None]])
    return theta


def set_second_weight(second: nn.Module, theta: np.ndarray) -> None:
    with torch.no_grad():
        features = second.weight[0].numel()
        weight = torch.from_numpy(np.ascontiguousarray(theta[:features].T))
        second.weight.copy_(weight.reshape(second.weight.shape))
        if second.bias is not None:
            second.bias.copy_(torch.from_numpy(theta[features]))


class Normal:
    """Normal equations of ``min ||F theta - Y||`` accumulated over sampled rows (float64)."""

    def __init__(self, features: int, outputs: int, bias: bool) -> None:
        size = features + bias
        self.features, self.bias = features, bias
        self.gram = np.zeros((size, size))
        self.cross = np.zeros((size, outputs))
        self.energy = 0.0

    def add(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        if len(features) != len(targets):
            raise SepconvValueError(
                "`calibration`: a converted layer's output positions differ from the original's"
            )
        f = features.detach().to("cpu", torch.float64).numpy()
        y = targets.detach().to("cpu", torch.float64).numpy()
        if self.bias:
            f = np.hstack([f, np.ones((len(f), 1))])
        self.gram += f.T @ f
        self.cross += f.T @ y
        self.energy += float(np.sum(y * y))

    def _index(self, index: np.ndarray | None) -> np.ndarray:
        if index is None:
            index = np.arange(self.features)
        return np.concatenate([index, [self.features]]) if self.bias else index

    def solve(self, theta0: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """Least squares over the ``index`` features (and the bias), ridge towards ``theta0``."""
        full = self._index(index)
        gram = self.gram[np.ix_(full, full)]
        scale = float(np.trace(gram)) / max(len(full), 1)
        ridge = 1e-9 * scale + 1e-300
        system = gram + ridge * np.eye(len(full))
        rhs = self.cross[full] + ridge * theta0
        try:
            return np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:  # pragma: no cover - singular even with the ridge
            return np.linalg.lstsq(system, rhs, rcond=None)[0]

    def error(self, theta: np.ndarray, index: np.ndarray | None = None) -> float:
        """Relative error ``||F theta - Y|| / ||Y||`` on the sampled rows."""
        full = self._index(index)
        gram = self.gram[np.ix_(full, full)]
        residual = (
            self.energy
            - 2 * float(np.sum(theta * self.cross[full]))
            + float(np.sum(theta * (gram @ theta)))
        )
        return math.sqrt(max(residual, 0.0) / self.energy) if self.energy > 0 else 0.0


class Reference:
    """One pass of the unconverted model over the calibration batches, hooked on every layer.

    For each layer and batch: a seeded random sample of output positions (at most
    ``rows / len(batches)``) and the original layer's output there; the model's outputs (for
    the whole-model error); and, for the layers given in ``curves`` (a full-rank factored
    layer each), the normal equations of the second factor on the original activations.
    """

    def __init__(
        self,
        reference: nn.Module,
        names: list[str],
        batches: list[torch.Tensor],
        *,
        rows: int = ROWS,
        curves: dict[str, nn.Module] | None = None,
        full: dict[str, tuple[nn.Module, str]] | None = None,
        scales: dict[str, torch.Tensor] | None = None,
    ) -> None:
        per_batch = max(1, math.ceil(rows / len(batches)))
        curves = curves or {}
        full = full or {}
        scales = scales or {}
        self.kinds = {name: kind for name, (_, kind) in full.items()}
        self.modules = {name: module for name, (module, _) in full.items()}
        #: Normal equations of the full convolution on the tap features, for the layers in
        #: ``full`` (``{name: (module, kind)}``): curves after both factors are refitted.
        self.full_normals: dict[str, Normal] = {}
        self.samples: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {n: [] for n in names}
        self.linear = {n: isinstance(reference.get_submodule(n), nn.Linear) for n in names}
        self.normals: dict[str, Normal] = {}
        self.outputs: list[torch.Tensor] = []
        generators = {n: torch.Generator().manual_seed(i) for i, n in enumerate(names)}
        done: set[str] = set()

        def hook(name: str, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            if name in done:  # a module called twice in one pass: its first call counts
                return
            done.add(name)
            y = _rows(output, self.linear[name])
            if name in scales:  # the output as a batch norm passes it on (_centre.scales)
                y = y * scales[name].to(y.dtype)
            index = torch.randperm(len(y), generator=generators[name])[:per_batch]
            index = index.sort().values
            self.samples[name].append((index, y[index.to(y.device)].double().cpu()))
            if name in curves:
                first, second, features, _ = structure(curves[name])
                f = features(first(inputs[0]))[index.to(y.device)]
                if name not in self.normals:
                    self.normals[name] = Normal(f.shape[1], y.shape[1], second.bias is not None)
                self.normals[name].add(f, self.samples[name][-1][1])
            if name in full:
                module = full[name][0]
                f = _rows(_tap_features(module, inputs[0]), False)[index.to(y.device)]
                if name not in self.full_normals:
                    bias = module.bias is not None
                    self.full_normals[name] = Normal(f.shape[1], y.shape[1], bias)
                self.full_normals[name].add(f, self.samples[name][-1][1])

        handles = [
            reference.get_submodule(n).register_forward_hook(lambda _, i, o, n=n: hook(n, i, o))
            for n in names
        ]
        try:
            with torch.no_grad():
                for x in batches:
                    done.clear()
                    self.outputs.append(reference(x))
        finally:
            for handle in handles:
                handle.remove()
        # Layers the forward pass does not reach (an auxiliary head used only in training, a
        # branch the inputs do not take) keep their closed-form factors.
        self.unreached = {n for n in names if len(self.samples[n]) != len(batches)}
        for name in self.unreached:
            del self.samples[name]
            self.normals.pop(name, None)
            self.full_normals.pop(name, None)

    def output_error(self, model: nn.Module, batches: list[torch.Tensor]) -> float:
        """Relative error of ``model``'s outputs against the reference's on the batches."""
        diff = norm = 0.0
        with torch.no_grad():
            for x, want in zip(batches, self.outputs):
                want = want.double()
                diff += float(torch.sum((model(x).double() - want) ** 2))
                norm += float(torch.sum(want**2))
        return math.sqrt(diff / norm) if norm else math.sqrt(diff)

    def curve(
        self, name: str, layer: nn.Module, ranks: list[int], subset: Callable[[int], np.ndarray]
    ) -> list[float]:
        """Relative output error of ``name`` at each rank, second factor fitted.

        ``layer`` is the full-rank factored layer given in ``curves``; ``subset(rank)`` gives
        the indices of its features that the layer at ``rank`` keeps (the factors are nested:
        the leading singular triplets). Layers given in ``full`` get the errors after both
        factors are refitted by alternating least squares (:func:`._curves.errors`).
        """
        if name in self.full_normals:
            from . import _curves

            return _curves.errors(
                self.full_normals[name], layer, self.modules[name], self.kinds[name], ranks
            )
        normal = self.normals[name]
        theta0 = second_weight(structure(layer)[1])
        errors = []
        for rank in ranks:
            index = subset(rank)
            theta = normal.solve(theta0[normal._index(index)], index)
            errors.append(normal.error(theta, index))
        return errors


def refit(
    reference: Reference,
    converted: nn.Module,
    entries: list[tuple[str, nn.Module]],
    batches: list[torch.Tensor],
) -> dict[str, tuple[float, float]]:
    """Refit the second factor of every ``(name, layer)`` of ``converted``, in forward order.

    A plain layer among them (kept whole, :func:`sepconv.convert._whole.is_whole`) has its
    full weight and bias refitted instead.

    ``converted`` must be in eval mode. Returns ``{name: (closed-form error, fitted error)}``:
    relative errors of the layer's output against the original layer's output on the sampled
    positions, with the inputs the converted model feeds the layer.
    """
    from . import _whole

    errors = {}
    with torch.no_grad():
        for name, layer in entries:
            if name in reference.unreached:
                continue
            if _whole.is_whole(layer):  # kept whole: its full weight, from its inputs
                first, second, features = layer, layer, _whole.features(layer)
                take = lambda i, o: i[0]  # noqa: E731
            else:
                first, second, features, _ = structure(layer)
                take = lambda i, o: o  # noqa: E731
            theta0 = second_weight(second)
            normal = None
            for x, (index, y) in zip(batches, reference.samples[name]):
                z = run_to(converted, first, x, take)
                f = features(z)[index.to(z.device)]
                if normal is None:
                    normal = Normal(f.shape[1], y.shape[1], second.bias is not None)
                normal.add(f, y)
            theta = normal.solve(theta0)
            before, after = normal.error(theta0), normal.error(theta)
            if after <= before:
                set_second_weight(second, theta)
            errors[name] = (before, min(before, after))
    return errors


def probe(
    model: nn.Module,
    x: torch.Tensor,
    forward: Iterable[tuple[nn.Module, Callable[..., Any]]] = (),
    pre: Iterable[tuple[nn.Module, Callable[..., Any]]] = (),
) -> None:
    """Run ``model(x[:1])`` without gradients under temporary hooks, removed afterwards.

    ``forward``: ``(module, hook)`` pairs for ``register_forward_hook``; ``pre``: for
    ``register_forward_pre_hook``. What the hooks record is the caller's.
    """
    handles = [module.register_forward_hook(hook) for module, hook in forward]
    handles += [module.register_forward_pre_hook(hook) for module, hook in pre]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()


def forward_order(
    model: nn.Module, layers: list[tuple[str, nn.Module]], x: torch.Tensor
) -> list[tuple[str, nn.Module]]:
    """``layers`` in the order of their first call in ``model(x)`` (unreached ones last)."""
    seen: list[str] = []
    probe(
        model,
        x,
        [
            (layer, lambda *_, name=name: seen.append(name) if name not in seen else None)
            for name, layer in layers
        ],
    )
    rank = {name: i for i, name in enumerate(seen)}
    return sorted(layers, key=lambda item: rank.get(item[0], len(rank)))
