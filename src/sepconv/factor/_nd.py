"""d-D factorization (d >= 3): exact rank-1 factors, else a CP decomposition.

The higher-order power method gives the best rank-1 term; alternating least squares on the
compressed core (CANDELINC) searches 2, 3, ... terms, started from Jennrich's simultaneous
diagonalisation, the truncated HOSVD and seeded random matrices; 3-D kernels fall back to an
exact slice-wise SVD decomposition (Kolda & Bader, "Tensor decompositions and applications",
SIAM Review 2009).
"""

from __future__ import annotations

import math

import numpy as np

from ._result import (
    EPS64,
    Factorization,
    _balance,
    _integer_factors,
    _result,
    _tail_rank,
    _unfolding_singular_values,
)

# Alternating-least-squares sweeps the search for the fewest CP terms may spend in total
# before a 3-D kernel falls back to the exact slice-wise decomposition.
_ALS_BUDGET = 12000


def _unfold_leading(array: np.ndarray, axis: int) -> np.ndarray:
    unfolding = np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1)
    u, s, _ = np.linalg.svd(unfolding, full_matrices=False)
    return u[:, 0] if s[0] > 0 else np.eye(array.shape[axis])[0]


def _contract_except(array: np.ndarray, vectors: list[np.ndarray], axis: int) -> np.ndarray:
    """array contracted with every vector except the one on ``axis``."""
    out = array
    for k in range(array.ndim - 1, -1, -1):
        if k != axis:
            out = np.tensordot(out, vectors[k], axes=([k], [0]))
    return out


def _best_rank1(array: np.ndarray, iterations: int = 200) -> list[np.ndarray]:
    """Best rank-1 approximation by the higher-order power method from the HOSVD start."""
    vectors = [_unfold_leading(array, k) for k in range(array.ndim)]
    previous = -1.0
    weight = 0.0
    for _ in range(iterations):
        for k in range(array.ndim):
            v = _contract_except(array, vectors, k)
            n = float(np.linalg.norm(v))
            if n == 0:
                break
            vectors[k] = v / n
        weight = float(_contract_except(array, vectors, 0) @ vectors[0])
        if abs(abs(weight) - previous) <= 1e-15 * abs(weight):
            break
        previous = abs(weight)
    vectors[0] = vectors[0] * weight
    return _balance(vectors)


def _khatri_rao(matrices: list[np.ndarray]) -> np.ndarray:
    """Column-wise Kronecker product, first matrix varying slowest (C order)."""
    out = matrices[0]
    for m in matrices[1:]:
        out = (out[:, None, :] * m[None, :, :]).reshape(-1, out.shape[1])
    return out


