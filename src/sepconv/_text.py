"""Text tables and number formats: the one home of how sepconv prints numbers.

Every printed table (the command line, :mod:`sepconv.profiling`, the benchmark scripts) and
every printed number that can be numerical noise goes through these helpers, so that a count is
always written with thousands separators and a value below its tolerance is always written as
``0``: what is printed then does not depend on the BLAS kernel, the thread count or the CPU that
computed it. Standard library only.

Examples
--------
>>> print(format_table(["kernel", "rank", "error"], [["sobel-x", 1, number(4.3e-16, tol=2.3e-14)],
...                                                  ["log", 2, number(0.0123456789)]]))
kernel   rank      error
-------  ----  ---------
sobel-x     1          0
log         2  0.0123457
>>> print(markdown_table(["type", "mult-adds"], [["Conv 1x1", thousands(539492352)]]))
| type | mult-adds |
|---|---:|
| Conv 1x1 | 539,492,352 |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "format_table",
    "markdown_table",
    "thousands",
    "millions",
    "percent",
    "ratio_text",
    "number",
    "numbers",
    "denoise",
]


def _cells(row: Iterable[Any]) -> list[str]:
    return [str(cell) for cell in row]


def format_table(
    headers: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    align: str | None = None,
    *,
    footer: Sequence[Any] | None = None,
) -> str:
    """A plain-text table: a header, a rule of dashes, the rows, and an optional footer row.

    Parameters
    ----------
    headers : sequence
        Column titles; every cell is printed with ``str``.
    rows : iterable of sequences
        The rows, as many cells as ``headers``.
    align : str, optional
        One ``'l'`` (left) or ``'r'`` (right) per column; default: the first column left, the
        others right (labels, then numbers).
    footer : sequence, optional
        A last row (a total), printed after a second rule.

    Returns
    -------
    str
        Lines joined with ``'\\n'``, no trailing spaces, no final newline.

    Raises
    ------
    ValueError
        ``align`` is not one ``'l'``/``'r'`` per column, or a row has another number of cells.

    Examples
    --------
    >>> print(format_table(["layer", "mult-adds"], [["conv", "1,228,800"]], footer=["total", 1]))
    layer  mult-adds
    -----  ---------
    conv   1,228,800
    -----  ---------
    total          1
    """
    head = _cells(headers)
    body = [_cells(r) for r in rows]
    tail = [_cells(footer)] if footer is not None else []
    align = align if align is not None else "l" + "r" * (len(head) - 1)
    if len(align) != len(head) or set(align) - {"l", "r"}:
        raise ValueError(
            f"`align` must hold one 'l' or 'r' per column ({len(head)}), got {align!r}"
        )
    for row in [*body, *tail]:
        if len(row) != len(head):
            raise ValueError(f"a table row has {len(row)} cells, the header {len(head)}: {row}")
    widths = [max(len(r[i]) for r in [head, *body, *tail]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(head), rule, *(line(r) for r in body)]
    if tail:
        lines += [rule, line(tail[0])]
    return "\n".join(lines)


def markdown_table(
    headers: Sequence[Any], rows: Iterable[Sequence[Any]], align: str | None = None
) -> str:
    """A GitHub-flavoured markdown table; ``align`` as in :func:`format_table`.

    Examples
    --------
    >>> print(markdown_table(["model", "accuracy"], [["mnist_conv", percent(0.982)]]))
    | model | accuracy |
    |---|---:|
    | mnist_conv | 98.20% |
    """
    head = _cells(headers)
    align = align if align is not None else "l" + "r" * (len(head) - 1)
    if len(align) != len(head) or set(align) - {"l", "r"}:
        raise ValueError(
            f"`align` must hold one 'l' or 'r' per column ({len(head)}), got {align!r}"
        )
    out = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|",
    ]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(out)


def thousands(value: int) -> str:
    """An integer count with thousands separators: ``1228800`` -> ``'1,228,800'``.

    >>> thousands(1228800)
    '1,228,800'
    """
    return f"{value:,}"


def millions(value: float) -> str:
    """A count in millions with two decimals: ``568740352`` -> ``'568.74M'``.

    >>> millions(568740352)
    '568.74M'
    """
    return f"{value / 1e6:,.2f}M"


def percent(fraction: float, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.9486`` -> ``'94.86%'``.

    >>> percent(0.94862)
    '94.86%'
    """
    return f"{100 * fraction:.{digits}f}%"


