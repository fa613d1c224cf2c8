"""Ranks under a global mult-add budget: greedy allocation over error-versus-cost curves.

Every layer offers a few options: keep the original (cost ``c0``, error 0) or a rank ``r``
(cost ``c(r) < c0``, error ``e(r)``). Starting from the cheapest option of every layer, the
allocation repeatedly takes the upgrade with the largest decrease of the summed squared
relative errors per mult-add added that still fits the budget (the greedy rule of Qualcomm
AIMET's per-layer ratio selection and of the knapsack relaxation). Errors are output errors
on calibration data when given (second factor fitted, :mod:`._fit`; both factors for the
whitened layers whose refit alternates, :mod:`._curves`), weight errors (exact from the
singular values) otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import SepconvValueError


@dataclass
class Curve:
    """One layer's options: ``ranks[i]`` costs ``costs[i]`` mult-adds with ``errors[i]``."""

    name: str
    original: int
    ranks: list[int] = field(default_factory=list)
    costs: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)


def candidate_ranks(limit: int, count: int = 24) -> list[int]:
    """All ranks up to 16, then about ``count`` geometrically spaced ones up to ``limit``."""
    if limit <= count:
        return list(range(1, limit + 1))
    grid = set(range(1, 9)) | {limit}
    grid |= {int(round(v)) for v in np.geomspace(8, limit, count - 8)}
    return sorted(r for r in grid if 1 <= r <= limit)


def weight_errors(spectra: list[np.ndarray], norm: float, ranks: list[int]) -> list[float]:
    """Relative Frobenius errors of truncating every spectrum to each rank (Eckart–Young)."""
    if norm == 0:
        return [0.0 for _ in ranks]
    return [math.sqrt(sum(float(np.sum(s[r:] ** 2)) for s in spectra)) / norm for r in ranks]


def allocate(curves: list[Curve], budget: float) -> dict[str, int | None]:
    """``{name: rank}`` (``None``: keep the original) within ``budget`` of the total cost.

    Raises
    ------
    ValueError
        When even the cheapest option of every layer exceeds the budget.
    """
    total = sum(c.original for c in curves)
    allowed = budget * total
    options = []  # per layer: (cost, squared error, rank) sorted by cost; keep is the last
    for c in curves:
        layer = sorted(
            {
                (cost, err * err, r)
                for r, cost, err in zip(c.ranks, c.costs, c.errors)
                if cost < c.original
            }
        )
        layer.append((c.original, 0.0, None))
        options.append(layer)
    choice = [0 for _ in curves]
    spent = sum(o[0][0] for o in options)
    if spent > allowed * (1 + 1e-12):
        raise SepconvValueError(
            f"`budget` must be at least {spent / total:.4f} for this model (every convertible "
            f"layer at rank 1), got {budget!r}"
        )
    while True:
        best = None
        for i, layer in enumerate(options):
            cost, err, _ = layer[choice[i]]
            for j in range(choice[i] + 1, len(layer)):
                new_cost, new_err, _ = layer[j]
                if new_err >= err or spent - cost + new_cost > allowed * (1 + 1e-12):
                    continue
                gain = (err - new_err) / max(new_cost - cost, 1)
                if best is None or gain > best[0]:
                    best = (gain, i, j)
        if best is None:
            break
        _, i, j = best
        spent += options[i][j][0] - options[i][choice[i]][0]
        choice[i] = j
    return {c.name: options[i][choice[i]][2] for i, c in enumerate(curves)}
