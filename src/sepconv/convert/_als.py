"""Alternating least squares for depthwise decoupling on the converted model's inputs.

For one layer, ``y = b + sum_{c,m} P[:, c, m] (D[c, m] . x_c)`` with ``x_c`` the ``taps`` inputs
of channel ``c``'s kernel at an output position: the output is linear in the pointwise weights
``P`` (and bias ``b``) for fixed depthwise kernels ``D``, and linear in ``D`` for fixed ``P``.
Both least-squares problems are solved from the normal equations of the full convolution on
the layer's tap features (``gram`` of ``[x, 1]``, ``cross`` with the original output), so
alternating between them costs no pass over the data and never increases the error on the
sampled positions. Zhang et al. (TPAMI 2016) solve the first factor in closed form and the
second by least squares; alternating the two is the block-coordinate descent of their
objective (as in Jaderberg et al. 2014's data reconstruction, solved there by conjugate
gradients).
"""

from __future__ import annotations

import numpy as np

#: Rounds of (P given D, D given P) for depthwise decoupling; each costs little.
ROUNDS = 4
#: Rounds for the spatial factorization, whose column step solves ``K*C_in*kh`` unknowns
#: jointly (on a VGG-style network the second round gains 0.5% of the output error, the
#: third and fourth 0.1%).
SPATIAL_ROUNDS = 2
#: Largest number of depthwise unknowns ``C_in*M*taps`` for which ``D`` is solved.
UNKNOWNS = 6144


def _solve(system: np.ndarray, rhs: np.ndarray, start: np.ndarray) -> np.ndarray:
    scale = float(np.trace(system)) / max(len(system), 1)
    ridge = 1e-9 * scale + 1e-300
    try:
        return np.linalg.solve(system + ridge * np.eye(len(system)), rhs + ridge * start)
    except np.linalg.LinAlgError:  # pragma: no cover - singular even with the ridge
        return start


def depthwise(
    gram: np.ndarray,
    cross: np.ndarray,
    kernels: np.ndarray,
    pointwise: np.ndarray,
    bias: np.ndarray | None,
    rounds: int = ROUNDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Refined ``(kernels (C_in, M, taps), pointwise (C_out, C_in, M), bias)``.

    ``gram``: ``(C_in*taps + 1)^2`` second moments of the tap features and a constant (the
    last row and column); ``cross``: ``(C_in*taps + 1, C_out)`` their products with the
    original output. Without a bias the constant's row is left out.
    """
    c_in, m, taps = kernels.shape
    c_out = pointwise.shape[0]
    f = c_in * taps
    g4 = gram[:f, :f].reshape(c_in, taps, c_in, taps)
    g1 = gram[:f, f].reshape(c_in, taps) if bias is not None else None
    c4 = cross[:f].reshape(c_in, taps, c_out)
    n = gram[f, f] if bias is not None else None
    solve_kernels = c_in * m * taps <= UNKNOWNS
    for _ in range(rounds):
        # pointwise (and bias) given the kernels
        tmp = np.einsum("cmt,ctds->cmds", kernels, g4, optimize=True)
        gz = np.einsum("cmds,dns->cmdn", tmp, kernels, optimize=True).reshape(c_in * m, c_in * m)
        cz = np.einsum("cmt,cto->cmo", kernels, c4, optimize=True).reshape(c_in * m, c_out)
        start = pointwise.reshape(c_out, c_in * m).T
        z1 = None if bias is None else np.einsum("cmt,ct->cm", kernels, g1, optimize=True)
        theta, bias = _solve_second(gz, cz, start, bias, z1, n, cross[f:])
        pointwise = theta.T.reshape(c_out, c_in, m)
        if not solve_kernels:
            break
        # kernels given the pointwise weights (and bias)
        p = pointwise.reshape(c_out, c_in * m)
        ptp = (p.T @ p).reshape(c_in, m, c_in, m)
        system = np.einsum("cmdn,ctds->cmtdns", ptp, g4, optimize=True).reshape(c_in * m * taps, -1)
        target = c4 if bias is None else c4 - g1[:, :, None] * bias[None, None, :]
        rhs = np.einsum("ocm,cto->cmt", pointwise, target, optimize=True).reshape(-1)
        kernels = _solve(system, rhs, kernels.reshape(-1)).reshape(c_in, m, taps)
    return kernels, pointwise, bias


def _solve_second(
    gz: np.ndarray,
    cz: np.ndarray,
    start: np.ndarray,
    bias: np.ndarray | None,
    z1: np.ndarray | None,
    n: float | None,
    cross_bias: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The second factor's least squares ``(weights, bias)``, the bias (when there is one)
    appended to the normal equations ``gz``/``cz`` as a last unknown with features ``z1``
    (``cross_bias``: its row of the right-hand side, empty without a bias)."""
    if bias is not None:
        z1 = z1.reshape(-1)
        gz = np.block([[gz, z1[:, None]], [z1[None], np.array([[n]])]])
        cz = np.vstack([cz, cross_bias])
        start = np.vstack([start, bias[None]])
    theta = _solve(gz, cz, start)
    if bias is None:
        return theta, None
    return theta[:-1], theta[-1]


def spatial(
    gram: np.ndarray,
    cross: np.ndarray,
    columns: np.ndarray,
    rows: np.ndarray,
    bias: np.ndarray | None,
    rounds: int = SPATIAL_ROUNDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Refined ``(columns (K, C_in*kh), rows (C_out, K, kw), bias)`` of a spatial factorization.

    ``y_o = b_o + sum_{k,j} rows[o, k, j] (columns[k] . x[:, j])`` with ``x[:, j]`` the
    ``C_in*kh`` inputs of horizontal tap ``j``; ``gram`` and ``cross`` as in :func:`depthwise`,
    the tap features ordered ``(c, i, j)``.
    """
    k, a = columns.shape
    c_out, _, kw = rows.shape
    f = a * kw
    gr = gram[:f, :f].reshape(a, kw, a, kw)
    g1 = gram[:f, f].reshape(a, kw) if bias is not None else None
    cr = cross[:f].reshape(a, kw, c_out)
    n = gram[f, f] if bias is not None else None
    solve_columns = k * a <= UNKNOWNS
    for _ in range(rounds):
        gz = np.einsum("ka,ajbl,nb->kjnl", columns, gr, columns, optimize=True)
        gz = gz.reshape(k * kw, k * kw)
        cz = np.einsum("ka,ajo->kjo", columns, cr, optimize=True).reshape(k * kw, c_out)
        start = rows.reshape(c_out, k * kw).T
        z1 = None if bias is None else np.einsum("ka,aj->kj", columns, g1, optimize=True)
        theta, bias = _solve_second(gz, cz, start, bias, z1, n, cross[f:])
        rows = theta.T.reshape(c_out, k, kw)
        if not solve_columns:
            break
        hh = np.einsum("okj,onl->kjnl", rows, rows, optimize=True)
        system = np.einsum("kjnl,ajbl->kanb", hh, gr, optimize=True).reshape(k * a, k * a)
        target = cr if bias is None else cr - g1[:, :, None] * bias[None, None, :]
        rhs = np.einsum("okj,ajo->ka", rows, target, optimize=True).reshape(-1)
        columns = _solve(system, rhs, columns.reshape(-1)).reshape(k, a)
    return columns, rows, bias