def ratio_text(
    ratio: float,
    *,
    fewer: str = "fewer",
    more: str = "more",
    same: str = "the same",
    digits: int = 1,
) -> str:
    """How a new count compares with an old one, given ``ratio`` = old / new, in words.

    The one rule for every printed "x fewer", "x more", "x faster" and "x slower": a change of
    2 times or more is written as a factor (``'22.8x fewer'``, always with an ASCII ``x``, as
    everywhere on the command line), a smaller one as a percentage of
    the old count, rounded to a whole percent, below 1% to a tenth (``1 / 1.06`` ->
    ``'6% more'``; ``1.5`` -> ``'33% fewer'``: 9 multiplications become 6), so that a change
    near 1 is neither rounded to ``'1.1x'`` nor written as a factor below 1 (``'0.5x fewer'``).
    ``ratio < 1`` means the new count is larger: the words say ``more``, with the factor
    ``1 / ratio``. The tour's cost calculator (``tour/calculator.js``) follows the same rule.

    Parameters
    ----------
    ratio : float
        Old / new, > 0 and finite (for times: old time / new time, with ``fewer='faster'``,
        ``more='slower'``).
    fewer, more : str
        The words for a smaller and a larger new count.
    same : str
        The text for a ratio of 1, or one whose change rounds to 0.0%.
    digits : int
        Decimals of a factor (2 times and more).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``ratio`` is not a finite number > 0.

    Examples
    --------
    >>> ratio_text(1228800 / 53952), ratio_text(9 / 6), ratio_text(1 / 1.06)
    ('22.8x fewer', '33% fewer', '6% more')
    >>> ratio_text(0.5, digits=2), ratio_text(1.2, fewer="faster", more="slower")
    ('2.00x more', '17% faster')
    >>> ratio_text(1.0), ratio_text(1.002), ratio_text(2**-0.5)
    ('the same', '0.2% fewer', '41% more')
    """
    value = float(ratio)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`ratio` must be a finite number > 0, got {ratio!r}")
    factor, word = (value, fewer) if value >= 1 else (1 / value, more)
    if factor >= 2:
        return f"{_half_up(factor, digits)}x {word}"
    # the change as a percentage of the old count
    change = 100 * (1 - 1 / factor) if word == fewer else 100 * (factor - 1)
    shown = _half_up(change, 0) if change >= 0.95 else _half_up(change, 1)
    return same if shown == "0.0" else f"{shown}% {word}"


def _half_up(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, halves rounded up, as JavaScript's calculator does
    (``format`` would round 12.5 to 12, ``toFixed`` to 13)."""
    scale = 10**digits
    return f"{math.floor(value * scale + 0.5) / scale:.{digits}f}"


def denoise(value: float, tol: float) -> float:
    """``0.0`` where ``|value| <= tol`` (numerical noise), else ``value``; for JSON output.

    Raises
    ------
    ValueError
        ``tol`` is negative or not finite.

    >>> denoise(4.3447e-16, tol=2.31e-14), denoise(3.4641, tol=2.31e-14)
    (0.0, 3.4641)
    """
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"`tol` must be a finite number >= 0, got {tol!r}")
    value = float(value)
    return 0.0 if abs(value) <= tol else value


def number(value: float, tol: float = 0.0, digits: int = 6) -> str:
    """A float in ``digits`` significant digits, or ``'0'`` when ``|value| <= tol``.

    A value below the tolerance of the computation that produced it is rounding noise: its
    digits change with the BLAS kernel, the thread count and the CPU, so it is printed as 0.

    Parameters
    ----------
    value : float
    tol : float
        Absolute tolerance, >= 0 (default 0: only an exact zero prints as ``'0'``).
    digits : int
        Significant digits (``%g`` format).

    Raises
    ------
    ValueError
        ``tol`` is negative or not finite.

    Examples
    --------
    >>> number(3.46410161514, tol=2.31e-14), number(4.3447e-16, tol=2.31e-14), number(-0.0)
    ('3.4641', '0', '0')
    """
    value = denoise(value, tol)
    return "0" if value == 0 else f"{value:.{digits}g}"


def numbers(values: Iterable[float], tol: float = 0.0, digits: int = 6) -> str:
    """A list of floats as ``'[3.4641, 0, 0]'``, each formatted by :func:`number`.

    >>> numbers([3.46410161514, 4.3447e-16, 0.0], tol=2.31e-14)
    '[3.4641, 0, 0]'
    """
    return "[" + ", ".join(number(v, tol, digits) for v in values) + "]"
