"""Kernels given as text: a name with parameters, numbers, or a .npy / .txt / .csv file."""

from __future__ import annotations

import ast
import io
import os
import re

import numpy as np

from .._checks import SepconvTypeError, SepconvValueError, check_kernel, describe
from ..factor import Factorization
from ._args import Param
from ._registry import factors, get

__all__ = ["parse", "parse_factors"]

_NAME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?::(.*))?$", re.DOTALL)
_FILE_SUFFIXES = (".npy", ".txt", ".csv")


def _param_value(text: str) -> Param:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if "x" in lowered and re.fullmatch(r"[0-9.+-]+(x[0-9.+-]+)+", lowered):
        return tuple(_param_value(part) for part in lowered.split("x"))
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_params(name: str, text: str) -> dict[str, Param]:
    params: dict[str, Param] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise SepconvValueError(
                f"kernel parameters must be written name=value, separated "
                f"by commas, e.g. 'gaussian:sigma=2,size=9'; got {item!r} "
                f"in {name!r}"
            )
        params[key] = _param_value(value)
    return params


def _literal(text: str) -> np.ndarray:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError) as exc:
            raise SepconvValueError(f"cannot read the kernel literal {text!r}: {exc}") from None
        return check_kernel(value)[0]
    rows = [r for r in re.split(r"[;\n]", stripped) if r.strip()]
    if not rows:
        raise SepconvValueError(f"`text` must not be empty, got {text!r}")
    values = []
    for row in rows:
        cells = [c for c in re.split(r"[,\s]+", row.strip()) if c]
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            raise SepconvValueError(
                f"cannot read the kernel literal {text!r}: {row.strip()!r} is not a row of numbers"
            ) from None
    lengths = sorted({len(r) for r in values})
    if len(lengths) > 1:
        raise SepconvValueError(
            f"kernel literal {text!r} is ragged: its rows have "
            f"{' and '.join(map(str, lengths))} entries"
        )
    array = np.array(values)
    if array.shape[0] == 1:
        array = array[0]
    return check_kernel(array)[0]


#: What a kernel file may hold, for the messages that refuse one.
_ACCEPTED_FILES = (
    "accepted: .npy (NumPy's format, without pickled objects) or text "
    "(.txt, .csv): one row of numbers per line, separated by spaces or commas"
)


def _not_a_kernel(path: str, why: str) -> SepconvValueError:
    return SepconvValueError(
        f"cannot read kernel file {path!r}, which is not a kernel file: {why}; {_ACCEPTED_FILES}"
    )


def _text_rows(path: str, content: str) -> np.ndarray:
    """The numbers of a text kernel file; the first line that is not numbers is named."""
    lines = [
        (n, ln)
        for n, ln in enumerate(content.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise _not_a_kernel(path, "it holds no numbers")
    if lines[0][1].lstrip().startswith("["):  # a nested list, as Python writes one
        lines_checked = []
    else:
        lines_checked = lines
    for number, line in lines_checked:
        try:
            [float(c) for c in re.split(r"[,;\s]+", line.strip()) if c]
        except ValueError:
            shown = line.strip()
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise _not_a_kernel(path, f"line {number} {shown!r} is not a row of numbers") from None
    try:
        return _literal("\n".join(ln for _, ln in lines))
    except SepconvValueError as exc:  # ragged rows, non-finite values
        raise SepconvValueError(f"kernel file {path!r}: {exc}") from None


def _load(path: str) -> np.ndarray:
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise SepconvValueError(f"cannot read kernel file {path!r}: no such file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SepconvValueError(
            f"cannot read kernel file {path!r}: {exc.strerror or exc}"
        ) from None
    if data.startswith(b"\x93NUMPY"):
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:  # pickled objects, a damaged header
            why = (
                "it holds Python objects, which are not unpickled"
                if "pickle" in str(exc)
                else f"a damaged .npy file ({exc})"
            )
            raise _not_a_kernel(path, why) from None
    elif suffix == ".npy":
        raise _not_a_kernel(path, "no .npy header")
    else:
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_a_kernel(path, "binary data, not text") from None
        if "\x00" in content:
            raise _not_a_kernel(path, "binary data, not text")
        return _text_rows(path, content)
    weights, _ = check_kernel(array, f"kernel in {path}")
    if array.dtype in (np.float16, np.float32):
        # its precision is part of the kernel: it sets the factorization's default tolerance
        return weights.astype(array.dtype)
    return weights


def parse(text: str) -> np.ndarray:
    """A kernel given as text: a name with parameters, numbers, or a file.

    Parameters
    ----------
    text : str or path-like
        - a name from :func:`available`, with parameters after a colon:
          ``"sobel-x"``, ``"gaussian:sigma=2,size=9"``, ``"gabor:theta=0.5,phase=1"``
          (``size=9x7`` gives a tuple);
        - numbers, rows separated by ``;`` or newlines, entries by spaces or commas:
          ``"1 2 1; 2 4 2; 1 2 1"`` (one row gives a 1-D kernel), or a nested list
          ``"[[1, 2], [3, 4]]"``;
        - a ``.npy`` file (loaded without pickles) or a ``.txt`` / ``.csv`` file of rows of
          numbers (``#`` comment lines skipped).

    Returns
    -------
    ndarray
        float64; a float32 or float16 ``.npy`` file keeps its dtype, whose precision sets
        the default tolerance of :mod:`sepconv.factor` (rounding to float32 leaves singular
        values of about ``1e-8``, which are not rank).

    Raises
    ------
    SepconvValueError
        Empty or ragged text, NaN/Inf, unknown names or parameters, unreadable files.
    SepconvTypeError
        Non-string input, or a file holding complex, boolean or object data.

    Examples
    --------
    >>> parse("1 2 1; 2 4 2; 1 2 1")[0]
    array([1., 2., 1.])
    >>> parse("1, 0, -1").shape
    (3,)
    >>> parse("sobel-y").shape
    (3, 3)
    >>> parse("1 2; 3")
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: kernel literal '1 2; 3' is ragged: its rows have 1 and 2 entries
    """  # noqa: E501
    if isinstance(text, os.PathLike):
        return _load(os.fspath(text))
    if not isinstance(text, str):
        raise SepconvTypeError(f"`text` must be a string or a path, got {describe(text)}")
    stripped = text.strip()
    if not stripped:
        raise SepconvValueError(
            "`text` must not be empty: give a kernel name such as "
            "'sobel-x', numbers such as '1 2 1; 2 4 2; 1 2 1' or a file"
        )
    if stripped.lower().endswith(_FILE_SUFFIXES) or os.path.isfile(stripped):
        return _load(stripped)
    named = _named(stripped)
    if named is not None:
        return get(named[0], **named[1])
    return _literal(stripped)


def _named(stripped: str) -> tuple[str, dict[str, Param]] | None:
    match = _NAME.match(stripped)
    if match and not re.fullmatch(r"[0-9eE.+-]+", match.group(1)):
        name, rest = match.group(1), match.group(2) or ""
        return name, _parse_params(name, rest)
    return None


def parse_factors(text: str) -> Factorization | None:
    """The closed-form factors of a kernel named in ``text`` (as :func:`parse` reads it).

    None when ``text`` holds numbers or a file, or names a kernel without closed-form factors.

    Examples
    --------
    >>> parse_factors("log:sigma=2").rank
    2
    >>> parse_factors("1 2 1") is None
    True
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped or stripped.lower().endswith(_FILE_SUFFIXES) or os.path.isfile(stripped):
        return None
    named = _named(stripped)
    return factors(named[0], **named[1]) if named is not None else None
