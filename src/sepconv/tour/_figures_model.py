"""The figures of steps 6 and 7: MobileNetV1 against its twin, and the converted layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._text import ratio_text
from ._figures import (
    BLUE,
    GRAY,
    GREEN,
    ORANGE,
)

__all__ = ["draw_network", "draw_conversion"]

# --- 6. MobileNetV1 ----------------------------------------------------------------------------


def draw_network(plt: Any, step: Any, data: dict[str, Any]) -> list[tuple[str, Any]]:
    sep, full = data["separable"], data["full"]
    totals = step.numbers
    full_by_name = {layer["name"]: layer for layer in full}
    # One group per layer of the full twin: stem, 13 blocks, classifier.
    groups = []
    for layer in full:
        prefix = (
            layer["name"].rsplit(".", 1)[0] if layer["name"].startswith("blocks") else layer["name"]
        )
        parts = [s for s in sep if s["name"] == layer["name"] or s["name"].startswith(prefix + ".")]
        groups.append((prefix, layer, parts))
    del full_by_name
    fig, ax = plt.subplots(figsize=(11, 5.2), layout="constrained")
    x = np.arange(len(groups))
    ax.bar(
        x - 0.21,
        [g[1]["mult_adds"] for g in groups],
        0.4,
        color=GRAY,
        label="full-convolution twin",
    )
    for kind, color, name in (
        ("depthwise", BLUE, "MobileNetV1: depthwise 3×3"),
        ("pointwise", ORANGE, "MobileNetV1: pointwise 1×1"),
        ("convolution", GREEN, "MobileNetV1: stem 3×3 conv"),
        ("classifier", "#8465b0", "fully connected"),
    ):
        heights = [sum(p["mult_adds"] for p in g[2] if p["kind"] == kind) for g in groups]
        bottoms = [
            sum(p["mult_adds"] for p in g[2] if p["kind"] == "depthwise")
            if kind == "pointwise"
            else 0
            for g in groups
        ]
        if kind == "pointwise":
            # Side by side, not stacked: on a log axis a stack hides the smaller part.
            ax.bar(x + 0.31, heights, 0.18, color=color, label=name)
        elif kind == "depthwise":
            ax.bar(x + 0.12, heights, 0.18, color=color, label=name)
        else:
            ax.bar(x + 0.21, heights, 0.4, color=color, label=name)
        del bottoms
    ax.set_yscale("log")
    ax.set_ylim(1e5, 3e10)
    labels = []
    for prefix, _layer, _parts in groups:
        if prefix.startswith("blocks"):
            labels.append(str(int(prefix.split(".")[1]) + 1))
        else:
            labels.append(prefix.split(".")[0])
    ax.set_xticks(x, labels)
    ax.set_xlabel("layer: stem, the 13 blocks, classifier")
    ax.set_ylabel("multiplications (log scale)")
    s, f = totals["separable"], totals["full"]
    ax.text(
        0.99,
        0.97,
        f"full twin: {f['mult_adds'] / 1e6:,.1f}M mult-adds, "
        f"{f['parameters'] / 1e6:.2f}M parameters\n"
        f"MobileNetV1: {s['mult_adds'] / 1e6:,.1f}M mult-adds, "
        f"{s['parameters'] / 1e6:.2f}M parameters\n"
        f"{ratio_text(totals['ratio'], same='as many')} multiplications",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=11,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
    )
    ax.legend(loc="upper left", ncol=2, fontsize=9.5, frameon=False)
    ax.set_title(
        "MobileNetV1 1.0-224 against the same network with full 3×3 convolutions (sepconv.profile)"
    )
    return [("14-mobilenet.png", fig)]


# --- 7. conversion -----------------------------------------------------------------------------


def draw_conversion(plt: Any, step: Any, data: dict[str, Any]) -> list[tuple[str, Any]]:
    before, after, rows = data["before"], data["after"], data["rows"]
    shown_ranks = list(dict.fromkeys(r for r in (1, 2, data["shown"]) if r in after))
    filters = before.shape[0]
    fig, axes = plt.subplots(
        1 + len(shown_ranks),
        filters,
        figsize=(11, 1.0 * (1 + len(shown_ranks)) + 0.6),
        layout="constrained",
    )
    by_rank = {row["rank"]: row for row in rows}
    blank = False
    for j in range(filters):  # one colour scale per filter: its column, before and after
        limit = float(np.max(np.abs(before[j]))) or 1.0
        for r, bank in enumerate([before] + [after[k] for k in shown_ranks]):
            a = axes[r, j]
            a.imshow(bank[j], cmap="RdBu_r", vmin=-limit, vmax=limit)
            if r and float(np.max(np.abs(bank[j]))) < 0.05 * limit:
                # Blank, not missing: this filter's part in the first K terms is about 0.
                a.text(
                    0.5,
                    0.5,
                    "≈ 0",
                    transform=a.transAxes,
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="0.25",
                )
                blank = True
            a.set_xticks([])
            a.set_yticks([])
            for spine in a.spines.values():
                spine.set_visible(False)
    axes[0, 0].set_ylabel("trained", rotation=0, ha="right", va="center", fontsize=10)
    for r, k in enumerate(shown_ranks, start=1):
        axes[r, 0].set_ylabel(
            f"K = {k}\nweight error\n{by_rank[k]['weight_error']:.2f}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=10,
        )
    fig.suptitle(
        f"The {filters} trained filters of the denoiser, and after conversion with K "
        "intermediate channels (read back from the converted layer)",
        fontsize=11.5,
    )
    if blank:
        fig.supxlabel(
            "≈ 0: the filter's part in the first K separable terms is under 5% of "
            "its largest trained weight (same colour scale in each column)",
            fontsize=10,
        )
    figures = [("15-convert-filters.png", fig)]

    fig, (ax, grey) = plt.subplots(
        1, 2, figsize=(11, 4.4), layout="constrained", gridspec_kw={"width_ratios": [1.35, 1]}
    )
    ks = [row["rank"] for row in rows]
    floor = 1e-5
    approximate = [row for row in rows if row["weight_error"] >= floor]
    exact = [row for row in rows if row["weight_error"] < floor]
    ax.semilogy(
        [r["rank"] for r in approximate],
        [r["weight_error"] for r in approximate],
        "o-",
        color=BLUE,
        label="weight error ‖W − W_K‖ / ‖W‖",
    )
    ax.semilogy(
        [r["rank"] for r in approximate],
        [r["output_error"] for r in approximate],
        "s-",
        color=ORANGE,
        label="output error ‖y_K − y‖ / ‖y‖\n(y: trained network's output)",
    )
    ax.plot([r["rank"] for r in exact], [floor] * len(exact), "v", color="0.3", ms=9)
    ax.set_ylim(floor * 0.6, 10)
    for row in exact:
        ax.annotate(
            "exact (error 0)",
            (row["rank"], floor),
            xytext=(row["rank"] - 0.3, floor * 30),
            ha="right",
            fontsize=9.5,
            arrowprops={"arrowstyle": "->", "color": "0.4"},
        )
    ax.set_xlabel("intermediate channels K (separable terms kept)")
    ax.set_ylabel("relative error (log scale)")
    ax.set_xticks(ks)
    twin = ax.twinx()
    twin.bar(
        ks,
        [row["speedup"] for row in rows],
        0.35,
        color=GREEN,
        alpha=0.25,
        label="normal ÷ separable multiplications\n(right axis; under 1: costs more)",
    )
    twin.axhline(1, color=GREEN, lw=0.8, ls=":")
    twin.set_ylabel("normal ÷ separable multiplications", color=GREEN)
    twin.spines["right"].set_visible(True)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    # Under the axes: inside, any corner covers the bars or the error curves.
    ax.legend(
        lines[0] + more[0],
        lines[1] + more[1],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=2,
        fontsize=9.5,
        frameon=False,
    )
    ax.set_title("Errors and savings (sepconv.convert, spatial)")
    levels = data["grey_levels"]
    grey.plot(ks, [row["grey_levels"] for row in rows], "o-", color=BLUE, label="converted network")
    grey.axhline(levels["noisy"], color=GRAY, ls="--", label="noisy input")
    grey.axhline(levels["trained"], color=ORANGE, ls=":", label="trained network")
    grey.set_xticks(ks)
    grey.set_ylim(0, max(levels["noisy"], max(row["grey_levels"] for row in rows)) * 1.15)
    grey.set_xlabel("intermediate channels K")
    grey.set_ylabel("distance to the clean photo\n(RMS, grey levels of 255)")
    grey.legend(loc="upper right", fontsize=9.5)
    grey.set_title("Does it still denoise?")
    figures.append(("16-convert-error.png", fig))

    shown = data["shown"]
    h, w = data["clean"].shape
    size = min(h, w, 120)
    top, left = (h - size) // 2, (w - size) // 2
    crop = (slice(top, top + size), slice(left, left + size))
    panels = [
        ("clean", data["clean"]),
        ("noisy input", data["noisy"]),
        ("trained network", data["denoised"]),
        ("K = 1", data["outputs"][1]),
    ]
    if shown != 1:
        panels.append((f"K = {shown}", data["outputs"][shown]))
    by_rank_levels = {1: by_rank[1]["grey_levels"], shown: by_rank[shown]["grey_levels"]}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 2.9), layout="constrained")
    for a, (label, picture) in zip(axes, panels):
        a.imshow(np.clip(picture[crop] + 0.5, 0, 1), cmap="gray", vmin=0, vmax=1)
        a.set_xticks([])
        a.set_yticks([])
        if label == "clean":
            a.set_title(label, fontsize=10.5)
        elif label == "noisy input":
            a.set_title(f"{label}\n{levels['noisy']:.1f} grey levels off", fontsize=10.5)
        elif label == "trained network":
            a.set_title(f"{label}\n{levels['trained']:.1f} grey levels off", fontsize=10.5)
        else:
            k = int(label.split("=")[1])
            a.set_title(
                f"converted, {label}\n{by_rank_levels[k]:.1f} grey levels off", fontsize=10.5
            )
    figures.append(("17-convert-photo.png", fig))
    return figures
