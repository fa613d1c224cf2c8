"""``sepconv cost``: normal against separable convolution, counted exactly."""

from __future__ import annotations

import argparse

from ._common import (
    fmt_int,
    fmt_ratio,
    format_table,
    positive_int,
    print_json,
    shape_type,
    size_type,
)

NAME = "cost"
ORDER = 10
HELP = "compare the cost of a normal convolution with its separable replacements"
DESCRIPTION = """\
Count the multiplications (mult-adds), additions and parameters of a normal convolution, of the
depthwise separable convolution that replaces it (depthwise then pointwise, as Keras's
SeparableConv2D) and of the spatially separable one (k x 1 then 1 x k). Counts are exact;
FLOPs = 2 x mult-adds.

examples:
  sepconv cost --input 12x12x3 --kernel 5 --filters 256
  sepconv cost --input 12x12x3 --kernel 5 --filters 256 --padding same
  sepconv cost --input 112x112x32 --kernel 3 --filters 64 --stride 2 --json
"""


#: Library argument names as the user typed them on this command line.
ALIASES = {
    "kernel_size": "--kernel",
    "input_shape": "--input",
    "out_channels": "--filters",
    "filters": "--filters",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        type=shape_type,
        metavar="HxWxC",
        help="input height x width x channels, e.g. 12x12x3",
    )
    parser.add_argument(
        "--kernel",
        required=True,
        type=size_type,
        metavar="K",
        help="kernel size: 5, or 5x3 for a non-square kernel",
    )
    parser.add_argument(
        "--filters", required=True, type=positive_int, metavar="F", help="number of output channels"
    )
    parser.add_argument(
        "--padding",
        default="valid",
        choices=("valid", "same"),
        help="'valid' (no padding, default) or 'same' (Keras/TensorFlow-exact)",
    )
    parser.add_argument(
        "--stride",
        default=1,
        type=positive_int,
        metavar="S",
        help="step between output positions, in pixels (default 1)",
    )
    parser.add_argument(
        "--dilation",
        default=1,
        type=positive_int,
        metavar="D",
        help="spacing between kernel taps: a K kernel spans D x (K - 1) + 1 pixels (default 1)",
    )
    parser.add_argument(
        "--depth-multiplier",
        default=1,
        type=positive_int,
        metavar="M",
        help="depthwise kernels per input channel (Keras's depth_multiplier)",
    )
    parser.add_argument(
        "--intermediate-channels",
        default=None,
        type=positive_int,
        metavar="C",
        help="channels between the k x 1 and 1 x k passes "
        "of the spatially separable convolution (default: input channels)",
    )
    parser.add_argument("--bias", action="store_true", help="count biases (default: no bias)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def run(args: argparse.Namespace) -> int:
    from sepconv import cost

    if len(args.input) != 3:
        raise ValueError(
            f"--input must be three sizes HxWxC (height, width, channels), "
            f"got {_dims(args.input)!r}"
        )
    comparison = cost.compare(
        args.input,
        args.kernel,
        args.filters,
        stride=args.stride,
        padding=args.padding,
        dilation=args.dilation,
        depth_multiplier=args.depth_multiplier,
        intermediate_channels=args.intermediate_channels,
        bias=args.bias,
    )
    if args.json:
        print_json(
            {
                "input": list(args.input),
                "padding": args.padding,
                "stride": args.stride,
                "dilation": args.dilation,
                "depth_multiplier": args.depth_multiplier,
                **comparison.to_dict(),
            }
        )
        return 0

    normal = comparison.normal
    n = len(args.input) - 1
    kernel = args.kernel if isinstance(args.kernel, tuple) else (args.kernel,) * n
    print(
        f"input {_dims(args.input)}, kernel {_dims(kernel)}, {args.filters} filters, "
        f"stride {args.stride}, dilation {args.dilation}, padding '{args.padding}' "
        f"-> output {_dims(normal.output_shape)}"
    )
    rows = []
    labels = (f"normal {normal.operation}", "depthwise separable", "spatially separable")
    for label, entry in zip(labels, comparison.rows):
        ratio = comparison.ratio(entry)
        rows.append(
            [
                label,
                fmt_int(entry.multiplications),
                fmt_int(entry.additions),
                fmt_int(entry.parameters),
                "" if entry is normal else fmt_ratio(ratio),
            ]
        )
        for part in entry.parts:
            rows.append(
                [
                    f"  {part.operation}",
                    fmt_int(part.multiplications),
                    fmt_int(part.additions),
                    fmt_int(part.parameters),
                    "",
                ]
            )
    print()
    print(format_table(["convolution", "mult-adds", "additions", "parameters", "vs normal"], rows))
    print()
    k2 = "k^2"
    m = f"{args.depth_multiplier} x " if args.depth_multiplier > 1 else ""
    print(
        f"rule of thumb: separable / normal = {m}(1/C_out + 1/{k2}) = {m}(1/{args.filters} + "
        f"1/{_kernel_elems(kernel)}) = {comparison.rule:.4f} ({fmt_ratio(1 / comparison.rule)})"
    )
    print("mult-adds are scalar multiplications; FLOPs = 2 x mult-adds")
    return 0


def _kernel_elems(kernel: tuple[int, ...]) -> int:
    out = 1
    for k in kernel:
        out *= k
    return out
