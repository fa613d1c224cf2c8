"""``sepconv profile``: per-layer parameters and mult-adds of a registered model."""

from __future__ import annotations

import argparse

from ._common import format_table, markdown_table, percent, positive_int, print_json, thousands

NAME = "profile"
ORDER = 40
HELP = "per-layer parameters and mult-adds of a model (MobileNetV1, ...)"
DESCRIPTION = """\
Build a registered model and count, layer by layer, its parameters and mult-adds (scalar
multiplications, the MobileNet paper's unit; FLOPs = 2 x mult-adds) on one input of the given
resolution. Convolutions and fully connected layers are counted by sepconv.cost, everything else
by torch.utils.flop_counter (batch norm, activations and pooling count 0, as in the paper).
Parameters are learnable elements (batch norm's running statistics are not counted).

models: mobilenet_v1, mobilenet_v1_conv (the paper's "Conv MobileNet"), mnist_separable,
mnist_conv (the twins of 'sepconv train').

examples:
  sepconv profile mobilenet_v1
  sepconv profile mobilenet_v1 --width 0.5 --resolution 160
  sepconv profile mobilenet_v1_conv --summary
  sepconv profile mobilenet_v1 --width 0.25 --markdown
  sepconv profile mnist_separable --json
"""


#: Library argument names as the user typed them on this command line.
ALIASES = {"name": "MODEL", "width_multiplier": "--width"}


def _width(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.5, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="a registered model name (see the list above)"
    )
    parser.add_argument(
        "--width",
        type=_width,
        default=None,
        metavar="ALPHA",
        help="width multiplier alpha (default: the model's, 1.0)",
    )
    parser.add_argument(
        "--resolution",
        type=positive_int,
        default=None,
        metavar="R",
        help="input height and width (default: the model's, 224 for MobileNet)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="batch size; counts cover the whole batch (default 1)",
    )
    parser.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        metavar="K",
        help="classifier outputs (default: the model's)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print only the totals per layer type (the paper's Table 2)",
    )
    parser.add_argument(
        "--all-layers",
        action="store_true",
        help="also list layers with no parameters and no mult-adds",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--markdown", action="store_true", help="print a markdown table")


#: The option of this command that sets each keyword argument of a model's builder.
OPTIONS = {
    "width_multiplier": "--width",
    "resolution": "--resolution",
    "num_classes": "--num-classes",
}


def _create(name: str, kwargs: dict[str, object]):  # noqa: ANN202 - a torch.nn.Module
    """Build model ``name``; an option it does not take is refused in one line."""
    import re

    from sepconv import models

    try:
        return models.create_model(name, **kwargs)
    except TypeError as exc:
        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not found or found.group(1) not in OPTIONS:
            raise
        raise ValueError(
            f"model {name!r} takes no {OPTIONS[found.group(1)]} option; leave it out"
        ) from None


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from sepconv.profiling import profile

    kwargs = {}
    if args.width is not None:
        kwargs["width_multiplier"] = args.width
    if args.resolution is not None:
        kwargs["resolution"] = args.resolution
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = _create(args.model, kwargs)
    channels, height, width = model.default_input_size
    result = profile(model, (args.batch, channels, height, width))
    if args.json:
        print_json({"name": args.model, "arguments": kwargs, **result.to_dict()})
        return 0
    # Name the model as the user typed it, with the class that builds it; a model built with
    # full convolutions in place of its separable layers is named as that twin.
    built = result.model
    if getattr(model, "separable", True) is False:
        built = f"full-convolution twin of {built}"
    result = dataclasses.replace(result, model=f"{args.model} ({built})")
    kinds = result.by_kind()
    if args.summary:
        # Shares among the layers that have mult-adds (convolutions, fully connected), as the
        # paper's Table 2; layers with parameters only (batch norm) are listed without a share.
        counted = [k.kind for k in kinds if k.mult_adds]
        rows = [
            [
                s.kind,
                s.layers,
                thousands(s.mult_adds),
                percent(s.mult_add_share),
                thousands(s.parameters),
                percent(s.parameter_share),
            ]
            for s in result.by_kind(counted)
        ]
        rows += [
            [s.kind, s.layers, "0", "-", thousands(s.parameters), "-"]
            for s in kinds
            if not s.mult_adds and s.parameters
        ]
        headers = ["type", "layers", "mult-adds", "share", "parameters", "share"]
        print(markdown_table(headers, rows) if args.markdown else format_table(headers, rows))
        print()
        print(
            "shares are among the layers with mult-adds (convolutions and fully connected "
            "layers), as in the paper's Table 2"
        )
        print(result.summary_line())
        return 0
    skip = not args.all_layers
    print(result.to_markdown(skip_empty=skip) if args.markdown else result.to_text(skip_empty=skip))
    return 0
