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
mode. 8- and 16-bit images stay 8- and 16-bit (rounded, saturated); colour images are
filtered per channel. OUTPUT is written whole or not at all, and never over INPUT unless
--force is given.

KERNEL is a name with optional parameters, numbers (rows separated by ';') or a .npy / .txt /
.csv file, as for 'sepconv factor'.

examples:
  sepconv filter photo.png blurred.png --kernel gaussian:sigma=3
  sepconv filter photo.png edges.png --kernel sobel-x --mode nearest
  sepconv filter scan.tif out.tif --kernel "1 2 1; 2 4 2; 1 2 1" --explain
  sepconv filter photo.jpg out.jpg --kernel log:sigma=2 --method lowrank --tol 1e-6
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="image file: .png, .jpg/.jpeg, .tif/.tiff")
    parser.add_argument("output", metavar="OUTPUT", help="image file to write (same formats)")
    parser.add_argument("--kernel", required=True, metavar="KERNEL",
                        help="name[:param=value,...], numbers '1 2 1; 2 4 2; 1 2 1', or a file")
    parser.add_argument("--mode", default="reflect",
                        choices=("reflect", "mirror", "nearest", "constant", "wrap"),
                        help="border extension, SciPy's names (default: reflect)")
    parser.add_argument("--cval", type=float, default=0.0,
                        help="value outside the image for --mode constant (default 0)")
    parser.add_argument("--method", default="auto",
                        choices=("auto", "direct", "separable", "lowrank", "fft"),
                        help="how to filter (default: auto, the fastest estimate)")
    parser.add_argument("--tol", type=float, default=None,
                        help="tolerance of the separable approximation (default: exact)")
    parser.add_argument("--convolve", action="store_true",
                        help="convolve (flip the kernel) instead of correlating")
    parser.add_argument("--explain", action="store_true",
                        help="print the plan: rank, method, multiplications, estimated time")
    parser.add_argument("--force", action="store_true", help="allow OUTPUT to be INPUT")


def run(args: argparse.Namespace) -> int:
    import sepconv
    from sepconv import kernels
    from sepconv.filtering._io import read_image, write_image

    kernel = kernels.parse(args.kernel)
    if kernel.ndim != 2:
        raise ValueError(f"--kernel must be a 2-D kernel for an image, got shape {kernel.shape}")
    image = read_image(args.input)
    filter_ = sepconv.convolve if args.convolve else sepconv.correlate
    result = filter_(image, kernel, mode=args.mode, cval=args.cval, method=args.method,
                     tol=args.tol)
    if args.explain:
        plan = sepconv.plan(kernel, image.shape, image.dtype, method=args.method, tol=args.tol)
        print(plan.explain())
    write_image(args.output, result, source=args.input, force=args.force)
    return 0
