"""A guided tour of separable convolutions on a real photograph, with counted multiplications.

The tour walks through the idea in five steps, each computed now, on matplotlib's sample
photograph of Grace Hopper (shipped with matplotlib, nothing is downloaded):

1. A separable kernel: Sobel is a column times a row; two 1-D passes give the same image with
   6 instead of 9 multiplications per pixel (counted by :mod:`sepconv.reference`).
2. Most kernels are not separable, but many are low rank: the singular values of named kernels
   and of a random one, and filtering with the fewest separable terms.
3. Depthwise separable convolution: the worked example (12x12x3 input, 256 filters of 5x5)
   run by the counting reference engine, 1,228,800 against 4,800 + 49,152 multiplications,
   and the full kernel that the separable layer is equivalent to.
4. In a network: MobileNetV1 against the same network with full convolutions
   (:func:`sepconv.profile`).
5. Converting a trained model: the convolutions of a filter bank replaced by their separable
   approximations (:mod:`sepconv.convert`).

It only calls sepconv's public API. :func:`run` returns the steps (text, numbers, figure
names); ``sepconv tour --out DIR`` prints them and writes ``DIR/README.md`` with the figures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cost, factor, kernels, reference
from ._files import atomic_write

__all__ = ["Step", "run", "load_photo", "write"]


@dataclass
class Step:
    """One step of the tour: a title, the text with this run's numbers, and its figure."""

    title: str
    text: str
    numbers: dict[str, Any] = field(default_factory=dict)
    figure: str | None = None


def load_photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data: ``(600, 512, 3)`` float64, 0 to 1."""
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return matplotlib.image.imread(path).astype(np.float64) / 255.0


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _block_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Shrink an ``(H, W, C)`` image to ``(size, size, C)`` by averaging blocks of its centre."""
    h, w = image.shape[:2]
    block = min(h, w) // size
    top, left = (h - block * size) // 2, (w - block * size) // 2
    crop = image[top:top + block * size, left:left + block * size]
    return crop.reshape(size, block, size, block, -1).mean(axis=(1, 3))


def _fmt(value: int) -> str:
    return f"{value:,}"


