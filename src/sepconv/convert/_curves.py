"""Error-versus-rank curves of the rank allocation, for the factors that the refit produces.

The allocation of a mult-add budget (:mod:`sepconv.convert._budget`) needs, per layer, the
output error at every candidate rank. With whitened first factors the data-aware conversion
does not stop at the least-squares second factor: it refines both factors by alternating least
squares (:mod:`sepconv.convert._als`). A curve measured with the second factor alone would
choose the ranks for another method than the one that runs. Here each rank's error is the
error after the same alternation, on the original model's activations: the normal equations
of the full convolution on the layer's tap features (``gram`` of ``[x, 1]``, ``cross`` with
the original output) are accumulated once, the whitened factors of every rank are the leading
terms of the full-rank ones (they are nested), and each rank costs one alternation on those
normal equations, no pass over the data. The first step of the alternation is the
second-factor least squares, so each error is at most that of the second-factor curve.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _als
from ._fit import Normal

#: Kinds whose curve can come from the alternation.
KINDS = ("depthwise", "spatial")
#: Alternation rounds per rank (the first round gains the most; the refit itself runs
#: :data:`sepconv.convert._als.ROUNDS` or :data:`~sepconv.convert._als.SPATIAL_ROUNDS`).
ROUNDS = 1
#: Allocate the budget by the errors after the alternation (else the second factor's).
AFTER_REFIT = True


def refitted(candidates: list[Any], moments: dict[str, Any]) -> dict[str, tuple[nn.Module, str]]:
    """``{name: (module, kind)}`` of the candidates whose curve comes from :func:`errors`.

    ``candidates``: ``(name, parent, child name, module, kind)``; only whitened layers (those
    in ``moments``) of :data:`KINDS`, whose full weight the refit solves (at most
    :data:`sepconv.convert._whiten.WIDTH` inputs per output), as the refit itself.
    """
    from ._whiten import WIDTH

    if not AFTER_REFIT:
        return {}
    return {
        name: (module, kind)
        for name, _, _, module, kind in candidates
        if kind in KINDS and name in moments and module.weight[0].numel() <= WIDTH
    }


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def factors(layer: nn.Module, kind: str, module: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """``(first, second)`` of a factored layer as the alternation takes them.

    Depthwise: kernels ``(C_in, M, taps)`` and pointwise ``(C_out, C_in, M)``; spatial:
    vertical filters ``(K, C_in*kh)`` and horizontal ones ``(C_out, K, kw)``.
    """
    c_in, c_out = module.in_channels, module.out_channels
    if kind == "depthwise":
        taps = math.prod(module.kernel_size)
        first = _array(layer.depthwise.weight).reshape(c_in, -1, taps)
        return first, _array(layer.pointwise.weight).reshape(c_out, c_in, -1)
    k = layer.intermediate_channels
    return _array(layer.column.weight).reshape(k, -1), _array(layer.row.weight)[:, :, 0]


def truncate(first: np.ndarray, second: np.ndarray, kind: str, rank: int) -> tuple:
    """The leading ``rank`` terms of nested factors (per input channel for depthwise)."""
    if kind == "depthwise":
        return first[:, :rank].copy(), second[:, :, :rank].copy()
    return first[:rank].copy(), second[:, :rank].copy()


def theta(kind: str, first: np.ndarray, second: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The full convolution's ``(features (+1 for the bias), C_out)`` weight of two factors.

    Features are ordered like ``weight.reshape(C_out, -1)``'s columns, the layout of the tap
    features of :func:`sepconv.convert._fit._tap_features`.
    """
    if kind == "depthwise":
        w = np.einsum("ocm,cmt->cto", second, first)
    else:
        w = np.einsum("okj,ka->ajo", second, first)
    w = w.reshape(-1, second.shape[0])
    return w if bias is None else np.vstack([w, bias[None]])


def errors(
    normal: Normal,
    layer: nn.Module,
    module: nn.Module,
    kind: str,
    ranks: list[int],
    rounds: int | None = None,
) -> list[float]:
    """Relative output error at each rank after alternating least squares of both factors.

    ``normal``: the full convolution's normal equations on ``module``'s tap features;
    ``layer``: ``module`` factored at full rank (nested factors, whitened or not). The bias of
    the second factor starts from the original one.
    """
    first, second = factors(layer, kind, module)
    bias = None if module.bias is None else _array(module.bias)
    solve = _als.depthwise if kind == "depthwise" else _als.spatial
    if rounds is None:
        rounds = ROUNDS
    out = []
    for rank in ranks:
        a, b = truncate(first, second, kind, rank)
        a, b, c = solve(normal.gram, normal.cross, a, b, bias, rounds=rounds)
        out.append(normal.error(theta(kind, a, b, c)))
    return out
