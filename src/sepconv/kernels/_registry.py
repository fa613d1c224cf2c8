"""The kernel registry: names, aliases, parameters; :func:`get` and :func:`factors`."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .._checks import SepconvTypeError, SepconvValueError, describe
from ..factor import Factorization
from ._1d import compose
from ._args import Param
from ._named import BUILDERS

__all__ = ["available", "get", "factors"]

# alias -> (kernel, parameters the alias fixes, defaults it changes)
_ALIASES: dict[str, tuple[str, dict[str, Param], dict[str, Param]]] = {
    **{f"{n}-{d}": (n, {"direction": d}, {}) for n in ("sobel", "prewitt") for d in "xy"},
    "sobel-z": ("sobel", {"direction": "z"}, {"ndim": 3}),
    "prewitt-z": ("prewitt", {"direction": "z"}, {"ndim": 3}),
    "scharr-x": ("scharr", {"direction": "x"}, {}),
    "scharr-y": ("scharr", {"direction": "y"}, {}),
    "laplacian-of-gaussian": ("log", {}, {}),
    "difference-of-gaussians": ("dog", {}, {}),
    "gauss": ("gaussian", {}, {}),
    "mean": ("box", {}, {}),
    "average": ("box", {}, {}),
}


def _defaults(
    name: str, fixed: dict[str, Param] | None = None, changed: dict[str, Param] | None = None
) -> dict[str, Param]:
    fixed, changed = fixed or {}, changed or {}
    return {
        p.name: changed.get(p.name, p.default)
        for p in inspect.signature(BUILDERS[name]).parameters.values()
        if p.name not in fixed
    }


def available() -> dict[str, dict[str, Param]]:
    """Kernel names and their parameters with defaults (aliases such as 'sobel-x' included).

    Examples
    --------
    >>> names = available()
    >>> names["gaussian"]
    {'sigma': 1.0, 'size': None, 'truncate': 4.0, 'ndim': None}
    >>> names["sobel-x"]
    {'size': 3, 'order': 1, 'ndim': 2, 'normalize': False}
    """
    out = {name: _defaults(name) for name in BUILDERS}
    for alias, (name, fixed, changed) in _ALIASES.items():
        out[alias] = _defaults(name, fixed, changed)
    return out


def _resolve(name: Any, params: dict[str, Param]) -> tuple[str, dict[str, Param]]:
    if not isinstance(name, str):
        raise SepconvTypeError(f"`name` must be a kernel name (a string), got {describe(name)}")
    key = name.strip().lower().replace("_", "-")
    if key in _ALIASES:
        canonical, fixed, changed = _ALIASES[key]
        clash = sorted(set(fixed) & set(params))
        if clash:
            raise SepconvValueError(
                f"kernel {name!r} fixes `{clash[0]}`={fixed[clash[0]]!r}; "
                f"use {canonical!r} to choose it"
            )
        params = {**changed, **fixed, **params}
        key = canonical
    if key not in BUILDERS:
        close = [n for n in available() if n.startswith(key[:3])] if key else []
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise SepconvValueError(
            f"unknown kernel {name!r}{hint}; known kernels: "
            f"{', '.join(BUILDERS)} (see sepconv.kernels.available())"
        )
    accepted = _defaults(key)
    for param in params:
        if param not in accepted:
            raise SepconvValueError(
                f"unknown parameter `{param}` for kernel {name!r}; "
                f"accepted: {', '.join(accepted) or 'none'}"
            )
    return key, params


def get(name: str, **params: Param) -> np.ndarray:
    """The named kernel as a float64 array.

    Parameters
    ----------
    name : str
        A name from :func:`available` (case-insensitive; ``_`` and ``-`` are the same).
    **params
        The kernel's parameters (see the kernel's function, e.g. :func:`gaussian`).

    Examples
    --------
    >>> get("binomial", size=3, normalize=False)[1]
    array([2., 4., 2.])
    >>> get("gaussian", sigma=1, colour=2)
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: unknown parameter `colour` for kernel 'gaussian'; accepted: sigma, size, truncate, ndim
    """  # noqa: E501
    key, params = _resolve(name, params)
    return compose(BUILDERS[key](**params))


def factors(name: str, **params: Param) -> Factorization | None:
    """The exact separable terms of a named kernel, or None when it has no closed form.

    The terms are those the kernel is built from (for a Gabor kernel, the ``cos(a + b)``
    expansion), so they are exact rather than computed by an SVD; disks and oblique motion
    blurs return None (use :func:`sepconv.factor.lowrank`).

    Examples
    --------
    >>> f = factors("log", sigma=2.0)
    >>> f.rank, f.method, f.is_exact
    (2, 'closed-form', True)
    >>> factors("binomial", size=5, normalize=False).terms[0]
    (array([1., 4., 6., 4., 1.]), array([1., 4., 6., 4., 1.]))
    >>> factors("disk") is None
    True
    """
    key, params = _resolve(name, params)
    built = BUILDERS[key](**params)
    if isinstance(built, np.ndarray):
        return None
    return Factorization.from_terms(built)
