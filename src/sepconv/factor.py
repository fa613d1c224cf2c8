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
(``[3.4641, 0, 0]`` for Sobel-x on every
machine, not ``4.3447e-16`` on one and ``3.51083e-16`` on another), the errors, computed
terms whose weight is below the floor and factor entries at rounding level of their factor
(``10 * len(f) * eps64 * ||f||``). A tolerance below the floor acts as the floor, so ``tol=0``
asks for an exact factorization up to rounding. Like NumPy's ``matrix_rank``
(``max(shape) * eps * max(s)``), the floor scales with the kernel's size, its dtype's epsilon
and its magnitude; sepconv uses ``||K||_F >= max(s)`` and a factor 10, the margin measured
above. :meth:`Factorization.to_dict` rounds to 10 significant digits, so JSON output is the
same on every machine too.

Sign and scale of the factors
-----------------------------
- *Integer-valued kernels* (integer dtype, or floats holding integers) that are exactly
  separable get integer factors of the smallest magnitude: every factor is primitive (the
  greatest common divisor of its entries is 1) except the first, which also carries the
  common integer scale.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import SepconvTypeError, SepconvValueError, check_float, check_int, describe

if TYPE_CHECKING:  # pragma: no cover
    from .cost import Cost

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

# Largest magnitude for which integer-valued kernels get integer factors (exact in float64).
_INTEGER_LIMIT = 2**31
# A factor counts as zero-sum (a derivative) when |sum| <= this times sum(|f|).
_ZERO_SUM = 1e-6
_EPS64 = float(np.finfo(np.float64).eps)
# Kernels whose largest magnitude is outside [2**-100, 2**100] are scaled by a power of two
# first, so that sums of squares neither overflow nor underflow.
_SCALE_LIMIT = 2.0**100
# Alternating-least-squares sweeps the search for the fewest CP terms may spend in total
# before a 3-D kernel falls back to the exact slice-wise decomposition.
_ALS_BUDGET = 12000


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
    def from_terms(cls, terms: Any, kernel: Any = None, *, tol: float | None = None,
                   method: str = "closed-form") -> Factorization:
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
            array, eps = _reconstruct(frozen, shape), _eps_of(None)
        else:
            array, eps = _as_kernel(kernel)
            if array.shape != shape:
                raise SepconvValueError(f"`terms` have factor lengths {shape}, but the kernel "
                                        f"has shape {array.shape}")
        tol = _resolve_tol(array, eps, tol, None)
        singular_values = unfoldings = None
        if array.ndim == 2:
            singular_values = np.linalg.svd(array, compute_uv=False)
        elif array.ndim > 2:
            unfoldings = _unfolding_singular_values(array)
        result = cls(frozen, shape, 0.0, 0.0, singular_values, tol, method, unfoldings)
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

    def cost(self, image_shape: Any = None) -> tuple[Cost, Cost]:
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
        from .cost import filtering

        return (filtering(self.shape, None, image_shape),
                filtering(self.shape, self.rank, image_shape))

    def to_dict(self, digits: int | None = 10) -> dict[str, Any]:
        """A JSON-ready description (lists of floats).

        Floats are rounded to ``digits`` significant digits (None: full precision); the last
        digits of a float64 result depend on the BLAS kernel and the CPU, 10 digits do not.

        Examples
        --------
        >>> import numpy as np
        >>> d = lowrank(0.1 * np.outer([1, 2, 1], [-1, 0, 1])).to_dict()
        >>> d["rank"], d["singular_values"], d["error"]
        (1, [0.3464101615, 0.0, 0.0], 0.0)
        """
        def number(x: Any) -> float:
            return float(x) if digits is None else float(f"{float(x):.{digits}g}")

        direct, factored = self.cost()
        return {
            "shape": list(self.shape),
            "rank": self.rank,
            "method": self.method,
            "tol": number(self.tol),
            "noise": number(self.noise),
            "error": number(self.error),
            "relative_error": number(self.relative_error),
            "is_exact": self.is_exact,
            "singular_values": (None if self.singular_values is None
                                else [number(s) for s in self.singular_values]),
            "unfolding_singular_values": (
                None if self.unfolding_singular_values is None
                else [[number(s) for s in sv] for sv in self.unfolding_singular_values]),
            "terms": [[[number(x) for x in f] for f in term] for term in self.terms],
            "multiplications_per_output": {"direct": direct.multiplications,
                                           "factored": factored.multiplications},
        }

    def __repr__(self) -> str:
        return (f"Factorization(rank={self.rank}, shape={self.shape}, method={self.method!r}, "
                f"error={self.error:.3g}, relative_error={self.relative_error:.3g}, "
                f"tol={self.tol:.3g})")