def _sobel_step(photo: np.ndarray) -> tuple[Step, dict[str, Any]]:
    gray = _gray(photo)
    sobel = kernels.get("sobel-x")
    factors = factor.separate(sobel)
    column, row = factors.terms[0]
    full = reference.Counter()
    direct = reference.conv2d(gray[..., None], sobel[:, :, None, None], padding="same",
                              counter=full)
    passes = reference.Counter()
    separated = reference.spatially_separable_conv2d(
        gray[..., None], column.reshape(3, 1, 1, 1), row.reshape(1, 3, 1, 1), padding="same",
        counter=passes)
    difference = float(np.max(np.abs(direct - separated)))
    pixels = gray.size
    numbers = {
        "image_shape": list(gray.shape),
        "column": column.tolist(),
        "row": row.tolist(),
        "direct_multiplications": full.multiplications,
        "separable_multiplications": passes.multiplications,
        "per_pixel": [full.multiplications // pixels, passes.multiplications // pixels],
        "max_abs_difference": difference,
    }
    text = (
        f"Sobel-x is the column {column.astype(int).tolist()} times the row "
        f"{row.astype(int).tolist()} (`sepconv.factor.separate`). On the "
        f"{gray.shape[0]}x{gray.shape[1]} photograph the 3x3 kernel costs "
        f"{_fmt(full.multiplications)} multiplications ({numbers['per_pixel'][0]} per pixel); "
        f"a 3x1 pass then a 1x3 pass cost {_fmt(passes.multiplications)} "
        f"({numbers['per_pixel'][1]} per pixel), counted by `sepconv.reference` as it ran. "
        f"The two results differ by at most {difference:.1e}. For a k x k kernel the saving "
        f"is k^2 against 2k: {cost.filtering((15, 15)).multiplications} against "
        f"{cost.filtering((15, 15), rank=1).multiplications} at k = 15."
    )
    return Step("A separable kernel: Sobel", text, numbers), {
        "gray": gray, "edges": direct[..., 0], "kernel": sobel, "column": column, "row": row}


def _lowrank_step(gray: np.ndarray) -> tuple[Step, dict[str, Any]]:
    from . import filtering

    rng = np.random.default_rng(0)
    named = {
        "random 7x7": rng.standard_normal((7, 7)),
        "gaussian σ=2": kernels.get("gaussian", sigma=2.0),
        "laplacian of gaussian σ=2": kernels.get("log", sigma=2.0),
        "gabor θ=30°": kernels.get("gabor", sigma=3.0, theta=np.pi / 6, wavelength=8.0),
        "disk r=7": kernels.get("disk", radius=7),
    }
    ranks = {}
    spectra = {}
    for name, kernel in named.items():
        fact = factor.lowrank(kernel)
        ranks[name] = fact.rank
        spectra[name] = (fact.singular_values / fact.singular_values[0]).tolist()
    log = named["laplacian of gaussian σ=2"]
    image = gray.astype(np.float32)
    direct = filtering.correlate(image, log, method="direct")
    lowrank = filtering.correlate(image, log, method="lowrank")
    scale = float(np.max(np.abs(direct)))
    error = float(np.max(np.abs(direct - lowrank))) / scale
    chosen = filtering.plan(log, image.shape, image.dtype)
    k = log.shape
    numbers = {"ranks": ranks, "spectra": spectra, "log_shape": list(k),
               "lowrank_max_relative_error": error,
               "direct_per_pixel": cost.filtering(k).multiplications,
               "lowrank_per_pixel": cost.filtering(k, rank=ranks["laplacian of gaussian σ=2"])
               .multiplications,
               "auto_method": getattr(chosen, "method", str(chosen))}
    listing = "; ".join(f"{name} has rank {r}" for name, r in ranks.items())
    text = (
        "Most kernels are not separable: a random kernel has full rank, and rank-1 matrices "
        "are a vanishing subset of all matrices, which is why spatially separable layers are "
        "rarely trained. But many useful kernels are a short sum of separable ones. At the "
        f"default tolerance, {listing}. The {k[0]}x{k[1]} Laplacian of Gaussian costs "
        f"{numbers['direct_per_pixel']} multiplications per pixel directly and "
        f"{numbers['lowrank_per_pixel']} as {ranks['laplacian of gaussian σ=2']} separable "
        f"terms; `sepconv.correlate(..., method='lowrank')` matches the direct result within "
        f"{error:.1e} of its range, and `method='auto'` picks '{numbers['auto_method']}' for "
        "this image."
    )
    return Step("Most kernels are not separable, many are low rank", text, numbers), {
        "spectra": spectra, "log_response": lowrank}


def _depthwise_step(photo: np.ndarray) -> tuple[Step, dict[str, Any]]:
    patch = _block_mean(photo, 12)
    rng = np.random.default_rng(1)
    full_kernel = rng.standard_normal((5, 5, 3, 256))
    depthwise_kernel = rng.standard_normal((5, 5, 3, 1))
    pointwise_kernel = rng.standard_normal((1, 1, 3, 256))
    normal = reference.Counter()
    y_normal = reference.conv2d(patch, full_kernel, counter=normal)
    separable = reference.Counter()
    y_sep = reference.separable_conv2d(patch, depthwise_kernel, pointwise_kernel,
                                       counter=separable)
    # A depthwise separable layer is a normal convolution whose kernel is constrained:
    # K[:, :, c, o] = D[:, :, c] * P[c, o].
    equivalent = depthwise_kernel[:, :, :, 0, None] * pointwise_kernel[0, 0][None, None]
    y_equivalent = reference.conv2d(patch, equivalent)
    same = cost.compare((12, 12, 3), 5, 256, padding="same")
    valid = cost.compare((12, 12, 3), 5, 256)
    numbers = {
        "output_shape": list(y_normal.shape),
        "normal": normal.multiplications,
        "separable": separable.multiplications,
        "by_operation": dict(separable.by_operation),
        "equivalent_max_abs_difference": float(np.max(np.abs(y_sep - y_equivalent))),
        "same": {"normal": same.normal.multiplications,
                 "separable": same.depthwise_separable.multiplications},
        "ratio": valid.ratio(valid.depthwise_separable),
        "rule": valid.rule,
    }
    parts = separable.by_operation
    text = (
        "A 12x12x3 patch of the photograph, 256 filters of 5x5, no padding: the output is "
        f"{'x'.join(map(str, y_normal.shape))}. The normal convolution performed "
        f"{_fmt(normal.multiplications)} multiplications; the depthwise step "
        f"{_fmt(parts['depthwise_conv2d'])} and the pointwise step "
        f"{_fmt(parts['pointwise_conv2d'])}, {_fmt(separable.multiplications)} together, "
        f"{numbers['ratio']:.1f}x fewer (the rule 1/C_out + 1/k^2 = {valid.rule:.4f}). "
        "The separable layer is the normal convolution whose kernel is the depthwise kernel of "
        "each input channel times that channel's pointwise weights; running that kernel "
        f"directly gives the same output within {numbers['equivalent_max_abs_difference']:.1e}. "
        f"With 'same' padding: {_fmt(same.normal.multiplications)} against "
        f"{_fmt(same.depthwise_separable.multiplications)}."
    )
    return Step("Depthwise separable: the worked example", text, numbers), {
        "valid": valid, "same": same}


def _mobilenet_step() -> tuple[Step, dict[str, Any]]:
    from .models import mobilenet_v1
    from .profiling import profile

    separable = profile(mobilenet_v1(), (1, 3, 224, 224))
    full = profile(mobilenet_v1(separable=False), (1, 3, 224, 224))
    numbers = {
        "separable": {"mult_adds": separable.total_mult_adds,
                      "parameters": separable.total_parameters},
        "full": {"mult_adds": full.total_mult_adds, "parameters": full.total_parameters},
    }
    text = (
        "MobileNetV1 (Howard et al. 2017) stacks 13 depthwise separable blocks. At width 1.0 "
        f"and 224x224 it needs {separable.total_mult_adds / 1e6:.1f}M mult-adds and "
        f"{separable.total_parameters / 1e6:.1f}M parameters; the same network with full 3x3 "
        f"convolutions needs {full.total_mult_adds / 1e6:.1f}M and "
        f"{full.total_parameters / 1e6:.1f}M "
        f"({full.total_mult_adds / separable.total_mult_adds:.1f}x more mult-adds), the "
        "paper's Table 4. Counted by `sepconv.profile`, checked against "
        "torch's FLOP counter."
    )
    return Step("In a network: MobileNetV1", text, numbers), {"separable": separable,
                                                             "full": full}


def _convert_step(gray: np.ndarray) -> tuple[Step, dict[str, Any]]:
    import torch
    from torch import nn

    from .convert import convert

    # A bank of 16 oriented Gabor and Gaussian-derivative filters, the kind of filters the first
    # layer of a trained network learns, as the weights of an nn.Conv2d.
    bank = [kernels.get("gabor", sigma=2.5, theta=t, wavelength=6.0, size=9)
            for t in np.linspace(0, np.pi, 8, endpoint=False)]
    bank += [kernels.get("gabor", sigma=2.5, theta=t, wavelength=6.0, size=9, phase=np.pi / 2)
             for t in np.linspace(0, np.pi, 8, endpoint=False)]
    conv = nn.Conv2d(1, 16, 9, padding=4, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.stack(bank)[:, None]))
    model = nn.Sequential(conv)
    x = torch.from_numpy(gray[None, None])
    rows = []
    for rtol in (0.3, 0.1, 0.01):
        _, report = convert(model, method="spatial", rtol=rtol, min_speedup=0,
                            input_size=tuple(x.shape), example_input=x)
        row = report.layers[0]
        rows.append({"rtol": rtol, "intermediate_channels": row.rank,
                     "weight_error": row.relative_error,
                     "output_error": report.output_relative_error,
                     "speedup": row.speedup})
    text = (
        "`sepconv.convert` replaces the convolutions of a trained model by separable ones. A "
        "bank of 16 oriented 9x9 Gabor filters (what first layers learn) as one nn.Conv2d, "
        "factored into 9x1 filters feeding 1x9 filters (Jaderberg et al. 2014): "
        + "; ".join(
            f"{r['intermediate_channels']} intermediate channels give a weight error of "
            f"{r['weight_error']:.3f}, an output error of {r['output_error']:.3f} on the "
            f"photograph and {r['speedup']:.1f}x fewer mult-adds" for r in rows)
        + "."
    )
    return Step("Converting a trained layer", text, {"spatial": rows}), {}