def _cp_als(
    array: np.ndarray, r: int, tol: float, *, seed: int = 0, starts: int = 3, iterations: int = 1500
) -> tuple[list[list[np.ndarray]], int]:
    """CP decomposition with ``r`` terms by alternating least squares (best of a few starts).

    Returns the terms and the number of sweeps spent. The starts are, in order: Jennrich's
    simultaneous diagonalisation (3-D, when it applies), the truncated HOSVD and seeded random
    matrices (deterministic).
    """
    d = array.ndim
    unfoldings = [np.moveaxis(array, k, 0).reshape(array.shape[k], -1) for k in range(d)]
    norm = float(np.linalg.norm(array.ravel()))
    rng = np.random.default_rng(seed)
    best: tuple[float, list[np.ndarray]] | None = None
    initial = []
    if d == 3 and (start := _jennrich(array, r, rng)) is not None:
        initial.append(start)
    hosvd = []
    for k in range(d):
        u, _, _ = np.linalg.svd(unfoldings[k], full_matrices=False)
        extra = rng.standard_normal((array.shape[k], max(0, r - u.shape[1])))
        hosvd.append(np.concatenate([u[:, :r], extra], axis=1)[:, :r])
    initial.append(hosvd)
    initial.extend([rng.standard_normal((n, r)) for n in array.shape] for _ in range(starts - 1))
    spent = 0
    for matrices in initial:
        matrices = [m.copy() for m in matrices]
        history: list[float] = []
        error = math.inf
        for _ in range(iterations):
            spent += 1
            for k in range(d):
                others = [matrices[j] for j in range(d) if j != k]
                gram = np.ones((r, r))
                for m in others:
                    gram *= m.T @ m
                rhs = unfoldings[k] @ _khatri_rao(others)
                matrices[k] = np.linalg.lstsq(gram, rhs.T, rcond=None)[0].T
            error = _cp_error(unfoldings[0], matrices)
            history.append(error)
            if error <= 0.5 * tol:
                break
            if len(history) > 50 and history[-50] - error <= 1e-6 * max(history[-50], 1e-300):
                break  # stagnating
            if len(history) >= 200 and error > 0.5 * tol:
                # at the rate of the last 50 sweeps, can it reach the tolerance in time?
                rate = error / history[-51]
                needed = 50 * math.log(0.5 * tol / error) / math.log(rate) if rate < 1 else math.inf
                if needed > 2 * (iterations - len(history)):
                    break
            if error <= 1e-15 * norm:
                break
            if spent % 20 == 0:
                weights = np.prod([np.linalg.norm(m, axis=0) for m in matrices], axis=0)
                if float(np.max(weights)) > 1e4 * norm:
                    break  # diverging terms: the tensor is a limit of rank-r ones (border rank)
        if best is None or error < best[0]:
            best = (error, matrices)
        if error <= tol:
            break
    assert best is not None
    matrices = best[1]
    terms = [_balance([m[:, i] for m in matrices]) for i in range(r)]
    # strongest terms first
    terms.sort(key=lambda t: -math.prod(float(np.linalg.norm(f)) for f in t))
    return terms, spent


def _cp(
    array: np.ndarray, r: int, tol: float, **options: int
) -> tuple[list[list[np.ndarray]], int]:
    """CP decomposition with ``r`` terms, computed on the compressed core (CANDELINC).

    The kernel is first projected on the span of its numerically nonzero singular vectors in
    every mode (a truncated HOSVD that drops only rounding noise); ALS then runs on the small
    core, where its sweeps are cheap and its swamps shallow (a 9x9x9 Laplacian of Gaussian has
    a 2x2x2 core), and the factors are mapped back. Since the bases are orthonormal, the error
    is the same as for the kernel up to the dropped noise.
    """
    noise = 10 * max(array.shape) * EPS64 * float(np.linalg.norm(array.ravel()))
    bases = []
    for k in range(array.ndim):
        unfolding = np.moveaxis(array, k, 0).reshape(array.shape[k], -1)
        u, s, _ = np.linalg.svd(unfolding, full_matrices=False)
        keep = max(1, _tail_rank(s, noise / (2 * math.sqrt(array.ndim))))
        bases.append(u[:, :keep])
    core = array
    for k, basis in enumerate(bases):
        core = np.moveaxis(np.tensordot(core, basis, axes=([k], [0])), -1, k)
    if core.shape == array.shape:
        return _cp_als(array, r, tol, **options)
    terms, spent = _cp_als(core, r, tol, **options)
    return [_balance([basis @ f for basis, f in zip(bases, term)]) for term in terms], spent


def _cp_error(unfolding: np.ndarray, matrices: list[np.ndarray]) -> float:
    approx = _khatri_rao(matrices[1:]) @ matrices[0].T
    return float(np.linalg.norm(unfolding - approx.T))