# --------------------------------------------------------------------------------------------
# input


def as_kernel(kernel: Any, *, name: str = "kernel") -> np.ndarray:
    """Validate a kernel and return it as a new float64 array.

    Accepts NumPy arrays, nested sequences, PyTorch tensors (any device; detached) and, for
    convenience, a string understood by :func:`sepconv.kernels.parse`.

    Raises
    ------
    SepconvTypeError
        For complex, boolean, object or string dtypes.
    SepconvValueError
        For ragged sequences, scalars (0-d), empty kernels and NaN/Inf entries.

    Examples
    --------
    >>> as_kernel([[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> as_kernel([[1, float("nan")]])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `kernel` must hold finite numbers only, got nan at ...
    """
    return _as_kernel(kernel, name)[0]


def _eps_of(kernel: Any) -> float:
    dtype = getattr(kernel, "dtype", None)
    text = str(dtype)
    if text.endswith("bfloat16"):
        return 2.0**-7
    try:
        np_dtype = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        np_dtype = None
    if text.startswith("torch."):
        np_dtype = {"torch.float16": np.dtype(np.float16),
                    "torch.float32": np.dtype(np.float32)}.get(text, np.dtype(np.float64))
    if np_dtype is not None and np_dtype.kind == "f":
        return float(np.finfo(np_dtype).eps)
    return float(np.finfo(np.float64).eps)