def _draw(steps: list[Step], data: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig: Any, name: str, step: Step) -> None:
        try:
            atomic_write(out / name, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
        finally:
            plt.close(fig)
        step.figure = name

    sobel = data[0]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    axes[0].imshow(sobel["gray"], cmap="gray")
    axes[0].set_title("photograph")
    axes[1].imshow(np.abs(sobel["edges"]), cmap="magma")
    axes[1].set_title("|Sobel-x|: column pass then row pass")
    kernel_ax = axes[2]
    kernel_ax.imshow(sobel["kernel"], cmap="coolwarm", vmin=-2, vmax=2)
    for (i, j), value in np.ndenumerate(sobel["kernel"]):
        kernel_ax.text(j, i, f"{value:g}", ha="center", va="center")
    column = ", ".join(f"{v:g}" for v in sobel["column"])
    row = ", ".join(f"{v:g}" for v in sobel["row"])
    kernel_ax.set_title(f"[{column}]ᵀ · [{row}]")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, "1-sobel.png", steps[0])

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, values in data[1]["spectra"].items():
        axes[0].semilogy(range(1, len(values) + 1), np.maximum(values, 1e-17), "o-",
                         label=name)
    axes[0].set_xlabel("singular value index")
    axes[0].set_ylabel("singular value / largest")
    axes[0].set_title("rank = how many terms stand above the tolerance")
    axes[0].legend(fontsize=8)
    axes[1].imshow(data[1]["log_response"], cmap="gray")
    axes[1].set_title("Laplacian of Gaussian as 2 separable terms")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    save(fig, "2-lowrank.png", steps[1])

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "valid", "12x12x3, 5x5, 256 filters, 'valid'"),
                           (axes[1], "same", "the same with 'same' padding")):
        comparison = data[2][key]
        dw, pw = (p.multiplications for p in comparison.depthwise_separable.parts)
        spatial = comparison.spatially_separable.multiplications
        ax.bar(["normal"], [comparison.normal.multiplications], color="tab:gray")
        ax.bar(["depthwise\nseparable"], [dw], color="tab:blue", label="depthwise")
        ax.bar(["depthwise\nseparable"], [pw], bottom=[dw], color="tab:orange",
               label="pointwise")
        ax.bar(["spatially\nseparable"], [spatial], color="tab:green")
        for x, value in enumerate([comparison.normal.multiplications, dw + pw, spatial]):
            ax.text(x, value, f"{value:,}", ha="center", va="bottom")
        ax.set_ylabel("multiplications")
        ax.set_title(title)
        ax.legend()
    save(fig, "3-worked-example.png", steps[2])

    fig, ax = plt.subplots(figsize=(11, 4))

    def by_block(prof: Any) -> dict[str, dict[str, float]]:
        blocks: dict[str, dict[str, float]] = {}
        for r in prof.rows:
            if not r.mult_adds:
                continue
            parts = r.name.split(".")
            block = f"{int(parts[1]) + 1}" if parts[0] == "blocks" else parts[0]
            kind = "depthwise" if "DW" in r.kind else "other"
            entry = blocks.setdefault(block, {"depthwise": 0.0, "other": 0.0})
            entry[kind] += r.mult_adds / 1e6
        return blocks

    full, sep = by_block(data[3]["full"]), by_block(data[3]["separable"])
    names = list(full)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [sum(full[n].values()) for n in names], 0.4, color="tab:gray",
           label="full 3x3 convolutions")
    ax.bar(x + 0.2, [sep[n]["depthwise"] for n in names], 0.4, color="tab:blue",
           label="MobileNetV1: depthwise")
    ax.bar(x + 0.2, [sep[n]["other"] for n in names], 0.4,
           bottom=[sep[n]["depthwise"] for n in names], color="tab:orange",
           label="MobileNetV1: pointwise (stem, classifier)")
    ax.set_xticks(x, names)
    ax.set_xlabel("layer: stem, separable blocks 1-13, classifier")
    ax.set_ylabel("million mult-adds")
    ax.set_title("MobileNetV1 1.0-224 against the same network with full convolutions")
    ax.set_ylim(0, 1.3 * max(sum(v.values()) for v in full.values()))
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    save(fig, "4-mobilenet.png", steps[3])


