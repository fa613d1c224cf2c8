"""Step 7 of the tour: a small denoiser trained on the photograph, then converted by
:func:`sepconv.convert` into separable filters at K = 1 .. k terms.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["conversion", "CONVERT_RANKS", "DENOISE"]

from .._text import ratio_text
from .._text import thousands as _fmt
from ._steps import Step, _noise_floor

# --- 7. converting a trained layer -----------------------------------------------------------

CONVERT_RANKS = (1, 2, 3, 4, 6, 9)
DENOISE = {
    "filters": 16,
    "kernel_size": 9,
    "noise": 0.1,
    "patches": 1024,
    "steps": 300,
    "learning_rate": 0.01,
    "seed": 0,
}


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread inside, the caller's setting restored after (deterministic sums)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _impulse_responses(layer: Any, size: int) -> np.ndarray:
    """The kernels a one-channel layer applies: its responses to a single bright pixel."""
    import torch

    x = torch.zeros(1, 1, 2 * size - 1, 2 * size - 1, dtype=torch.float64)
    x[0, 0, size - 1, size - 1] = 1.0
    with torch.no_grad():
        y = layer(x)[0].numpy()
    return y[:, ::-1, ::-1].copy()  # correlation flips an impulse


def _denoiser(image: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Train a small denoiser on patches of ``image`` (pixels shifted to -0.5..0.5).

    The network: 16 filters of 9×9 (``nn.Conv2d(1, 16, 9, bias=False)``), ReLU, then a 1×1
    convolution summing the 16 responses into one pixel. Each step draws 1,024 random 9×9
    patches, adds Gaussian noise (σ = 0.1 of the 0..1 range) and asks for the clean centre
    pixel; Adam, mean squared error, float64, seeded. On a 9×9 patch a 9×9 convolution is one
    dot product per filter, so the steps run as matrix products on the layer's own weights.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    d = DENOISE
    k, filters = d["kernel_size"], d["filters"]
    rng = np.random.default_rng(d["seed"])
    first = nn.Conv2d(1, filters, k, bias=False).double()
    second = nn.Conv2d(filters, 1, 1).double()
    with torch.no_grad():  # small random start, from NumPy's seeded generator
        first.weight.copy_(torch.from_numpy(rng.normal(0.0, 0.01, (filters, 1, k, k))))
        second.weight.copy_(torch.from_numpy(rng.uniform(-0.25, 0.25, (1, filters, 1, 1))))
        second.bias.zero_()
    model = nn.Sequential(first, nn.ReLU(), second)
    windows = np.lib.stride_tricks.sliding_window_view(image, (k, k))
    optimizer = torch.optim.Adam(model.parameters(), lr=d["learning_rate"])
    n = d["patches"]
    losses = []
    for _ in range(d["steps"]):
        rows = rng.integers(0, windows.shape[0], n)
        cols = rng.integers(0, windows.shape[1], n)
        clean = windows[rows, cols]
        noisy = torch.from_numpy(
            (clean + d["noise"] * rng.standard_normal(clean.shape)).reshape(n, k * k)
        )
        target = torch.from_numpy(clean[:, k // 2, k // 2].copy())[:, None]
        hidden = torch.relu(F.linear(noisy, first.weight.reshape(filters, k * k)))
        out = F.linear(hidden, second.weight.reshape(1, filters), second.bias)
        loss = torch.mean((out - target) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return model, {"first_loss": losses[0], "last_loss": losses[-1]}


def _conversion_row(row: dict[str, Any]) -> str:
    saving = f"{ratio_text(row['speedup'], same='as many')} multiplications"
    if row["weight_error"] == 0.0:
        return (
            f"K = {row['rank']} is exact (errors 0, {row['grey_levels']:.1f} grey levels "
            f"off) and costs {saving}"
        )
    return (
        f"K = {row['rank']}: weight {row['weight_error']:.3f}, output "
        f"{row['output_error']:.3f}, {row['grey_levels']:.1f} grey levels off, {saving}"
    )


def conversion(image: np.ndarray) -> tuple[Step, dict[str, Any]]:
    with _one_thread():
        return _conversion(image)


def _conversion(image: np.ndarray) -> tuple[Step, dict[str, Any]]:
    import torch

    from ..convert import convert

    d = DENOISE
    k, m = d["kernel_size"], d["kernel_size"] // 2
    # Half size: a few seconds of training, and the noise is as coarse as the detail.
    image = image[::2, ::2] - 0.5
    model, training = _denoiser(image)
    first = model[0]
    noisy = image + d["noise"] * np.random.default_rng(d["seed"] + 1).standard_normal(image.shape)
    x = torch.from_numpy(np.ascontiguousarray(noisy[None, None]))
    clean = image[m:-m, m:-m]

    def grey_levels(out: torch.Tensor) -> float:
        """Root-mean-square distance to the clean photograph, in grey levels of 0..255."""
        return float(255 * np.sqrt(np.mean((out[0, 0].numpy() - clean) ** 2)))

    with torch.no_grad():
        denoised = model(x)
    rows, after, outputs = [], {}, {}
    for r in CONVERT_RANKS:
        converted, report = convert(
            model,
            method="spatial",
            rank=r,
            min_speedup=0,
            input_size=tuple(x.shape),
            example_input=x,
        )
        layer = next(row for row in report.layers if row.replaced)
        with torch.no_grad():
            out = converted(x)
        rows.append(
            {
                "rank": r,
                "weight_error": _noise_floor(float(layer.weight_error), 1.0),
                "output_error": _noise_floor(float(report.output_relative_error), 1.0),
                "grey_levels": grey_levels(out),
                "multiplications_before": int(layer.mult_adds_before),
                "multiplications_after": int(layer.mult_adds_after),
                "speedup": float(layer.speedup),
            }
        )
        after[r] = _impulse_responses(converted[0], k)
        outputs[r] = out[0, 0].numpy()
    before = _impulse_responses(first, k)
    weight = first.weight.detach().numpy()[:, 0]
    shown = next((row["rank"] for row in rows if row["output_error"] < 0.05), CONVERT_RANKS[-1])
    chosen = next(row for row in rows if row["rank"] == shown)
    noisy_levels = float(255 * np.sqrt(np.mean((noisy[m:-m, m:-m] - clean) ** 2)))
    trained_levels = grey_levels(denoised)
    numbers = {
        "filters": d["filters"],
        "kernel_size": k,
        "rows": rows,
        "shown_rank": shown,
        "image_shape": list(image.shape),
        "layer_rank": int(min(k, d["filters"] * k)),
        "training": {
            **{key: d[key] for key in ("noise", "patches", "steps", "learning_rate", "seed")},
            "first_loss": training["first_loss"],
            "last_loss": training["last_loss"],
        },
        "grey_levels": {"noisy": noisy_levels, "trained": trained_levels},
        "impulse_check": _noise_floor(float(np.max(np.abs(before - weight))), 1.0),
    }
    h, w = image.shape
    saving = ratio_text(chosen["speedup"], same="as many")
    paragraphs = [
        "`sepconv.convert` turns the convolutions of a trained model into separable ones. "
        "The layer converted here was trained a moment ago, in this run: a small denoiser "
        f"whose first layer is {d['filters']} filters of {k}×{k} (one `nn.Conv2d`), followed "
        "by a ReLU and a 1×1 convolution that sums the filters' responses into one pixel. "
        f"For {d['steps']} steps (Adam, float64, fixed seed, one thread) it was shown "
        f"{_fmt(d['patches'])} random {k}×{k} patches of the photograph at half size "
        f"({h}×{w}, pixels shifted to −0.5…0.5) with noise added (σ = {d['noise']} of the "
        "0…1 range) and asked for the clean centre pixel; the squared error fell from "
        f"{training['first_loss']:.4f} to {training['last_loss']:.4f}. A denoiser of this kind "
        "learns spots and blobs of several widths, of either sign (figure 15): averaging a "
        "pixel with its neighbours is what removes noise.",
        f"Then the whole noisy photograph (fresh noise, {noisy_levels:.1f} grey levels of 255 "
        "from the clean one, root mean square) goes through it: the trained network brings "
        f"it to {trained_levels:.1f}. The first layer is factored into {k}×1 filters on K "
        f"intermediate channels, each output then a sum of 1×{k} filters over them "
        "(Jaderberg et al., 2014); the filters drawn are read back from the converted model "
        "itself, as its response to a single bright pixel.",
        f"For each K: the weight error (how far the {d['filters']} filters moved: "
        "‖W − W_K‖ / ‖W‖), the "
        "output error (how far the network's output on the noisy photograph moved, relative to "
        "the trained network's own output y, the denoised photograph in pixels −0.5…0.5: "
        "‖y_K − y‖ / ‖y‖, what `sepconv.convert` reports with `example_input`), the distance "
        "to the clean photograph in grey levels, and the "
        "multiplications of the layer: " + "; ".join(_conversion_row(row) for row in rows) + ".",
        f"With K = {shown} the output is within 5% of the trained network's "
        f"({chosen['output_error']:.3f}) and the layer needs {saving} "
        "multiplications. A round blob is close to separable (a Gaussian is exactly a column times "
        "a row), so few terms suffice. The output error can be smaller than the weight error: "
        "a change of the filters counts only as far as the photograph's patches line up with "
        "it, and the detail the first terms drop is mostly fine speckle. With too few terms it can "
        "also be worse than no denoising at all, which is why a conversion is checked on "
        "data, not only on its weights.",
    ]
    summary = (
        f"converting a trained {d['filters']}-filter {k}×{k} denoising layer to rank K = "
        f"{shown}, i.e. each filter a sum of {shown} column × row pairs ({k}×1 times 1×{k}; "
        f"the {shown} columns shared by all {d['filters']} filters): relative weight error "
        f"{chosen['weight_error']:.3f}, relative output error {chosen['output_error']:.3f}, "
        f"{saving} multiplications"
    )
    return Step(
        "convert", "Converting a trained layer into separable filters", paragraphs, summary, numbers
    ), {
        "before": before,
        "after": after,
        "rows": rows,
        "shown": shown,
        "noisy": noisy[m:-m, m:-m],
        "clean": clean,
        "denoised": denoised[0, 0].numpy(),
        "outputs": outputs,
        "grey_levels": numbers["grey_levels"],
    }


# --- the interactive kernel gallery of the report ------------------------------------------
