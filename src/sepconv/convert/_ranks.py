"""Checks and rank selection shared by the factorizations of :mod:`sepconv.convert`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import SepconvValueError, check_float, check_positive_int


def _weight_array(weight: Any) -> np.ndarray:
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(weight, dtype=np.float64)
    if array.ndim < 3:
        raise SepconvValueError(
            f"`weight` must have shape (C_out, C_in, *kernel) with 1 to 3 kernel axes, got "
            f"shape {array.shape}"
        )
    return array


def _check_rank_args(rank: Any, rtol: Any) -> tuple[int | None, float | None]:
    if rank is not None and rtol is not None:
        raise SepconvValueError("give `rank` or `rtol`, not both")
    if rank is None and rtol is None:
        raise SepconvValueError("give `rank` (terms per layer) or `rtol` (relative weight error)")
    if rank is not None:
        return check_positive_int("rank", rank), None
    rtol = check_float("rtol", rtol)
    if not 0 <= rtol < 1:  # a relative error of 1 or more is met by any rank: no choice left
        raise SepconvValueError(
            f"`rtol` (relative weight error) must be in [0, 1): 0 keeps every layer exact, "
            f"got {rtol!r}"
        )
    return None, rtol


def _pick_rank(singular_values: list[np.ndarray], limit: int, rtol: float, norm: float) -> int:
    """Smallest rank whose total discarded energy keeps the relative error within ``rtol``."""
    budget = (rtol * norm) ** 2
    for r in range(1, limit + 1):
        discarded = sum(float(np.sum(s[r:] ** 2)) for s in singular_values)
        if discarded <= budget * (1 + 1e-12):
            return r
    return limit
