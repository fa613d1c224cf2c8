"""Separability, low-rank and N-D factorization of kernels.

A kernel ``K`` of shape ``(n0, n1, ..., n_{d-1})`` is *separable* when it is the outer product
of ``d`` 1-D factors, ``K = f0 ⊗ f1 ⊗ ... ⊗ f_{d-1}``: filtering with it then takes ``d`` 1-D
passes, ``sum(shape)`` multiplications per output element instead of ``prod(shape)``. A kernel
that is not separable is often a short sum of separable *terms* (its rank): a Laplacian of
Gaussian or a Gabor kernel is exactly rank 2.

- :func:`rank`, :func:`is_separable`: how many separable terms reproduce the kernel within
  ``tol``.
- :func:`separate`: the factors of a separable kernel, written the way people write them
  (Sobel-x → column ``[1, 2, 1]``, row ``[-1, 0, 1]``), or :class:`NotSeparableError`.
- :func:`lowrank`: the fewest separable terms within ``tol`` (or exactly ``rank`` terms). For
  2-D kernels this is the truncated SVD, optimal by the Eckart–Young theorem; for d-D kernels
  it is the exact rank-1 factorization when one exists, else a CP decomposition by alternating
  least squares.

All of them return or use one result type, :class:`Factorization`, which the filtering
planner, the PyTorch layers and the model converter consume.

Tolerance
---------
``tol`` bounds the *Frobenius norm of the reconstruction error*, ``||K - sum of terms||_F``,
in the units of the kernel (``rtol`` gives it relative to ``||K||_F`` instead). The default,
:func:`default_tol`, is ``10 * max(shape) * eps * ||K||_F`` where ``eps`` is the machine epsilon
of the kernel's dtype (float64 for integer kernels). Rounding a kernel to its dtype perturbs it
by at most ``eps/2 * ||K||_F`` and the SVD adds errors of order ``eps * ||K||_2`` per singular
value (over 20,000 random float64 outer products of sizes up to 19, the discarded tail never
exceeded ``0.4 * max(shape) * eps * ||K||_F``); the factor 10 is the safety margin. The default
accepts what the dtype cannot tell apart from an exact factorization and little more.

MATLAB's ``isfilterseparable`` instead counts singular values above
``numel(h) * max(s) * eps`` and NumPy's ``matrix_rank`` those above
``max(shape) * max(s) * eps``. Both compare *single* singular values with a threshold; sepconv
compares the whole discarded tail ``sqrt(sum of discarded s_i**2)`` -- the actual error of the
approximation -- with ``tol``. For kernels whose singular values are either at rounding level
or well above it (every kernel in :mod:`sepconv.kernels`), the three rules give the same rank;
sepconv's rule also works for float32 and float16 kernels, where a float64 epsilon would call
rounding noise "rank".

Numerical noise
---------------
The default tolerance is also the *noise floor*: a computed value whose size is at or below
``default_tol(kernel)`` carries no information about the kernel -- its digits come from the
order of floating-point operations and change with the BLAS kernel (``OPENBLAS_CORETYPE``),
the thread count and the CPU. The floor is stored in :attr:`Factorization.noise`, and every
result holds such values as exactly 0: singular values whose tail is within the floor
(``[3.4641, 0, 0]`` for Sobel-x on every machine, not ``4.3447e-16`` on one and
``3.51083e-16`` on another), errors, computed terms whose weight is below the floor and
factor entries at rounding level of their factor (``10 * len(f) * eps64 * ||f||``). A
tolerance below the floor acts as the floor, so ``tol=0`` asks for an exact factorization up
to rounding. Like NumPy's ``matrix_rank`` (``max(shape) * eps * max(s)``), the floor scales
with the kernel's size, its dtype's epsilon and its magnitude; sepconv uses
``||K||_F >= max(s)`` and a factor 10, the margin measured above.

Printed values follow one more rule: :meth:`Factorization.to_dict` (and so
``sepconv factor --json``) rounds to 10 significant digits, and
:meth:`Factorization.shown_terms` prints computed factors to 10 decimals of their largest
entry, since their entries are accurate to a few ``eps`` of the factor's norm whatever their
own size. What ``sepconv factor`` prints is then the same on every machine.

Sign and scale of the factors
-----------------------------
- *Integer-valued kernels* (integer dtype, or floats holding integers) that are exactly
  separable get integer-valued factors (float64, as every factor) of the smallest magnitude:
  every factor is primitive (the greatest common divisor of its entries is 1) except the
  first, which also carries the common integer scale.
- *Other kernels* get balanced factors: every factor of a term has the same Euclidean norm,
  ``||f_k|| = sigma ** (1/d)`` for a term of weight ``sigma`` (for 2-D, ``u * sqrt(s)`` and
  ``v * sqrt(s)`` as MATLAB).
- *Signs*: a factor whose entries do not sum to zero (a smoothing factor) is made to sum to a
  positive number; a factor whose entries sum to zero (a derivative factor) is made to have its
  last nonzero entry positive, so differences read ``[-1, 0, 1]`` and ``[1, -2, 1]`` as in
  OpenCV. When the sign of the term does not allow every factor its preferred sign, the last
  zero-sum factor (else the last factor) carries the minus sign.

Examples
--------
>>> import numpy as np
>>> from sepconv import factor
>>> sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
>>> column, row = factor.separate(sobel_x).terms[0]
>>> column, row
(array([1., 2., 1.]), array([-1.,  0.,  1.]))
>>> factor.rank(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))
2
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._api import public_dir as _public_dir
from .._checks import SepconvValueError, check_float, check_int, check_kernel
from ._nd import _lowrank_nd
from ._result import (
    Factorization,
    NotSeparableError,
    _default_tol,
    _finish,
    _integer_factors,
    _resolve_tol,
    _result,
    _tail_rank,
)

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

__all__ = [
    "Factorization",
    "NotSeparableError",
    "as_kernel",
    "default_tol",
    "rank",
    "is_separable",
    "separate",
    "lowrank",
]

# the public home of the result types
Factorization.__module__ = NotSeparableError.__module__ = __name__

# Kernels whose largest magnitude is outside [2**-100, 2**100] are scaled by a power of two
# first, so that sums of squares neither overflow nor underflow.
_SCALE_LIMIT = 2.0**100


# --------------------------------------------------------------------------------------------
# input


def as_kernel(kernel: ArrayLike, *, name: str = "kernel") -> np.ndarray:
    """Validate a kernel and return it as a new float64 array.

    Accepts NumPy arrays, nested sequences and PyTorch tensors (any device; detached). Text
    is not a kernel here: read it with :func:`sepconv.kernels.parse` first. The check is
    :func:`sepconv._checks.check_kernel`, the one that filtering runs too.

    Raises
    ------
    SepconvTypeError
        For complex, boolean, object or string data.
    SepconvValueError
        For ragged sequences, scalars (0-d), empty kernels and NaN/Inf entries.

    Examples
    --------
    >>> as_kernel([[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> as_kernel([[1, float("nan")]])
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `kernel` must be finite, got nan at index (0, 1)
    """
    return check_kernel(kernel, name)[0]


def default_tol(kernel: ArrayLike) -> float:
    """The default absolute tolerance and noise floor: ``10 * max(shape) * eps * ||kernel||_F``.

    Values of a factorization at or below it are rounding noise and are reported as 0 (see
    "Numerical noise" in the module documentation).

    ``eps`` is the machine epsilon of the kernel's dtype: 2.2e-16 for float64 and integer
    kernels, 1.2e-7 for float32, 9.8e-4 for float16, 7.8e-3 for bfloat16 tensors. See the
    module documentation for how it compares with MATLAB's ``isfilterseparable``.

    Examples
    --------
    >>> import numpy as np
    >>> default_tol(np.ones((3, 3)))  # 10 * 3 * 2**-52 * 3
    1.9984014443252818e-14
    >>> default_tol(np.ones((3, 3), dtype=np.float32)) > 1e-7
    True
    """
    array, tol, scale, _ = _prepare(kernel, None, None)
    return tol * scale


def _prepare(
    kernel: ArrayLike, tol: float | None, rtol: float | None
) -> tuple[np.ndarray, float, float, float]:
    """Validated kernel, scaled by a power of two when its magnitude would overflow or
    underflow the sums of squares; the tolerance in the scaled units; the scale; eps."""
    array, eps = check_kernel(kernel)
    peak = float(np.max(np.abs(array)))
    scale = 1.0
    if peak > _SCALE_LIMIT or 0.0 < peak < 1.0 / _SCALE_LIMIT:
        scale = 2.0 ** math.frexp(peak)[1]  # dividing by a power of two is exact
        array = array / scale
    if tol is not None and rtol is None:
        tol = check_float("tol", tol, minimum=0.0) / scale
    return array, _resolve_tol(array, eps, tol, rtol), scale, eps


def _check_rank(value: Any, limit: int | None, shape: tuple[int, ...]) -> int:
    value = check_int("rank", value, minimum=1)
    if limit is not None and value > limit:
        raise SepconvValueError(
            f"`rank` must be between 1 and {limit} (min(shape)) for a kernel of shape "
            f"{shape}, got {value}"
        )
    return value


# --------------------------------------------------------------------------------------------
# 2-D


def _lowrank_2d(
    array: np.ndarray, rank: int | None, tol: float, noise: float = 0.0
) -> Factorization:
    u, s, vt = np.linalg.svd(array, full_matrices=False)
    r = _tail_rank(s, tol, noise) if rank is None else rank
    if (
        r <= 1
        and (integer := _integer_factors(array)) is not None
        and (rank is not None or _tail_rank(s, tol, noise) <= 1)
    ):
        return _result(array, [integer], tol, "integer", s)
    r = max(r, 1)
    terms = []
    for i in range(r):
        root = math.sqrt(s[i])
        terms.append([u[:, i] * root, vt[i] * root])
    return _result(array, terms, tol, "svd", s)


# --------------------------------------------------------------------------------------------
# public API


def lowrank(
    kernel: ArrayLike,
    rank: int | None = None,
    tol: float | None = None,
    *,
    rtol: float | None = None,
    max_rank: int | None = None,
) -> Factorization:
    """The fewest separable terms that reproduce ``kernel`` within ``tol``.

    Parameters
    ----------
    kernel : array_like, shape (n0, ..., n_{d-1})
        A real kernel with at least one axis (see :func:`as_kernel`).
    rank : int, optional
        Use exactly this many terms instead of the fewest within ``tol`` (for 2-D kernels
        at most ``min(shape)``); ``tol`` is then only used for ``is_exact``.
    tol : float, optional
        Largest acceptable Frobenius norm of the error (default :func:`default_tol`).
    rtol : float, optional
        The same, relative to ``||kernel||_F`` (give ``tol`` or ``rtol``, not both).
    max_rank : int, optional
        Stop the search at this many terms: when no sum of ``max_rank`` terms is within
        ``tol``, the best ``max_rank``-term result is returned (``is_exact`` is then False).
        Use it to bound the work when more terms would not pay off anyway (for filtering:
        the rank beyond which separable passes cost more than the direct kernel).

    Returns
    -------
    Factorization
        For 2-D kernels the truncated SVD: by the Eckart–Young theorem no sum of ``r`` separable
        terms is closer, and ``error**2`` is the sum of the discarded squared singular values.
        1-D kernels are one term. d-D kernels (d >= 3): the exact integer or rank-1 factors when
        the kernel is separable within ``tol``; else a CP decomposition by alternating least
        squares (Kolda & Bader, "Tensor decompositions and applications", SIAM Review 2009),
        trying 2, 3, ... terms, with an exact slice-wise SVD decomposition as the fallback for
        3-D kernels. For d >= 3 the number of terms is an upper bound of the CP rank (finding
        the CP rank is NP-hard). The search is bounded (about 12,000 ALS sweeps in all, a few
        seconds for a random 7x7x7 kernel); when it runs out, 3-D kernels get the slice-wise
        decomposition and d >= 4 kernels the largest CP tried.

    Notes
    -----
    A zero kernel gives one term of zero factors (error 0), so a filtering engine always has
    at least one pass to run.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.factor import lowrank
    >>> rng = np.random.default_rng(0)
    >>> kernel = rng.standard_normal((5, 5))
    >>> full = lowrank(kernel)
    >>> full.rank
    5
    >>> two = lowrank(kernel, rank=2)
    >>> bool(np.isclose(two.error**2, np.sum(two.singular_values[2:] ** 2)))
    True
    >>> lowrank(kernel, rtol=0.5).rank
    2
    >>> capped = lowrank(kernel, max_rank=3)
    >>> capped.rank, capped.is_exact
    (3, False)
    """
    array, tol, scale, eps = _prepare(kernel, tol, rtol)
    if max_rank is not None:
        max_rank = check_int("max_rank", max_rank, minimum=1)
    noise = _default_tol(array, eps)
    return _finish(array, _lowrank(array, rank, tol, max_rank, noise), noise, scale)


def _lowrank(
    array: np.ndarray, rank: int | None, tol: float, max_rank: int | None, noise: float = 0.0
) -> Factorization:
    if array.ndim == 1:
        if rank is not None:
            _check_rank(rank, 1, array.shape)
        return _result(array, [[array]], tol, "1-d")
    if array.ndim == 2:
        if rank is not None:
            rank = _check_rank(rank, min(array.shape), array.shape)
        elif max_rank is not None:
            s = np.linalg.svd(array, compute_uv=False)
            rank = min(max(_tail_rank(s, tol, noise), 1), max_rank) if max_rank < len(s) else None
        return _lowrank_2d(array, rank, tol, noise)
    if rank is not None:
        rank = _check_rank(rank, None, array.shape)
    return _lowrank_nd(array, rank, tol, max_rank)


def rank(kernel: ArrayLike, tol: float | None = None, *, rtol: float | None = None) -> int:
    """Number of separable terms ``kernel`` needs within ``tol``.

    For 2-D kernels the smallest ``r`` whose discarded singular values satisfy
    ``sqrt(sum(s[r:]**2)) <= tol``: the numerical rank. 1-D kernels have rank 1, zero kernels
    rank 0. For d-D kernels (d >= 3): 1 when separable, else the number of terms
    :func:`lowrank` needs (an upper bound of the CP rank).

    Parameters
    ----------
    kernel : array_like
    tol, rtol : float, optional
        Absolute or relative tolerance, as in :func:`lowrank` (default :func:`default_tol`).

    Examples
    --------
    >>> import numpy as np
    >>> rank(np.outer([1, 2, 1], [1, 0, -1]))
    1
    >>> rank(np.eye(4))
    4
    >>> rank(np.eye(4) + 1e-9, tol=1e-6)
    4
    >>> rank(np.zeros((3, 3)))
    0
    """
    array, tol, _, eps = _prepare(kernel, tol, rtol)
    if not np.any(array):
        return 0
    if array.ndim == 1:
        return 1
    if array.ndim == 2:
        return _tail_rank(np.linalg.svd(array, compute_uv=False), tol, _default_tol(array, eps))
    return _lowrank_nd(array, None, tol).rank


def is_separable(kernel: ArrayLike, tol: float | None = None, *, rtol: float | None = None) -> bool:
    """True when ``kernel`` is one outer product of 1-D factors within ``tol``.

    A d-D kernel is separable exactly when every unfolding (the kernel reshaped to
    ``(n_k, prod of the other sizes)``) has rank 1.

    Examples
    --------
    >>> import numpy as np
    >>> is_separable(np.ones((3, 3, 3)))
    True
    >>> is_separable(np.eye(3))
    False
    """
    return rank(kernel, tol, rtol=rtol) <= 1


def separate(
    kernel: ArrayLike, tol: float | None = None, *, rtol: float | None = None
) -> Factorization:
    """The 1-D factors of a separable kernel.

    Parameters
    ----------
    kernel : array_like, shape (n0, ..., n_{d-1})
    tol, rtol : float, optional
        Absolute or relative tolerance, as in :func:`lowrank` (default :func:`default_tol`).

    Returns
    -------
    Factorization
        Exactly one term ``(f0, ..., f_{d-1})`` of 1-D float64 arrays with
        ``kernel ≈ f0 ⊗ ... ⊗ f_{d-1}``; integer-valued kernels get integer-valued factors of
        the smallest magnitude, others balanced factors (see the module documentation for the
        sign rule).

    Raises
    ------
    NotSeparableError
        (a ``ValueError``) when the kernel is not separable within ``tol``; the message gives
        its rank and the error of the best separable approximation.

    Examples
    --------
    >>> import numpy as np
    >>> sobel_y = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    >>> separate(sobel_y).terms[0]
    (array([-1.,  0.,  1.]), array([1., 2., 1.]))
    >>> separate(np.eye(3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv.factor.NotSeparableError: `kernel` of shape (3, 3) is not separable: it has rank 3 ...
    """
    array, tol, scale, eps = _prepare(kernel, tol, rtol)
    noise = _default_tol(array, eps)
    if array.ndim == 1:
        return _finish(array, _result(array, [[array]], tol, "1-d"), noise, scale)
    best = _finish(array, _lowrank(array, 1, tol, None, noise), noise, scale)
    if best.is_exact:
        return best
    r = _lowrank(array, None, tol, None, noise).rank
    raise NotSeparableError(
        f"`kernel` of shape {best.shape} is not separable: it has rank {r} at tol "
        f"{best.tol:.2g}; "
        f"the best separable approximation has relative error {best.relative_error:.3g} "
        f"(absolute {best.error:.3g}); lowrank() gives a sum of {r} separable terms",
        r,
        best,
    )


__dir__ = _public_dir(globals())
