"""Helpers shared by the subcommands: argument types and number formatting."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


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
    values = shape_type(text)
    return values[0] if len(values) == 1 else values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def fmt_int(value: int) -> str:
    """Thousands separators: 1228800 -> '1,228,800'."""
    return f"{value:,}"


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def format_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """Plain-text table; ``align`` has one 'l' or 'r' per column (default: first left)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = []
        for cell, width, a in zip(cells, widths, align):
            out.append(str(cell).ljust(width) if a == "l" else str(cell).rjust(width))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
