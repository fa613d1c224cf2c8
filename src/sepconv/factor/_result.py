"""The result type of every factorization, and the rules its values follow.

:class:`Factorization` holds a kernel's separable terms with their error; the helpers here
build one from terms: the sign and scale rule for factors, integer factors, the noise rule
(values at or below the noise floor are stored as 0) and the scaling that keeps sums of squares
in range. See :mod:`sepconv.factor` for the rules themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import SepconvValueError, check_float, check_kernel, describe

if TYPE_CHECKING:  # pragma: no cover
    from numpy.typing import ArrayLike

    from ..cost import Cost

# Largest magnitude for which integer-valued kernels get integer factors (exact in float64).
_INTEGER_LIMIT = 2**31
# A factor counts as zero-sum (a derivative) when |sum| <= this times sum(|f|).
_ZERO_SUM = 1e-6
EPS64 = float(np.finfo(np.float64).eps)


class NotSeparableError(SepconvValueError):
    """The kernel is not separable within the tolerance.

    Attributes
    ----------
    rank : int
        Number of separable terms the kernel needs within the tolerance.
    best : Factorization
        The best rank-1 (separable) approximation found; ``best.error`` and
        ``best.relative_error`` say how far it is from the kernel.
    """

    def __init__(self, message: str, rank: int, best: Factorization) -> None:
        super().__init__(message)
        self.rank = rank
        self.best = best


#: methods whose terms are computed (rather than exact: integer, closed-form or 1-D)
_COMPUTED = ("svd", "rank-1", "cp-als", "slices")


def rounded(value: Any, digits: int | None = 10) -> Any:
    """Every float in ``value`` (nested dicts and lists) rounded to ``digits`` significant
    digits, as printed results are (None: unchanged).

    Examples
    --------
    >>> rounded({"error": 0.1 + 0.2, "terms": [[1 / 3]]})
    {'error': 0.3, 'terms': [[0.3333333333]]}
    """
    if digits is None:
        return value
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.{digits}g}") + 0.0  # no negative zero
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def shown_factor(factor: np.ndarray, digits: int | None = 10) -> list[float]:
    """A computed factor as printed: ``digits`` significant digits, and no digit finer than
    ``10**-digits`` times its largest entry.

    The entries of a computed factor are accurate to a small multiple of ``eps * ||f||``
    whatever their own size, so an entry far below the largest one (the middle tap of a
    derivative found by an SVD: ``3e-17`` on one machine, ``-1e-17`` on another) has no
    digit to show; it prints as 0.

    Examples
    --------
    >>> shown_factor(np.array([0.7071067811865476, 3.2216e-17, -0.7071067811865475]))
    [0.7071067812, 0.0, -0.7071067812]
    """
    values = np.asarray(factor, dtype=np.float64)
    if digits is None:
        return [float(x) for x in values]
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0.0:
        return [0.0] * values.size
    quantum = 10.0 ** (math.floor(math.log10(peak)) - digits + 1)
    return [float(f"{float(x):.{digits}g}") + 0.0 for x in np.round(values / quantum) * quantum]


@dataclass(frozen=True, eq=False)
class Factorization:
    """A kernel written as a sum of separable terms.

    ``kernel ≈ sum(outer(f0, f1, ..., f_{d-1}) for (f0, f1, ...) in terms)``, where ``f_k`` has
    length ``shape[k]``. For a 2-D kernel each term is ``(column, row)``.

    Attributes
    ----------
    terms : tuple of tuple of ndarray
        One tuple per separable term, holding one read-only 1-D float64 factor per kernel axis.
    shape : tuple of int
        Shape of the kernel, ``(n0, ..., n_{d-1})``.
    error : float
        ``||kernel - reconstruct()||_F``, the Frobenius norm of the error.
    relative_error : float
        ``error / ||kernel||_F`` (0 for a zero kernel).
    singular_values : ndarray or None
        2-D kernels: all singular values, descending, shape ``(min(shape),)``. 1-D and d-D
        kernels (d >= 3): None (see ``unfolding_singular_values``).
    tol : float
        The absolute tolerance (Frobenius norm) the factorization was judged with.
    method : str
        How the terms were found: ``'integer'`` (exact integer factors), ``'svd'`` (2-D
        truncated SVD), ``'1-d'``, ``'rank-1'`` (d-D rank-1 power iteration), ``'cp-als'``
        (d-D CP decomposition by alternating least squares), ``'slices'`` (d-D exact
        slice-wise SVD) or ``'closed-form'`` (exact terms from :mod:`sepconv.kernels`).
    unfolding_singular_values : tuple of ndarray or None
        d-D kernels (d >= 3): the singular values of each mode-k unfolding (the kernel reshaped
        to ``(n_k, prod of the others)``), descending. A kernel is separable exactly when each
        unfolding has one nonzero singular value. None for 1-D and 2-D kernels.
    noise : float
        The noise floor of the kernel, :func:`noise_floor` (``default_tol``): singular values,
        errors and computed factor entries whose contribution is at or below it are rounding
        noise -- their digits change with the BLAS kernel, the thread count and the CPU --
        and are stored as exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.factor import lowrank
    >>> log = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    >>> f = lowrank(log)
    >>> f.rank, f.is_exact, np.allclose(f.reconstruct(), log)
    (2, True, True)
    >>> direct, factored = f.cost()
    >>> direct.multiplications, factored.multiplications
    (9, 12)
    """

    terms: tuple[tuple[np.ndarray, ...], ...]
    shape: tuple[int, ...]
    error: float
    relative_error: float
    singular_values: np.ndarray | None
    tol: float
    method: str = "svd"
    unfolding_singular_values: tuple[np.ndarray, ...] | None = field(default=None)
    noise: float = 0.0

    @classmethod
    def from_terms(
        cls,
        terms: Sequence[Sequence[ArrayLike]],
        kernel: ArrayLike | None = None,
        *,
        tol: float | None = None,
        method: str = "closed-form",
    ) -> Factorization:
        """A factorization from given terms (kept as given: no sign or scale normalisation).

        Parameters
        ----------
        terms : sequence of sequences of 1-D array_like
            One sequence of ``d`` 1-D factors per term, all terms with the same lengths.
        kernel : array_like, optional
            The kernel the terms approximate (default: their sum, so the error is 0).
        tol : float, optional
            Tolerance for ``is_exact`` (default :func:`default_tol` of the kernel).

        Examples
        --------
        >>> f = Factorization.from_terms([([1, 2, 1], [-1, 0, 1])])
        >>> f.reconstruct()
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])
        """
        checked = _check_terms(terms)
        shape = tuple(len(f) for f in checked[0])
        frozen = _freeze(checked)
        if kernel is None:
            array, eps = _reconstruct(frozen, shape), EPS64
        else:
            array, eps = check_kernel(kernel)
            if array.shape != shape:
                raise SepconvValueError(
                    f"`terms` have factor lengths {shape}, but the kernel has shape {array.shape}"
                )
        tol = _resolve_tol(array, eps, tol, None)
        singular_values = unfoldings = None
        if array.ndim == 2:
            singular_values = np.linalg.svd(array, compute_uv=False)
        elif array.ndim > 2:
            unfoldings = _unfolding_singular_values(array)
        result = cls(
            frozen, shape, _error(array, frozen), 0.0, singular_values, tol, method, unfoldings
        )
        return _denoise(array, result, _default_tol(array, eps), terms=False)

    @property
    def rank(self) -> int:
        """Number of separable terms."""
        return len(self.terms)

    @property
    def ndim(self) -> int:
        """Number of kernel axes (factors per term)."""
        return len(self.shape)

    @property
    def is_exact(self) -> bool:
        """True when the reconstruction error is within ``tol``."""
        return self.error <= self.tol

    @property
    def is_separable(self) -> bool:
        """True when one separable term reproduces the kernel within ``tol``."""
        return self.rank == 1 and self.is_exact

    def reconstruct(self) -> np.ndarray:
        """The kernel the terms add up to: a float64 array of shape ``shape``."""
        return _reconstruct(self.terms, self.shape)

    def cost(self, image_shape: Sequence[int] | None = None) -> tuple[Cost, Cost]:
        """Multiplications of filtering directly and with the separable terms.

        Parameters
        ----------
        image_shape : tuple of int, optional
            Size of a 'same' output; without it the counts are per output element.

        Returns
        -------
        (direct, factored) : tuple of sepconv.cost.Cost
            From :func:`sepconv.cost.filtering` with ``rank=None`` and ``rank=self.rank``.
        """
        from ..cost import filtering

        return (
            filtering(self.shape, None, image_shape),
            filtering(self.shape, self.rank, image_shape),
        )

    def to_dict(self, digits: int | None = 10) -> dict[str, Any]:
        """A JSON-ready description (lists of floats).

        Floats are rounded to ``digits`` significant digits (None: full precision), and the
        entries of computed factors to ``digits`` decimals of their factor's largest entry
        (:func:`shown_factor`): the last digits of a float64 result depend on the BLAS kernel
        and the CPU, these do not.

        Examples
        --------
        >>> import numpy as np
        >>> from sepconv.factor import lowrank
        >>> d = lowrank(0.1 * np.outer([1, 2, 1], [-1, 0, 1])).to_dict()
        >>> d["rank"], d["singular_values"], d["error"]
        (1, [0.3464101615, 0.0, 0.0], 0.0)
        """
        direct, factored = self.cost()
        return rounded(
            {
                "shape": list(self.shape),
                "rank": self.rank,
                "method": self.method,
                "tol": self.tol,
                "noise": self.noise,
                "error": self.error,
                "relative_error": self.relative_error,
                "is_exact": self.is_exact,
                "singular_values": (
                    None if self.singular_values is None else self.singular_values.tolist()
                ),
                "unfolding_singular_values": (
                    None
                    if self.unfolding_singular_values is None
                    else [sv.tolist() for sv in self.unfolding_singular_values]
                ),
                "terms": self.shown_terms(digits),
                "multiplications_per_output": {
                    "direct": direct.multiplications,
                    "factored": factored.multiplications,
                },
            },
            digits,
        )

    def shown_terms(self, digits: int | None = 10) -> list[list[list[float]]]:
        """The terms as printed: lists of floats with ``digits`` significant digits.

        Computed factors (SVD, power method, ALS) also lose the digits finer than
        ``10**-digits`` of their largest entry, which are rounding noise (see
        :func:`shown_factor`); exact factors (integer, closed-form, 1-D) keep theirs.
        """
        if self.method in _COMPUTED:
            return [[shown_factor(f, digits) for f in term] for term in self.terms]
        return [[rounded(f.tolist(), digits) for f in term] for term in self.terms]

    def __repr__(self) -> str:
        return (
            f"Factorization(rank={self.rank}, shape={self.shape}, method={self.method!r}, "
            f"error={self.error:.3g}, relative_error={self.relative_error:.3g}, "
            f"tol={self.tol:.3g})"
        )


def _default_tol(array: np.ndarray, eps: float) -> float:
    return float(10 * max(array.shape) * eps * np.linalg.norm(array.ravel()))


def _resolve_tol(array: np.ndarray, eps: float, tol: float | None, rtol: float | None) -> float:
    if tol is not None and rtol is not None:
        raise SepconvValueError(
            "give `tol` (absolute) or `rtol` (relative), not both, "
            f"got tol={tol!r} and rtol={rtol!r}"
        )
    if tol is not None:
        return check_float("tol", tol, minimum=0.0)
    if rtol is not None:
        return check_float("rtol", rtol, minimum=0.0) * float(np.linalg.norm(array.ravel()))
    return _default_tol(array, eps)


def _unscale(result: Factorization, scale: float) -> Factorization:
    if scale == 1.0:
        return result
    per_factor = scale ** (1.0 / result.ndim)
    terms = _freeze([[f * per_factor for f in term] for term in result.terms])
    singular_values = None
    if result.singular_values is not None:
        singular_values = result.singular_values * scale
        singular_values.setflags(write=False)
    unfoldings = None
    if result.unfolding_singular_values is not None:
        unfoldings = tuple(sv * scale for sv in result.unfolding_singular_values)
        for sv in unfoldings:
            sv.setflags(write=False)
    return Factorization(
        terms,
        result.shape,
        result.error * scale,
        result.relative_error,
        singular_values,
        result.tol * scale,
        result.method,
        unfoldings,
        result.noise * scale,
    )


def _zero_below(values: np.ndarray, floor: float) -> np.ndarray:
    out = np.where(np.abs(values) <= floor, 0.0, np.asarray(values, dtype=np.float64))
    out.setflags(write=False)
    return out


def _zero_tail(singular_values: np.ndarray, noise: float) -> np.ndarray:
    """Descending singular values with the longest tail whose norm is <= noise set to 0."""
    out = np.array(singular_values, dtype=np.float64)
    out[_tail_rank(out, noise) :] = 0.0
    out.setflags(write=False)
    return out


def _denoise(
    array: np.ndarray, result: Factorization, noise: float, *, terms: bool = True
) -> Factorization:
    """Apply the noise rule (see "Numerical noise" in the module documentation).

    Errors at or below ``noise`` become 0, and so do the singular values of the longest tail
    whose norm is at or below ``noise`` (the tail a rank-r truncation could drop). With
    ``terms``, computed factors lose their noise as well: a term whose weight (the product of
    its factors' norms) is at or below ``noise`` becomes zero factors, and a factor entry at
    or below ``10 * len(f) * eps64 * ||f||`` becomes 0 -- unless that would raise the error
    by more than ``noise`` or above ``tol``. Integer, closed-form and 1-D terms are exact and
    kept as they are. ``result.error`` must be the error of ``result.terms``.
    """
    frozen, error = result.terms, result.error
    if terms and result.method in _COMPUTED:
        # one matrix per axis, a row per term
        stacks = [np.stack([term[k] for term in frozen]) for k in range(len(result.shape))]
        norms = [np.linalg.norm(m, axis=1) for m in stacks]
        weak = np.prod(norms, axis=0) <= noise  # terms of negligible weight
        cleaned_stacks = []
        for m, n in zip(stacks, norms):
            rounding = np.abs(m) <= (10 * m.shape[1] * EPS64) * n[:, None]
            rounding[weak] = True
            cleaned_stacks.append(np.where(rounding, 0.0, m))
        changed = any(np.any(c != m) for c, m in zip(cleaned_stacks, stacks))
        cleaned = [[c[i] for c in cleaned_stacks] for i in range(len(frozen))]
        if changed:
            candidate = _freeze(cleaned)
            new_error = _error(array, candidate)
            if new_error <= error + noise and (new_error <= result.tol or error > result.tol):
                frozen, error = candidate, new_error
    norm = float(np.linalg.norm(array.ravel()))
    if error <= noise:
        error = 0.0
    singular_values = unfoldings = None
    if result.singular_values is not None:
        singular_values = _zero_tail(result.singular_values, noise)
    if result.unfolding_singular_values is not None:
        unfoldings = tuple(_zero_tail(sv, noise) for sv in result.unfolding_singular_values)
    return Factorization(
        frozen,
        result.shape,
        error,
        error / norm if norm > 0 else 0.0,
        singular_values,
        result.tol,
        result.method,
        unfoldings,
        float(noise),
    )


def _finish(array: np.ndarray, result: Factorization, noise: float, scale: float) -> Factorization:
    """The result as the public functions return it: noise removed, original units."""
    return _unscale(_denoise(array, result, noise), scale)


# --------------------------------------------------------------------------------------------
# helpers


def _reconstruct(terms: tuple[tuple[np.ndarray, ...], ...], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float64)
    for term in terms:
        product = term[0]
        for f in term[1:]:
            product = np.multiply.outer(product, f)
        out += product
    return out


def _freeze(terms: list[list[np.ndarray]]) -> tuple[tuple[np.ndarray, ...], ...]:
    out = []
    for term in terms:
        frozen = []
        for f in term:
            f = np.array(f, dtype=np.float64, copy=True)
            f[f == 0] = 0.0  # no negative zeros in printed factors
            f.setflags(write=False)
            frozen.append(f)
        out.append(tuple(frozen))
    return tuple(out)


def _check_terms(terms: Any) -> list[list[np.ndarray]]:
    accepted = "a non-empty sequence of terms, each a sequence of 1-D factors"
    if isinstance(terms, str | bytes) or not hasattr(terms, "__len__") or len(terms) == 0:
        raise SepconvValueError(f"`terms` must be {accepted}, got {describe(terms)}")
    out = []
    for term in terms:
        if isinstance(term, np.ndarray) or not hasattr(term, "__len__") or len(term) == 0:
            raise SepconvValueError(f"`terms` must be {accepted}, got a term {describe(term)}")
        factors = []
        for f in term:
            array = check_kernel(f, "terms")[0]
            if array.ndim != 1:
                raise SepconvValueError(
                    f"`terms` must hold 1-D factors, got one of shape {array.shape}"
                )
            factors.append(array)
        out.append(factors)
    lengths = {tuple(len(f) for f in t) for t in out}
    if len(lengths) > 1:
        raise SepconvValueError(
            f"`terms` must all have the same factor lengths, got "
            f"{' and '.join(str(n) for n in sorted(lengths))}"
        )
    return out


def _normalise_signs(term: list[np.ndarray]) -> list[np.ndarray]:
    """Apply the documented sign rule to one term (flips an even number of factors)."""
    flips = []
    zero_sum = []
    for f in term:
        total = float(np.sum(f))
        scale = float(np.sum(np.abs(f)))
        if scale == 0.0:
            flips.append(1)
            zero_sum.append(False)
        elif abs(total) > _ZERO_SUM * scale:
            flips.append(1 if total > 0 else -1)
            zero_sum.append(False)
        else:
            big = np.flatnonzero(np.abs(f) > _ZERO_SUM * float(np.max(np.abs(f))))
            flips.append(1 if f[big[-1]] > 0 else -1)
            zero_sum.append(True)
    if math.prod(flips) < 0:
        carrier = max((i for i, z in enumerate(zero_sum) if z), default=len(term) - 1)
        flips[carrier] = -flips[carrier]
    return [f * s if s < 0 else f for f, s in zip(term, flips)]


def _balance(factors: list[np.ndarray]) -> list[np.ndarray]:
    """Rescale the factors of one term so that all have the same norm (same product)."""
    norms = [float(np.linalg.norm(f)) for f in factors]
    if min(norms) == 0.0:
        return [np.zeros_like(f) for f in factors]
    weight = math.prod(norms)
    target = weight ** (1.0 / len(factors))
    # ``weight ** (1/d)`` is off by about ``log(weight) * eps / d`` (1/d is rounded): the
    # last factor takes what is left, so the product of the scales stays 1 within a few eps
    scales = [target / n for n in norms[:-1]]
    scales.append(weight / target ** (len(factors) - 1) / norms[-1])
    return [f * s for f, s in zip(factors, scales)]


def _integer_factors(array: np.ndarray) -> list[np.ndarray] | None:
    """Exact integer factors of the smallest magnitude, if ``array`` is an integer outer product."""
    if not np.all(array == np.round(array)) or np.max(np.abs(array)) >= _INTEGER_LIMIT:
        return None
    ints = array.astype(np.int64)
    if not np.any(ints):
        return None
    index = np.unravel_index(int(np.argmax(np.abs(ints))), ints.shape)
    factors = []
    for axis in range(ints.ndim):
        where = list(index)
        where[axis] = slice(None)
        fiber = ints[tuple(where)]
        factors.append(fiber // np.gcd.reduce(np.abs(fiber)))
    denominator = math.prod(int(f[i]) for f, i in zip(factors, index))
    scale, remainder = divmod(int(ints[index]), denominator)
    if remainder:
        return None
    factors[0] = factors[0] * scale
    product = factors[0]
    for f in factors[1:]:
        product = np.multiply.outer(product, f)
    if not np.array_equal(product, ints):
        return None
    return [f.astype(np.float64) for f in factors]


def _error(array: np.ndarray, terms: tuple[tuple[np.ndarray, ...], ...]) -> float:
    if array.ndim == 2 and len(terms) > 1 and array.size > 4096:
        # a large matrix (a layer's weights): the sum of outer products as one matrix
        # product (a 1536-term reconstruction took seconds); kernels keep the exact sum
        left = np.stack([t[0] for t in terms], axis=1)
        right = np.stack([t[1] for t in terms])
        return float(np.linalg.norm((array - left @ right).ravel()))
    return float(np.linalg.norm((array - _reconstruct(terms, array.shape)).ravel()))


def _result(
    array: np.ndarray,
    terms: list[list[np.ndarray]],
    tol: float,
    method: str,
    singular_values: np.ndarray | None = None,
    unfoldings: tuple[np.ndarray, ...] | None = None,
) -> Factorization:
    frozen = _freeze([_normalise_signs(t) for t in terms])
    error = _error(array, frozen)
    norm = float(np.linalg.norm(array.ravel()))
    if singular_values is not None:
        singular_values = np.array(singular_values, dtype=np.float64)
        singular_values.setflags(write=False)
    return Factorization(
        frozen,
        tuple(int(n) for n in array.shape),
        error,
        error / norm if norm > 0 else 0.0,
        singular_values,
        float(tol),
        method,
        unfoldings,
    )


def _unfolding_singular_values(array: np.ndarray) -> tuple[np.ndarray, ...]:
    out = []
    for axis in range(array.ndim):
        unfolding = np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1)
        s = np.linalg.svd(unfolding, compute_uv=False)
        s.setflags(write=False)
        out.append(s)
    return tuple(out)


def _tail_rank(singular_values: np.ndarray, tol: float, noise: float = 0.0) -> int:
    """Smallest r whose discarded tail sqrt(sum s[r:]**2) is <= tol (a tolerance below the
    noise floor acts as the floor)."""
    tol = max(tol, noise)
    tails = np.sqrt(np.cumsum((singular_values**2)[::-1])[::-1])  # tails[r] = ||s[r:]||
    for r in range(len(singular_values)):
        if tails[r] <= tol:
            return r
    return len(singular_values)
