"""``sepconv factor``: is a kernel separable, what are its factors, how few terms reproduce it."""

from __future__ import annotations

import argparse
import math
import textwrap
from typing import Any

from ._common import fmt_int, fmt_ratio, format_table, positive_int, print_json

NAME = "factor"
ORDER = 20
HELP = "factor a kernel into separable (1-D) terms: rank, factors, error and cost"
DESCRIPTION = """\
Tell whether a kernel is separable (an outer product of 1-D factors, filtered as 1-D passes),
print its singular values, its factors as people write them (Sobel-x: column [1, 2, 1], row
[-1, 0, 1]) and, when it is not separable, the fewest separable terms that reproduce it within
the tolerance, with the reconstruction error and the multiplications per output pixel of
filtering directly and with the terms.

KERNEL is a name with optional parameters (see the list below), numbers (rows separated by
';', entries by spaces or commas) or a .npy / .txt / .csv file. The tolerance bounds the
Frobenius norm of the reconstruction error; the default is 10 * max(shape) * eps * ||K||_F
(eps of the kernel's dtype). Below that floor a value is rounding noise, whose digits change
with the BLAS library and the CPU: such singular values, errors and factor entries print as 0,
and --json rounds numbers to 10 significant digits, so the output is the same on every machine.

examples:
  sepconv factor sobel-x
  sepconv factor "1 2 1; 2 4 2; 1 2 1"
  sepconv factor gaussian:sigma=2 --json
  sepconv factor gabor:theta=0.6,sigma=3,wavelength=6 --plot gabor.png
  sepconv factor disk:radius=5 --rtol 0.05
  sepconv factor "4 -1 0; -1 4 -1; 0 -1 4" --rank 1
  sepconv factor kernel.npy

kernels: sobel(-x|-y|-z), scharr(-x|-y), prewitt(-x|-y|-z), gaussian, box, binomial,
  laplacian, log, dog, gabor, disk, motion (parameters: python -c "import sepconv.kernels as k;
  print(k.available())")
"""


def _why(shape: tuple[int, ...]) -> str:
    """Why a kernel is (almost) never separable, with the numbers of this kernel's shape."""
    entries = math.prod(shape)
    free = sum(shape) - (len(shape) - 1)
    parts = "a column and a row" if len(shape) == 2 else f"{len(shape)} 1-D factors"
    return (
        f"why: separable kernels are a vanishing subset of all kernels. This {_dims(shape)} "
        f"kernel has {entries} free entries, a separable one only {free} ({parts}, less the "
        f"common scale), so separable kernels form a set of measure zero: a kernel with random "
        f"or learned entries is separable with probability 0. This is what keeps spatially "
        f"separable kernels out of training -- a network has to be built from 1-D kernels "
        f"from the start."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kernel",
        metavar="KERNEL",
        help="kernel name[:param=value,...], numbers '1 2 1; 2 4 2; 1 2 1', "
        "or a .npy/.txt/.csv file",
    )
    tolerance = parser.add_mutually_exclusive_group()
    tolerance.add_argument(
        "--tol",
        type=float,
        default=None,
        metavar="T",
        help="absolute tolerance on the Frobenius norm of the error",
    )
    tolerance.add_argument(
        "--rtol",
        type=float,
        default=None,
        metavar="R",
        help="tolerance relative to the kernel's Frobenius norm",
    )
    parser.add_argument(
        "--rank",
        type=positive_int,
        default=None,
        metavar="R",
        help="use exactly R separable terms instead of the fewest within the tolerance",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--plot",
        default=None,
        metavar="FILE.png",
        help="draw the kernel as column x row heatmaps (each term) and the "
        "singular-value spectrum to a PNG, SVG or PDF file",
    )


