"""The computations of the tour, on the photograph, with counted multiplications.

Each function returns a :class:`Step` (title, paragraphs with this run's numbers, the numbers
themselves) and the arrays its figures draw. Only sepconv's public API is called: the counting
engine :mod:`sepconv.reference`, :mod:`sepconv.cost`, :mod:`sepconv.factor`,
:mod:`sepconv.kernels`, :mod:`sepconv.filtering`, :mod:`sepconv.models`, :mod:`sepconv.profiling`
and :mod:`sepconv.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import cost, factor, kernels, reference
from .._text import ratio_text
from .._text import thousands as _fmt

__all__ = [
    "Figure",
    "Step",
    "gray",
    "shrink",
    "spatial",
    "rare",
    "normal",
    "depthwise",
    "pointwise",
    "network",
]


@dataclass
class Figure:
    """One figure of a step: its file name, what it shows (caption) and a short alt text."""

    name: str
    caption: str
    alt: str


@dataclass
class Step:
    """One step of the tour: a title, paragraphs with this run's numbers, and its figures.

    ``summary`` is the one line the command prints; ``numbers`` holds every number the
    paragraphs and figures show (written to ``report.json``).
    """

    key: str
    title: str
    paragraphs: list[str]
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def gray(rgb: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) of an ``(H, W, 3)`` image in 0..1."""
    return rgb @ np.array([0.299, 0.587, 0.114])


def shrink(image: np.ndarray, size: int) -> np.ndarray:
    """The centred square of an ``(H, W, C)`` image averaged down to ``(size, size, C)``."""
    h, w = image.shape[:2]
    block = min(h, w) // size
    top, left = (h - block * size) // 2, (w - block * size) // 2
    crop = image[top : top + block * size, left : left + block * size]
    return crop.reshape(size, block, size, block, -1).mean(axis=(1, 3))


def _noise_floor(value: float, scale: float) -> float:
    """Differences below 1e-12 of the data's scale are rounding: reported as 0."""
    return 0.0 if value <= 1e-12 * max(scale, 1.0) else value


# --- 1. spatially separable ------------------------------------------------------------------


def spatial(photo: np.ndarray) -> tuple[Step, dict[str, Any]]:
    image = gray(photo)
    h, w = image.shape
    sobel = kernels.get("sobel-x")
    column, row = factor.separate(sobel).terms[0]
    sobel_y = kernels.get("sobel-y")
    column_y, row_y = factor.separate(sobel_y).terms[0]
    x = image[..., None]
    direct_counter = reference.Counter()
    direct = reference.conv2d(x, sobel[:, :, None, None], padding="same", counter=direct_counter)
    column_counter = reference.Counter()
    after_column = reference.conv2d(
        x, column.reshape(3, 1, 1, 1), padding="same", counter=column_counter
    )
    row_counter = reference.Counter()
    after_row = reference.conv2d(
        after_column, row.reshape(1, 3, 1, 1), padding="same", counter=row_counter
    )
    difference = _noise_floor(
        float(np.max(np.abs(direct - after_row))), float(np.max(np.abs(direct)))
    )
    pixels = h * w
    per_pixel = {
        "direct": direct_counter.multiplications // pixels,
        "column_pass": column_counter.multiplications // pixels,
        "row_pass": row_counter.multiplications // pixels,
    }
    k15 = (
        cost.filtering((15, 15)).multiplications,
        cost.filtering((15, 15), rank=1).multiplications,
    )
    numbers = {
        "image_shape": [h, w],
        "sobel_x": {"column": column.tolist(), "row": row.tolist()},
        "sobel_y": {"column": column_y.tolist(), "row": row_y.tolist()},
        "direct_multiplications": direct_counter.multiplications,
        "column_pass_multiplications": column_counter.multiplications,
        "row_pass_multiplications": row_counter.multiplications,
        "separable_multiplications": column_counter.multiplications + row_counter.multiplications,
        "per_pixel": per_pixel,
        "max_abs_difference": difference,
        "k15_per_pixel": list(k15),
    }
    col = [int(v) for v in column]
    rw = [int(v) for v in row]
    paragraphs = [
        "A 2-D kernel is *spatially separable* when it is a column times a row (an outer "
        f"product). Sobel-x, the kernel that finds vertical edges, is the column {col} "
        f"(smooth vertically) times the row {rw} (difference horizontally); "
        "`sepconv.factor.separate` finds these factors (whole numbers, as float64 arrays).",
        f"On the {h}×{w} photograph, the 3×3 kernel applied directly performed "
        f"{_fmt(direct_counter.multiplications)} multiplications, {per_pixel['direct']} per "
        f"pixel, counted by `sepconv.reference` while it ran. The 3×1 column pass performed "
        f"{_fmt(column_counter.multiplications)} and the 1×3 row pass "
        f"{_fmt(row_counter.multiplications)}: {per_pixel['column_pass']} + "
        f"{per_pixel['row_pass']} = {per_pixel['column_pass'] + per_pixel['row_pass']} per "
        f"pixel, and the same image (largest difference {difference:.3g}). A k×k kernel costs "
        f"k² directly and 2k separated: {k15[0]} against {k15[1]} at k = 15.",
    ]
    summary = (
        f"Sobel as a 3×1 column pass then a 1×3 row pass: {per_pixel['direct']} → "
        f"{per_pixel['column_pass'] + per_pixel['row_pass']} multiplications per pixel "
        f"({_fmt(direct_counter.multiplications)} → "
        f"{_fmt(column_counter.multiplications + row_counter.multiplications)})"
    )
    data = {
        "gray": image,
        "after_column": after_column[..., 0],
        "after_row": after_row[..., 0],
        "direct": direct[..., 0],
        "sobel": sobel,
        "column": column,
        "row": row,
        "sobel_y": sobel_y,
        "column_y": column_y,
        "row_y": row_y,
        "binomial": kernels.get("binomial", size=3),
    }
    return Step(
        "spatial", "A separable kernel: Sobel as a column times a row", paragraphs, summary, numbers
    ), data


