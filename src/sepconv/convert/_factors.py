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
from . import _combined, _whiten
from ._linalg import lowrank, svd
from ._ranks import _check_rank_args, _pick_rank, _weight_array

_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
METHODS = ("depthwise", "spatial", _combined.METHOD)
SPATIAL = ("spatial", _combined.METHOD)  # the methods for 2-D kernels only


def depthwise_factors(
    weight: Any,
    rank: int | None = None,
    rtol: float | None = None,
    *,
    covariance: Any = None,
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
    covariance : array_like or Tensor, shape (C_in, taps, taps), optional
        Per input channel ``c``, the second moment ``S_c = E[x x^T]`` of the ``taps =
        prod(kernel)`` inputs that channel's kernel sees at one output position (its patches,
        with the convolution's stride, dilation and padding; rows ordered like
        ``W[:, c].reshape(C_out, taps)``). With it, every channel's slice is truncated to
        minimise the expected output error ``||(W_c - W_c,M) S_c^{1/2}||_F`` instead of the
        weight error: SVD of ``W_c S_c^{1/2} = U Sig V^T``, depthwise kernels
        ``V_M^T S_c^{-1/2}``, pointwise ``U_M Sig_M`` (Zhang et al., TPAMI 2016; the whitening
        of SVD-LLM). Eigenvalues of ``S_c`` below ``1e-6`` of its largest are raised to that.
        An identity gives the unweighted factors; the largest ``M`` is exact either way.

    Returns
    -------
    depthwise_weight : ndarray, shape (C_in*M, 1, *kernel)
    pointwise_weight : ndarray, shape (C_out, C_in*M, *(1,)*len(kernel))
    relative_error : float
        ``||W - W_M||_F / ||W||_F``, the smallest possible for ``M`` (Eckart–Young); with
        ``covariance``, the weighted ``sqrt(sum_c ||(W_c - W_c,M) S_c^{1/2}||_F^2 / sum_c
        ||W_c S_c^{1/2}||_F^2)``, the relative expected output error (also what ``rtol``
        bounds then).

    Raises
    ------
    ValueError
        When ``rank`` exceeds the exact rank, ``rtol`` is outside ``[0, 1)``, not exactly one
        of them is given, or ``covariance`` has the wrong shape or non-finite entries.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((16, 3, 3, 3))
    >>> dw, pw, err = depthwise_factors(w, rank=9)
    >>> dw.shape, pw.shape, err < 1e-12
    ((27, 1, 3, 3), (16, 27, 1, 1), True)

    Weighted by the moments of correlated patches, rank 2 loses less of the output:

    >>> x = np.random.default_rng(1).standard_normal((500, 3, 9)) @ np.diag(np.arange(1, 10.0))
    >>> s = np.einsum("pct,pcs->cts", x, x) / len(x)
    >>> def output_error(dw, pw):
    ...     approx = np.einsum("ocm,cmt->oct", pw.reshape(16, 3, 2), dw.reshape(3, 2, 9))
    ...     return np.linalg.norm(np.einsum("oct,pct->po", w.reshape(16, 3, 9) - approx, x))
    >>> plain = output_error(*depthwise_factors(w, rank=2)[:2])
    >>> weighted = output_error(*depthwise_factors(w, rank=2, covariance=s)[:2])
    >>> bool(weighted < plain)
    True
    """
    array = _weight_array(weight)
    rank, rtol = _check_rank_args(rank, rtol)
    c_out, c_in, kernel = array.shape[0], array.shape[1], array.shape[2:]
    taps = math.prod(kernel)
    if covariance is not None:
        moment = _whiten.check_moment("covariance", covariance, (c_in, taps, taps))
        return _weighted_depthwise(array, moment, rank, rtol)
    limit = min(c_out, taps)
    if rank is not None and rank > limit:
        raise SepconvValueError(
            f"`rank` must be at most min(C_out, prod(kernel)) = {limit} for a weight of shape "
            f"{array.shape}, got {rank}"
        )
    # every input channel's (C_out, taps) slice at once: one batched SVD
    u, s, vt = svd(array.reshape(c_out, c_in, taps).transpose(1, 0, 2))
    norm = float(np.linalg.norm(array))
    if rank is None:
        rank = _pick_rank(list(s), limit, rtol, norm)
    roots = np.sqrt(s[:, :rank])  # (C_in, M): each term split evenly between its factors
    depthwise = (vt[:, :rank] * roots[..., None]).reshape(c_in * rank, 1, *kernel)
    pointwise = (u[:, :, :rank] * roots[:, None, :]).transpose(1, 0, 2)
    pointwise = pointwise.reshape(c_out, c_in * rank, *(1,) * len(kernel))
    squared_error = float(np.sum(s[:, rank:] ** 2))
    return depthwise, pointwise, (math.sqrt(squared_error) / norm if norm else 0.0)


def spatial_factors(
    weight: Any,
    rank: int | None = None,
    rtol: float | None = None,
    *,
    covariance: Any = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Vertical (``kh x 1``) and horizontal (``1 x kw``) weights approximating a 2-D conv weight.

    Parameters
    ----------
    weight : array_like or Tensor, shape (C_out, C_in, kh, kw)
    rank : int, optional
        Intermediate channels ``K``; at most ``min(C_in*kh, C_out*kw)``, which is exact.
    rtol : float, optional
        Instead of ``rank``: the smallest ``K`` within this relative Frobenius error.
    covariance : array_like or Tensor, shape (C_in*kh, C_in*kh), optional
        Second moment ``S`` of the vertical input columns the ``kh x 1`` filters see (rows
        ordered ``(c, i)``), averaged over the ``kw`` horizontal taps. With it the matrix
        ``M[(c, i), (o, j)]`` is truncated to minimise ``||S^{1/2} (M - M_K)||_F`` (the
        expected output error, cross terms between horizontal taps left out): SVD of
        ``S^{1/2} M = U Sig Q^T``, vertical filters ``S^{-1/2} U_K``, horizontal ``Sig_K
        Q_K^T`` (the data-driven decomposition of Zhang et al., TPAMI 2016). Eigenvalues
        below ``1e-6`` of the largest are raised to that; an identity gives the unweighted
        factors.

    Returns
    -------
    column_weight : ndarray, shape (K, C_in, kh, 1)
    row_weight : ndarray, shape (C_out, K, 1, kw)
    relative_error : float
        ``||W - W_K||_F / ||W||_F``; with ``covariance``, ``||S^{1/2} (M - M_K)||_F /
        ||S^{1/2} M||_F`` (also what ``rtol`` bounds then).

    Raises
    ------
    ValueError
        When ``weight`` is not 4-D, ``rank`` exceeds the exact rank, ``rtol`` is outside
        ``[0, 1)``, not exactly one of them is given, or ``covariance`` has the wrong shape or
        non-finite entries.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_normal((8, 3, 5, 5))
    >>> col, row, err = spatial_factors(w, rank=15)
    >>> col.shape, row.shape, err < 1e-12
    ((15, 3, 5, 1), (8, 15, 1, 5), True)
    >>> s = np.diag(np.linspace(0.1, 2.0, 15))
    >>> col, row, err = spatial_factors(w, rank=15, covariance=s)  # still exact at full rank
    >>> bool(np.allclose(np.einsum("kci,okj->ocij", col[..., 0], row[:, :, 0]), w))
    True
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
    if covariance is not None:
        moment = _whiten.check_moment("covariance", covariance, (c_in * kh, c_in * kh))
        # S^{1/2} M = (M^T S^{1/2})^T: the rows of M weighted, so factor the transpose
        if rank is None:
            rank = _weighted_rank([(matrix.T, moment)], limit, rtol)
        right, left, error, values = _whiten.whitened_terms(matrix.T, moment, rank, lowrank)
        norm = math.sqrt(float(np.sum(values**2)))
        column = left.reshape(rank, c_in, kh, 1)
        row = right.reshape(c_out, kw, rank).transpose(0, 2, 1)[:, :, None, :]
        return column, row, (error / norm if norm else 0.0)
    norm = float(np.linalg.norm(array))
    u, s, vt = svd(matrix)  # one SVD picks the rank and gives the factors
    if rank is None:
        rank = _pick_rank([s], limit, rtol, norm)
    roots = np.sqrt(s[:rank])
    column = (u[:, :rank] * roots).T.reshape(rank, c_in, kh, 1)
    row = (vt[:rank] * roots[:, None]).reshape(rank, c_out, 1, kw).transpose(1, 0, 2, 3)
    error = math.sqrt(float(np.sum(s[rank:] ** 2)))
    return np.ascontiguousarray(column), np.ascontiguousarray(row), (error / norm if norm else 0.0)


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


def _weighted_rank(pairs: list[tuple[np.ndarray, np.ndarray]], limit: int, rtol: float) -> int:
    """The fewest terms within ``rtol`` of the weighted norm, for ``(matrix, moment)`` pairs."""
    spectra, total = [], 0.0
    for matrix, moment in pairs:
        weighted = matrix @ _whiten.roots(moment)[0]
        spectra.append(np.linalg.svd(weighted, compute_uv=False))
        total += float(np.sum(weighted**2))
    return _pick_rank(spectra, limit, rtol, math.sqrt(total))


def _weighted_depthwise(
    array: np.ndarray, moment: np.ndarray, rank: int | None, rtol: float | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`depthwise_factors` with per-channel second moments ``moment`` (checked)."""
    c_out, c_in, kernel = array.shape[0], array.shape[1], array.shape[2:]
    taps = math.prod(kernel)
    limit = min(c_out, taps)
    pairs = [(array[:, c].reshape(c_out, taps), moment[c]) for c in range(c_in)]
    if rank is None:
        rank = _weighted_rank(pairs, limit, rtol)
    depthwise = np.zeros((c_in * rank, 1, *kernel))
    pointwise = np.zeros((c_out, c_in * rank, *(1,) * len(kernel)))
    squared_error = squared_norm = 0.0
    for c, (matrix, s) in enumerate(pairs):
        left, right, error, values = _whiten.whitened_terms(matrix, s, rank, lowrank)
        squared_error += error**2
        squared_norm += float(np.sum(values**2))
        depthwise[c * rank : (c + 1) * rank, 0] = right.reshape(rank, *kernel)
        pointwise[:, c * rank : (c + 1) * rank] = left.reshape(c_out, rank, *(1,) * len(kernel))
    norm = math.sqrt(squared_norm)
    return depthwise, pointwise, (math.sqrt(squared_error) / norm if norm else 0.0)
