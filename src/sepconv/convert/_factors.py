"""Closed-form factors of a convolution's weight, per method (the public ``*_factors``
functions of :mod:`sepconv.convert`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from .._checks import (
    SepconvValueError,
)
from ..factor import lowrank
from . import _combined
from ._ranks import _check_rank_args, _pick_rank, _weight_array

_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
METHODS = ("depthwise", "spatial", _combined.METHOD)
SPATIAL = ("spatial", _combined.METHOD)  # the methods for 2-D kernels only


def depthwise_factors(
    weight: Any, rank: int | None = None, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Depthwise and pointwise weights that approximate a convolution weight.

    Parameters
    ----------
    weight : array_like or Tensor, shape (C_out, C_in, *kernel)
        ``nn.ConvNd`` layout, ``groups=1``.
    rank : int, optional
        Depthwise kernels per input channel (the depth multiplier ``M``); at most
        ``min(C_out, prod(kernel))``, which is exact.
    rtol : float, optional
        Instead of ``rank``: the smallest ``M`` whose relative Frobenius error is within ``rtol``.

    Returns
    -------
    depthwise_weight : ndarray, shape (C_in*M, 1, *kernel)
    pointwise_weight : ndarray, shape (C_out, C_in*M, *(1,)*len(kernel))
    relative_error : float
        ``||W - W_M||_F / ||W||_F``, the smallest possible for ``M`` (Eckart–Young).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((16, 3, 3, 3))
    >>> dw, pw, err = depthwise_factors(w, rank=9)
    >>> dw.shape, pw.shape, err < 1e-12
    ((27, 1, 3, 3), (16, 27, 1, 1), True)
    """
    array = _weight_array(weight)
    rank, rtol = _check_rank_args(rank, rtol)
    c_out, c_in, kernel = array.shape[0], array.shape[1], array.shape[2:]
    taps = math.prod(kernel)
    limit = min(c_out, taps)
    if rank is not None and rank > limit:
        raise SepconvValueError(
            f"`rank` must be at most min(C_out, prod(kernel)) = {limit} for a weight of shape "
            f"{array.shape}, got {rank}"
        )
    matrices = [array[:, c].reshape(c_out, taps) for c in range(c_in)]
    norm = float(np.linalg.norm(array))
    if rank is None:  # the full spectra are needed only to pick the rank
        spectra = [lowrank(m, rank=min(m.shape)).singular_values for m in matrices]
        rank = _pick_rank(spectra, limit, rtol, norm)
    depthwise = np.zeros((c_in * rank, 1, *kernel))
    pointwise = np.zeros((c_out, c_in * rank, *(1,) * len(kernel)))
    squared_error = 0.0
    for c, matrix in enumerate(matrices):
        part = lowrank(matrix, rank=rank)
        squared_error += part.error**2
        for m, (left, right) in enumerate(part.terms):
            depthwise[c * rank + m, 0] = right.reshape(kernel)
            pointwise[:, c * rank + m] = left.reshape((c_out, *(1,) * len(kernel)))
    return depthwise, pointwise, (math.sqrt(squared_error) / norm if norm else 0.0)


def spatial_factors(
    weight: Any, rank: int | None = None, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Vertical (``kh x 1``) and horizontal (``1 x kw``) weights approximating a 2-D conv weight.

    Parameters
    ----------
    weight : array_like or Tensor, shape (C_out, C_in, kh, kw)
    rank : int, optional
        Intermediate channels ``K``; at most ``min(C_in*kh, C_out*kw)``, which is exact.
    rtol : float, optional
        Instead of ``rank``: the smallest ``K`` within this relative Frobenius error.

    Returns
    -------
    column_weight : ndarray, shape (K, C_in, kh, 1)
    row_weight : ndarray, shape (C_out, K, 1, kw)
    relative_error : float

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((8, 3, 5, 5))
    >>> col, row, err = spatial_factors(w, rank=15)
    >>> col.shape, row.shape, err < 1e-12
    ((15, 3, 5, 1), (8, 15, 1, 5), True)
    """
    array = _weight_array(weight)
    if array.ndim != 4:
        raise SepconvValueError(
            f"`weight` must have shape (C_out, C_in, kh, kw) for method 'spatial', got shape "
            f"{array.shape}"
        )
    rank, rtol = _check_rank_args(rank, rtol)
    c_out, c_in, kh, kw = array.shape
    matrix = array.transpose(1, 2, 0, 3).reshape(c_in * kh, c_out * kw)
    limit = min(matrix.shape)
    if rank is not None and rank > limit:
        raise SepconvValueError(
            f"`rank` must be at most min(C_in*kh, C_out*kw) = {limit} for a weight of shape "
            f"{array.shape}, got {rank}"
        )
    norm = float(np.linalg.norm(array))
    if rank is None:
        full = lowrank(matrix, rank=limit)
        rank = _pick_rank([full.singular_values], limit, rtol, norm)
    part = lowrank(matrix, rank=rank)
    column = np.stack([left.reshape(c_in, kh, 1) for left, _ in part.terms])
    row = np.stack([right.reshape(c_out, 1, kw) for _, right in part.terms], axis=1)
    return column, row, (part.error / norm if norm else 0.0)


def depthwise_spatial_factors(
    weight: Any, rank: int | None = None, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Depthwise decoupling, then each depthwise kernel split into ``kh x 1`` and ``1 x kw``.

    Parameters
    ----------
    weight : array_like or Tensor, shape (C_out, C_in, kh, kw)
    rank : int, optional
        Separable terms per input channel, ``r``; at most ``min(C_out, kh*kw) * min(kh, kw)``,
        which is exact.
    rtol : float, optional
        Instead of ``rank``: the smallest ``r`` within this relative Frobenius error.

    Returns
    -------
    column_weight : ndarray, shape (C_in*r, 1, kh, 1)
        Vertical filters, ``r`` per input channel (a convolution with ``groups=C_in``).
    row_weight : ndarray, shape (C_in*r, 1, 1, kw)
        One horizontal filter per channel (depthwise).
    pointwise_weight : ndarray, shape (C_out, C_in*r, 1, 1)
    relative_error : float
        ``||W - W_r||_F / ||W||_F``, the root of the discarded terms' squared norms.

    Raises
    ------
    ValueError
        When ``weight`` is not 4-D, ``rank`` exceeds the exact rank, ``rtol`` is outside
        ``[0, 1)``, or not exactly one of ``rank`` and ``rtol`` is given.

    Network Decoupling (Guo et al., BMVC 2018) combined with the spatial factorization of
    Jaderberg et al. (BMVC 2014); see :mod:`sepconv.convert._combined`.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((16, 3, 3, 3))
    >>> col, row, pw, err = depthwise_spatial_factors(w, rank=27)
    >>> col.shape, row.shape, pw.shape, err < 1e-12
    ((81, 1, 3, 1), (81, 1, 1, 3), (16, 81, 1, 1), True)
    """
    array = _weight_array(weight)
    rank, rtol = _check_rank_args(rank, rtol)
    return _combined.combined_factors(array, rank, rtol, _pick_rank)
