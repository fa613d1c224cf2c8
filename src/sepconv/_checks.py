"""Argument validation shared by every public function.

Every check raises a :class:`ValueError` or :class:`TypeError` subclass whose message names the
argument, shows what was given and says what is accepted, e.g.::

    `stride` must be a positive integer or a tuple of 2 positive integers, got 0

The CLI turns these errors into one line and exit status 2.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SepconvError",
    "SepconvValueError",
    "SepconvTypeError",
    "check_int",
    "check_positive_int",
    "check_ntuple",
    "check_choice",
    "check_padding",
    "check_shape",
    "check_float",
    "describe",
]


class SepconvError(Exception):
    """Base class of the errors sepconv raises for bad arguments."""


class SepconvValueError(SepconvError, ValueError):
    """An argument has the right type but a value that is not accepted."""


class SepconvTypeError(SepconvError, TypeError):
    """An argument has a type that is not accepted."""


def describe(value: Any) -> str:
    """Short, readable description of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``; reject bools, floats and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float | np.floating) and float(value).is_integer():
            raise SepconvTypeError(
                f"`{name}` must be an integer, got the float {value!r} (write {int(value)})"
            )
        raise SepconvTypeError(f"`{name}` must be an integer, got {describe(value)}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise SepconvValueError(f"`{name}` must be {what}, got {value}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` >= 1."""
    return check_int(name, value, minimum=1)


def check_ntuple(name: str, value: Any, n: int, *, minimum: int = 1) -> tuple[int, ...]:
    """Normalise an int or a length-``n`` sequence of ints to an ``n``-tuple of ints >= minimum."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    accepted = f"{what} or a tuple of {n} such integers"
    if isinstance(value, bool):
        raise SepconvTypeError(f"`{name}` must be {accepted}, got {value!r}")
    if isinstance(value, numbers.Integral):
        items: Sequence[Any] = (value,) * n
    elif isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes):
        items = list(value)
        if len(items) != n:
            raise SepconvValueError(
                f"`{name}` must be {accepted}, got {describe(value)} of length {len(items)}"
            )
    else:
        raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
        if item < minimum:
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
        out.append(int(item))
    return tuple(out)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise SepconvTypeError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}, got {describe(value)}"
        )
    if value not in choices:
        raise SepconvValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return value


def check_float(
    name: str, value: Any, *, minimum: float | None = None, finite: bool = True
) -> float:
    """Return ``value`` as a float; reject bools, non-numbers, NaN/Inf and values below minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SepconvTypeError(f"`{name}` must be a real number, got {describe(value)}")
    value = float(value)
    if finite and not np.isfinite(value):
        raise SepconvValueError(f"`{name}` must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SepconvValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return value


PaddingSpec = str | int | tuple


def check_padding(name: str, value: Any, n: int) -> str | tuple[tuple[int, int], ...]:
    """Normalise a padding argument for ``n`` spatial dimensions.

    Accepted: ``'valid'``, ``'same'``, a non-negative int (same on every side), a tuple of ``n``
    non-negative ints (symmetric per dimension) or a tuple of ``n`` ``(before, after)`` pairs.
    Returns ``'valid'``/``'same'`` or a tuple of ``n`` ``(before, after)`` pairs.
    """
    accepted = (
        f"'valid', 'same', a non-negative integer, a tuple of {n} non-negative integers "
        f"or a tuple of {n} (before, after) pairs"
    )
    if isinstance(value, str):
        if value.lower() not in ("valid", "same"):
            raise SepconvValueError(f"`{name}` must be {accepted}, got {value!r}")
        return value.lower()
    if isinstance(value, bool):
        raise SepconvTypeError(f"`{name}` must be {accepted}, got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise SepconvValueError(f"`{name}` must be {accepted}, got {value}")
        return tuple((int(value), int(value)) for _ in range(n))
    if isinstance(value, Sequence) and len(value) == n:
        pairs = []
        for item in value:
            if isinstance(item, numbers.Integral) and not isinstance(item, bool):
                pair = (item, item)
            elif isinstance(item, Sequence) and len(item) == 2:
                pair = tuple(item)
            else:
                raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
            for p in pair:
                if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0:
                    raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
            pairs.append((int(pair[0]), int(pair[1])))
        return tuple(pairs)
    raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")


def check_shape(
    name: str, value: Any, ndim: int | Iterable[int], *, what: str = "sizes"
) -> tuple[int, ...]:
    """Normalise a shape: a sequence of positive ints whose length is in ``ndim``."""
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(ndims) > 3 and ndims == tuple(range(ndims[0], ndims[-1] + 1)):
        lengths = f"{ndims[0]} to {ndims[-1]}"
    else:
        lengths = " or ".join(str(d) for d in ndims)
    accepted = f"a tuple of {lengths} positive integer {what}"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
    items = list(value)
    if len(items) not in ndims:
        raise SepconvValueError(
            f"`{name}` must be {accepted}, got {describe(value)} with {len(items)} entries"
        )
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
        if item < 1:
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
        out.append(int(item))
    return tuple(out)