def _jennrich(array: np.ndarray, r: int, rng: np.random.Generator) -> list[np.ndarray] | None:
    """Factor matrices of a rank-``r`` 3-D tensor by simultaneous diagonalisation.

    Exact when the first two factor matrices have full column rank ``r`` and the third has no
    two parallel columns (Harshman 1970; Leurgans, Ross & Abel 1993); otherwise only a start.
    """
    n0, n1, _ = array.shape
    if r > min(n0, n1):
        return None
    u = np.linalg.svd(array.reshape(n0, -1), full_matrices=False)[0][:, :r]
    v = np.linalg.svd(np.moveaxis(array, 1, 0).reshape(n1, -1), full_matrices=False)[0][:, :r]
    a, b = rng.standard_normal((2, array.shape[2]))
    m1 = u.T @ (array @ a) @ v
    m2 = u.T @ (array @ b) @ v
    try:
        values, vectors = np.linalg.eig(m1 @ np.linalg.inv(m2))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(values)):
        return None
    first = u @ np.real(vectors)
    # the other two factor matrices by least squares, given the first
    rest = np.linalg.lstsq(first, array.reshape(n0, -1), rcond=None)[0]  # (r, n1*n2)
    second = np.empty((n1, r))
    third = np.empty((array.shape[2], r))
    for i in range(r):
        uu, ss, vv = np.linalg.svd(rest[i].reshape(n1, -1), full_matrices=False)
        second[:, i] = uu[:, 0] * ss[0]
        third[:, i] = vv[0]
    return [first, second, third]


def _slices(array: np.ndarray, tol: float) -> list[list[np.ndarray]]:
    """A CP decomposition of a 3-D kernel within ``tol`` from slice-wise SVDs.

    Along each axis, every 2-D slice is written by its SVD; the smallest singular values over
    all slices are dropped while their squares add up to at most ``tol**2`` (the slices are
    disjoint, so their errors add in squares). The axis giving the fewest terms wins.
    """
    best: list[list[np.ndarray]] | None = None
    for axis in range(3):
        moved = np.moveaxis(array, axis, 0)
        pieces = []  # (sigma, slice index, column, row)
        for i in range(moved.shape[0]):
            u, s, vt = np.linalg.svd(moved[i], full_matrices=False)
            pieces.extend((float(sigma), i, u[:, j], vt[j]) for j, sigma in enumerate(s))
        pieces.sort(key=lambda p: p[0])
        budget = tol**2
        dropped = 0
        for sigma, *_ in pieces:
            if sigma**2 > budget:
                break
            budget -= sigma**2
            dropped += 1
        kept = pieces[dropped:] or pieces[-1:]
        others = [k for k in range(3) if k != axis]
        terms = []
        for sigma, i, u, v in reversed(kept):
            term: list[np.ndarray] = [np.empty(0)] * 3
            term[axis] = np.eye(moved.shape[0])[i]
            term[others[0]] = u * sigma
            term[others[1]] = v
            terms.append(_balance(term))
        if best is None or len(terms) < len(best):
            best = terms
    assert best is not None
    return best


def _lowrank_nd(
    array: np.ndarray, rank: int | None, tol: float, max_rank: int | None = None
) -> Factorization:
    unfoldings = _unfolding_singular_values(array)
    if not np.any(array):
        return _result(
            array, [[np.zeros(n) for n in array.shape]], tol, "rank-1", unfoldings=unfoldings
        )
    if rank is None or rank == 1:
        integer = _integer_factors(array)
        if integer is not None:
            return _result(array, [integer], tol, "integer", unfoldings=unfoldings)
        one = _result(array, [_best_rank1(array)], tol, "rank-1", unfoldings=unfoldings)
        if rank == 1 or one.error <= tol or max_rank == 1:
            return one
    if rank is not None:
        return _result(array, _cp(array, rank, tol)[0], tol, "cp-als", unfoldings=unfoldings)
    exact: list[list[np.ndarray]] | None = _slices(array, tol) if array.ndim == 3 else None
    limit = len(exact) if exact is not None else 4 * max(array.shape)
    if max_rank is not None and max_rank < limit:
        limit, exact = max_rank + 1, None
    budget = _ALS_BUDGET
    candidate = one
    for r in range(2, limit):
        terms, spent = _cp(array, r, tol, iterations=max(1, min(1500, budget)))
        candidate = _result(array, terms, tol, "cp-als", unfoldings=unfoldings)
        if candidate.error <= tol:
            return candidate
        budget -= spent
        if budget <= 0:
            break
    if exact is not None:
        return _result(array, exact, tol, "slices", unfoldings=unfoldings)
    return candidate  # the most terms tried; not within tol (is_exact is False)
