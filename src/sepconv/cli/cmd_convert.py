"""``sepconv convert``: replace a trained model's convolutions by separable approximations."""

from __future__ import annotations

import argparse
import os

from ._common import print_json, shape_type

NAME = "convert"
ORDER = 60
HELP = "replace the convolutions of a trained model by separable approximations"
DESCRIPTION = """\
Factor every plain convolution of a trained model into a depthwise separable layer (per input
channel SVD, --method depthwise) or a k x 1 then 1 x k pair (Jaderberg et al. 2014, --method
spatial), keep the replacements that save at least --min-speedup times the mult-adds, print a
per-layer report and save the converted weights. The model is a registered architecture
(see 'sepconv profile --list') whose weights are read from a state dict with
torch.load(weights_only=True). A pickled whole model runs code when it is loaded: it is read
only with --trust-pickle. The output file holds tensors and numbers only; load it with
sepconv.convert.load(path, model).

examples:
  sepconv convert mnist_conv converted.pt --weights runs/train/mnist_conv.pt --rank 2 \
      --input-size 1x1x28x28
  sepconv convert mobilenet_v1_conv mb.pt --rtol 0.3 --input-size 1x3x224x224
  sepconv convert model.pt converted.pt --trust-pickle --method spatial --rank 8
  sepconv convert mnist_conv c.pt --weights runs/train/mnist_conv.pt --rtol 0.3 --evaluate digits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a registered model name, or a pickled model file (--trust-pickle)")
    parser.add_argument("output", metavar="OUTPUT", help="where to write the converted model")
    parser.add_argument("--weights", metavar="FILE",
                        help="state dict (or a checkpoint with a 'state_dict' entry) to load")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument of the model builder (repeatable), e.g. "
                        "width_multiplier=0.5")
    parser.add_argument("--method", choices=("depthwise", "spatial"), default="depthwise")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--rank", type=int, metavar="R",
                       help="terms per layer: depth multiplier or intermediate channels")
    group.add_argument("--rtol", type=float, metavar="T",
                       help="per layer, the fewest terms within this relative weight error")
    # Accuracy-keeping conversion: global budget, calibration, batch norm, fine-tuning.
    group.add_argument("--budget", type=float, metavar="B",
                       help="keep at most this fraction (0 < B <= 1) of the convertible layers' "
                       "mult-adds, ranks allocated per layer by error versus cost")
    parser.add_argument("--calibrate", choices=("digits",), metavar="DATA",
                        help="'digits': fit each layer to the original's output on 1,024 "
                        "training digits of 'sepconv train' (data-aware factors)")
    parser.add_argument("--recalibrate-bn", action="store_true",
                        help="re-estimate batch-norm statistics on the training digits")
    parser.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                        help="fine-tune on the training digits, distilling from the original")
    parser.add_argument("--linear", action="store_true",
                        help="also factor nn.Linear layers and 1x1 convolutions (SVD)")
    parser.add_argument("--measure-latency", action="store_true",
                        help="measure CPU latency per layer and model; --min-speedup then "
                        "judges measured time")
    parser.add_argument("--input-size", type=shape_type, metavar="NxCxHxW",
                        help="input shape, to count mult-adds exactly (e.g. 1x3x224x224)")
    parser.add_argument("--min-speedup", type=float, default=1.0, metavar="S",
                        help="keep a replacement only if it needs S times fewer mult-adds "
                        "(default 1)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow MODEL to be a pickled nn.Module file (runs its code)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--evaluate", choices=("digits",), metavar="DATA",
                        help="'digits': test accuracy before and after on the held-out MNIST "
                        "digits of 'sepconv train' (same split, seed 0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _value(text: str) -> object:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _model_kwargs(items: list[str]) -> dict[str, object]:
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg must look like KEY=VALUE, got {item!r}")
        kwargs[key] = _value(value)
    return kwargs


def _load_model(args: argparse.Namespace):  # noqa: ANN202 - torch is imported lazily
    import torch
    from torch import nn

    from sepconv import models

    if os.path.isfile(args.model):
        if not args.trust_pickle:
            raise ValueError(
                f"MODEL {args.model!r} is a file: a pickled model runs code when loaded; pass "
                f"--trust-pickle if you trust it, or give a registered model name and --weights")
        model = torch.load(args.model, map_location="cpu", weights_only=False)
        if not isinstance(model, nn.Module):
            raise ValueError(f"MODEL {args.model!r} holds a {type(model).__name__}, "
                             f"not an nn.Module")
        return model
    model = models.create_model(args.model, **_model_kwargs(args.model_arg))
    if args.weights:
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"--weights {args.weights!r} is not a state dict")
        model.load_state_dict(state)
    return model


def run(args: argparse.Namespace) -> int:
    if os.path.exists(args.output) and not args.force:
        raise ValueError(f"OUTPUT {args.output!r} exists; pass --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise ValueError(f"OUTPUT folder {folder!r} does not exist")
    if args.input_size is not None and len(args.input_size) not in (3, 4, 5):
        raise ValueError(f"--input-size must be N x C x spatial sizes, got "
                         f"{'x'.join(map(str, args.input_size))}")

    from sepconv import convert

    model = _load_model(args).eval()
    digits = _digits(args) if args.calibrate or args.recalibrate_bn or args.finetune else None
    try:
        converted, report = convert.convert(
            model, method=args.method, rank=args.rank, rtol=args.rtol,
            input_size=args.input_size, min_speedup=args.min_speedup,
            budget=args.budget, linear=args.linear, measure_latency=args.measure_latency,
            calibration=digits.train_images[:1024] if args.calibrate else None)
    except RuntimeError as exc:  # the model's own forward pass on the digits or input size
        raise ValueError(f"the model does not run on inputs of size "
                         f"{'x'.join(map(str, args.input_size or ()))} "
                         f"({' '.join(str(exc).split())[:120]})") from None
    if args.recalibrate_bn or args.finetune:
        convert.recalibrate_batchnorm(converted, digits.train_images.split(500))
    if args.finetune:
        convert.finetune(converted, list(zip(digits.train_images.split(64),
                                             digits.train_labels.split(64))),
                         epochs=args.finetune, teacher=model, progress=not args.json)
    # Evaluating may re-estimate batch-norm statistics: do it before saving.
    accuracy = _evaluate(args.evaluate, model, converted) if args.evaluate else None
    convert.save(converted, report, args.output,
                 metadata={"model": args.model, "model_args": _model_kwargs(args.model_arg),
                           "method": args.method})
    if args.json:
        print_json({**report.to_dict(), **({"accuracy": accuracy} if accuracy else {})})
        return 0
    print(report)
    print(f"replaced {len(report.replaced)} of {len(report.layers)} convolutions; "
          f"wrote {args.output}")
    if accuracy:
        print(f"test accuracy on the held-out digits: {accuracy['before']:.2%} before, "
              f"{accuracy['after']:.2%} after conversion, {accuracy['recalibrated']:.2%} after "
              f"re-estimating batch-norm statistics on the training digits")
    return 0


def _evaluate(data: str, model, converted) -> dict[str, float]:  # noqa: ANN001
    """Accuracy before, after, and after re-estimating batch norm (which updates ``converted``)."""
    from sepconv import experiment

    digits = experiment.load_digits(seed=0)
    try:
        before = experiment.evaluate(model, digits.test_images, digits.test_labels)
        after = experiment.evaluate(converted, digits.test_images, digits.test_labels)
    except RuntimeError as exc:
        raise ValueError(f"--evaluate {data}: the model does not take 1x28x28 digits "
                         f"({' '.join(str(exc).split())[:120]})") from None
    experiment.recompute_batch_norm(converted, digits.train_images)
    converted.eval()
    recalibrated = experiment.evaluate(converted, digits.test_images, digits.test_labels)
    return {"before": before, "after": after, "recalibrated": recalibrated}


def _digits(args: argparse.Namespace):  # noqa: ANN202 - torch is imported lazily
    """The digits of 'sepconv train' for --calibrate, --recalibrate-bn and --finetune."""
    from sepconv import experiment

    if args.finetune < 0:
        raise ValueError(f"--finetune must be a number of epochs >= 0, got {args.finetune}")
    if args.input_size is None:
        args.input_size = (1, 1, 28, 28)
    return experiment.load_digits(seed=0)

