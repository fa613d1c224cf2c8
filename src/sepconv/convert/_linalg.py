"""Singular value decompositions of weight matrices, through PyTorch's LAPACK.

Conversion factors matrices of up to ``C_in * kh`` by ``C_out * kw`` (1536 x 1536 for a
512-channel 3x3 layer). NumPy's ``linalg.svd`` runs its own LAPACK build, which took 9.3 s for
one such matrix on a loaded 2-core machine where ``torch.linalg.svd`` took 0.95 s (float64,
both divide and conquer): every decomposition of :mod:`sepconv.convert` goes through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def svd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``u, s, vt`` of a 2-D (or batched 3-D) float64 array, thin, as ``np.linalg.svd``.

    >>> u, s, vt = svd(np.array([[3.0, 0.0], [0.0, 4.0]]))
    >>> s.tolist()
    [4.0, 3.0]
    """
    t = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float64))
    u, s, vt = torch.linalg.svd(t, full_matrices=False)
    return u.numpy(), s.numpy(), vt.numpy()


def singular_values(matrix: np.ndarray) -> np.ndarray:
    """The singular values of a 2-D (or batched 3-D) float64 array, largest first.

    >>> singular_values(np.array([[3.0, 0.0], [0.0, 4.0]])).tolist()
    [4.0, 3.0]
    """
    t = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float64))
    return torch.linalg.svdvals(t).numpy()


@dataclass(frozen=True)
class LowRank:
    """The leading terms of a matrix's SVD, as :func:`sepconv.factor.lowrank` gives them for
    a 2-D kernel (``terms``, ``error``, ``singular_values``), without its kernel niceties
    (integer factors, sign rule, noise floor) that weight matrices do not need."""

    terms: list[tuple[np.ndarray, np.ndarray]]
    error: float
    singular_values: np.ndarray


def lowrank(matrix: np.ndarray, rank: int) -> LowRank:
    """The best rank-``rank`` approximation of ``matrix`` as ``rank`` (left, right) pairs, each
    scaled by the square root of its singular value; ``error`` is the Frobenius norm of the
    rest (the discarded singular values' root sum of squares), by one SVD.

    >>> part = lowrank(np.array([[3.0, 0.0], [0.0, 4.0]]), 1)
    >>> [abs(float(v)) for v in part.terms[0][1]], part.error  # signs: the SVD's
    ([0.0, 2.0], 3.0)
    """
    u, s, vt = svd(matrix)
    roots = np.sqrt(s[:rank])
    left, right = u[:, :rank] * roots, vt[:rank] * roots[:, None]
    error = math.sqrt(float(np.sum(s[rank:] ** 2)))
    return LowRank([(left[:, i], right[i]) for i in range(rank)], error, s)
