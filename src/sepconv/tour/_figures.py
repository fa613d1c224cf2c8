"""The figures of the tour, drawn from the arrays and counts the steps computed.

Each ``draw_*`` function returns a list of ``(file name, matplotlib figure)``. Signed data
(kernels, edge responses, layer outputs) use a diverging colour map centred at 0; photographs
use their own colours or grey.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._text import ratio_text
from .._text import thousands as _fmt
from ._blocks import arrow, channel_colors, draw_block, photo_colors, signed_colors

__all__ = [
    "setup",
    "kernel_png",
    "response_png",
    "draw_spatial",
    "draw_rare",
    "draw_normal",
    "draw_depthwise",
    "draw_pointwise",
]

BLUE, ORANGE, GRAY, GREEN = "#3b75af", "#ef8636", "#8c8c8c", "#519e3e"
PURPLE = "#8465b0"
# Sobel-x weighs grey-level differences (photo in 0 = black … 1 = white) by 1, 2, 1.
SOBEL_UNIT = "grey-level difference ×(1, 2, 1)\n(photograph in 0 black … 1 white)"


def setup() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 11,
            "axes.titlesize": 11.5,
            "axes.labelsize": 11,
            "legend.fontsize": 10,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 110,
        }
    )
    return plt


def matplotlib_ticker() -> Any:
    import matplotlib.ticker

    return matplotlib.ticker


def _canvas(plt: Any, width: float, height: float) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _finish(ax: Any, margin: float = 0.02) -> None:
    ax.autoscale_view()
    ax.margins(margin)


def _grid(
    ax: Any,
    x: float,
    y: float,
    values: np.ndarray,
    *,
    limit: float,
    fmt: str = "{:g}",
    fontsize: float = 12,
) -> tuple[float, float]:
    """A flat 2-D grid of cells with their values written in (kernels, factors)."""
    from matplotlib.patches import Rectangle

    values = np.atleast_2d(values)
    h, w = values.shape
    colors = signed_colors(values, limit)
    for i in range(h):
        for j in range(w):
            ax.add_patch(
                Rectangle(
                    (x + j, y + h - 1 - i), 1, 1, facecolor=colors[i, j], edgecolor="0.3", lw=0.8
                )
            )
            v = values[i, j]
            dark = abs(v) > 0.6 * limit
            ax.text(
                x + j + 0.5,
                y + h - 0.5 - i,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
            )
    return w, h


def _image(
    ax: Any,
    image: np.ndarray,
    title: str,
    *,
    signed: bool = False,
    limit: float | None = None,
    fig: Any = None,
    unit: str | None = None,
) -> None:
    if signed:
        limit = limit or float(np.percentile(np.abs(image), 99.5)) or 1.0
        shown = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        if fig is not None:
            bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=9)
            if unit:
                bar.set_label(unit, fontsize=9.5)
    else:
        ax.imshow(image, cmap="gray", vmin=0, vmax=max(1.0, float(np.max(image))))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _imsave(array: np.ndarray, *, cmap: str, vmin: float, vmax: float) -> bytes:
    """An array as an RGB PNG through a colour map (no alpha: smaller files)."""
    import io

    import matplotlib
    from PIL import Image

    scaled = np.clip((array - vmin) / ((vmax - vmin) or 1.0), 0, 1)
    rgb = (matplotlib.colormaps[cmap](scaled)[..., :3] * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def kernel_png(kernel: np.ndarray, size: int = 150) -> bytes:
    """A kernel as a small picture (nearest-neighbour, diverging colours centred at 0)."""
    scale = max(1, size // max(kernel.shape))
    limit = float(np.max(np.abs(kernel))) or 1.0
    big = np.kron(kernel, np.ones((scale, scale)))
    return _imsave(big, cmap="RdBu_r", vmin=-limit, vmax=limit)


def response_png(response: np.ndarray) -> bytes:
    """A filtered photograph at half size: grey for a blur (all values >= 0), else diverging.

    Half size by 2x2 averaging keeps the page light; the counts are those of the full image.
    """
    h, w = (response.shape[0] // 2) * 2, (response.shape[1] // 2) * 2
    if h >= 2 and w >= 2:
        response = response[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    if np.min(response) >= 0:
        return _imsave(response, cmap="gray", vmin=0, vmax=float(np.max(response)) or 1.0)
    limit = float(np.percentile(np.abs(response), 99.5)) or 1.0
    return _imsave(response, cmap="RdBu_r", vmin=-limit, vmax=limit)


# --- 1. spatially separable ------------------------------------------------------------------


def draw_spatial(plt: Any, step: Any, data: dict[str, Any]) -> list[tuple[str, Any]]:
    n = step.numbers
    fig, ax = _canvas(plt, 8.5, 6.2)
    rows = [
        (
            "Gaussian blur 3×3 (×1/16)",
            data["binomial"] * 16,
            "smooth down the columns,\nthen smooth along the rows",
        ),
        (
            "Sobel-x (horizontal gradient)",
            data["sobel"],
            "smooth down [1, 2, 1]ᵀ,\nthen difference across [-1, 0, 1]",
        ),
        (
            "Sobel-y (vertical gradient)",
            data["sobel_y"],
            "difference down [-1, 0, 1]ᵀ,\nthen smooth across [1, 2, 1]",
        ),
    ]
    from .. import factor

    for r, (name, kernel, note) in enumerate(rows):
        column, row = factor.separate(kernel).terms[0]
        y = (len(rows) - 1 - r) * 5.2
        limit = float(np.max(np.abs(kernel))) * 1.15
        ax.text(0, y + 3.5, name, fontsize=12.5, fontweight="bold", va="bottom")
        _grid(ax, 0.5, y, column[:, None], limit=limit)
        ax.text(2.1, y + 1.5, "×", fontsize=20, ha="center", va="center")
        _grid(ax, 2.8, y + 1, row[None, :], limit=limit)
        ax.text(6.4, y + 1.5, "=", fontsize=20, ha="center", va="center")
        _grid(ax, 7.2, y, kernel, limit=limit)
        ax.text(10.8, y + 1.5, note, fontsize=11, va="center")
    # Text does not count for autoscaling: leave room for the row titles explicitly.
    ax.set_xlim(-0.2, 17.8)
    ax.set_ylim(-0.3, (len(rows) - 1) * 5.2 + 4.6)
    ax.set_title(
        "A 3×3 kernel as a 3×1 column times a 1×3 row (sepconv.factor.separate):\n"
        "9 multiplications per pixel directly, 3 + 3 = 6 as two 1-D passes",
        fontsize=12,
    )
    figures = [("01-column-times-row.png", fig)]

    per = n["per_pixel"]
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 9.6), layout="constrained")
    _image(
        axes[0, 0],
        data["gray"],
        f"the photograph, {n['image_shape'][0]}×{n['image_shape'][1]}, grey",
    )
    _image(
        axes[0, 1],
        data["after_column"],
        f"after the 3×1 column pass [1, 2, 1]ᵀ\n"
        f"{per['column_pass']} mult./pixel, {_fmt(n['column_pass_multiplications'])} in all",
    )
    limit = float(np.percentile(np.abs(data["direct"]), 99.5))
    _image(
        axes[1, 0],
        data["after_row"],
        "then the 1×3 row pass [-1, 0, 1]\n"
        f"{per['column_pass']} + {per['row_pass']} = "
        f"{per['column_pass'] + per['row_pass']} mult./pixel, "
        f"{_fmt(n['separable_multiplications'])}",
        signed=True,
        limit=limit,
        fig=fig,
        unit=SOBEL_UNIT,
    )
    _image(
        axes[1, 1],
        data["direct"],
        f"the 3×3 Sobel-x kernel directly\n{per['direct']} "
        f"mult./pixel, {_fmt(n['direct_multiplications'])}",
        signed=True,
        limit=limit,
        fig=fig,
        unit=SOBEL_UNIT,
    )
    fig.suptitle(
        "Sobel-x on the photograph: two 1-D passes give the same edges for 6 "
        "instead of 9\nmultiplications per pixel (counted by sepconv.reference; "
        f"largest difference {n['max_abs_difference']:.3g}). "
        "Red: brighter to the right, blue: darker.",
        fontsize=11.5,
    )
    figures.append(("02-sobel-passes.png", fig))
    return figures


# --- 2. rare, low rank -----------------------------------------------------------------------


def draw_rare(
    plt: Any, step: Any, data: dict[str, Any], factor_png: Any
) -> list[tuple[str, Any | bytes]]:
    figures: list[tuple[str, Any | bytes]] = []
    trials = data["trials"]
    fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
    families = list(trials)
    ranks = sorted({r for counts in trials.values() for r in counts} | {1, 2, 3, 4, 5})
    width = 0.8 / len(families)
    colors = [BLUE, ORANGE, GREEN]
    for f, name in enumerate(families):
        xs = np.arange(len(ranks)) + (f - (len(families) - 1) / 2) * width
        heights = [trials[name].get(r, 0) for r in ranks]
        bars = ax.bar(xs, heights, width, color=colors[f], label=name)
        for bar, h in zip(bars, heights):
            if h:
                ax.text(
                    bar.get_x() + bar.get_width() / 2,
                    h * 1.08,
                    _fmt(h),
                    ha="center",
                    va="bottom",
                    fontsize=9.5,
                )
    ax.set_yscale("log")
    ax.set_ylim(0.7, step.numbers["random_trials"] * 4)
    ax.set_xticks(np.arange(len(ranks)), [str(r) for r in ranks])
    ax.set_xlabel("rank (rank 1 = separable)")
    ax.set_ylabel(f"kernels, of {step.numbers['random_trials']:,} drawn")
    ax.set_title("Ranks of random kernels (sepconv.factor.rank): almost all are full rank")
    ax.legend(loc="upper left", frameon=False)
    figures.append(("03-random-ranks.png", fig))

    spectra = data["errors"]
    fig = plt.figure(figsize=(9.5, 6.4), layout="constrained")
    grid = fig.add_gridspec(2, len(spectra), height_ratios=[1, 2.6])
    named = data["named"]
    palette = [BLUE, ORANGE, GREEN, "#c03d3e", "#8465b0"]
    for i, (name, kernel) in enumerate(named.items()):
        a = fig.add_subplot(grid[0, i])
        limit = float(np.max(np.abs(kernel))) or 1.0
        a.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        a.set_title(f"{name}\nrank {data['ranks'][name]}", fontsize=10, color=palette[i])
        a.set_xticks([])
        a.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    floor = 1e-18  # where errors of exactly 0 are drawn (a log axis has no 0)
    markers, styles = ["o", "s", "^", "D", "v"], ["-", "--", "-.", ":", "-"]
    for i, (name, errors) in enumerate(spectra.items()):
        errors = np.asarray(errors, dtype=float)
        # Curves that coincide (LoG and Gabor are both rank 2) are nudged apart sideways.
        r = np.arange(len(errors)) + (i - (len(spectra) - 1) / 2) * 0.07
        # Below the tolerance the error is rounding: shown as 0, on the labelled floor.
        tol_i = data["tols"][name]
        ax.semilogy(
            r,
            np.where(errors > tol_i, np.maximum(errors, floor), floor),
            marker=markers[i % 5],
            ls=styles[i % 5],
            ms=5,
            lw=1.6,
            color=palette[i],
            label=f"{name}: rank {data['ranks'][name]}",
        )
        rank = data["ranks"][name]
        ax.plot(
            r[rank],
            errors[rank] if errors[rank] > tol_i else floor,
            "o",
            ms=12,
            mfc="none",
            mec=palette[i],
            mew=2,
        )
    tol = max(data["tols"].values())
    ax.axhline(tol, color="black", ls="--", lw=1.2)
    ax.text(
        len(next(iter(spectra.values()))) - 1,
        tol * 2.5,
        f"tolerance {tol:.1e} (relative)",
        ha="right",
        va="bottom",
        fontsize=10,
    )
    ax.set_ylim(floor / 4, 3)
    ticks = [floor] + [10.0**e for e in range(-15, 1, 3)]
    ax.set_yticks(ticks, ["0 (exact)"] + [f"$10^{{{e}}}$" for e in range(-15, 1, 3)])
    ax.yaxis.set_minor_locator(matplotlib_ticker().NullLocator())
    ax.axhspan(floor / 4, floor * 8, color="0.93", zorder=0)
    ax.set_xlabel("number of separable terms r")
    ax.set_ylabel("relative error of the best r-term sum")
    ax.set_title(
        "The rank is where the error drops under the tolerance (circled); "
        "below it the terms are exact (0)"
    )
    # In the empty middle: between the disk's drop (r = 6) and the random kernel's (r = 15),
    # above the tolerance's label (at the right, "center right" hid the last drop).
    ax.legend(loc="center", bbox_to_anchor=(0.64, 0.56), fontsize=9.5, framealpha=0.95)
    figures.append(("04-lowrank-spectra.png", fig))

    figures.append(
        (
            "05-log-factors.png",
            factor_png(data["log"], data["log_factors"], "Laplacian of Gaussian σ=2"),
        )
    )
    figures.append(
        (
            "06-gabor-factors.png",
            factor_png(data["gabor"], data["gabor_factors"], "Gabor σ=3 θ=30°"),
        )
    )

    n = step.numbers["log"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.3), layout="constrained")
    limit = float(np.percentile(np.abs(data["log_direct"]), 99.5))
    diff = data["log_terms"] - data["log_direct"]
    _image(
        axes[0],
        data["log_direct"],
        f"15×15 kernel directly\n{n['per_pixel'][0]} mult./pixel"
        f", {_fmt(n['direct_multiplications'])}",
        signed=True,
        limit=limit,
    )
    _image(
        axes[1],
        data["log_terms"],
        f"as {n['rank']} separable terms\n"
        f"{n['per_pixel'][1]} mult./pixel, {_fmt(n['terms_multiplications'])}",
        signed=True,
        limit=limit,
    )
    _image(
        axes[2],
        diff,
        f"difference (same colour scale)\nlargest {n['max_relative_difference']:.2g} of the range",
        signed=True,
        limit=limit,
        fig=fig,
    )
    fig.suptitle(
        "Laplacian of Gaussian σ=2 on the photograph, counted by sepconv.reference", fontsize=12
    )
    figures.append(("07-log-photo.png", fig))
    return figures


# --- 3-5. the worked example -------------------------------------------------------------------


def _patch_block(ax: Any, x: float, y: float, patch: np.ndarray, label: str) -> Any:
    return draw_block(
        ax,
        x,
        y,
        channel_colors(patch),
        front=photo_colors(patch),
        label=label,
        dims=(str(patch.shape[0]), str(patch.shape[1]), str(patch.shape[2])),
    )


def _signed_block(
    ax: Any,
    x: float,
    y: float,
    values: np.ndarray,
    label: str | None,
    limit: float | None = None,
    **kw: Any,
) -> Any:
    values = values if values.ndim == 3 else values[..., None]
    h, w, c = values.shape
    return draw_block(
        ax, x, y, signed_colors(values, limit), label=label, dims=(str(h), str(w), str(c)), **kw
    )


def draw_normal(plt: Any, step: Any, data: dict[str, Any]) -> list[tuple[str, Any]]:
    n = step.numbers
    patch, full = data["patch"], data["weights"]["full"]
    fig, ax = _canvas(plt, 10, 4.2)
    b = _patch_block(ax, 0, 0, patch, "input 12×12×3\n(the photograph)")
    k = _signed_block(ax, b.right + 5, 3.5, full[..., 0], "one kernel\n5×5×3")
    ax.text((b.right + k.x) / 2, 6, "⊛", fontsize=26, ha="center", va="center")
    o = _signed_block(ax, k.right + 6.5, 2, data["y_one"], "output 8×8×1")
    arrow(
        ax,
        (k.right + 1.4, 5.5),
        (o.x - 1.5, 5.5),
        f"5·5·3 = {n['one_kernel']['per_output_value']}\nmult. per value,\n"
        f"× 64 values =\n{_fmt(n['one_kernel']['multiplications'])}",
        fontsize=10.5,
    )
    _finish(ax)
    ax.set_title(
        "Normal convolution, one kernel: every output value mixes all 3 channels", fontsize=12
    )
    figures = [("08-normal-one-kernel.png", fig)]

    fig, ax = _canvas(plt, 10, 4.6)
    b = _patch_block(ax, 0, 0, patch, "input 12×12×3")
    x0 = b.right + 5
    limit = float(np.max(np.abs(full)))
    for i in range(4):
        draw_block(
            ax, x0 + i * 1.2, 4 - i * 1.3, signed_colors(full[..., 3 - i], limit), zorder=2 + i
        )
    ax.text(
        x0 + 4.2,
        -0.6,
        "256 kernels 5×5×3\n(weight 5×5×3×256)",
        ha="center",
        va="top",
        fontsize=11,
        fontweight="bold",
    )
    ax.text((b.right + x0) / 2, 6, "⊛", fontsize=26, ha="center", va="center")
    kr = x0 + 3 * 1.2 + 5 + 1.5
    o = _signed_block(ax, kr + 6.5, 1.5, data["y_many"], "output 8×8×256")
    arrow(
        ax,
        (kr + 0.8, 5.5),
        (o.x - 1.5, 5.5),
        f"256 × {_fmt(n['one_kernel']['multiplications'])}\n"
        f"= {_fmt(n['all_kernels']['multiplications'])}",
        fontsize=11,
    )
    _finish(ax)
    ax.set_title(
        "Normal convolution, 256 kernels: outputs stacked into 8×8×256 "
        f"({_fmt(n['all_kernels']['multiplications'])} multiplications)",
        fontsize=12,
    )
    figures.append(("09-normal-256-kernels.png", fig))
    return figures


def draw_depthwise(
    plt: Any, step: Any, worked: dict[str, Any], data: dict[str, Any]
) -> list[tuple[str, Any]]:
    n = step.numbers
    patch, kernel = worked["patch"], worked["weights"]["depthwise"]
    y = data["y"]
    fig, ax = _canvas(plt, 10, 7.4)
    names = ["red", "green", "blue"]
    limit = float(np.max(np.abs(y)))
    rows_y = [32, 16, 0]
    right = 0.0
    for c in range(3):
        yy = rows_y[c]
        colors = channel_colors(patch)[:, :, c : c + 1]
        b = draw_block(
            ax,
            0,
            yy,
            colors,
            label=f"{names[c]} channel 12×12×1",
            dims=("12", "12", "1"),
            fontsize=10,
        )
        k = _signed_block(
            ax,
            b.right + 5.6,
            yy + 3.5,
            kernel[:, :, c, :],
            f"kernel {c + 1}: 5×5×1\n{data['names'][c].split('(')[1][:-1]}",
            fontsize=10,
        )
        ax.text((b.right + k.x) / 2, yy + 6, "⊛", fontsize=22, ha="center", va="center")
        o = _signed_block(
            ax, k.right + 6, yy + 2, y[..., c : c + 1], "8×8×1", limit=limit, fontsize=10
        )
        arrow(
            ax,
            (k.right + 0.6, yy + 6),
            (o.x - 1.4, yy + 6),
            f"{_fmt(n['per_channel_multiplications'][c])}\nmult.",
            fontsize=10,
        )
        right = max(right, o.right)
        ax.annotate(
            "",
            xy=(right + 4.6, 17 + 4),
            xytext=(o.right + 0.5, yy + 4),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.55",
                "lw": 1.0,
                "connectionstyle": "arc3,rad=0.0",
            },
        )
    s = _signed_block(ax, right + 6, 16, y, "stacked:\noutput 8×8×3", limit=limit)
    ax.text(
        s.x + 4,
        s.y - 4.5,
        f"{_fmt(n['multiplications'])}\nmultiplications",
        ha="center",
        va="top",
        fontsize=11,
    )
    _finish(ax)
    ax.set_title(
        "Depthwise convolution: each channel of the photograph with its own 5×5×1 kernel",
        fontsize=12,
    )
    return [("10-depthwise.png", fig)]


def draw_pointwise(
    plt: Any, step: Any, worked: dict[str, Any], depthwise_y: np.ndarray, data: dict[str, Any]
) -> list[tuple[str, Any]]:
    n = step.numbers
    pw = worked["weights"]["pointwise"]
    fig, ax = _canvas(plt, 10, 3.6)
    limit = float(np.max(np.abs(depthwise_y)))
    b = _signed_block(ax, 0, 0, depthwise_y, "8×8×3\n(depthwise output)", limit=limit)
    k = _signed_block(
        ax, b.right + 4.5, 3.5, pw[0, :, :, :1].reshape(1, 1, 3), "kernel 1×1×3", max_depth=3
    )
    ax.text((b.right + k.x) / 2, 4, "⊛", fontsize=24, ha="center", va="center")
    o = _signed_block(ax, k.right + 6.5, 0, data["y_one"], "output 8×8×1")
    arrow(
        ax,
        (k.right + 0.8, 4.5),
        (o.x - 1.5, 4.5),
        f"3 mult. per value\n× 64 = {_fmt(n['one_kernel']['multiplications'])}",
    )
    _finish(ax)
    ax.set_title(
        "Pointwise convolution: a 1×1×3 kernel mixes the three channels at every point", fontsize=12
    )
    figures = [("11-pointwise-one-kernel.png", fig)]

    fig, ax = _canvas(plt, 10, 3.9)
    b = _signed_block(ax, 0, 0, depthwise_y, "8×8×3", limit=limit)
    x0 = b.right + 4.5
    plimit = float(np.max(np.abs(pw)))
    for i in range(4):
        draw_block(
            ax,
            x0 + i * 0.9,
            4 - i * 1.1,
            signed_colors(pw[0, :, :, 3 - i].reshape(1, 1, 3), plimit),
            max_depth=3,
            zorder=2 + i,
        )
    ax.text(
        x0 + 2.2, 0.0, "256 kernels\n1×1×3", ha="center", va="top", fontsize=11, fontweight="bold"
    )
    ax.text((b.right + x0) / 2, 4, "⊛", fontsize=24, ha="center", va="center")
    kr = x0 + 3 * 0.9 + 2.5
    o = _signed_block(ax, kr + 6.5, 0, data["y_many"], "output 8×8×256")
    arrow(
        ax,
        (kr + 0.6, 4.5),
        (o.x - 1.5, 4.5),
        f"256 × {n['one_kernel']['multiplications']}\n"
        f"= {_fmt(n['all_kernels']['multiplications'])}",
    )
    _finish(ax)
    ax.set_title("Pointwise convolution with 256 kernels: 8×8×3 → 8×8×256", fontsize=12)
    figures.append(("12-pointwise-256-kernels.png", fig))

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4.6), layout="constrained", gridspec_kw={"width_ratios": [1, 1.15]}
    )
    dw, pwc = n["by_operation"]["depthwise_conv2d"], n["by_operation"]["pointwise_conv2d"]
    values = [n["normal"], dw, pwc, dw + pwc]
    xs = [0, 1.3, 2.3, 3.6]
    left.bar(xs[0], values[0], 0.8, color=GRAY)
    left.bar(xs[1], values[1], 0.8, color=BLUE)
    left.bar(xs[2], values[2], 0.8, color=ORANGE)
    # Not stacked: on a log axis a stack would give the depthwise 9% nearly half the bar.
    left.bar(xs[3], dw + pwc, 0.8, color=PURPLE, hatch="//", edgecolor="white", lw=0)
    left.text(
        xs[3],
        1.6e3,
        f"depthwise\n{dw / (dw + pwc):.1%}\n+\npointwise\n{pwc / (dw + pwc):.1%}",
        ha="center",
        va="bottom",
        fontsize=9.5,
        color="white",
        fontweight="bold",
        bbox={"boxstyle": "round", "fc": PURPLE, "ec": "none", "alpha": 0.9},
    )
    for x, v in zip(xs, values):
        left.text(
            x,
            v * 1.12,
            _fmt(v),
            ha="center",
            va="bottom",
            fontsize=10.5,
            fontweight="bold" if x in (xs[0], xs[3]) else "normal",
        )
    left.set_yscale("log")
    left.set_ylim(1e3, n["normal"] * 8)
    left.set_xticks(
        xs, ["normal", "depthwise\nstep", "pointwise\nstep", "separable\n(the two\nsteps added)"]
    )
    left.text(
        xs[3], n["normal"] * 2.6, ratio_text(n["ratio"]), ha="center", fontsize=11, color="0.2"
    )
    left.set_ylabel("multiplications (log scale)")
    left.set_title("12×12×3, 5×5, 256 filters, no padding")
    palette = {"3": BLUE, "5": ORANGE, "7": GREEN}
    for k, points in n["ratio_curve"].items():
        c_out = np.array([p[0] for p in points], dtype=float)
        ratio = np.array([p[1] for p in points])
        right.loglog(
            c_out, ratio, "o", color=palette[k], ms=6, label=f"k = {k}: counted (sepconv.cost)"
        )
        grid = np.geomspace(c_out[0], c_out[-1], 100)
        right.loglog(
            grid,
            1 / grid + 1 / int(k) ** 2,
            "-",
            color=palette[k],
            lw=1.2,
            alpha=0.8,
            label=f"1/C_out + 1/{int(k) ** 2}",
        )
    right.plot(
        [256],
        [n["fraction"]],
        "*",
        ms=15,
        color="black",
        label=f"the worked example: {n['fraction']:.4f}",
    )
    right.set_xlabel("output channels C_out")
    right.set_ylabel("separable / normal multiplications")
    hw = n["ratio_curve_input"]
    right.set_title(f"The fraction 1/C_out + 1/k² (dots: a {hw[0]}×{hw[1]}×{hw[2]} input)")
    right.legend(fontsize=9.5, ncol=1, frameon=False, loc="upper right")
    figures.append(("13-cost.png", fig))
    return figures
