"""The planner: which method ``method='auto'`` takes, and why.

The kernel is factored once (:func:`sepconv.factor.lowrank`), the multiplications of each
method come from :func:`sepconv.cost.filtering`, and the time of each method from a small cost
model, data measured with ``python benchmarks/filter.py --calibrate`` and loaded by
:mod:`._cost_model` (``cost_model.json``: the machine it was measured on, and which constants
are estimates). Times are per pixel and channel, in nanoseconds, float32; float64 costs the
model's ``float64_factor`` times more. They only need to rank the methods correctly, not to
predict wall time exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _cost_model
from ._implementation import DESCRIPTIONS, separable_choice, torch_cpu_choice

__all__ = ["Plan", "make_plan", "METHODS"]

#: The methods the filters and :func:`sepconv.filtering.plan` take (``method=``): ``'auto'``
#: (the fastest estimate) or one fixed method.
METHODS = ("auto", "direct", "separable", "lowrank", "fft")

# cv2.filter2D switches to a DFT when the kernel area reaches this (float32 in and out) or
# _DFT_AREA_OTHER (other depths): OpenCV's rule, not a timing.
_DFT_AREA_FLOAT32 = 130
_DFT_AREA_OTHER = 50
# torch tensors on CPU run the NumPy engine (native kernel or OpenCV) and share its model; on
# other devices the same ranking holds for F.conv2d against the banded matrix products to
# within the model's accuracy.


@dataclass(frozen=True)
class Plan:
    """What :func:`sepconv.correlate` will do with one kernel and one image shape.

    Attributes
    ----------
    method : str
        The method that runs: ``'direct'``, ``'separable'``, ``'lowrank'`` or ``'fft'``.
    requested : str
        The method asked for (``'auto'`` or one of the above).
    reason : str
        Why ``method`` was chosen, in one sentence.
    engine : str
        ``'numpy'`` (OpenCV/SciPy), ``'torch'`` or ``'dask'``.
    kernel_shape, image_shape : tuple of int
        Kernel shape and image shape as given (channels included).
    dtype : str
        Data type the filter computes in (``'float32'`` or ``'float64'``).
    rank : int
        Number of separable terms the kernel needs within ``tol`` (numerically exact rank
        when ``tol`` is ``None``).
    terms : tuple of tuple of numpy.ndarray
        The separable terms (one 1-D factor per kernel axis), empty for ``'direct'`` and
        ``'fft'``.
    error, relative_error : float
        Frobenius error of the terms against the kernel, absolute and relative.
    multiplications : dict
        Estimated multiplications of each method for the whole image (``None`` for ``'fft'``,
        whose count :mod:`sepconv.cost` does not model), from :func:`sepconv.cost.filtering`.
    seconds : dict
        Estimated time of each method on this machine's cost model.
    implementation : str
        What runs ``method`` on NumPy arrays and CPU tensors: ``'native'`` (sepconv's C
        kernel), ``'cv2.sepFilter2D'``, ``'cv2.filter2D'``, ``'scipy.fft'``,
        ``'scipy.ndimage.correlate'``, ``'scipy.ndimage.correlate1d'``, or for CPU tensors run
        by the device code ``'torch F.conv'`` and ``'torch banded matmul'``; chosen once here
        (see :func:`sepconv.filtering.use_implementation`) and followed by every engine.

    Examples
    --------
    >>> import numpy as np
    >>> from sepconv.filtering import plan
    >>> p = plan(np.outer([1, 2, 1], [1, 0, -1]), (512, 512), np.float32)
    >>> p.rank, p.multiplications["direct"], p.multiplications["separable"]
    (1, 2359296, 1572864)
    """

    method: str
    requested: str
    reason: str
    engine: str
    kernel_shape: tuple[int, ...]
    image_shape: tuple[int, ...]
    dtype: str
    rank: int
    terms: tuple[tuple[np.ndarray, ...], ...] = field(repr=False)
    error: float
    relative_error: float
    multiplications: dict[str, int | None]
    seconds: dict[str, float]
    implementation: str

    def _description(self) -> str:
        """What runs the chosen method, in words."""
        text = DESCRIPTIONS[self.implementation]
        if self.implementation == "cv2.sepFilter2D" and self.rank > 1:
            text += " per term, summed"
        if self.engine != "torch":
            return text
        nd = len(self.kernel_shape)
        device = (
            f"F.conv{nd}d with the full kernel"
            if self.method in ("direct", "fft")
            else "banded matrix products, one per 1-D pass"
        )
        if self.implementation.startswith("torch"):
            return f"{device}, on every device"
        return f"{text} on CPU tensors; {device} on other devices"

    def explain(self) -> str:
        """Several lines of text: the choice, the reason and the estimate of each method."""
        dims = "x".join(map(str, self.kernel_shape))
        lines = [
            f"kernel {dims}, image {'x'.join(map(str, self.image_shape))}, computed in "
            f"{self.dtype}, {self.engine} engine",
            f"rank {self.rank} (error {self.error:.3g}, relative {self.relative_error:.3g})",
            f"method: {self.method}" + (" (auto)" if self.requested == "auto" else ""),
            f"runs on: {self._description()}",
            f"why: {self.reason}",
            "estimates:",
        ]
        for name in self.seconds:
            mults = self.multiplications.get(name)
            count = "n/a" if mults is None else f"{mults:,}"
            mark = " <-" if name == self.method else ""
            lines.append(
                f"  {name:<10} {count:>16} multiplications  "
                f"{self.seconds[name] * 1e3:9.2f} ms{mark}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``dict`` (terms as lists)."""
        return {
            "method": self.method,
            "requested": self.requested,
            "reason": self.reason,
            "engine": self.engine,
            "kernel_shape": list(self.kernel_shape),
            "image_shape": list(self.image_shape),
            "dtype": self.dtype,
            "rank": self.rank,
            "terms": [[f.tolist() for f in term] for term in self.terms],
            "error": self.error,
            "relative_error": self.relative_error,
            "multiplications": dict(self.multiplications),
            "seconds": dict(self.seconds),
            "implementation": self.implementation,
        }


