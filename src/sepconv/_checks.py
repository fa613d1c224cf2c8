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
    "check_kernel",
    "dtype_name",
    "dtype_eps",
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


#: names of common NumPy dtypes and scalar types (``np.dtype.name`` costs microseconds a call)
_DTYPE_NAMES: dict[Any, str] = {}
for _name in (
    "bool",
    "uint8",
    "uint16",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
):
    _DTYPE_NAMES[np.dtype(_name)] = _DTYPE_NAMES[np.dtype(_name).type] = _name
del _name
_EPS64 = float(np.finfo(np.float64).eps)


def dtype_name(dtype: Any) -> str:
    """The name of a NumPy or torch dtype as NumPy writes it: ``'float32'``, ``'bfloat16'``.

    Examples
    --------
    >>> dtype_name(np.float32), dtype_name(np.dtype("uint8")), dtype_name(None)
    ('float32', 'uint8', 'float64')
    """
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):  # other dtypes; unhashable values
        pass
    text = str(dtype)
    if text.startswith("torch."):
        return text.removeprefix("torch.")
    try:
        return np.dtype(dtype).name
    except (TypeError, ValueError):
        return text


def dtype_eps(dtype: Any) -> float:
    """Machine epsilon of a floating dtype (NumPy or torch); float64's for every other dtype.

    Examples
    --------
    >>> dtype_eps(np.float32) == float(np.finfo(np.float32).eps), dtype_eps("int16") == 2.0**-52
    (True, True)
    """
    name = dtype_name(dtype)
    if name == "bfloat16":
        return 2.0**-7
    if name in ("float16", "float32"):
        return float(np.finfo(name).eps)
    return _EPS64


def check_kernel(kernel: Any, name: str = "kernel") -> tuple[np.ndarray, float]:
    """A kernel as a new float64 array, and the machine epsilon of its own dtype.

    The one check every consumer of kernels runs (factorization and filtering). Accepts NumPy
    arrays, nested sequences and torch tensors (any device; detached). Strings are refused:
    text is read by :func:`sepconv.kernels.parse`.

    Raises
    ------
    SepconvTypeError
        Complex, boolean, object or string data.
    SepconvValueError
        Ragged sequences, scalars (0-d), empty kernels, more than 32 axes, NaN or infinity.

    Examples
    --------
    >>> check_kernel([[1, 2], [3, 4]])[0].dtype
    dtype('float64')
    >>> check_kernel([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `kernel` must be finite, got nan at index (0, 1)
    """
    accepted = "real numbers (integer or float)"
    if isinstance(kernel, str | bytes):
        raise SepconvTypeError(
            f"`{name}` must hold {accepted}, got the string {kernel!r} "
            f"(read text with sepconv.kernels.parse)"
        )
    eps = dtype_eps(getattr(kernel, "dtype", None))
    if hasattr(kernel, "detach") and hasattr(kernel, "cpu"):  # a torch tensor
        tensor = kernel.detach().cpu()
        if tensor.is_complex() or str(tensor.dtype) == "torch.bool":
            raise SepconvTypeError(f"`{name}` must hold {accepted}, got dtype {tensor.dtype}")
        kernel = tensor.double().numpy()
    try:
        array = np.asarray(kernel)
    except ValueError as exc:  # ragged nested sequences
        raise SepconvValueError(
            f"`{name}` must be a rectangular array of numbers, got ragged rows ({exc})"
        ) from None
    except TypeError:
        raise SepconvTypeError(f"`{name}` must hold {accepted}, got {describe(kernel)}") from None
    if array.dtype.kind not in "iuf":
        hint = {
            "c": " (pass kernel.real or kernel.imag)",
            "b": " (convert 0/1 masks with kernel.astype(float))",
        }.get(array.dtype.kind, "")
        raise SepconvTypeError(f"`{name}` must hold {accepted}, got dtype {array.dtype}{hint}")
    if array.ndim == 0 or array.size == 0:
        got = f"the scalar {array.item()!r}" if array.ndim == 0 else f"shape {array.shape}"
        raise SepconvValueError(
            f"`{name}` must be a non-empty array with at least one axis, got {got}"
        )
    if array.ndim > 32:
        raise SepconvValueError(f"`{name}` must have at most 32 axes, got {array.ndim}")
    weights = np.array(array, dtype=np.float64, copy=True)
    if not np.isfinite(weights).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(weights))[0])
        raise SepconvValueError(
            f"`{name}` must be finite, got {float(weights[index])!r} at "
            f"index {index if len(index) > 1 else index[0]}"
        )
    return weights, eps


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
