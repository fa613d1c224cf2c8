"""Helpers shared by the subcommands: argument types and JSON output.

Tables and number formats live in :mod:`sepconv._text` (re-exported here for the subcommands).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any

from .._text import format_table, markdown_table, number, numbers, percent, ratio_text, thousands

__all__ = [
    "shape_type",
    "size_type",
    "positive_int",
    "print_json",
    "check_output",
    "require_extra",
    "EXTRAS",
    "fmt_int",
    "fmt_ratio",
    "format_table",
    "markdown_table",
    "number",
    "numbers",
    "percent",
    "thousands",
]

#: Optional modules and the extra of ``pip install 'sepconv[EXTRA]'`` that installs them.
EXTRAS = {"mlxtend": "data", "dask": "dask", "dask_image": "dask"}

#: Thousands separators: 1228800 -> '1,228,800'.
fmt_int = thousands


def fmt_ratio(ratio: float) -> str:
    """Old / new as words, ASCII: ``22.78`` -> ``'22.78x fewer'``, ``1 / 1.06`` -> ``'6% more'``
    (:func:`sepconv._text.ratio_text`, two decimals)."""
    return ratio_text(ratio, digits=2)


def shape_type(text: str) -> tuple[int, ...]:
    """Parse ``'12x12x3'`` into ``(12, 12, 3)`` (for argparse ``type=``)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 12x12x3 (H x W x C), got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return values


def size_type(text: str) -> tuple[int, ...] | int:
    """Parse ``'5'`` or ``'5x3'`` into an int or a tuple of ints."""
    try:
        values = shape_type(text)
    except argparse.ArgumentTypeError as error:
        if "positive" in str(error):
            raise
        raise argparse.ArgumentTypeError(
            f"expected a size like 5, or 5x3 (H x W), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def check_output(path: str, force: bool, what: str = "OUTPUT") -> None:
    """Refuse, before any work, an output file that exists (unless ``force``) or has no folder.

    ``--force`` means the same for every command: overwrite OUTPUT if it exists.
    """
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder; give a file name")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{what} {path!r} exists; pass --force to overwrite it")
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise FileNotFoundError(f"the folder of {what} {path!r} does not exist")


def require_extra(module: str, needed_by: str) -> None:
    """Raise ``ModuleNotFoundError`` naming the pip extra when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"{needed_by} needs {module}, which is not installed: "
            f"pip install 'sepconv[{EXTRAS[module]}]'",
            name=module,
        )
