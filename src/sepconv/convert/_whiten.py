"""Whitened first factors: the truncation chosen for the layer's output, not its weight.

A layer ``y = W x`` approximated by ``W_r`` makes the expected squared output error
``E ||(W - W_r) x||^2 = ||(W - W_r) S^{1/2}||_F^2`` with ``S = E[x x^T]`` the second moment of
its inputs. The best rank-``r`` ``W_r`` for that error (not for ``||W - W_r||_F``) comes from the
SVD of ``W S^{1/2} = U Sig V^T``: ``W_r = U_r Sig_r V_r^T S^{-1/2}``, first factor
``V_r^T S^{-1/2}``, second ``U_r Sig_r``. This is the response-based decomposition of Zhang,
Zou, He & Sun (TPAMI 2016) and the truncation-aware whitening of SVD-LLM (Wang et al., ICLR
2025) and ASVD (Yuan et al., 2023). The factors stay nested: rank ``r`` keeps the leading ``r``
triplets. ``S`` is measured on the unconverted model's activations; the square root is taken by
eigendecomposition with eigenvalues floored at :data:`FLOOR` times the largest, so that dead or
constant inputs do not make the inverse blow up (there the choice falls back towards the
unweighted SVD).

Per method: depthwise decoupling weights every input channel's ``C_out x taps`` slice by the
``taps x taps`` moment of that channel's kernel patches (cross-channel terms are left to the
least-squares refit of the pointwise weights); the spatial factorization weights the
``(C_in*kh) x (C_out*kw)`` matrix by the moment of the vertical ``C_in x kh`` input columns,
averaged over the ``kw`` horizontal taps; a linear layer or 1x1 convolution by the moment of its
``C_in`` inputs.

:func:`refactor` goes further, on the inputs the *converted* model feeds each layer: the full
weight refitted by least squares, its truncation whitened by those inputs (the asymmetric,
rank-constrained reconstruction of Zhang et al.), then alternating least squares of the two
factors (:mod:`sepconv.convert._als`). :func:`fit` keeps whichever refitted model has the
smallest output error on the calibration data, never one worse than the closed form.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import SepconvValueError
from . import _fit

#: Eigenvalues of a second moment below this fraction of the largest are raised to it.
FLOOR = 1e-6
#: Widest moment accumulated (features per side); wider layers keep the unweighted SVD, and
#: layers whose full weight has more inputs per output are not refitted by :func:`refactor`.
WIDTH = 6144
#: Refine depthwise factors by alternating least squares in :func:`refactor`.
ALTERNATE = True
#: The kinds whose first factor can be whitened.
KINDS = ("depthwise", "spatial", "lowrank")


def roots(moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(S^{1/2}, S^{-1/2})`` of a symmetric positive semi-definite ``S``, eigenvalues floored."""
    moment = np.asarray(moment, dtype=np.float64)
    values, vectors = np.linalg.eigh((moment + moment.T) / 2)
    top = float(values[-1]) if len(values) else 0.0
    if not top > 0:  # no signal at all: every direction weighs the same
        eye = np.eye(len(moment))
        return eye, eye
    values = np.maximum(values, FLOOR * top)
    root = np.sqrt(values)
    return (vectors * root) @ vectors.T, (vectors / root) @ vectors.T