def _number(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def _vector(values: Any, limit: int = 15) -> str:
    items = [_number(float(v)) for v in values]
    if len(items) > limit:
        items = items[: limit // 2] + ["..."] + items[-(limit // 2) :]
    return "[" + ", ".join(items) + "]"


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _axis_names(ndim: int) -> list[str]:
    if ndim == 1:
        return ["factor"]
    if ndim == 2:
        return ["column", "row"]
    names = ["x (columns)", "y (rows)", "z (planes)"]
    return [names[ndim - 1 - k] if ndim - 1 - k < 3 else f"axis {k}" for k in range(ndim)]


def _ratio_text(direct: int, factored: int) -> str:
    text = fmt_ratio(direct / factored)
    return text + ": filter directly" if factored > direct else text


def _tolerance(args: argparse.Namespace) -> dict[str, float]:
    for name in ("tol", "rtol"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
    return {"tol": args.tol} if args.tol is not None else {"rtol": args.rtol}


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from sepconv import factor, kernels
    from sepconv.factor._result import rounded

    if args.plot:
        from sepconv._plotting import check_figure_path

        check_figure_path(args.plot, "plot")
    array = kernels.parse(args.kernel)
    tolerance = _tolerance(args)
    result = factor.lowrank(array, rank=args.rank, **tolerance)
    closed = kernels.parse_factors(args.kernel) if args.rank is None else None
    if closed is not None and closed.rank <= result.rank:
        exact = factor.Factorization.from_terms(closed.terms, kernel=array, tol=result.tol)
        if exact.is_exact:
            result = exact  # the terms the kernel is defined by read better than SVD's
    best_rank = result.rank if args.rank is None else factor.lowrank(array, **tolerance).rank
    if not np.any(array):
        best_rank = 0
    best_one = result if result.rank == 1 else factor.lowrank(array, rank=1, tol=result.tol)
    separable = best_one.error <= result.tol
    direct, factored = result.cost()

    if args.plot:
        from sepconv._plotting import plot_factorization

        plot_factorization(array, result, args.plot, title=args.kernel)

    norm = float(np.linalg.norm(array.astype(np.float64).ravel()))
    spectrum = None
    if result.ndim == 2:
        s = result.singular_values
        tails = [float(np.sqrt(np.sum(s[r:] ** 2))) for r in range(1, len(s) + 1)]
        spectrum = [
            {
                "rank": r,
                "error": tails[r - 1],
                "relative_error": tails[r - 1] / norm if norm > 0 else 0.0,
                "multiplications": _mults(result.shape, r),
            }
            for r in range(1, len(s) + 1)
        ]

    if args.json:
        data = {
            "kernel": args.kernel,
            "separable": separable,
            "rank_within_tol": best_rank,
            **result.to_dict(),
            "best_separable_relative_error": best_one.relative_error,
            "error_by_rank": spectrum,
        }
        if args.plot:
            data["plot"] = args.plot
        print_json(rounded(data))
        return 0

    print(f"kernel {args.kernel!r}: {_dims(result.shape)}, Frobenius norm {norm:.6g}")
    if result.singular_values is not None:
        print(f"singular values: {_vector(result.singular_values, 12)}")
    elif result.unfolding_singular_values is not None:
        for k, sv in enumerate(result.unfolding_singular_values):
            print(f"singular values of unfolding {k}: {_vector(sv, 8)}")
    print(f"tolerance: {result.tol:.3g} (Frobenius norm of the error)")
    if result.method == "closed-form":
        print("factors: the closed form the kernel is defined by")
    if separable:
        print(
            f"rank {best_rank}: separable"
            if best_rank == 1
            else "rank 0: the zero kernel (separable, trivially)"
        )
    else:
        print(
            f"rank {best_rank}: not separable; the best separable (rank-1) approximation has "
            f"relative error {best_one.relative_error:.3g}"
        )
    print()
    names = _axis_names(result.ndim)
    width = max(len(n) for n in names)
    for i, term in enumerate(result.shown_terms(), 1):
        if result.rank > 1:
            print(f"term {i}:")
        for name, f in zip(names, term):
            print(f"  {name.ljust(width)}  {_vector(f)}")
    kind = "separable" if result.rank == 1 else f"{result.rank} separable terms"
    print()
    print(
        f"reconstruction error: {result.error:.3g} (relative {result.relative_error:.3g})"
        f"{'' if result.is_exact else ', above the tolerance'}"
    )
    print(
        f"multiplications per output pixel: direct {fmt_int(direct.multiplications)}, "
        f"{kind} {fmt_int(factored.multiplications)} "
        f"({_ratio_text(direct.multiplications, factored.multiplications)})"
    )
    if spectrum and len(spectrum) > 1 and not separable:
        print()
        shown = spectrum[: max(min(best_rank + 1, 10), 3)]
        rows = [
            [
                str(e["rank"]),
                f"{e['error']:.3g}",
                f"{e['relative_error']:.3g}",
                fmt_int(e["multiplications"]),
                _ratio_text(direct.multiplications, e["multiplications"]),
            ]
            for e in shown
        ]
        print("error of the best sum of r separable terms (Eckart-Young: the truncated SVD):")
        print(format_table(["r", "error", "relative", "mult/pixel", "vs direct"], rows))
        if len(shown) < len(spectrum):
            print(f"({len(spectrum) - len(shown)} more rows in --json)")
    if not separable and result.ndim >= 2:
        print()
        if best_rank < min(result.shape):
            print(
                textwrap.fill(
                    f"low rank: {best_rank} separable terms reproduce this "
                    f"{_dims(result.shape)} kernel within the tolerance, although "
                    f"it is not separable.",
                    width=96,
                )
            )
        print(textwrap.fill(_why(result.shape), width=96))
    if args.plot:
        print(f"\nwrote {args.plot}")
    return 0


def _mults(shape: tuple[int, ...], rank: int) -> int:
    from sepconv.cost import filtering

    return filtering(shape, rank).multiplications
