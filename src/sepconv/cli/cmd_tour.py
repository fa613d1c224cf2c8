"""``sepconv tour``: the guided tour on a real photograph."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import print_json

NAME = "tour"
ORDER = 1
HELP = "a guided tour of separable convolutions on a real photograph, with figures"
DESCRIPTION = """\
Walk through separable convolutions on matplotlib's sample photograph (nothing is downloaded)
or on your own (--image): a separable kernel (Sobel) as two 1-D passes, why separable kernels
are rare and where low rank helps, normal, depthwise and pointwise convolution drawn as blocks
with their multiplications counted, MobileNetV1 against full convolutions, and the conversion
of a layer. Every number and picture is computed by this run.

With --out DIR, writes DIR/report.html (one self-contained page: open it in a browser; figures
embedded, no network access, an interactive cost calculator), DIR/README.md with the figures
as PNG files, and DIR/report.json with every number. DIR is written whole or not at all;
it is created with its missing parents. A tour run again into DIR replaces its own earlier
files; any other file it would replace is refused unless --force.

examples:
  sepconv tour --out tour
  sepconv tour --out tour --image holiday.jpg
  sepconv tour --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write report.html, README.md, report.json and the figures here",
    )
    parser.add_argument(
        "--image",
        metavar="PATH",
        help="your own photograph (PNG, JPEG, ...) instead of the sample one",
    )
    parser.add_argument(
        "--no-figures",
        action="store_true",
        help="with --out: skip the figures (numbers and text only)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --out: overwrite files in DIR that an earlier tour did not "
        "write (README.md, ...)",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")


def run(args: argparse.Namespace) -> int:
    from sepconv import tour

    started = time.perf_counter()
    quiet = args.json

    def progress(message: str) -> None:
        if not quiet:
            print(
                f"  [{time.perf_counter() - started:5.1f} s] {message}", file=sys.stderr, flush=True
            )

    if args.out is not None:
        tour.check_out(args.out, force=args.force, figures=not args.no_figures)
    if args.image is not None:
        # A bad image fails here, before any output; a resized one is said so.
        photo, original = tour._read_image(args.image)
        if not quiet:
            print(
                f"using {tour.describe_image(args.image, photo.shape, original)}", file=sys.stderr
            )
    if not quiet:
        print(
            "sepconv tour: separable convolutions on a real photograph", file=sys.stderr, flush=True
        )
    steps = tour.run(
        args.out, image=args.image, figures=not args.no_figures, progress=progress, force=args.force
    )
    if args.json:
        print_json(
            [
                {
                    "key": s.key,
                    "title": s.title,
                    "numbers": s.numbers,
                    "figures": [f.name for f in s.figures],
                }
                for s in steps
            ]
        )
        return 0
    print()
    for n, step in enumerate(steps, 1):
        print(f"{n}. {step.summary}")
    print()
    if args.out:
        import os

        report = os.path.join(args.out, "report.html")
        print(f"done in {time.perf_counter() - started:.1f} s. Open the report in a browser:")
        print(f"  {os.path.abspath(report)}")
        if args.no_figures:
            print(
                f"(also {os.path.join(args.out, 'README.md')}, and the numbers in "
                f"{os.path.join(args.out, 'report.json')}; no figures: --no-figures)"
            )
        else:
            print(
                f"(also {os.path.join(args.out, 'README.md')} with the figures as PNG files, "
                f"and the numbers in {os.path.join(args.out, 'report.json')})"
            )
    else:
        print("run with --out DIR to write the report with its figures")
    return 0
