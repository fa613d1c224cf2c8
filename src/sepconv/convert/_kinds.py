"""Per-kind facts for the rank choice: exact rank, weight spectra, nested feature subsets.

A kind is a factorization method of :mod:`sepconv.convert` or ``'lowrank'`` (1x1 and linear
layers by truncated SVD).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from . import _combined
from ._linalg import singular_values
from ._lowrank import lowrank_limit
from ._ranks import _weight_array


def _limit(module: nn.Module, kind: str) -> int:
    if kind == "lowrank":
        return lowrank_limit(module)
    if kind == "depthwise":
        return min(module.out_channels, math.prod(module.kernel_size))
    if kind == _combined.METHOD:
        return _combined.combined_limit(tuple(module.weight.shape))
    return min(
        module.in_channels * module.kernel_size[0], module.out_channels * module.kernel_size[1]
    )


def _weight_spectra(module: nn.Module, kind: str) -> list[np.ndarray]:
    w = _weight_array(module.weight.reshape(*module.weight.shape[:2], -1))
    if kind == "lowrank":
        return [singular_values(w.reshape(w.shape[0], -1))]
    if kind == "depthwise":
        return list(singular_values(w.transpose(1, 0, 2)))
    if kind == _combined.METHOD:
        return _combined.combined_spectra(w.reshape(module.weight.shape))
    c_out, c_in, kh, kw = module.weight.shape
    matrix = w.reshape(c_out, c_in, kh, kw).transpose(1, 2, 0, 3).reshape(c_in * kh, c_out * kw)
    return [singular_values(matrix)]


def _subset(module: nn.Module, kind: str, limit: int) -> Any:
    if kind in ("depthwise", _combined.METHOD):
        c_in = module.in_channels
        return lambda r: (np.arange(c_in)[:, None] * limit + np.arange(r)[None]).ravel()
    width = module.kernel_size[1] if kind == "spatial" else 1
    return lambda r: np.arange(r * width)
