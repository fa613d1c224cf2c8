"""Argument checks shared by the named kernels (sizes, sigmas, directions, flags)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._checks import (
    SepconvTypeError,
    SepconvValueError,
    check_choice,
    check_float,
    check_int,
    describe,
)

#: a standard deviation, the same on every axis or one per axis
Sigma = float | tuple[float, ...]
#: a size, the same on every axis or one per axis
Size = int | tuple[int, ...]
#: a kernel parameter's value: a number or flag, a direction, a size or sigma per axis, or None
Param = float | str | tuple[float, ...] | None

# The largest kernel sepconv builds (elements): 2**24 float64 values are 128 MiB.
MAX_ELEMENTS = 2**24
# Narrower Gaussians are unit impulses (and their squared widths underflow).
_MIN_SIGMA = 1e-6
# Binomial coefficients of longer rows overflow float64.
_MAX_BINOMIAL = 1023


def _check_ndim(ndim: Any, minimum: int = 1) -> int:
    ndim = check_int("ndim", ndim, minimum=minimum)
    if ndim > 8:
        raise SepconvValueError(f"`ndim` must be between {minimum} and 8, got {ndim}")
    return ndim


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise SepconvTypeError(f"`{name}` must be True or False, got {describe(value)}")
    return bool(value)


def _axis(direction: Any, ndim: int) -> int:
    names = ("x", "y", "z")[:ndim] if ndim <= 3 else ("x", "y", "z")
    direction = check_choice("direction", direction, names)
    return ndim - 1 - names.index(direction)


def _per_axis_float(name: str, value: Any, ndim: int) -> tuple[float, ...]:
    if isinstance(value, tuple | list | np.ndarray) and not isinstance(value, str):
        items = list(value)
        if len(items) != ndim:
            raise SepconvValueError(
                f"`{name}` must be a positive number or a tuple of {ndim} "
                f"such numbers, got {describe(value)}"
            )
    else:
        items = [value] * ndim
    out = []
    for item in items:
        number = check_float(name, item)
        if number <= 0:
            raise SepconvValueError(
                f"`{name}` must be a positive number or a tuple of {ndim} "
                f"such numbers, got {describe(value)}"
            )
        if number < _MIN_SIGMA:
            raise SepconvValueError(
                f"`{name}` must be at least {_MIN_SIGMA:g} (a narrower "
                f"Gaussian is a unit impulse), got {describe(value)}"
            )
        out.append(number)
    return tuple(out)


def _per_axis_size(name: str, value: Any, ndim: int, *, odd: bool = False) -> tuple[int, ...]:
    what = "a positive odd integer" if odd else "a positive integer"
    accepted = f"{what} or a tuple of {ndim} such integers"
    if isinstance(value, tuple | list | np.ndarray) and not isinstance(value, str):
        items = list(value)
        if len(items) != ndim:
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
    else:
        items = [value] * ndim
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise SepconvTypeError(f"`{name}` must be {accepted}, got {describe(value)}")
        if item < 1 or (odd and item % 2 == 0):
            raise SepconvValueError(f"`{name}` must be {accepted}, got {describe(value)}")
        out.append(int(item))
    return tuple(out)


def _odd_size(name: str, value: Any, minimum: int = 3) -> int:
    value = check_int(name, value)
    if value < minimum or value % 2 == 0:
        raise SepconvValueError(f"`{name}` must be an odd integer >= {minimum}, got {value}")
    if value > _MAX_BINOMIAL:
        raise SepconvValueError(
            f"`{name}` must be at most {_MAX_BINOMIAL} (binomial "
            f"coefficients overflow float64 beyond), got {value}"
        )
    return value


def _check_elements(shape: tuple[int, ...], hint: str) -> tuple[int, ...]:
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise SepconvValueError(
            f"the kernel would have shape {shape} ({elements:,} elements), more than the "
            f"{MAX_ELEMENTS:,} sepconv builds; {hint}"
        )
    return shape