def check_moment(name: str, moment: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``moment`` as a float64 array of ``shape``, finite, else a ValueError naming it."""
    if isinstance(moment, torch.Tensor):
        moment = moment.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(moment, dtype=np.float64)
    if array.shape != shape:
        raise SepconvValueError(f"`{name}` must have shape {shape}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise SepconvValueError(f"`{name}` must be finite, got NaN or infinite entries")
    return array


def whitened_terms(
    matrix: np.ndarray, moment: np.ndarray, rank: int, lowrank: Any
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """``(left (m, rank), right (rank, n), error, singular values)`` for ``matrix ~ left @ right``.

    Minimises ``||(matrix - left @ right) moment^{1/2}||_F``; ``error`` is that norm. Each term
    is balanced so that its left and right vectors have the same norm (as the unweighted
    :func:`sepconv.factor.lowrank` splits them).
    """
    root, inverse = roots(moment)
    weighted = matrix @ root
    part = lowrank(weighted, rank=rank)
    left = np.stack([u for u, _ in part.terms], axis=1)
    right = np.stack([v for _, v in part.terms]) @ inverse
    a = np.linalg.norm(left, axis=0)
    b = np.linalg.norm(right, axis=1)
    scale = np.sqrt(np.where((a > 0) & (b > 0), b / np.where(a > 0, a, 1), 1.0))
    left = left * scale
    right = right / scale[:, None]
    return left, right, part.error, part.singular_values


def _moment_kind(kind: str, module: nn.Module) -> str | None:
    if kind not in KINDS:
        return None
    if kind == "lowrank":
        width = module.weight[0].numel()
    elif kind == "spatial":
        width = module.in_channels * module.kernel_size[0]
    else:
        width = math.prod(module.kernel_size)
    return kind if width <= WIDTH else None


class Moment:
    """Second moment of one layer's inputs, in the shape its factor function takes."""

    def __init__(self, module: nn.Module, kind: str) -> None:
        self.module, self.kind, self.count = module, kind, 0
        self.linear = isinstance(module, nn.Linear)
        self.sum: np.ndarray | None = None
        #: A layer with a bias is fitted with it: its truncation is weighted by the covariance
        #: of the inputs (the error left after the best offset), not their second moment.
        self.centred = getattr(module, "bias", None) is not None
        self.first: np.ndarray | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.linear:
            return x.reshape(-1, x.shape[-1])
        return _fit._rows(_fit._tap_features(self.module, x), False)

    def add(self, rows: torch.Tensor) -> None:
        m = self.module
        f = rows.detach().to("cpu", torch.float64)
        if self.kind == "depthwise":
            f = f.reshape(len(f), m.in_channels, -1)
            part = torch.einsum("pct,pcs->cts", f, f)
            count = len(f)
            first = f.sum(0)  # (C_in, taps)
        elif self.kind == "spatial":
            kh, kw = m.kernel_size
            f = f.reshape(len(f), m.in_channels, kh, kw).permute(0, 3, 1, 2)
            first = f.sum(0).reshape(kw, m.in_channels * kh)  # per horizontal tap
            f = f.reshape(-1, m.in_channels * kh)
            part = f.T @ f
            count = len(f)
        else:
            part = f.T @ f
            count = len(f)
            first = f.sum(0)
        part, first = part.numpy(), first.numpy()
        self.sum = part if self.sum is None else self.sum + part
        self.first = first if self.first is None else self.first + first
        self.count += count

    def value(self) -> np.ndarray:
        moment = self.sum / max(self.count, 1)
        if not self.centred or self.first is None:
            return moment
        if self.kind == "depthwise":
            mean = self.first / max(self.count, 1)  # (C_in, taps)
            return moment - mean[:, :, None] * mean[:, None, :]
        if self.kind == "spatial":  # the moment averages the kw taps' moments: so the means
            kw = len(self.first)
            mean = self.first / max(self.count // kw, 1)
            return moment - mean.T @ mean / kw
        mean = self.first / max(self.count, 1)
        return moment - np.outer(mean, mean)


def moments(
    reference: nn.Module,
    layers: list[tuple[str, nn.Module, str]],
    batches: list[torch.Tensor],
    *,
    rows: int = _fit.ROWS,
) -> dict[str, np.ndarray]:
    """Per ``(name, module, kind)``, the second moment of the module's inputs in ``reference``.

    One forward pass over ``batches``; a seeded random sample of at most ``rows`` output
    positions per layer (spread over the batches). Layers the pass does not reach, kinds
    without a whitened factorization and layers wider than :data:`WIDTH` are left out.
    """
    per_batch = max(1, math.ceil(rows / len(batches)))
    accumulators = {}
    for i, (name, module, kind) in enumerate(layers):
        moment_kind = _moment_kind(kind, module)
        if moment_kind is not None:
            accumulators[name] = (Moment(module, moment_kind), torch.Generator().manual_seed(i))
    done: set[str] = set()

    def hook(name: str, inputs: tuple[Any, ...]) -> None:
        if name in done:
            return
        done.add(name)
        moment, generator = accumulators[name]
        f = moment.features(inputs[0])
        index = torch.randperm(len(f), generator=generator)[:per_batch].sort().values
        moment.add(f[index.to(f.device)])

    handles = [
        reference.get_submodule(name).register_forward_pre_hook(
            lambda _, i, name=name: hook(name, i)
        )
        for name in accumulators
    ]
    try:
        with torch.no_grad():
            for x in batches:
                done.clear()
                reference(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: m.value() for name, (m, _) in accumulators.items() if m.count}


def weight_error(original: nn.Module, layer: nn.Module, kind: str) -> float:
    """Relative Frobenius error of the weight that the factored ``layer`` applies."""
    w = original.weight.detach().to("cpu", torch.float64)
    if kind == "lowrank":
        first = layer[0].weight.detach().double().reshape(layer.rank, -1)
        second = layer[1].weight.detach().double().reshape(-1, layer.rank)
        approx = (second @ first).reshape(w.shape)
    elif kind == "spatial":
        col = layer.column.weight.detach().double()[..., 0]  # (K, C_in, kh)
        row = layer.row.weight.detach().double()[:, :, 0]  # (C_out, K, kw)
        approx = torch.einsum("kci,okj->ocij", col, row)
    else:
        dw = layer.depthwise.weight.detach().double()  # (C_in*M, 1, *kernel)
        pw = layer.pointwise.weight.detach().double().reshape(w.shape[0], -1)
        c_in = w.shape[1]
        dw = dw.reshape(c_in, -1, *w.shape[2:])  # (C_in, M, *kernel)
        approx = torch.einsum("ocm,cm...->oc...", pw.reshape(w.shape[0], c_in, -1), dw)
    norm = float(torch.linalg.vector_norm(w))
    diff = float(torch.linalg.vector_norm(w - approx))
    return diff / norm if norm else 0.0


#: First factors tried by :func:`fit`, in order of preference on equal calibration error.
CANDIDATES = ("asymmetric", "whitened", "closed form")


def fit(
    data: _fit.Reference,
    target: nn.Module,
    order: list[tuple[str, nn.Module]],
    batches: list[torch.Tensor],
    unweighted: dict[str, tuple[nn.Module, float]],
    originals: dict[str, tuple[nn.Module, str, int]],
    factor: Any,
) -> tuple[dict[str, tuple[float, float]], float, float, str | None]:
    """The data-aware refit of ``target``'s converted layers, never worse than the closed form.

    ``order``: the converted ``(name, layer)`` pairs in forward order, with whitened first
    factors where ``unweighted`` holds the closed-form ``(layer, weight error)`` of the same
    rank and ``originals`` the original ``(module, kind, rank)``. Each of :data:`CANDIDATES`
    is refitted (second factor by least squares, :func:`sepconv.convert._fit.refit`; for
    'asymmetric' both factors first, :func:`refactor`) and the one with the smallest output
    error on the calibration data is kept if not worse than the closed form's; else the
    closed form. Returns ``(per-layer errors of the kept refit, calibration error,
    closed-form calibration error, the candidate kept or None)``.
    """
    whitened = {name: copy.deepcopy(layer.state_dict()) for name, layer in order}
    closed = {
        name: copy.deepcopy(unweighted[name][0].state_dict()) if name in unweighted else state
        for name, state in whitened.items()
    }
    layers = dict(order)

    def load(states: dict[str, Any]) -> None:
        for name, state in states.items():
            layers[name].load_state_dict(state)

    load(closed)
    closed_error = data.output_error(target, batches)
    best = None  # (error, candidate, per-layer errors, states)
    for candidate in CANDIDATES:
        if candidate != "closed form" and not unweighted:
            continue
        load(closed if candidate == "closed form" else whitened)
        if candidate == "asymmetric":
            refactor(data, target, order, batches, originals, factor)
        fitted = _fit.refit(data, target, order, batches)
        error = data.output_error(target, batches)
        if best is None or error < best[0]:
            states = {name: copy.deepcopy(layer.state_dict()) for name, layer in order}
            best = (error, candidate, fitted, states)
    error, candidate, fitted, states = best
    if error <= closed_error:
        load(states)
        return fitted, error, closed_error, candidate
    # rare: per-layer fits that do not add up; keep the closed form
    load(closed)
    return fitted, closed_error, closed_error, None


def _block_moment(gram: np.ndarray, module: nn.Module, kind: str) -> np.ndarray:
    """The moment a factor function takes, from the gram of the layer's tap features."""
    if kind == "depthwise":
        c_in = module.in_channels
        taps = gram.shape[0] // c_in
        blocks = gram.reshape(c_in, taps, c_in, taps)
        return np.stack([blocks[c, :, c, :] for c in range(c_in)])
    if kind == "spatial":
        c_in, (kh, kw) = module.in_channels, module.kernel_size
        g = gram.reshape(c_in, kh, kw, c_in, kh, kw)
        return sum(g[:, :, j, :, :, j] for j in range(kw)).reshape(c_in * kh, c_in * kh) / kw
    return gram


def refactor(
    data: _fit.Reference,
    target: nn.Module,
    order: list[tuple[str, nn.Module]],
    batches: list[torch.Tensor],
    originals: dict[str, tuple[nn.Module, str, int]],
    factor: Any,
) -> None:
    """Both factors of each layer of ``originals`` refitted to the converted model's inputs.

    In forward order, per layer: the full weight ``W_ls`` (and bias) that best reproduces the
    original layer's output from the inputs the converted model feeds it (least squares on
    the sampled positions, ridge towards the original weight), then its truncation weighted
    by the second moment ``S`` of those inputs. Since ``||Y - M X||^2 = ||Y - W_ls X||^2 +
    ||(W_ls - M) S^{1/2}||^2`` for every ``M``, this is the rank-constrained ("asymmetric")
    reconstruction of Zhang et al. (TPAMI 2016) for a linear layer, and per input channel
    (cross-channel terms left out) for depthwise decoupling. ``factor(module, kind, rank,
    moment)`` builds the factored layer. Layers with more than :data:`WIDTH` inputs per
    output (``C_in * prod(kernel)``) keep their factors.
    """
    with torch.no_grad():
        for name, layer in order:
            if name not in originals or name in data.unreached:
                continue
            module, kind, rank = originals[name]
            if module.weight[0].numel() > WIDTH:  # the full weight's normal equations
                continue
            probe = Moment(module, kind)
            normal = None
            for x, (index, y) in zip(batches, data.samples[name]):
                z = _fit.run_to(target, layer, x, lambda i, o: i[0])
                f = probe.features(z)[index.to(z.device)]
                if normal is None:
                    normal = _fit.Normal(f.shape[1], y.shape[1], module.bias is not None)
                normal.add(f, y)
            theta0 = _fit.second_weight(module)
            theta = normal.solve(theta0)
            features = normal.features
            fitted = copy.deepcopy(module).to(torch.float64)
            fitted.weight.copy_(torch.from_numpy(theta[:features].T).reshape(module.weight.shape))
            if module.bias is not None:
                fitted.bias.copy_(torch.from_numpy(theta[features]))
            gram = normal.gram[:features, :features]
            if normal.bias:  # fitted with a bias: weighted by the covariance (see Moment)
                sums, count = normal.gram[:features, features], normal.gram[features, features]
                gram = gram - np.outer(sums, sums) / max(count, 1e-300)
            moment = _block_moment(gram, module, kind)
            new = factor(fitted, kind, rank, moment)
            if kind in ("depthwise", "spatial") and ALTERNATE:
                _alternate(new, normal, module, kind)
            dtypes = {k: v.dtype for k, v in layer.state_dict().items()}
            layer.load_state_dict({k: v.to(dtypes[k]) for k, v in new.state_dict().items()})


def _alternate(layer: nn.Module, normal: _fit.Normal, module: nn.Module, kind: str) -> None:
    """Both factors of ``layer`` refined by alternating least squares (:mod:`._als`)."""
    from . import _als

    def array(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().to("cpu", torch.float64).numpy()

    c_in, c_out = module.in_channels, module.out_channels
    if kind == "depthwise":
        first, second = layer.depthwise, layer.pointwise
        taps = math.prod(module.kernel_size)
        a, b, bias = _als.depthwise(
            normal.gram,
            normal.cross,
            array(first.weight).reshape(c_in, -1, taps),
            array(second.weight).reshape(c_out, c_in, -1),
            array(second.bias),
        )
    else:
        first, second = layer.column, layer.row
        a, b, bias = _als.spatial(
            normal.gram,
            normal.cross,
            array(first.weight).reshape(layer.intermediate_channels, -1),
            array(second.weight)[:, :, 0],
            array(second.bias),
        )
    with torch.no_grad():
        for weight, value in ((first.weight, a), (second.weight, b)):
            weight.copy_(torch.from_numpy(value.reshape(weight.shape)).to(weight.dtype))
        if bias is not None:
            second.bias.copy_(torch.from_numpy(bias))
