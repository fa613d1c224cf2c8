"""Singular value decompositions of weight matrices, through PyTorch's LAPACK.

Conversion factors matrices of up to ``C_in * kh`` by ``C_out * kw`` (1536 x 1536 for a
512-channel 3x3 layer). NumPy's ``linalg.svd`` runs its own LAPACK build, which took 9.3 s for
one such matrix on a loaded 2-core machine where ``torch.linalg.svd`` took 0.95 s (float64,
both divide and conquer): every decomposition of :mod:`sepconv.convert` goes through here.
"""

from __future__ import annotations

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