# --- 2. why separable kernels are rare, where low rank helps ---------------------------------

RANDOM_TRIALS = 2000
SPECTRUM_SIZE = 15


def _named_kernels() -> dict[str, np.ndarray]:
    n = SPECTRUM_SIZE
    return {
        "Gaussian σ=2": kernels.get("gaussian", sigma=2.0, size=n),
        "Laplacian of Gaussian σ=2": kernels.get("log", sigma=2.0, size=n),
        "Gabor σ=3 θ=30°": kernels.get("gabor", sigma=3.0, theta=np.pi / 6, wavelength=8.0, size=n),
        "disk r=7": kernels.get("disk", radius=(n - 1) // 2),
        f"random {n}×{n}": np.random.default_rng(0).standard_normal((n, n)),
    }


def rare(image: np.ndarray) -> tuple[Step, dict[str, Any]]:
    from .. import filtering

    rng = np.random.default_rng(2)
    trials: dict[str, dict[int, int]] = {}
    for name, draw in (
        ("3×3, normal entries", lambda: rng.standard_normal((3, 3))),
        ("5×5, normal entries", lambda: rng.standard_normal((5, 5))),
        ("3×3, entries in {-1, 0, 1}", lambda: rng.integers(-1, 2, (3, 3)).astype(float)),
    ):
        counts: dict[int, int] = {}
        for _ in range(RANDOM_TRIALS):
            r = factor.rank(draw())
            counts[r] = counts.get(r, 0) + 1
        trials[name] = dict(sorted(counts.items()))

    named = _named_kernels()
    spectra, ranks, errors, tols = {}, {}, {}, {}
    for name, kernel in named.items():
        f = factor.lowrank(kernel)
        s = np.asarray(f.singular_values, dtype=np.float64)
        norm = float(np.sqrt(np.sum(s**2)))
        tail = np.sqrt(np.maximum(np.cumsum((s**2)[::-1])[::-1], 0)) / norm
        spectra[name] = (s / norm).tolist()
        errors[name] = [*tail.tolist(), 0.0]  # error with 0, 1, ..., n terms
        ranks[name] = int(f.rank)
        tols[name] = float(f.tol) / norm
    log = named["Laplacian of Gaussian σ=2"]
    gabor = named["Gabor σ=3 θ=30°"]
    log_factors = factor.lowrank(log)
    default_log = kernels.get("log", sigma=2.0)  # the library's default size for sigma 2
    default_rank = factor.lowrank(default_log).rank
    gabor_factors = factor.lowrank(gabor)

    # The Laplacian of Gaussian on the photograph: directly, and as its separable terms, both
    # run by the counting engine.
    x = image[..., None]
    direct_counter = reference.Counter()
    direct = reference.conv2d(x, log[:, :, None, None], padding="same", counter=direct_counter)
    terms_counter = reference.Counter()
    terms = np.zeros_like(direct)
    for column, row in log_factors.terms:
        terms = terms + reference.spatially_separable_conv2d(
            x,
            column.reshape(-1, 1, 1, 1),
            row.reshape(1, -1, 1, 1),
            padding="same",
            counter=terms_counter,
        )
    scale = float(np.max(np.abs(direct)))
    log_error = _noise_floor(float(np.max(np.abs(direct - terms))) / scale, 1.0)
    image32 = image.astype(np.float32)
    chosen = filtering.plan(log, image32.shape, image32.dtype)
    pixels = image.size
    numbers = {
        "random_trials": RANDOM_TRIALS,
        "random_rank_counts": {k: {str(r): c for r, c in v.items()} for k, v in trials.items()},
        "kernel_size": SPECTRUM_SIZE,
        "ranks": ranks,
        "relative_tolerance": tols,
        "log": {
            "rank": log_factors.rank,
            "direct_multiplications": direct_counter.multiplications,
            "terms_multiplications": terms_counter.multiplications,
            "per_pixel": [
                direct_counter.multiplications // pixels,
                terms_counter.multiplications // pixels,
            ],
            "max_relative_difference": log_error,
            "auto_method": str(getattr(chosen, "method", chosen)),
        },
        "gabor": {
            "rank": gabor_factors.rank,
            "per_pixel": [c.multiplications for c in gabor_factors.cost()],
        },
    }
    separable_int = trials["3×3, entries in {-1, 0, 1}"].get(1, 0)
    full_normal = trials["5×5, normal entries"].get(5, 0)
    n = SPECTRUM_SIZE
    paragraphs = [
        "Most kernels cannot be separated. Of "
        f"{_fmt(RANDOM_TRIALS)} random 5×5 kernels with normally distributed entries, "
        f"{_fmt(full_normal)} had full rank 5, as almost every matrix does: rank-1 matrices "
        "are a set of measure zero. Even among 3×3 kernels with entries in {-1, 0, 1} only "
        f"{_fmt(separable_int)} of {_fmt(RANDOM_TRIALS)} were separable (rank 1). A network "
        "that may only learn separable kernels gives up almost all the kernels it could learn.",
        "But many useful kernels are a short *sum* of separable ones. The singular values of "
        "a kernel say how many: the best r-term approximation leaves an error equal to the "
        "singular values after the r-th (Eckart–Young), and the rank is the number of terms "
        f"needed to bring that error under the tolerance. At {n}×{n}: "
        + ", ".join(f"{name} has rank {r}" for name, r in ranks.items())
        + ".",
        f"The {n}×{n} Laplacian of Gaussian (σ = 2, cut to {n}×{n} like the kernels above; "
        f"by default `kernels.get('log', sigma=2)` and `sepconv factor "
        f"log:sigma=2` make it {'×'.join(map(str, default_log.shape))}, rank {default_rank}) is "
        f"{log_factors.rank} separable terms. On the photograph, "
        f"directly it performed {_fmt(direct_counter.multiplications)} multiplications "
        f"({numbers['log']['per_pixel'][0]} per pixel); as {log_factors.rank} column-then-row "
        f"passes {_fmt(terms_counter.multiplications)} ({numbers['log']['per_pixel'][1]} per "
        f"pixel), and the same response (largest difference {log_error:.3g}, relative to the "
        "response's range). "
        f"`sepconv.correlate` picks '{numbers['log']['auto_method']}' for it on this image. "
        f"The Gabor kernel is rank {gabor_factors.rank}: "
        f"{numbers['gabor']['per_pixel'][0]} against {numbers['gabor']['per_pixel'][1]} "
        "multiplications per pixel.",
    ]
    summary = (
        f"random kernels: {full_normal}/{RANDOM_TRIALS} of 5×5 full rank; "
        f"{'×'.join(map(str, log.shape))} LoG (σ=2) "
        f"rank {log_factors.rank}: {numbers['log']['per_pixel'][0]} → "
        f"{numbers['log']['per_pixel'][1]} multiplications per pixel"
    )
    data = {
        "trials": trials,
        "spectra": spectra,
        "errors": errors,
        "tols": tols,
        "ranks": ranks,
        "log": log,
        "gabor": gabor,
        "log_factors": log_factors,
        "gabor_factors": gabor_factors,
        "log_direct": direct[..., 0],
        "named": named,
        "log_terms": terms[..., 0],
        "image": image,
    }
    return Step(
        "rare",
        "Why separable kernels are rare, and where low rank helps",
        paragraphs,
        summary,
        numbers,
    ), data


# --- 3-5. the worked example: normal, depthwise, pointwise -----------------------------------

SIZE, K, FILTERS = 12, 5, 256


def _worked_weights() -> dict[str, np.ndarray]:
    """Weights of the worked example (Keras layouts), fixed by a seed.

    The depthwise kernels are three image kernels (one per colour channel) so that their
    outputs can be read; the 256 normal and pointwise filters are random, as a freshly
    initialised layer's (He-normal scale).
    """
    rng = np.random.default_rng(1)
    depthwise_kernel = np.stack(
        [
            kernels.get("sobel-x", size=K) / 48.0,
            kernels.get("sobel-y", size=K) / 48.0,
            kernels.get("log", sigma=1.0, size=K) / 0.6,
        ],
        axis=-1,
    )[..., None]  # (5, 5, 3, 1)
    full = rng.standard_normal((K, K, 3, FILTERS)) * np.sqrt(2 / (K * K * 3))
    pointwise_kernel = rng.standard_normal((1, 1, 3, FILTERS)) * np.sqrt(2 / 3)
    return {"full": full, "depthwise": depthwise_kernel, "pointwise": pointwise_kernel}


def normal(photo: np.ndarray) -> tuple[Step, dict[str, Any]]:
    patch = shrink(photo, SIZE)
    weights = _worked_weights()
    one = reference.Counter()
    y_one = reference.conv2d(patch, weights["full"][..., :1], counter=one)
    many = reference.Counter()
    y_many = reference.conv2d(patch, weights["full"], counter=many)
    expected = cost.conv((SIZE, SIZE, 3), K, FILTERS, bias=False)
    numbers = {
        "input_shape": list(patch.shape),
        "kernel_shape": [K, K, 3],
        "one_kernel": {
            "output_shape": list(y_one.shape),
            "multiplications": one.multiplications,
            "per_output_value": K * K * 3,
        },
        "all_kernels": {
            "filters": FILTERS,
            "output_shape": list(y_many.shape),
            "multiplications": many.multiplications,
        },
        "cost_normal": expected.multiplications,
    }
    paragraphs = [
        f"A colour image has depth: the photograph, averaged down to {SIZE}×{SIZE} pixels, is "
        f"a {SIZE}×{SIZE}×3 block (red, green, blue). A normal {K}×{K} convolution then needs "
        f"a {K}×{K}×3 kernel: at each position it multiplies {K}·{K}·3 = {K * K * 3} values "
        f"and sums them to one number. Without padding it fits {SIZE}−{K}+1 = {SIZE - K + 1} "
        f"positions each way, so one kernel gives an {'×'.join(map(str, y_one.shape))} "
        f"output: {_fmt(one.multiplications)} multiplications, counted.",
        f"For {FILTERS} output channels the layer has {FILTERS} such kernels (a {K}×{K}×3×"
        f"{FILTERS} weight) and stacks their outputs into "
        f"{'×'.join(map(str, y_many.shape))}: {_fmt(many.multiplications)} multiplications "
        f"= {FILTERS}·({K}·{K}·3)·({SIZE - K + 1}·{SIZE - K + 1}), as `sepconv.cost` says "
        f"({_fmt(expected.multiplications)}). (Only with 'same' padding would the output "
        f"stay {SIZE}×{SIZE}.)",
    ]
    summary = (
        f"normal convolution: {SIZE}×{SIZE}×3 input, {FILTERS} kernels of {K}×{K}×3 → "
        f"{'×'.join(map(str, y_many.shape))}: {_fmt(many.multiplications)} "
        "multiplications"
    )
    data = {"patch": patch, "weights": weights, "y_one": y_one, "y_many": y_many}
    return Step(
        "normal", "Normal convolution: 12×12×3 → 8×8×256", paragraphs, summary, numbers
    ), data


def depthwise(worked: dict[str, Any]) -> tuple[Step, dict[str, Any]]:
    patch, weights = worked["patch"], worked["weights"]
    counter = reference.Counter()
    y = reference.depthwise_conv2d(patch, weights["depthwise"], counter=counter)
    per_channel = []
    for c in range(3):
        one = reference.Counter()
        reference.conv2d(
            patch[..., c : c + 1], weights["depthwise"][:, :, c : c + 1, :], counter=one
        )
        per_channel.append(one.multiplications)
    expected = cost.depthwise((SIZE, SIZE, 3), K)
    numbers = {
        "kernels": 3,
        "kernel_shape": [K, K, 1],
        "output_shape": list(y.shape),
        "multiplications": counter.multiplications,
        "per_channel_multiplications": per_channel,
        "cost_depthwise": expected.multiplications,
    }
    names = [
        "vertical edges (Sobel-x)",
        "horizontal edges (Sobel-y)",
        "spots (Laplacian of Gaussian)",
    ]
    paragraphs = [
        "A depthwise separable layer splits that work in two. First the *depthwise* step: "
        f"three {K}×{K}×1 kernels, one per input channel. Each slides over its own channel "
        f"only (not over all three) and gives an {SIZE - K + 1}×{SIZE - K + 1}×1 image; "
        f"stacked, they make {'×'.join(map(str, y.shape))}. The depth does not change.",
        "Here the three kernels are image filters, so their outputs can be read: red channel "
        f"→ {names[0]}, green → {names[1]}, blue → {names[2]}. Each channel cost "
        f"{_fmt(per_channel[0])} multiplications ({K}·{K}·{SIZE - K + 1}·{SIZE - K + 1}); all "
        f"three {_fmt(counter.multiplications)}, counted, as `sepconv.cost.depthwise` says "
        f"({_fmt(expected.multiplications)}).",
    ]
    summary = (
        f"depthwise: three {K}×{K}×1 kernels → {'×'.join(map(str, y.shape))}: "
        f"{_fmt(counter.multiplications)} multiplications"
    )
    return Step(
        "depthwise",
        "Part 1, depthwise: one 5×5×1 kernel per channel → 8×8×3",
        paragraphs,
        summary,
        numbers,
    ), {"y": y, "names": names}


def pointwise(worked: dict[str, Any], depthwise_output: np.ndarray) -> tuple[Step, dict]:
    weights = worked["weights"]
    one = reference.Counter()
    y_one = reference.pointwise_conv2d(depthwise_output, weights["pointwise"][..., :1], counter=one)
    many = reference.Counter()
    y_many = reference.pointwise_conv2d(depthwise_output, weights["pointwise"], counter=many)
    whole = reference.Counter()
    y_sep = reference.separable_conv2d(
        worked["patch"], weights["depthwise"], weights["pointwise"], counter=whole
    )
    same_result = _noise_floor(float(np.max(np.abs(y_sep - y_many))), 1.0)
    valid = cost.compare((SIZE, SIZE, 3), K, FILTERS)
    same = cost.compare((SIZE, SIZE, 3), K, FILTERS, padding="same")
    normal_count = valid.normal.multiplications
    total = whole.multiplications
    curve = {}
    for k in (3, 5, 7):
        curve[str(k)] = [
            [
                c_out,
                cost.compare((SIZE * 4, SIZE * 4, 32), k, c_out).depthwise_separable.multiplications
                / cost.compare((SIZE * 4, SIZE * 4, 32), k, c_out).normal.multiplications,
            ]
            for c_out in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
        ]
    numbers = {
        "kernel_shape": [1, 1, 3],
        "one_kernel": {"output_shape": list(y_one.shape), "multiplications": one.multiplications},
        "all_kernels": {
            "filters": FILTERS,
            "output_shape": list(y_many.shape),
            "multiplications": many.multiplications,
        },
        "separable_total": total,
        "by_operation": dict(whole.by_operation),
        "normal": normal_count,
        "ratio": normal_count / total,
        "fraction": total / normal_count,
        "rule": valid.rule,
        "same": {
            "normal": same.normal.multiplications,
            "depthwise": same.depthwise_separable.parts[0].multiplications,
            "pointwise": same.depthwise_separable.parts[1].multiplications,
            "separable": same.depthwise_separable.multiplications,
        },
        "separable_equals_two_steps": same_result,
        "ratio_curve_input": [SIZE * 4, SIZE * 4, 32],
        "ratio_curve": curve,
    }
    parts = whole.by_operation
    paragraphs = [
        f"Then the *pointwise* step: a 1×1×3 kernel walks over every point of the "
        f"{'×'.join(map(str, depthwise_output.shape))} image and mixes its three channels "
        f"into one number, {'×'.join(map(str, y_one.shape))} for {_fmt(one.multiplications)} "
        f"multiplications. {FILTERS} such kernels give {'×'.join(map(str, y_many.shape))}, the "
        f"shape of the normal convolution's output, for {_fmt(many.multiplications)}.",
        f"Together, counted as one separable layer: {_fmt(parts['depthwise_conv2d'])} + "
        f"{_fmt(parts['pointwise_conv2d'])} = {_fmt(total)} multiplications against "
        f"{_fmt(normal_count)}, {total / normal_count:.4f} of the work "
        f"({ratio_text(normal_count / total)}). The fraction is 1/C_out + 1/k² = "
        f"1/{FILTERS} + 1/{K * K} = {valid.rule:.4f} "
        "whenever both layers have the same output size. With 'same' padding (output "
        f"{SIZE}×{SIZE}×{FILTERS}): {_fmt(same.normal.multiplications)} against "
        f"{_fmt(same.depthwise_separable.parts[0].multiplications)} + "
        f"{_fmt(same.depthwise_separable.parts[1].multiplications)} = "
        f"{_fmt(same.depthwise_separable.multiplications)}.",
        "The price: a separable layer can only express kernels of the form depthwise kernel "
        "of each input channel times that channel's pointwise weight, far fewer than a normal "
        "convolution can; networks like MobileNet make up for it with more layers.",
    ]
    summary = (
        f"pointwise: {FILTERS} 1×1×3 kernels → {'×'.join(map(str, y_many.shape))}: "
        f"{_fmt(many.multiplications)}; separable total {_fmt(total)} vs "
        f"{_fmt(normal_count)} ({ratio_text(normal_count / total)}, "
        f"1/C_out + 1/k² = {valid.rule:.4f})"
    )
    data = {"y_one": y_one, "y_many": y_many, "valid": valid, "same": same, "curve": curve}
    return Step(
        "pointwise", "Part 2, pointwise: 1×1×3 kernels → 8×8×256", paragraphs, summary, numbers
    ), data


# --- 6. MobileNetV1 ---------------------------------------------------------------------------


def _layers(prof: Any) -> list[dict[str, Any]]:
    out = []
    for r in prof.rows:
        if not r.mult_adds:
            continue
        if "DW" in r.kind:
            kind = "depthwise"
        elif r.kind == "Conv 1x1":
            kind = "pointwise"
        elif r.kind.startswith("Conv"):
            kind = "convolution"
        else:
            kind = "classifier"
        out.append(
            {
                "name": r.name,
                "kind": kind,
                "mult_adds": int(r.mult_adds),
                "parameters": int(r.parameters),
            }
        )
    return out


def network() -> tuple[Step, dict[str, Any]]:
    from ..models import mobilenet_v1
    from ..profiling import profile

    separable = profile(mobilenet_v1(), (1, 3, 224, 224))
    full = profile(mobilenet_v1(separable=False), (1, 3, 224, 224))
    sep_layers, full_layers = _layers(separable), _layers(full)
    by_kind: dict[str, int] = {}
    for layer in sep_layers:
        by_kind[layer["kind"]] = by_kind.get(layer["kind"], 0) + layer["mult_adds"]
    numbers = {
        "separable": {
            "mult_adds": separable.total_mult_adds,
            "parameters": separable.total_parameters,
            "by_kind": by_kind,
        },
        "full": {"mult_adds": full.total_mult_adds, "parameters": full.total_parameters},
        "ratio": full.total_mult_adds / separable.total_mult_adds,
        "layers": {"separable": sep_layers, "full": full_layers},
    }
    s, f = separable, full
    paragraphs = [
        "MobileNetV1 (Howard et al., 2017) is a stack of 13 depthwise separable blocks after "
        "one normal 3×3 convolution. At width 1.0 and 224×224 input, `sepconv.profile` counts "
        f"{s.total_mult_adds / 1e6:.1f}M multiplications and {s.total_parameters / 1e6:.2f}M "
        "parameters; the same network with every block a full 3×3 convolution needs "
        f"{f.total_mult_adds / 1e6:.1f}M and {f.total_parameters / 1e6:.2f}M "
        f"({f.total_mult_adds / s.total_mult_adds:.1f}x the multiplications and "
        f"{f.total_parameters / s.total_parameters:.1f}x the parameters), the paper's Table 4.",
        "Inside the separable network nearly all the work is in the pointwise 1×1 "
        f"convolutions ({by_kind.get('pointwise', 0) / s.total_mult_adds:.1%}); the "
        f"depthwise layers take {by_kind.get('depthwise', 0) / s.total_mult_adds:.1%}, "
        "small enough to need a logarithmic axis to be seen at all.",
    ]
    summary = (
        f"MobileNetV1 {s.total_mult_adds / 1e6:.1f}M mult-adds vs "
        f"{f.total_mult_adds / 1e6:.1f}M with full convolutions "
        f"({ratio_text(f.total_mult_adds / s.total_mult_adds)})"
    )
    return Step(
        "mobilenet",
        "In a network: MobileNetV1 against its full-convolution twin",
        paragraphs,
        summary,
        numbers,
    ), {"separable": sep_layers, "full": full_layers, "totals": numbers}


def gallery(image: np.ndarray) -> tuple[list[dict[str, Any]], list[dict[str, np.ndarray]]]:
    """Named kernels on the photograph, for the report's kernel chooser.

    Each entry: the kernel's name, shape and rank, and the multiplications per pixel and for
    the whole photograph directly and as separable terms (:func:`sepconv.cost.filtering`,
    the formula the tests check against the counting engine). The responses come from
    :func:`sepconv.correlate` (``mode='nearest'``, ``method='auto'``).
    """
    from .. import filtering

    rng = np.random.default_rng(3)
    chosen = {
        "Sobel-x": kernels.get("sobel-x"),
        "Sobel-y": kernels.get("sobel-y"),
        "Gaussian σ=3": kernels.get("gaussian", sigma=3.0),
        "Laplacian of Gaussian σ=2": kernels.get("log", sigma=2.0, size=15),
        # The Gabor kernel of section 2, so the tour shows one Gabor throughout.
        "Gabor σ=3 θ=30°": kernels.get(
            "gabor", sigma=3.0, theta=np.pi / 6, wavelength=8.0, size=15
        ),
        "disk r=5": kernels.get("disk", radius=5),
        "random": rng.standard_normal((7, 7)),
    }
    h, w = image.shape
    image32 = np.ascontiguousarray(image, dtype=np.float32)
    entries, arrays = [], []
    for name, kernel in chosen.items():
        f = factor.lowrank(kernel)
        direct = cost.filtering(kernel.shape, image_shape=(h, w)).multiplications
        terms = cost.filtering(kernel.shape, rank=f.rank, image_shape=(h, w)).multiplications
        response = filtering.correlate(image32, kernel, mode="nearest")
        plan = filtering.plan(kernel, image32.shape, image32.dtype)
        name = f"{name} {kernel.shape[0]}×{kernel.shape[1]}"
        entries.append(
            {
                "name": name,
                "shape": list(kernel.shape),
                "rank": int(f.rank),
                "direct_multiplications": direct,
                "separable_multiplications": terms,
                "per_pixel": [direct // (h * w), terms // (h * w)],
                "method": str(getattr(plan, "method", plan)),
            }
        )
        arrays.append({"kernel": kernel, "response": np.asarray(response, dtype=np.float64)})
    return entries, arrays
