"""``sepconv filter``: filter an image file with any kernel, the cheapest exact way."""

from __future__ import annotations

import argparse

NAME = "filter"
ORDER = 30
HELP = "filter an image file (PNG, JPEG, TIFF) with a kernel, separating it automatically"
DESCRIPTION = """\
Filter INPUT with KERNEL and write OUTPUT. The kernel is factored once and filtered the
cheapest exact way (one 2-D pass, 1-D passes per separable term, or an FFT); --explain prints
that plan. Results equal scipy.ndimage.correlate (or convolve with --convolve) with the same
mode. OUTPUT has INPUT's layout: grey, grey+alpha, colour or colour+alpha, 8 or 16 bits or
32-bit float (TIFF); colour channels are filtered one by one and the alpha channel is copied
unchanged. Palette and 1-bit images are read as the 8-bit grey or colour they display as.
OUTPUT is written whole or not at all; an existing file (INPUT too) is replaced only with
--force.

An 8- or 16-bit OUTPUT keeps what fits its range: results are rounded and saturated, so a
derivative kernel (sobel, scharr, prewitt, laplacian, log, dog, gabor), whose results are
signed and small, keeps only its positive part, and of an 8-bit photo often little more than
black. To see such results: --abs keeps magnitudes, --rescale stretches the results' minimum
to maximum over the full range of OUTPUT (both together: 0 to the largest magnitude), and
--output-dtype float32 with a .tif OUTPUT keeps every value, signed, in INPUT's units.
--output-dtype uint8 or uint16 writes a float32 INPUT (such a TIFF) as 8 or 16 bits.

KERNEL is a name with optional parameters, numbers (rows separated by ';') or a .npy / .txt /
.csv file, as for 'sepconv factor'.

examples:
  sepconv filter photo.png blurred.png --kernel gaussian:sigma=3
  sepconv filter photo.png edges.png --kernel log:sigma=2 --abs --rescale --explain
  sepconv filter photo.png edges.tif --kernel sobel-x --mode nearest --output-dtype float32
  sepconv filter scan.tif out.tif --kernel "1 2 1; 2 4 2; 1 2 1" --explain
  sepconv filter photo.jpg out.jpg --kernel box:size=9 --method lowrank --tol 1e-6
"""

#: Library argument names as the user typed them on this command line.
ALIASES = {"image": "INPUT", "input": "INPUT", "output": "OUTPUT"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="image file: .png, .jpg/.jpeg, .tif/.tiff")
    parser.add_argument("output", metavar="OUTPUT", help="image file to write (same formats)")
    parser.add_argument(
        "--kernel",
        required=True,
        metavar="KERNEL",
        help="name[:param=value,...], numbers '1 2 1; 2 4 2; 1 2 1', or a file",
    )
    parser.add_argument(
        "--mode",
        default="reflect",
        choices=("reflect", "mirror", "nearest", "constant", "wrap"),
        help="border extension, SciPy's names (default: reflect)",
    )
    parser.add_argument(
        "--cval",
        type=float,
        default=0.0,
        help="value outside the image for --mode constant (default 0)",
    )
    parser.add_argument(
        "--method",
        default="auto",
        choices=("auto", "direct", "separable", "lowrank", "fft"),
        help="how to filter (default: auto, the fastest estimate)",
    )
    parser.add_argument(
        "--tol",
        type=float,
        default=None,
        help="tolerance of the separable approximation (default: exact)",
    )
    parser.add_argument(
        "--convolve", action="store_true", help="convolve (flip the kernel) instead of correlating"
    )
    parser.add_argument(
        "--output-dtype",
        choices=("input", "uint8", "uint16", "float32"),
        default="input",
        help="'input' (default): INPUT's depth; 'uint8', 'uint16': 8 or 16 "
        "bits, rounded and saturated (to write a float TIFF INPUT as PNG or "
        "JPEG); 'float32': every value, signed (OUTPUT must be .tif)",
    )
    parser.add_argument(
        "--abs",
        action="store_true",
        help="write magnitudes |result| (signed results of derivative kernels)",
    )
    parser.add_argument(
        "--rescale",
        action="store_true",
        help="stretch the results' minimum..maximum to OUTPUT's full range "
        "(0..255, 0..65535, or 0..1 for float32)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the plan: rank, method, multiplications, estimated time",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUTPUT if it exists (INPUT too)"
    )


def _to_output(result, dtype, rescale: bool):  # noqa: ANN001, ANN202 - NumPy arrays
    """``result`` (float) in ``dtype``: stretched if ``rescale``, rounded and saturated."""
    import numpy as np

    top = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    if rescale:
        finite = result[np.isfinite(result)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        span = high - low
        result = (result - low) * (top / span) if span > 0 else np.zeros_like(result)
    if dtype == np.float32:
        return result.astype(np.float32)
    return np.clip(np.rint(result), 0, top).astype(dtype)


def run(args: argparse.Namespace) -> int:
    import os

    import numpy as np

    import sepconv
    from sepconv import kernels

    from ._common import check_output
    from ._images import Picture, check_writable, read_image, write_image

    check_output(args.output, args.force)

    kernel = kernels.parse(args.kernel)
    if kernel.ndim != 2:
        raise ValueError(f"--kernel must be a 2-D kernel for an image, got shape {kernel.shape}")
    tiff = os.path.splitext(args.output)[1].lower() in (".tif", ".tiff")
    if args.output_dtype == "float32" and not tiff:
        raise ValueError(f"--output-dtype float32 needs a .tif OUTPUT, got {args.output!r}")
    picture = read_image(args.input)
    image = picture.colour
    dtype = image.dtype if args.output_dtype == "input" else np.dtype(args.output_dtype)
    if args.output_dtype == "input" and dtype == np.float32 and not tiff:
        raise ValueError(
            f"INPUT {args.input!r} holds float32 pixels, which OUTPUT "
            f"{args.output!r} cannot store: write .tif, or pass --output-dtype "
            f"uint8 (with --rescale for values in 0..1)"
        )
    check_writable(args.output, picture.mode, dtype.name)  # before the work, not after it
    in_float = args.abs or args.rescale or dtype != image.dtype
    if in_float and image.dtype != np.float32:
        image = image.astype(np.float32)
    filter_ = sepconv.convolve if args.convolve else sepconv.correlate
    result = filter_(
        image, kernel, mode=args.mode, cval=args.cval, method=args.method, tol=args.tol
    )
    if args.explain:
        plan = sepconv.plan(kernel, image.shape, image.dtype, method=args.method, tol=args.tol)
        print(plan.explain())
    if in_float:
        result = _to_output(np.abs(result) if args.abs else result, dtype, args.rescale)
    alpha = picture.alpha
    if alpha is not None and alpha.dtype != dtype:
        alpha = alpha.astype(dtype)
    write_image(args.output, Picture(result, alpha), force=args.force)
    return 0