def run(out: str | os.PathLike[str] | None = None, *, figures: bool = True) -> list[Step]:
    """Run the tour; with ``out``, also write ``out/README.md``, ``out/tour.json`` and figures.

    Returns the steps, each with its text and numbers. Everything is computed on this call.
    """
    folder = None if out is None else Path(out)
    if folder is not None and not folder.parent.exists():
        raise FileNotFoundError(f"`out`: the folder {str(folder.parent)!r} does not exist")
    photo = load_photo()
    step1, data1 = _sobel_step(photo)
    step2, data2 = _lowrank_step(data1["gray"])
    step3, data3 = _depthwise_step(photo)
    step4, data4 = _mobilenet_step()
    step5, data5 = _convert_step(data1["gray"])
    steps = [step1, step2, step3, step4, step5]
    if folder is not None:
        folder.mkdir(exist_ok=True)
        if figures:
            _draw(steps, [data1, data2, data3, data4, data5], folder)
        write(steps, folder)
    return steps


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write(steps: list[Step], folder: Path) -> None:
    """Write the steps as ``README.md`` (with figures) and ``tour.json`` into ``folder``."""
    lines = ["# A tour of separable convolutions", "",
             "Written by `sepconv tour`; every number was computed by that run.", ""]
    for n, step in enumerate(steps, 1):
        lines += [f"## {n}. {step.title}", "", step.text, ""]
        if step.figure:
            lines += [f"![{step.title}]({step.figure})", ""]
    _atomic_write(folder / "README.md", "\n".join(lines))
    payload = [{"title": s.title, "numbers": s.numbers, "figure": s.figure} for s in steps]
    _atomic_write(folder / "tour.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