def _symmetrize(factor: np.ndarray) -> np.ndarray:
    """Make a factor exactly symmetric or antisymmetric when it is so up to rounding.

    OpenCV folds exactly (anti)symmetric 1-D kernels (half the multiplications); factors that
    come out of an SVD miss that by a few units in the last place.
    """
    scale = float(np.max(np.abs(factor))) if factor.size else 0.0
    if scale == 0.0 or factor.size < 2:
        return factor
    flipped = factor[::-1]
    limit = 1e-13 * scale
    if np.max(np.abs(factor - flipped)) <= limit:
        return (factor + flipped) / 2
    if np.max(np.abs(factor + flipped)) <= limit:
        out = (factor - flipped) / 2
        if factor.size % 2:
            out[factor.size // 2] = 0.0
        return out
    return factor


def _folded(factor: np.ndarray) -> bool:
    n = factor.size
    if n < 3:
        return False
    return bool(np.array_equal(factor, factor[::-1]) or np.array_equal(factor, -factor[::-1]))


def _taps(term: tuple[np.ndarray, ...]) -> int:
    return sum((f.size + 1) // 2 if _folded(f) else f.size for f in term)


def _native_taps(term: tuple[np.ndarray, ...]) -> int:
    """Multiplications per pixel of the native kernel: the vertical factor in full (two
    output rows share each load instead), the horizontal one folded when it can be."""
    column, row = term
    return column.size + ((row.size + 1) // 2 if _folded(row) else row.size)


def factorize(
    kernel: np.ndarray, tol: float | None
) -> tuple[tuple[tuple[np.ndarray, ...], ...], float, float]:
    """Terms of ``kernel`` within ``tol`` (via :func:`sepconv.factor.lowrank`), symmetrized."""
    if kernel.ndim == 1:
        return ((kernel.astype(np.float64),),), 0.0, 0.0
    from sepconv import factor

    result = factor.lowrank(kernel, tol=tol)
    terms = tuple(
        tuple(_symmetrize(np.array(f, dtype=np.float64)) for f in term) for term in result.terms
    )
    for term in terms:
        for f in term:
            f.flags.writeable = False
    return terms, float(result.error), float(result.relative_error)


def implementation_of(method: str, nd: int, separable: str, torch_cpu: str = "numpy") -> str:
    """What runs ``method`` for an ``nd``-D kernel (``separable``: 'native' or 'opencv';
    ``torch_cpu``: 'numpy', or 'matmul' for the device code on CPU tensors)."""
    if torch_cpu == "matmul":
        return "torch F.conv" if method in ("direct", "fft") else "torch banded matmul"
    if method == "fft":
        return "scipy.fft"
    if nd != 2:
        return "scipy.ndimage.correlate" if method == "direct" else "scipy.ndimage.correlate1d"
    if method == "direct":
        return "cv2.filter2D"
    return "native" if separable == "native" else "cv2.sepFilter2D"


def _estimates(
    kernel_shape: tuple[int, ...],
    pixels: int,
    terms: tuple[tuple[np.ndarray, ...], ...],
    dtype: str,
    source_depth: str,
    separable: str,
) -> dict[str, float]:
    """Estimated seconds of each method (the cost model, :mod:`._cost_model`; one model for
    every engine, see the note on torch above)."""
    model = _cost_model.load()
    scale = pixels * 1e-9 * (model.float64_factor if dtype == "float64" else 1.0)
    area = math.prod(kernel_shape)
    taps = [_taps(term) for term in terms]
    out: dict[str, float] = {}
    if len(kernel_shape) == 2:
        float32 = source_depth == "float32" and dtype == "float32"
        if area < (_DFT_AREA_FLOAT32 if float32 else _DFT_AREA_OTHER):
            out["direct"] = scale * (model.cv_direct[0] + model.cv_direct[1] * area)
        else:
            out["direct"] = scale * (model.cv_dft[0] + model.cv_dft[1] * sum(kernel_shape))
        if terms and separable == "native":
            native = scale * (
                model.native[0] + model.native[1] * sum(_native_taps(t) for t in terms)
            )
            out["separable" if len(terms) == 1 else "lowrank"] = native
            sep = []
        else:
            sep = [scale * (model.cv_separable[0] + model.cv_separable[1] * t) for t in taps]
    else:
        out["direct"] = scale * (model.nd_direct[0] + model.nd_direct[1] * area)
        sep = [scale * (model.nd_pass[0] * len(kernel_shape) + model.nd_pass[1] * t) for t in taps]
    if len(sep) == 1:
        out["separable"] = sep[0]
    elif sep:
        out["lowrank"] = sum(sep) + scale * model.cv_add * (len(sep) - 1)
    padded = pixels * math.prod(1 + (k - 1) / 64 for k in kernel_shape)
    out["fft"] = scale * (model.fft[0] + model.fft[1] * math.log2(max(padded, 2)))
    return out


_CACHE: dict[tuple, Plan] = {}
_CACHE_SIZE = 256


def make_plan(
    kernel: np.ndarray,
    image_shape: tuple[int, ...],
    *,
    spatial: tuple[int, ...],
    channels: int,
    dtype: str,
    source_depth: str,
    method: str,
    tol: float | None,
    engine: str,
) -> Plan:
    """Build the :class:`Plan` for a validated kernel (float64) and image geometry.

    Plans are cached by kernel and geometry (filtering many images with one kernel factors it
    once); a plan's terms are read-only arrays.
    """
    separable = separable_choice()
    torch_cpu = torch_cpu_choice() if engine == "torch" else "numpy"
    key = (
        kernel.tobytes(),
        kernel.shape,
        tuple(image_shape),
        spatial,
        channels,
        dtype,
        source_depth,
        method,
        tol,
        engine,
        separable,
        torch_cpu,
    )
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    result = _make_plan(
        kernel,
        tuple(image_shape),
        spatial=spatial,
        channels=channels,
        dtype=dtype,
        source_depth=source_depth,
        method=method,
        tol=tol,
        engine=engine,
        separable=separable,
        torch_cpu=torch_cpu,
    )
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = result
    return result


def _make_plan(
    kernel: np.ndarray,
    image_shape: tuple[int, ...],
    *,
    spatial: tuple[int, ...],
    channels: int,
    dtype: str,
    source_depth: str,
    method: str,
    tol: float | None,
    engine: str,
    separable: str,
    torch_cpu: str,
) -> Plan:
    from sepconv import cost

    kernel_shape = tuple(kernel.shape)
    pixels = math.prod(spatial) * channels
    try:
        terms, error, relative = factorize(kernel, tol)
    except (ValueError, NotImplementedError):
        if method in ("separable", "lowrank"):
            raise
        terms, error, relative = (), 0.0, 0.0  # no factorization for this kernel: direct only
    rank = len(terms)
    seconds = _estimates(kernel_shape, pixels, terms, dtype, source_depth, separable)
    direct_cost = cost.filtering(kernel_shape, image_shape=spatial)
    mults: dict[str, int | None] = {"direct": direct_cost.multiplications * channels}
    if rank:
        term_cost = cost.filtering(kernel_shape, rank=rank, image_shape=spatial)
        mults["separable" if rank == 1 else "lowrank"] = term_cost.multiplications * channels
    if "fft" in seconds:
        mults["fft"] = None

    if method == "auto":
        chosen = min(seconds, key=seconds.__getitem__)
        runner_up = sorted(seconds, key=seconds.__getitem__)[1:2]
        other = f", {runner_up[0]} {seconds[runner_up[0]] * 1e3:.3g} ms" if runner_up else ""
        what = {
            "direct": "the full kernel",
            "fft": "an FFT",
            "separable": "one separable term (2 passes of 1-D filters)",
            "lowrank": f"{rank} separable terms summed",
        }[chosen]
        reason = (
            f"{what} is the fastest estimate ({seconds[chosen] * 1e3:.3g} ms{other})"
            f" for a rank-{rank} {'x'.join(map(str, kernel_shape))} kernel"
        )
    else:
        chosen = method
        if method in ("separable", "lowrank"):
            if method == "separable" and rank != 1:
                from sepconv._checks import SepconvValueError
                from sepconv.factor import default_tol

                within = (
                    f"tol={tol!r}"
                    if tol is not None
                    else f"the default tol={default_tol(kernel):.3g} "
                    f"(10 * max(shape) * eps * ||K||_F)"
                )
                raise SepconvValueError(
                    f"`method` 'separable' needs a kernel of rank 1, got a kernel of rank {rank}"
                    f" within {within}; use method='lowrank' or 'auto'"
                )
            if method == "lowrank" and rank == 1:
                seconds.setdefault("lowrank", seconds["separable"])
                mults.setdefault("lowrank", mults["separable"])
        reason = f"method={method!r} was requested"
        if chosen not in seconds:
            seconds[chosen] = math.nan
            mults.setdefault(chosen, None)
    if chosen in ("direct", "fft"):
        used_terms: tuple = ()
    else:
        used_terms = terms
    return Plan(
        method=chosen,
        requested=method,
        reason=reason,
        engine=engine,
        kernel_shape=kernel_shape,
        image_shape=tuple(image_shape),
        dtype=dtype,
        rank=rank,
        terms=used_terms,
        error=error,
        relative_error=relative,
        multiplications=mults,
        seconds=seconds,
        implementation=implementation_of(chosen, len(kernel_shape), separable, torch_cpu),
    )
