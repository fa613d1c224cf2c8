"""``sepconv tour``: the guided tour on a real photograph."""

from __future__ import annotations

import argparse

from ._common import print_json

NAME = "tour"
ORDER = 1
HELP = "a guided tour of separable convolutions on a real photograph, with figures"
DESCRIPTION = """\
Walk through separable convolutions on matplotlib's sample photograph (nothing is downloaded):
a separable kernel (Sobel) as two 1-D passes, low-rank kernels, the depthwise separable worked
example run by the counting reference engine, MobileNetV1 against full convolutions, and the
conversion of a trained layer. Every number is computed by this run. With --out, writes
DIR/README.md, DIR/tour.json and the figures.

examples:
  sepconv tour
  sepconv tour --out tour
  sepconv tour --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="DIR", help="write README.md, tour.json and figures here")
    parser.add_argument("--no-figures", action="store_true", help="with --out: skip the figures")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")


def run(args: argparse.Namespace) -> int:
    from sepconv import tour

    steps = tour.run(args.out, figures=not args.no_figures)
    if args.json:
        print_json([{"title": s.title, "numbers": s.numbers, "figure": s.figure} for s in steps])
        return 0
    for n, step in enumerate(steps, 1):
        print(f"{n}. {step.title}")
        print()
        print(_wrap(step.text))
        print()
    if args.out:
        print(f"wrote {args.out}/README.md, {args.out}/tour.json"
              + ("" if args.no_figures else " and the figures"))
    return 0


def _wrap(text: str, width: int = 96) -> str:
    import textwrap

    return textwrap.fill(text, width=width, initial_indent="   ", subsequent_indent="   ")
