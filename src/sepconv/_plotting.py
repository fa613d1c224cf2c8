"""Figures of kernel factorizations (matplotlib, imported here only, Agg backend).

Files are written whole or not at all: the figure goes to a temporary file in the target
folder, which then replaces the target.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._checks import SepconvValueError, check_choice
from ._files import atomic_write

__all__ = ["plot_factorization", "check_figure_path"]

_FORMATS = ("png", "svg", "pdf")


def check_figure_path(path: Any, name: str = "path") -> str:
    """Validate an output figure path (suffix .png/.svg/.pdf, existing folder); return it."""
    if not isinstance(path, str | os.PathLike):
        raise SepconvValueError(
            f"`{name}` must be a file name ending in .png, .svg or .pdf, got {path!r}"
        )
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in _FORMATS:
        raise SepconvValueError(f"`{name}` must end in .png, .svg or .pdf, got {path!r}")
    check_choice("format", suffix, _FORMATS)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SepconvValueError(f"cannot write {path!r}: folder {folder!r} does not exist")
    return path


def _heatmap(ax: Any, data: np.ndarray, title: str, limit: float) -> None:
    ax.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.75")


def plot_factorization(
    kernel: np.ndarray, result: Any, path: Any, *, title: str = "", max_terms: int = 4
) -> str:
    """Draw ``kernel`` as a sum of column ⊗ row terms and its singular-value spectrum.

    2-D kernels: the kernel, the reconstruction, the singular values (log scale) with the
    tolerance, and for each of the first ``max_terms`` terms its column (a heatmap ``n x 1``),
    its row (``1 x m``), their outer product and the sum of the terms so far. 1-D kernels: the
    values. d-D kernels: the central slice of the kernel and of the reconstruction, the
    factors of each term as curves and the singular values of each unfolding. Returns the
    path written.
    """
    path = check_figure_path(path)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    kernel = np.asarray(kernel, dtype=np.float64)
    recon = result.reconstruct()
    limit = float(np.max(np.abs(kernel))) or 1.0
    shown = result.terms[:max_terms]
    heading = (f"{title}  " if title else "") + (
        f"{'x'.join(map(str, result.shape))}, rank {result.rank}, "
        f"relative error {result.relative_error:.2g}"
    )

    if kernel.ndim == 2:
        rows = 1 + len(shown)
        fig = plt.figure(figsize=(9, 2.4 * rows), layout="constrained")
        grid = fig.add_gridspec(rows, 3)
        _heatmap(fig.add_subplot(grid[0, 0]), kernel, "kernel", limit)
        _heatmap(
            fig.add_subplot(grid[0, 1]),
            recon,
            f"sum of {result.rank} separable term{'s' * (result.rank > 1)}",
            limit,
        )
        ax = fig.add_subplot(grid[0, 2])
        s = result.singular_values
        floor = max(float(s[0]) * 1e-17, 1e-300) if s[0] > 0 else 1e-300
        ax.semilogy(
            np.arange(1, len(s) + 1), np.maximum(s, floor), "o-", ms=3, label="singular values"
        )
        ax.axhline(
            max(result.tol, floor),
            color="black",
            ls="--",
            lw=1,
            label=f"tolerance {result.tol:.1e}",
        )
        ax.axvline(result.rank + 0.5, color="tab:red", lw=1, label=f"rank {result.rank}")
        ax.set_title("singular values", fontsize=10)
        ax.set_xlabel("index", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
        partial = np.zeros_like(kernel)
        for i, (column, row) in enumerate(shown, 1):
            term_limit = float(max(np.max(np.abs(column)), np.max(np.abs(row)))) or 1.0
            inner = grid[i, 0].subgridspec(1, 2, width_ratios=[1, 4])
            _heatmap(fig.add_subplot(inner[0, 0]), column[:, None], f"column {i}", term_limit)
            _heatmap(fig.add_subplot(inner[0, 1]), row[None, :], f"row {i}", term_limit)
            _heatmap(
                fig.add_subplot(grid[i, 1]), np.outer(column, row), f"term {i}: column ⊗ row", limit
            )
            partial = partial + np.outer(column, row)
            if i > 1:
                _heatmap(fig.add_subplot(grid[i, 2]), partial, f"terms 1..{i}", limit)
    elif kernel.ndim == 1:
        fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
        ax.plot(kernel, "o-")
        ax.set_title("1-D kernel", fontsize=9)
    else:
        fig, axes = plt.subplots(1, 4, figsize=(12, 3), layout="constrained")
        middle = tuple(n // 2 for n in kernel.shape[:-2])
        _heatmap(axes[0], kernel[middle], f"kernel, central slice {middle}", limit)
        _heatmap(axes[1], recon[middle], "reconstruction, same slice", limit)
        for i, term in enumerate(shown, 1):
            for k, f in enumerate(term):
                axes[2].plot(f, lw=1, label=f"term {i}, axis {k}")
        axes[2].set_title("factors", fontsize=8)
        axes[2].legend(fontsize=6)
        for k, sv in enumerate(result.unfolding_singular_values or ()):
            axes[3].semilogy(
                np.arange(1, len(sv) + 1),
                np.maximum(sv, 1e-300),
                "o-",
                ms=3,
                label=f"unfolding {k}",
            )
        axes[3].set_title("singular values of the unfoldings", fontsize=8)
        axes[3].legend(fontsize=6)
    fig.suptitle(heading, fontsize=11)

    try:
        atomic_write(
            path,
            lambda temporary: fig.savefig(temporary, dpi=110, bbox_inches="tight", pad_inches=0.1),
        )
    finally:
        plt.close(fig)
    return path