def _as_kernel(kernel: Any, name: str = "kernel") -> tuple[np.ndarray, float]:
    """Validated float64 copy of ``kernel`` and the epsilon of its dtype."""
    if isinstance(kernel, str):
        from .kernels import parse

        kernel = parse(kernel)
    if hasattr(kernel, "detach") and hasattr(kernel, "cpu"):  # a torch tensor
        tensor = kernel.detach().cpu()
        eps = _eps_of(tensor)
        if tensor.is_complex():
            raise SepconvTypeError(f"`{name}` must be real, got a complex tensor "
                                   f"of dtype {tensor.dtype}")
        if str(tensor.dtype) == "torch.bool":
            raise SepconvTypeError(f"`{name}` must hold numbers, got a tensor of dtype "
                                   f"torch.bool (convert 0/1 masks with .float())")
        kernel = tensor.double().numpy()
    else:
        eps = _eps_of(kernel)
    try:
        array = np.asarray(kernel)
    except ValueError as exc:  # ragged nested sequences
        raise SepconvValueError(
            f"`{name}` must be a rectangular array of numbers, got ragged rows ({exc})"
        ) from None
    if array.dtype.kind == "c":
        raise SepconvTypeError(f"`{name}` must be real, got complex dtype {array.dtype} "
                               f"(pass kernel.real or kernel.imag)")
    if array.dtype.kind == "b":
        raise SepconvTypeError(f"`{name}` must hold numbers, got dtype bool "
                               f"(convert 0/1 masks with kernel.astype(float))")
    if array.dtype.kind not in "iuf":
        raise SepconvTypeError(f"`{name}` must be a real numeric array, got {describe(array)}")
    if array.ndim == 0:
        raise SepconvValueError(f"`{name}` must have at least one axis, got the scalar "
                                f"{array.item()!r}")
    if array.ndim > 32:
        raise SepconvValueError(f"`{name}` must have at most 32 axes, got {array.ndim}")
    if array.size == 0:
        raise SepconvValueError(f"`{name}` must not be empty, got {describe(array)}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        index = tuple(int(i) for i in bad)
        value = float(array[index])
        raise SepconvValueError(f"`{name}` must hold finite numbers only, got {value!r} at index "
                                f"{index if len(index) > 1 else index[0]}")
    return np.array(array, dtype=np.float64, copy=True), eps


def default_tol(kernel: Any) -> float:
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


def _default_tol(array: np.ndarray, eps: float) -> float:
    return float(10 * max(array.shape) * eps * np.linalg.norm(array.ravel()))


def _resolve_tol(array: np.ndarray, eps: float, tol: Any, rtol: Any) -> float:
    if tol is not None and rtol is not None:
        raise SepconvValueError("give `tol` (absolute) or `rtol` (relative), not both, "
                                f"got tol={tol!r} and rtol={rtol!r}")
    if tol is not None:
        return check_float("tol", tol, minimum=0.0)
    if rtol is not None:
        return check_float("rtol", rtol, minimum=0.0) * float(np.linalg.norm(array.ravel()))
    return _default_tol(array, eps)


def _prepare(kernel: Any, tol: Any, rtol: Any) -> tuple[np.ndarray, float, float, float]:
    """Validated kernel, scaled by a power of two when its magnitude would overflow or
    underflow the sums of squares; the tolerance in the scaled units; the scale; eps."""
    array, eps = _as_kernel(kernel)
    peak = float(np.max(np.abs(array)))
    scale = 1.0
    if peak > _SCALE_LIMIT or 0.0 < peak < 1.0 / _SCALE_LIMIT:
        scale = 2.0 ** math.frexp(peak)[1]  # dividing by a power of two is exact
        array = array / scale
    if tol is not None and rtol is None:
        tol = check_float("tol", tol, minimum=0.0) / scale
    return array, _resolve_tol(array, eps, tol, rtol), scale, eps


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
    return Factorization(terms, result.shape, result.error * scale, result.relative_error,
                         singular_values, result.tol * scale, result.method, unfoldings,
                         result.noise * scale)


def _zero_below(values: np.ndarray, floor: float) -> np.ndarray:
    out = np.where(np.abs(values) <= floor, 0.0, np.asarray(values, dtype=np.float64))
    out.setflags(write=False)
    return out


def _zero_tail(singular_values: np.ndarray, noise: float) -> np.ndarray:
    """Descending singular values with the longest tail whose norm is <= noise set to 0."""
    out = np.array(singular_values, dtype=np.float64)
    out[_tail_rank(out, noise):] = 0.0
    out.setflags(write=False)
    return out


def _denoise(array: np.ndarray, result: Factorization, noise: float, *,
             terms: bool = True) -> Factorization:
    """Apply the noise rule (see "Numerical noise" in the module documentation).

    Errors at or below ``noise`` become 0, and so do the singular values of the longest tail
    whose norm is at or below ``noise`` (the tail a rank-r truncation could drop). With
    ``terms``, computed factors lose their noise as well: a term whose weight (the product of
    its factors' norms) is at or below ``noise`` becomes zero factors, and a factor entry at
    or below
    ``10 * len(f) * eps64 * ||f||`` becomes 0, unless that would raise the error by more than
    ``noise``. Integer, closed-form and 1-D terms are exact and kept as they are.
    """
    frozen = result.terms
    if terms and result.method not in ("integer", "closed-form", "1-d"):
        cleaned = []
        for term in result.terms:
            norms = [float(np.linalg.norm(f)) for f in term]
            if math.prod(norms) <= noise:
                cleaned.append([np.zeros_like(f) for f in term])
                continue
            cleaned.append([_zero_below(f, 10 * f.size * _EPS64 * n) for f, n in zip(term, norms)])
        candidate = _freeze(cleaned)
        if _error(array, candidate) <= _error(array, frozen) + noise:
            frozen = candidate
    error = _error(array, frozen)
    norm = float(np.linalg.norm(array.ravel()))
    if error <= noise:
        error = 0.0
    singular_values = unfoldings = None
    if result.singular_values is not None:
        singular_values = _zero_tail(result.singular_values, noise)
    if result.unfolding_singular_values is not None:
        unfoldings = tuple(_zero_tail(sv, noise) for sv in result.unfolding_singular_values)
    return Factorization(frozen, result.shape, error, error / norm if norm > 0 else 0.0,
                         singular_values, result.tol, result.method, unfoldings, float(noise))


def _finish(array: np.ndarray, result: Factorization, noise: float,
            scale: float) -> Factorization:
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
            array = as_kernel(f, name="terms")
            if array.ndim != 1:
                raise SepconvValueError(f"`terms` must hold 1-D factors, got one of shape "
                                        f"{array.shape}")
            factors.append(array)
        out.append(factors)
    lengths = {tuple(len(f) for f in t) for t in out}
    if len(lengths) > 1:
        raise SepconvValueError(f"`terms` must all have the same factor lengths, got "
                                f"{' and '.join(str(n) for n in sorted(lengths))}")
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
    return [f * (target / n) for f, n in zip(factors, norms)]


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
    return float(np.linalg.norm((array - _reconstruct(terms, array.shape)).ravel()))


def _result(array: np.ndarray, terms: list[list[np.ndarray]], tol: float, method: str,
            singular_values: np.ndarray | None = None,
            unfoldings: tuple[np.ndarray, ...] | None = None) -> Factorization:
    frozen = _freeze([_normalise_signs(t) for t in terms])
    error = _error(array, frozen)
    norm = float(np.linalg.norm(array.ravel()))
    if singular_values is not None:
        singular_values = np.array(singular_values, dtype=np.float64)
        singular_values.setflags(write=False)
    return Factorization(frozen, tuple(int(n) for n in array.shape), error,
                         error / norm if norm > 0 else 0.0, singular_values, float(tol),
                         method, unfoldings)


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


def _check_rank(value: Any, limit: int | None, shape: tuple[int, ...]) -> int:
    value = check_int("rank", value, minimum=1)
    if limit is not None and value > limit:
        raise SepconvValueError(
            f"`rank` must be between 1 and {limit} (min(shape)) for a kernel of shape "
            f"{shape}, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# 2-D


def _lowrank_2d(array: np.ndarray, rank: int | None, tol: float,
                noise: float = 0.0) -> Factorization:
    u, s, vt = np.linalg.svd(array, full_matrices=False)
    r = _tail_rank(s, tol, noise) if rank is None else rank
    if r <= 1 and (integer := _integer_factors(array)) is not None and (
            rank is not None or _tail_rank(s, tol, noise) <= 1):
        return _result(array, [integer], tol, "integer", s)
    r = max(r, 1)
    terms = []
    for i in range(r):
        root = math.sqrt(s[i])
        terms.append([u[:, i] * root, vt[i] * root])
    return _result(array, terms, tol, "svd", s)


# --------------------------------------------------------------------------------------------
# d-D (d >= 3)


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


def _cp_als(array: np.ndarray, r: int, tol: float, *, seed: int = 0, starts: int = 3,
            iterations: int = 1500) -> tuple[list[list[np.ndarray]], int]:
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
    initial.extend([rng.standard_normal((n, r)) for n in array.shape]
                   for _ in range(starts - 1))
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


def _cp(array: np.ndarray, r: int, tol: float, **options: Any
        ) -> tuple[list[list[np.ndarray]], int]:
    """CP decomposition with ``r`` terms, computed on the compressed core (CANDELINC).

    The kernel is first projected on the span of its numerically nonzero singular vectors in
    every mode (a truncated HOSVD that drops only rounding noise); ALS then runs on the small
    core, where its sweeps are cheap and its swamps shallow (a 9x9x9 Laplacian of Gaussian has
    a 2x2x2 core), and the factors are mapped back. Since the bases are orthonormal, the error
    is the same as for the kernel up to the dropped noise.
    """
    noise = 10 * max(array.shape) * _EPS64 * float(np.linalg.norm(array.ravel()))
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


def _lowrank_nd(array: np.ndarray, rank: int | None, tol: float,
                max_rank: int | None = None) -> Factorization:
    unfoldings = _unfolding_singular_values(array)
    if not np.any(array):
        return _result(array, [[np.zeros(n) for n in array.shape]], tol, "rank-1",
                       unfoldings=unfoldings)
    if rank is None or rank == 1:
        integer = _integer_factors(array)
        if integer is not None:
            return _result(array, [integer], tol, "integer", unfoldings=unfoldings)
        one = _result(array, [_best_rank1(array)], tol, "rank-1", unfoldings=unfoldings)
        if rank == 1 or one.error <= tol or max_rank == 1:
            return one
    if rank is not None:
        return _result(array, _cp(array, rank, tol)[0], tol, "cp-als",
                       unfoldings=unfoldings)
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


# --------------------------------------------------------------------------------------------
# public API


def lowrank(kernel: Any, rank: int | None = None, tol: float | None = None, *,
            rtol: float | None = None, max_rank: int | None = None) -> Factorization:
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
        ``tol``, the best ``max_rank``-term result is returned (``is_exact`` is then False). A
        filtering planner passes the rank beyond which separable passes cost more than the
        direct kernel.

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


def _lowrank(array: np.ndarray, rank: Any, tol: float, max_rank: int | None,
             noise: float = 0.0) -> Factorization:
    if array.ndim == 1:
        if rank is not None:
            _check_rank(rank, 1, array.shape)
        return _result(array, [[array]], tol, "1-d")
    if array.ndim == 2:
        if rank is not None:
            rank = _check_rank(rank, min(array.shape), array.shape)
        elif max_rank is not None:
            s = np.linalg.svd(array, compute_uv=False)
            rank = (min(max(_tail_rank(s, tol, noise), 1), max_rank) if max_rank < len(s)
                    else None)
        return _lowrank_2d(array, rank, tol, noise)
    if rank is not None:
        rank = _check_rank(rank, None, array.shape)
    return _lowrank_nd(array, rank, tol, max_rank)


def rank(kernel: Any, tol: float | None = None, *, rtol: float | None = None) -> int:
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


def is_separable(kernel: Any, tol: float | None = None, *, rtol: float | None = None) -> bool:
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


def separate(kernel: Any, tol: float | None = None, *, rtol: float | None = None
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
        Exactly one term ``(f0, ..., f_{d-1})`` with ``kernel ≈ f0 ⊗ ... ⊗ f_{d-1}``; integer
        kernels get integer factors of the smallest magnitude, others balanced factors (see the
        module documentation for the sign rule).

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
        r, best)
